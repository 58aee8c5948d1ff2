//! The linear layers: [`Matmul`] and the two fusions that start with one,
//! [`MatmulSwiglu`] (the MLP's first half) and [`MatmulShortConv`] (the
//! short-conv block's first half).

use super::conv::{ShortConv, short_conv_dims};
use super::elementwise::{Swiglu, swiglu_dims};
use super::{all_f32, mismatch};
use crate::{Backend, Result, Tensor};

/// `out[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`.
///
/// Accumulation is f32. Tolerance class: matmul (`kernels/matmul.md`).
pub struct Matmul<'a, B: Backend> {
    /// f32, any shape whose last dimension is `k` (rows = product of the rest).
    pub x: &'a Tensor<B>,
    /// `[n, k]` f32, bf16 or f16, PyTorch Linear layout; best uploaded with
    /// [`Backend::upload_weight`] (a plain upload works, but the CPU then
    /// repacks it on every call).
    pub w: &'a Tensor<B>,
    /// f32 `[n]`.
    pub bias: Option<&'a Tensor<B>>,
    /// f32 with `x`'s leading dims and last dim `n`; overwritten.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> Matmul<'_, B> {
    pub const NAME: &'static str = "matmul";

    /// Returns `(m, n, k)`.
    pub fn check(&self) -> Result<(usize, usize, usize)> {
        matmul_dims(self.x, self.w, self.bias, self.out)
    }
}

/// The matmul's checks, shared with the fusions that start with one;
/// returns `(m, n, k)`.
pub(crate) fn matmul_dims<B: Backend>(
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    out: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
    let op = Matmul::<B>::NAME;
    all_f32(op, &[("x", x), ("out", out)])?;
    let k = x.shape().last();
    let m = x.shape().rows();
    if w.shape().rank() != 2 || w.shape().dims()[1] != k || x.shape().rank() == 0 {
        return Err(mismatch(
            op,
            "w",
            [w.shape().dims().first().copied().unwrap_or(0), k],
            w.shape(),
        ));
    }
    let n = w.shape().dims()[0];
    let mut want = x.shape().dims().to_vec();
    if let Some(last) = want.last_mut() {
        *last = n;
    }
    if out.shape().dims() != want.as_slice() {
        return Err(mismatch(op, "out", want, out.shape()));
    }
    if let Some(b) = bias {
        all_f32(op, &[("bias", b)])?;
        if b.shape().dims() != [n] {
            return Err(mismatch(op, "bias", [n], b.shape()));
        }
    }
    Ok((m, n, k))
}

/// The MLP's first half: `gu = x · w13ᵀ` (`w13` the stacked w1 | w3,
/// `[2f, k]`, as for [`Matmul`]) then `out = swiglu(gu)` (as
/// [`Swiglu`]). The default runs the two ops; wgpu fuses them for
/// m = 1 (one GEMV whose subgroups reduce a gate and an up row each).
pub struct MatmulSwiglu<'a, B: Backend> {
    /// f32 `[m, k]`.
    pub x: &'a Tensor<B>,
    /// `[2f, k]`: w1 | w3.
    pub w13: &'a Tensor<B>,
    /// The caller's f32 `[m, 2f]` scratch, which a backend that fuses the
    /// two may leave unwritten.
    pub gu: &'a mut Tensor<B>,
    /// f32 `[m, f]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> MatmulSwiglu<'_, B> {
    pub const NAME: &'static str = "matmul_swiglu";

    /// The checks of the two ops; returns `(m, f, k)` (together they make
    /// `gu` `[m, 2f]`).
    pub fn check(&self) -> Result<(usize, usize, usize)> {
        let (m, _, k) = matmul_dims(self.x, self.w13, None, self.gu)?;
        let (_, f) = swiglu_dims(self.gu, self.out)?;
        Ok((m, f, k))
    }

    /// Runs the two ops on `be` ([`Backend::matmul`], then
    /// [`Backend::swiglu`]): the default, and a fusing backend's fallback.
    pub fn unfused(self, be: &B) -> Result<()> {
        let MatmulSwiglu { x, w13, gu, out } = self;
        be.matmul(Matmul {
            x,
            w: w13,
            bias: None,
            out: &mut *gu,
        })?;
        be.swiglu(Swiglu { gu, out })
    }
}

/// The short-conv block's first half: `bcx = x · in_projᵀ` (as [`Matmul`],
/// `in_proj` `[3d, k]`) then the short conv of [`ShortConv`] on
/// `bcx`. The default runs the two ops; wgpu fuses the decode step (t = 1:
/// one GEMV whose subgroups reduce the B, C and X rows of a channel and step
/// its conv).
pub struct MatmulShortConv<'a, B: Backend> {
    /// f32 `[t, k]`.
    pub x: &'a Tensor<B>,
    /// `[3d, k]`: B | C | X.
    pub in_proj: &'a Tensor<B>,
    /// f32 `[d, l]`, the conv weights.
    pub w: &'a Tensor<B>,
    /// The caller's f32 `[t, 3d]` scratch, which a backend that fuses the
    /// two may leave unwritten.
    pub bcx: &'a mut Tensor<B>,
    /// f32 `[l − 1, d]`, as for [`ShortConv`].
    pub state: &'a mut Tensor<B>,
    /// f32 `[t, d]`.
    pub out: &'a mut Tensor<B>,
}

impl<B: Backend> MatmulShortConv<'_, B> {
    pub const NAME: &'static str = "matmul_short_conv";

    /// The checks of the two ops; returns `(t, d, l, k)` (together they
    /// make `bcx` `[t, 3d]`).
    pub fn check(&self) -> Result<(usize, usize, usize, usize)> {
        let (_, _, k) = matmul_dims(self.x, self.in_proj, None, self.bcx)?;
        let (t, d, l) = short_conv_dims(self.bcx, self.w, self.state, self.out)?;
        Ok((t, d, l, k))
    }

    /// Runs the two ops on `be` ([`Backend::matmul`], then
    /// [`Backend::short_conv`]): the default, and a fusing backend's
    /// fallback.
    pub fn unfused(self, be: &B) -> Result<()> {
        let MatmulShortConv {
            x,
            in_proj,
            w,
            bcx,
            state,
            out,
        } = self;
        be.matmul(Matmul {
            x,
            w: in_proj,
            bias: None,
            out: &mut *bcx,
        })?;
        be.short_conv(ShortConv { bcx, w, state, out })
    }
}
