//! One descriptor type per [`Backend`] op: a struct holding every operand
//! of one call by name (inputs as `&Tensor`, outputs and in-place operands
//! as `&mut Tensor`, plus the op's scalars), generic over the backend.
//!
//! Each descriptor documents its op's semantics and shapes, names it
//! (`NAME`, the `op` of its errors and of the CPU profile) and validates its
//! operands in `check`, which every backend calls before any kernel: one
//! place per op, the same typed errors on every backend. `check` returns
//! the dimensions the kernels need.
//!
//! ```
//! use tensor::{Backend, DType, HostData, Shape, op};
//! use tensor::cpu::{CpuBackend, CpuOptions};
//!
//! let be = CpuBackend::new(CpuOptions::default())?;
//! let x = be.upload(HostData::f32(&[3.0, 4.0]), Shape::from([1, 2]))?;
//! let w = be.upload(HostData::f32(&[1.0, 1.0]), Shape::from([2]))?;
//! let mut out = be.zeros(DType::F32, Shape::from([1, 2]))?;
//! be.rms_norm(op::RmsNorm { x: &x, w: &w, eps: 0.0, out: &mut out })?;
//! let got = be.download_f32(&out)?;
//! assert!((got[0] - 3.0 / 12.5f32.sqrt()).abs() < 1e-6);
//! # Ok::<(), tensor::TensorError>(())
//! ```
//!
//! - [`linear`] holds [`Matmul`], [`MatmulSwiglu`] and [`MatmulShortConv`].
//! - [`norm`] holds [`RmsNorm`], [`AddRmsNorm`] and [`LayerNorm`].
//! - [`attention`] holds [`Attention`], [`Rope`] and [`QkvNormRope`].
//! - [`conv`] holds [`ShortConv`].
//! - [`elementwise`] holds [`SiluMul`], [`Swiglu`], [`AddAssign`] and [`Gelu`].
//! - [`copy`] holds [`GatherRows`], [`CopyRows`], [`SliceRows`], [`CopyCols`]
//!   and [`PixelUnshuffle`].

pub mod attention;
pub mod conv;
pub mod copy;
pub mod elementwise;
pub mod linear;
pub mod norm;

pub use self::attention::{Attention, AttnShape, QkvNormRope, Rope};
pub use self::conv::ShortConv;
pub use self::copy::{CopyCols, CopyRows, GatherRows, PixelUnshuffle, SliceRows};
pub use self::elementwise::{AddAssign, Gelu, SiluMul, Swiglu};
pub use self::linear::{Matmul, MatmulShortConv, MatmulSwiglu};
pub use self::norm::{AddRmsNorm, LayerNorm, RmsNorm};

use crate::{Backend, DType, Result, Shape, Tensor, TensorError};

/// A `ShapeMismatch` of `op`'s operand `what`.
pub(crate) fn mismatch(
    op: &'static str,
    what: &'static str,
    expected: impl Into<Shape>,
    got: &Shape,
) -> TensorError {
    TensorError::ShapeMismatch {
        op,
        what,
        expected: expected.into(),
        got: got.clone(),
    }
}

/// An `OutOfRange` of `op`'s `what`.
pub(crate) fn out_of_range(
    op: &'static str,
    what: &'static str,
    value: usize,
    limit: usize,
) -> TensorError {
    TensorError::OutOfRange {
        op,
        what,
        value,
        limit,
    }
}

/// Errors (naming `b` as `what`) unless `b` has `a`'s shape.
pub(crate) fn same_shape<B: Backend>(
    op: &'static str,
    what: &'static str,
    a: &Tensor<B>,
    b: &Tensor<B>,
) -> Result<()> {
    if a.shape() != b.shape() {
        return Err(mismatch(op, what, a.shape().clone(), b.shape()));
    }
    Ok(())
}

/// Errors unless every tensor is f32.
pub(crate) fn all_f32<B: Backend>(
    op: &'static str,
    ts: &[(&'static str, &Tensor<B>)],
) -> Result<()> {
    for &(what, t) in ts {
        if t.dtype() != DType::F32 {
            return Err(TensorError::UnsupportedDType {
                op,
                what,
                dtype: t.dtype(),
            });
        }
    }
    Ok(())
}

/// Elementwise ops: every tensor f32 and of the first one's shape.
pub(crate) fn elementwise<B: Backend>(
    op: &'static str,
    ts: &[(&'static str, &Tensor<B>)],
) -> Result<()> {
    all_f32(op, ts)?;
    if let Some(&(_, first)) = ts.first() {
        for &(what, t) in &ts[1..] {
            same_shape(op, what, first, t)?;
        }
    }
    Ok(())
}
