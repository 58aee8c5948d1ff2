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
