//! The [`Backend`] trait: a small set of coarse, model-shaped ops. The model
//! is generic over it; the runtime picks one implementation in one `match`.
//!
//! Each op takes one descriptor of [`crate::op`], which names its operands,
//! documents its semantics and checks its shapes.
//!
//! Ops write into caller-owned outputs (`out: &mut Tensor<Self>`) so that a
//! decode loop reuses buffers allocated once per session, and a GPU backend
//! can chain a whole forward pass on the device: only [`Backend::download_f32`]
//! and [`Backend::sync`] wait for the device.

use crate::{DType, Result, Shape, Tensor, TensorError, op};

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

    /// The values widened to f32 (exact), for the float dtypes (f32, bf16,
    /// f16; bytes of any alignment); `None` for the others.
    pub fn float_values(&self) -> Option<Vec<f32>> {
        let b = self.bytes;
        Some(match self.dtype {
            DType::F32 => b
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::BF16 => b
                .chunks_exact(2)
                .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            DType::F16 => b
                .chunks_exact(2)
                .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
                .collect(),
            _ => return None,
        })
    }

    /// Checks that the byte length matches `shape` (and, for a block
    /// format, that its rows are whole blocks).
    pub fn check(&self, shape: &Shape) -> Result<()> {
        let block = self.dtype.block_elems();
        if block > 1 && !shape.last().is_multiple_of(block) {
            return Err(TensorError::BlockRows {
                dtype: self.dtype,
                shape: shape.clone(),
                block,
            });
        }
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

    /// Like [`Backend::download_f32`], into a reused buffer (resized to the
    /// tensor): a decode loop reads its logits without allocating.
    fn download_f32_into(&self, t: &Tensor<Self>, out: &mut Vec<f32>) -> Result<()> {
        *out = self.download_f32(t)?;
        Ok(())
    }

    /// Waits until all submitted work has finished.
    fn sync(&self) -> Result<()>;

    /// Runs `f`, a run of ops such as one forward pass, where this backend
    /// issues ops cheapest. The CPU backend runs it on a thread of its
    /// pool, so each op's parallel split starts inside the pool (from a
    /// caller outside it, every op would wake the pool and then wait to be
    /// woken in turn: two thread switches per op, which a decode step of
    /// ~170 small ops feels). Other backends call `f`.
    fn enter<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        f()
    }

    /// [`op::Matmul`]: `out[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`.
    fn matmul(&self, op: op::Matmul<'_, Self>) -> Result<()>;

    // ---- Text-model ops (LFM2). Kernel specs: `kernels/<op>.md`. A backend
    // that lacks one returns `TensorError::Unsupported`. All activations f32.

    /// [`op::RmsNorm`]: RMSNorm over the last dimension.
    fn rms_norm(&self, op: op::RmsNorm<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::RmsNorm::<Self>::NAME))
    }

    /// [`op::AddRmsNorm`]: `x += y`, then `out = rms_norm(x)`. The default
    /// runs [`Backend::add_assign`] and [`Backend::rms_norm`].
    fn add_rms_norm(&self, op: op::AddRmsNorm<'_, Self>) -> Result<()> {
        op.unfused(self)
    }

    /// [`op::Rope`]: NeoX rotary embedding, in place.
    fn rope(&self, op: op::Rope<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::Rope::<Self>::NAME))
    }

    /// [`op::QkvNormRope`]: the attention layer's input side (per-head
    /// norms, rotation, KV-cache append).
    fn qkv_norm_rope(&self, op: op::QkvNormRope<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::QkvNormRope::<Self>::NAME))
    }

    /// [`op::ShortConv`]: the LFM2 short-conv core.
    fn short_conv(&self, op: op::ShortConv<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::ShortConv::<Self>::NAME))
    }

    /// [`op::MatmulShortConv`]: in_proj then the short conv. The default
    /// runs [`Backend::matmul`] and [`Backend::short_conv`].
    fn matmul_short_conv(&self, op: op::MatmulShortConv<'_, Self>) -> Result<()> {
        op.unfused(self)
    }

    /// [`op::Attention`]: grouped-query attention for one sequence.
    fn attention(&self, op: op::Attention<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::Attention::<Self>::NAME))
    }

    /// [`op::SiluMul`]: `out = silu(gate) ⊙ up`.
    fn silu_mul(&self, op: op::SiluMul<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::SiluMul::<Self>::NAME))
    }

    /// [`op::AddAssign`]: `x += y`.
    fn add_assign(&self, op: op::AddAssign<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::AddAssign::<Self>::NAME))
    }

    /// [`op::GatherRows`]: embedding gather, widened to f32.
    fn gather_rows(&self, op: op::GatherRows<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::GatherRows::<Self>::NAME))
    }

    /// [`op::CopyRows`]: `src` into rows `row0..` of `dst`.
    fn copy_rows(&self, op: op::CopyRows<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::CopyRows::<Self>::NAME))
    }

    /// [`op::CopyCols`]: columns `col0..` of `src` into `out`.
    fn copy_cols(&self, op: op::CopyCols<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::CopyCols::<Self>::NAME))
    }

    /// [`op::Swiglu`]: SwiGLU over a stacked gate | up projection.
    fn swiglu(&self, op: op::Swiglu<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::Swiglu::<Self>::NAME))
    }

    /// [`op::MatmulSwiglu`]: the MLP's first half. The default runs
    /// [`Backend::matmul`] and [`Backend::swiglu`].
    fn matmul_swiglu(&self, op: op::MatmulSwiglu<'_, Self>) -> Result<()> {
        op.unfused(self)
    }

    // ---- Vision ops (SigLIP2 + connector).

    /// [`op::LayerNorm`]: LayerNorm over the last dimension.
    fn layer_norm(&self, op: op::LayerNorm<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::LayerNorm::<Self>::NAME))
    }

    /// [`op::Gelu`]: GELU, elementwise.
    fn gelu(&self, op: op::Gelu<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::Gelu::<Self>::NAME))
    }

    /// [`op::PixelUnshuffle`]: pixel unshuffle by 2 of one crop's features.
    fn pixel_unshuffle(&self, op: op::PixelUnshuffle<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::PixelUnshuffle::<Self>::NAME))
    }

    /// [`op::SliceRows`]: rows `row0..` of `src` into `out`.
    fn slice_rows(&self, op: op::SliceRows<'_, Self>) -> Result<()> {
        let _ = op;
        Err(unsupported::<Self>(op::SliceRows::<Self>::NAME))
    }
}

/// The two GELU forms LFM2-VL uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gelu {
    /// `gelu_pytorch_tanh` (the vision MLP).
    Tanh,
    /// The exact erf GELU (the projector).
    Erf,
}

fn unsupported<B: Backend>(op: &'static str) -> TensorError {
    TensorError::Unsupported {
        op,
        backend: std::any::type_name::<B>()
            .rsplit("::")
            .next()
            .unwrap_or("?"),
    }
}
