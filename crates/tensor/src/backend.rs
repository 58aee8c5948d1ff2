//! The [`Backend`] trait: a small set of coarse, model-shaped ops. The model
//! is generic over it; the runtime picks one implementation in one `match`.
//!
//! Ops write into caller-owned outputs (`out: &mut Tensor<Self>`) so that a
//! decode loop reuses buffers allocated once per session, and a GPU backend
//! can chain a whole forward pass on the device: only [`Backend::download_f32`]
//! and [`Backend::sync`] wait for the device.

use crate::{DType, Result, Shape, Tensor, TensorError};

/// Host bytes of one tensor, little-endian, at any alignment (e.g. a slice of
/// an mmap'd safetensors file). Backends copy it into storage they own.
#[derive(Clone, Copy, Debug)]
pub struct HostData<'a> {
    pub dtype: DType,
    pub bytes: &'a [u8],
}

impl<'a> HostData<'a> {
    pub fn new(dtype: DType, bytes: &'a [u8]) -> Self {
        HostData { dtype, bytes }
    }

    pub fn f32(v: &'a [f32]) -> Self {
        HostData::new(DType::F32, bytemuck::cast_slice(v))
    }

    pub fn bf16(v: &'a [half::bf16]) -> Self {
        HostData::new(DType::BF16, bytemuck::cast_slice(v))
    }

    pub fn f16(v: &'a [half::f16]) -> Self {
        HostData::new(DType::F16, bytemuck::cast_slice(v))
    }

    /// Checks that the byte length matches `shape`.
    pub fn check(&self, shape: &Shape) -> Result<()> {
        let expected = self.dtype.bytes_for(shape.elem_count());
        if self.bytes.len() != expected {
            return Err(TensorError::ByteLength {
                dtype: self.dtype,
                shape: shape.clone(),
                expected,
                got: self.bytes.len(),
            });
        }
        Ok(())
    }
}

/// A compute backend: owns device storage and runs the model's ops on it.
pub trait Backend: Sized + Send + Sync {
    /// Device memory of one tensor.
    type Storage: Send + Sync;

    /// Human-readable description (ISA and threads, or GPU adapter).
    fn describe(&self) -> String;

    /// Copies host data into a new tensor.
    fn upload(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>>;

    /// Copies a matmul weight `[n, k]` (PyTorch Linear layout) to the device.
    /// The backend may keep it in a private layout chosen for its kernels
    /// (the CPU prepacks panels for its ISA, once, here); such a tensor is
    /// accepted as `w` by [`Backend::matmul`] and by [`Backend::download_f32`],
    /// which returns it row-major.
    fn upload_weight(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        self.upload(data, shape)
    }

    /// A new zero-filled tensor.
    fn zeros(&self, dtype: DType, shape: Shape) -> Result<Tensor<Self>>;

    /// Reads a tensor back to the host, widened to f32 (exact for all dtypes).
    fn download_f32(&self, t: &Tensor<Self>) -> Result<Vec<f32>>;

    /// Waits until all submitted work has finished.
    fn sync(&self) -> Result<()>;

    /// `out[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`.
    ///
    /// - `x`: f32, any shape whose last dimension is `k` (rows = product of the rest).
    /// - `w`: `[n, k]` f32, bf16 or f16, PyTorch Linear layout; best uploaded
    ///   with [`Backend::upload_weight`] (a plain upload works, but the CPU
    ///   then repacks it on every call).
    /// - `bias`: f32 `[n]`.
    /// - `out`: f32 with `x`'s leading dims and last dim `n`; overwritten.
    ///
    /// Accumulation is f32. Tolerance class: matmul (`kernels/matmul.md`).
    fn matmul(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        out: &mut Tensor<Self>,
    ) -> Result<()>;
}

/// Shape checks shared by every backend's matmul; returns `(m, n, k)`.
pub fn matmul_dims<B: Backend>(
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    out: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
    const OP: &str = "matmul";
    if x.dtype() != DType::F32 {
        return Err(TensorError::UnsupportedDType {
            op: OP,
            what: "x",
            dtype: x.dtype(),
        });
    }
    if out.dtype() != DType::F32 {
        return Err(TensorError::UnsupportedDType {
            op: OP,
            what: "out",
            dtype: out.dtype(),
        });
    }
    let k = x.shape().last();
    let m = x.shape().rows();
    if w.shape().rank() != 2 || w.shape().dims()[1] != k || x.shape().rank() == 0 {
        return Err(TensorError::ShapeMismatch {
            op: OP,
            what: "w",
            expected: Shape::from([w.shape().dims().first().copied().unwrap_or(0), k]),
            got: w.shape().clone(),
        });
    }
    let n = w.shape().dims()[0];
    let mut want = x.shape().dims().to_vec();
    *want.last_mut().expect("rank checked above") = n;
    if out.shape().dims() != want.as_slice() {
        return Err(TensorError::ShapeMismatch {
            op: OP,
            what: "out",
            expected: Shape::from(want),
            got: out.shape().clone(),
        });
    }
    if let Some(b) = bias {
        if b.dtype() != DType::F32 {
            return Err(TensorError::UnsupportedDType {
                op: OP,
                what: "bias",
                dtype: b.dtype(),
            });
        }
        if b.shape().dims() != [n] {
            return Err(TensorError::ShapeMismatch {
                op: OP,
                what: "bias",
                expected: Shape::from([n]),
                got: b.shape().clone(),
            });
        }
    }
    Ok((m, n, k))
}
