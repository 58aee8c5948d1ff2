//! [`Tensor`]: a dtype, a shape and backend-owned storage.

use crate::{Backend, DType, Shape};

/// A contiguous row-major tensor whose storage belongs to backend `B`.
pub struct Tensor<B: Backend> {
    storage: B::Storage,
    dtype: DType,
    shape: Shape,
}

impl<B: Backend> Tensor<B> {
    /// Wraps backend storage. Backends call this; the storage must hold
    /// `dtype.bytes_for(shape.elem_count())` bytes.
    pub fn from_storage(storage: B::Storage, dtype: DType, shape: Shape) -> Self {
        Tensor {
            storage,
            dtype,
            shape,
        }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn shape(&self) -> &Shape {
        &self.shape
    }

    pub fn elem_count(&self) -> usize {
        self.shape.elem_count()
    }

    pub fn storage(&self) -> &B::Storage {
        &self.storage
    }

    pub fn storage_mut(&mut self) -> &mut B::Storage {
        &mut self.storage
    }

    /// Reinterprets the shape without moving data (same element count).
    pub fn reshape(mut self, shape: impl Into<Shape>) -> crate::Result<Self> {
        self.set_shape(shape)?;
        Ok(self)
    }

    /// Reinterprets the shape in place without moving data (same element count).
    pub fn set_shape(&mut self, shape: impl Into<Shape>) -> crate::Result<()> {
        let shape = shape.into();
        if shape.elem_count() != self.shape.elem_count() {
            return Err(crate::TensorError::ShapeMismatch {
                op: "reshape",
                what: "element count",
                expected: self.shape.clone(),
                got: shape,
            });
        }
        self.shape = shape;
        Ok(())
    }
}

impl<B: Backend> std::fmt::Debug for Tensor<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tensor({} {})", self.dtype, self.shape)
    }
}
