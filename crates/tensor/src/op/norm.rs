//! The normalisations over the last dimension: [`RmsNorm`], the residual
//! add fused with it ([`AddRmsNorm`]) and the vision tower's [`LayerNorm`].
//! Kernel specs: `kernels/rms_norm.md`, `kernels/layer_norm.md`.

use super::{AddAssign, all_f32, elementwise, mismatch, same_shape};
use crate::{Backend, Result, Tensor};

/// RMSNorm over the last dimension `d`:
/// `out[r, :] = w ⊙ (x[r, :] · 1/sqrt(mean(x[r, :]²) + eps))`, stats in f32.
/// Used for the per-head q/k norms too (`x` viewed as `[t·h, hd]`).
pub struct RmsNorm<'a, B: Backend> {
    /// f32 `[.., d]`.
    pub x: &'a Tensor<B>,
    /// f32 `[d]`.
    pub w: &'a Tensor<B>,
    pub eps: f32,
    /// f32, `x`'s shape.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> RmsNorm<'_, B> {
    pub const NAME: &'static str = "rms_norm";

    /// Returns `d`.
    pub fn check(&self) -> Result<usize> {
        norm(Self::NAME, self.x, &[("w", self.w)], self.out)
    }
}

/// The residual add followed by the next RMSNorm: `x += y`, then
/// `out = rms_norm(x, w, eps)` (shapes as in [`AddAssign`] and
/// [`RmsNorm`]). The default runs the two ops; a backend may fuse them
/// (wgpu does: one dispatch instead of two).
pub struct AddRmsNorm<'a, B: Backend> {
    /// f32 `[.., d]`, the residual stream; updated in place.
    pub x: &'a mut Tensor<B>,
    /// f32, `x`'s shape.
    pub y: &'a Tensor<B>,
    /// f32 `[d]`.
    pub w: &'a Tensor<B>,
    pub eps: f32,
    /// f32, `x`'s shape.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> AddRmsNorm<'_, B> {
    pub const NAME: &'static str = "add_rms_norm";

    /// Returns `d`.
    pub fn check(&self) -> Result<usize> {
        elementwise(Self::NAME, &[("x", self.x), ("y", self.y)])?;
        norm(Self::NAME, self.x, &[("w", self.w)], self.out)
    }

    /// Runs the two ops on `be` ([`Backend::add_assign`], then
    /// [`Backend::rms_norm`]): the default.
    pub fn unfused(self, be: &B) -> Result<()> {
        let AddRmsNorm { x, y, w, eps, out } = self;
        be.add_assign(AddAssign { x: &mut *x, y })?;
        be.rms_norm(RmsNorm { x, w, eps, out })
    }
}

/// LayerNorm over the last dimension `d` with biased variance:
/// `out = (x − mean) / sqrt(var + eps) ⊙ w + b`.
pub struct LayerNorm<'a, B: Backend> {
    /// f32 `[.., d]`.
    pub x: &'a Tensor<B>,
    /// f32 `[d]`.
    pub w: &'a Tensor<B>,
    /// f32 `[d]`.
    pub b: &'a Tensor<B>,
    pub eps: f32,
    /// f32, `x`'s shape.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> LayerNorm<'_, B> {
    pub const NAME: &'static str = "layer_norm";

    /// Returns `d`.
    pub fn check(&self) -> Result<usize> {
        norm(
            Self::NAME,
            self.x,
            &[("w", self.w), ("b", self.b)],
            self.out,
        )
    }
}

/// `x`, `out` f32 of one shape, each param f32 `[d]`; returns `d`.
fn norm<B: Backend>(
    op: &'static str,
    x: &Tensor<B>,
    params: &[(&'static str, &Tensor<B>)],
    out: &Tensor<B>,
) -> Result<usize> {
    all_f32(op, &[("x", x), ("out", out)])?;
    all_f32(op, params)?;
    same_shape(op, "out", x, out)?;
    let d = x.shape().last();
    for &(what, p) in params {
        if p.shape().dims() != [d] {
            return Err(mismatch(op, what, [d], p.shape()));
        }
    }
    Ok(d)
}
