//! [`Loader`]: reads named tensors from a [`Checkpoint`], checks shape and
//! dtype, and uploads them to a backend in the form the ops want (matmul
//! weights through `upload_weight`, small vectors widened to f32).

use tensor::{Backend, DType, HostData, Shape, Tensor};

use super::{Checkpoint, Prefix};
use crate::error::Result;

pub struct Loader<'a, B: Backend> {
    pub ckpt: &'a Checkpoint,
    pub be: &'a B,
}

impl<'a, B: Backend> Loader<'a, B> {
    pub fn new(ckpt: &'a Checkpoint, be: &'a B) -> Self {
        Loader { ckpt, be }
    }

    /// A matmul weight `[n, k]` (PyTorch Linear layout), kept in its dtype.
    pub fn linear(&self, p: &Prefix, n: usize, k: usize) -> Result<Tensor<B>> {
        let name = p.name("weight");
        let t = self.ckpt.get_shaped(&name, &[n, k])?;
        Ok(self.be.upload_weight(t.host(), Shape::from([n, k]))?)
    }

    /// Matmul weights `[n_i, k]` stacked along n into one `[Σ n_i, k]`
    /// weight (e.g. q | k | v, for one matmul instead of three); all parts
    /// must share a dtype, which the result keeps.
    pub fn linear_stacked(&self, parts: &[(&Prefix, usize)], k: usize) -> Result<Tensor<B>> {
        let raws = parts
            .iter()
            .map(|&(p, n)| {
                let name = p.name("weight");
                Ok((self.ckpt.get_shaped(&name, &[n, k])?, name))
            })
            .collect::<Result<Vec<_>>>()?;
        let dtype = raws.first().map_or(DType::F32, |(t, _)| t.dtype);
        if raws.iter().any(|(t, _)| t.dtype != dtype) {
            let list = |f: &dyn Fn(&(super::RawTensor<'_>, String)) -> String| {
                raws.iter().map(f).collect::<Vec<_>>().join(", ")
            };
            return Err(crate::error::ModelError::MixedDType {
                names: list(&|(_, n)| format!("`{n}`")),
                dtypes: list(&|(t, _)| t.dtype.to_string()),
            });
        }
        let mut bytes = Vec::with_capacity(raws.iter().map(|(t, _)| t.bytes.len()).sum());
        for (t, _) in &raws {
            bytes.extend_from_slice(t.bytes);
        }
        let n: usize = parts.iter().map(|&(_, n)| n).sum();
        Ok(self
            .be
            .upload_weight(HostData::new(dtype, &bytes), Shape::from([n, k]))?)
    }

    /// f32 vectors of `len_i` (biases) concatenated into one, widened on the host.
    pub fn vector_stacked(&self, parts: &[(&str, usize)]) -> Result<Tensor<B>> {
        let mut v = Vec::new();
        for &(name, len) in parts {
            v.extend(self.ckpt.get_shaped(name, &[len])?.to_f32());
        }
        let len = v.len();
        Ok(self.be.upload(HostData::f32(&v), Shape::from([len]))?)
    }

    /// An f32 vector of `len` (norm weights, biases), widened on the host.
    pub fn vector(&self, name: &str, len: usize) -> Result<Tensor<B>> {
        let t = self.ckpt.get_shaped(name, &[len])?;
        let v = t.to_f32();
        Ok(self.be.upload(HostData::f32(&v), Shape::from([len]))?)
    }

    /// An f32 tensor of any shape, widened on the host and given `as_shape`
    /// (same element count), e.g. the conv weight `[d, 1, l]` as `[d, l]`.
    pub fn f32_as(&self, name: &str, shape: &[usize], as_shape: &[usize]) -> Result<Tensor<B>> {
        let t = self.ckpt.get_shaped(name, shape)?;
        let v = t.to_f32();
        Ok(self.be.upload(HostData::f32(&v), Shape::from(as_shape))?)
    }

    /// The dtype a tensor has in the checkpoint.
    pub fn dtype(&self, name: &str) -> Result<DType> {
        Ok(self.ckpt.get(name)?.dtype)
    }
}
