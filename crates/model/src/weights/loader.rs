//! [`Loader`]: reads named tensors from a [`WeightSource`] (safetensors or
//! GGUF), checks shape and dtype, and uploads them to a backend in the form
//! the ops want (matmul weights through `upload_weight`, kept in their dtype
//! (bf16, or a GGUF block format), small vectors widened to f32).

use tensor::{Backend, DType, HostData, Shape, Tensor};

use super::{Prefix, WeightSource};
use crate::error::Result;

pub struct Loader<'a, B: Backend> {
    pub src: &'a dyn WeightSource,
    pub be: &'a B,
}

impl<'a, B: Backend> Loader<'a, B> {
    pub fn new(src: &'a dyn WeightSource, be: &'a B) -> Self {
        Loader { src, be }
    }

    /// A matmul weight `[n, k]` (PyTorch Linear layout), kept in its dtype.
    pub fn linear(&self, p: &Prefix, n: usize, k: usize) -> Result<Tensor<B>> {
        let name = p.name("weight");
        let t = self.src.get_shaped(&name, &[n, k])?;
        Ok(self.be.upload_weight(t.host(), Shape::from([n, k]))?)
    }

    /// Matmul weights `[n_i, k]` stacked along n into one `[Σ n_i, k]`
    /// weight (e.g. q | k | v, for one matmul instead of three). Parts of
    /// one dtype keep it (row bytes concatenated; block formats too, their
    /// rows being whole blocks). Parts of different dtypes (a GGUF Q4_K_M
    /// file stores attn_v in Q6_K beside Q4_K q and k) are decoded to f32
    /// and stacked exactly: correct on every backend, at the cost of f32
    /// memory for that one weight.
    pub fn linear_stacked(&self, parts: &[(&Prefix, usize)], k: usize) -> Result<Tensor<B>> {
        let raws = parts
            .iter()
            .map(|&(p, n)| self.src.get_shaped(&p.name("weight"), &[n, k]))
            .collect::<Result<Vec<_>>>()?;
        let n: usize = parts.iter().map(|&(_, n)| n).sum();
        let dtype = raws.first().map_or(DType::F32, |t| t.dtype);
        if raws.iter().all(|t| t.dtype == dtype) {
            let mut bytes = Vec::with_capacity(raws.iter().map(|t| t.bytes.len()).sum());
            for t in &raws {
                bytes.extend_from_slice(t.bytes);
            }
            return Ok(self
                .be
                .upload_weight(HostData::new(dtype, &bytes), Shape::from([n, k]))?);
        }
        let dtypes: Vec<String> = raws.iter().map(|t| t.dtype.to_string()).collect();
        tracing::debug!(
            weight = %parts.first().map_or("", |(p, _)| p.as_str()),
            dtypes = %dtypes.join(", "),
            "stacked weight parts differ in dtype: decoded to f32"
        );
        let mut v = Vec::with_capacity(n * k);
        for t in &raws {
            v.extend(t.to_f32()?);
        }
        Ok(self
            .be
            .upload_weight(HostData::f32(&v), Shape::from([n, k]))?)
    }

    /// f32 vectors of `len_i` (biases) concatenated into one, widened on the host.
    pub fn vector_stacked(&self, parts: &[(&str, usize)]) -> Result<Tensor<B>> {
        let mut v = Vec::new();
        for &(name, len) in parts {
            v.extend(self.src.get_shaped(name, &[len])?.to_f32()?);
        }
        let len = v.len();
        Ok(self.be.upload(HostData::f32(&v), Shape::from([len]))?)
    }

    /// An f32 vector of `len` (norm weights, biases), widened on the host.
    pub fn vector(&self, name: &str, len: usize) -> Result<Tensor<B>> {
        let v = self.src.get_shaped(name, &[len])?.to_f32()?;
        Ok(self.be.upload(HostData::f32(&v), Shape::from([len]))?)
    }

    /// An f32 tensor of any shape, widened on the host and given `as_shape`
    /// (same element count), e.g. the conv weight `[d, 1, l]` as `[d, l]`.
    pub fn f32_as(&self, name: &str, shape: &[usize], as_shape: &[usize]) -> Result<Tensor<B>> {
        let v = self.src.get_shaped(name, shape)?.to_f32()?;
        Ok(self.be.upload(HostData::f32(&v), Shape::from(as_shape))?)
    }

    /// The dtype a tensor has in the source.
    pub fn dtype(&self, name: &str) -> Result<DType> {
        Ok(self.src.get(name)?.dtype)
    }
}
