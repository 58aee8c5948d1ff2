//! The elementwise ops, all f32: the SwiGLU gate ([`SiluMul`], and
//! [`Swiglu`] over a stacked gate | up projection), the residual add
//! ([`AddAssign`]) and [`Gelu`]. Kernel specs: `kernels/elementwise.md`,
//! `kernels/gelu.md`.

use super::{all_f32, elementwise, mismatch};
use crate::{Backend, Result, Tensor};

/// SwiGLU gate: `out = silu(gate) ⊙ up` elementwise, `silu(g) = g / (1 + e^−g)`.
pub struct SiluMul<'a, B: Backend> {
    /// f32, any shape.
    pub gate: &'a Tensor<B>,
    /// f32, `gate`'s shape.
    pub up: &'a Tensor<B>,
    /// f32, `gate`'s shape.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> SiluMul<'_, B> {
    pub const NAME: &'static str = "silu_mul";

    pub fn check(&self) -> Result<()> {
        elementwise(
            Self::NAME,
            &[("gate", self.gate), ("up", self.up), ("out", self.out)],
        )
    }
}

/// SwiGLU over a stacked gate | up projection:
/// `out[r, c] = silu(gu[r, c]) · gu[r, f + c]` with the arithmetic of
/// [`SiluMul`] (one matmul for w1 | w3 instead of two, and no split).
pub struct Swiglu<'a, B: Backend> {
    /// f32 `[t, 2f]`: gate | up.
    pub gu: &'a Tensor<B>,
    /// f32 `[t, f]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> Swiglu<'_, B> {
    pub const NAME: &'static str = "swiglu";

    /// Returns `(t, f)`.
    pub fn check(&self) -> Result<(usize, usize)> {
        swiglu_dims(self.gu, self.out)
    }
}

/// SwiGLU's checks, shared with [`super::MatmulSwiglu`]: `gu` `[t, 2f]`
/// (gate | up), `out` `[t, f]`; returns `(t, f)`.
pub(crate) fn swiglu_dims<B: Backend>(gu: &Tensor<B>, out: &Tensor<B>) -> Result<(usize, usize)> {
    let op = Swiglu::<B>::NAME;
    all_f32(op, &[("gu", gu), ("out", out)])?;
    let (t, f) = (out.shape().rows(), out.shape().last());
    if gu.shape().rows() != t || gu.shape().last() != 2 * f {
        return Err(mismatch(op, "gu (gate | up)", [t, 2 * f], gu.shape()));
    }
    Ok((t, f))
}

/// Residual add in place: `x += y`.
pub struct AddAssign<'a, B: Backend> {
    /// f32, any shape; updated in place.
    pub x: &'a mut Tensor<B>,
    /// f32, `x`'s shape.
    pub y: &'a Tensor<B>,
}

impl<B: Backend> AddAssign<'_, B> {
    pub const NAME: &'static str = "add_assign";

    pub fn check(&self) -> Result<()> {
        elementwise(Self::NAME, &[("x", self.x), ("y", self.y)])
    }
}

/// GELU, elementwise: [`crate::Gelu::Tanh`] is
/// `0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))` (`gelu_pytorch_tanh`),
/// [`crate::Gelu::Erf`] is `0.5·z·(1 + erf(z/√2))` (exact GELU).
pub struct Gelu<'a, B: Backend> {
    /// f32, any shape.
    pub x: &'a Tensor<B>,
    /// Which of the two forms.
    pub kind: crate::Gelu,
    /// f32, `x`'s shape.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> Gelu<'_, B> {
    pub const NAME: &'static str = "gelu";

    pub fn check(&self) -> Result<()> {
        elementwise(Self::NAME, &[("x", self.x), ("out", self.out)])
    }
}
