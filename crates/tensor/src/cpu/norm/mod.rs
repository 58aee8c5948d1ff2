//! RMSNorm (`kernels/rms_norm.md`): `out = w ⊙ (x · 1/sqrt(mean(x²) + eps))`
//! per row of `d`, statistics in f32, in transformers' order (`x` times the
//! reciprocal square root first, then the weight).
//!
//! One generic body (`rms.rs`, over [`Simd`]), run on the backend's tier by
//! `IsaToken::dispatch`. Single-threaded: one call is memory-bound (the
//! backend splits large calls into whole rows across its pool).

pub mod reference;
mod rms;

use crate::cpu::dispatch::{IsaToken, SimdOp};
use crate::cpu::simd::Simd;

/// RMSNorm of each row: `x`, `out`: `[rows, d]` row-major, contiguous, any
/// element offset; `w`: `[d]`. f32 in and out, sum of squares accumulated in
/// f32 (tolerance class: rms_norm, `testing::tolerance::RMS_NORM`). `d = 0`
/// is a no-op. NaN anywhere in a row makes the whole row NaN; `±inf` makes
/// that element NaN and the rest of its row `±0` (as in transformers).
///
/// Panics if `x` and `out` differ in length or are not whole rows of `d`.
#[track_caller]
pub fn rms_norm(isa: IsaToken, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    assert_eq!(x.len(), out.len(), "rms_norm: x and out lengths differ");
    if d == 0 {
        return;
    }
    assert_eq!(x.len() % d, 0, "rms_norm: x is not [rows, {d}]");
    isa.dispatch(RmsNorm { x, w, eps, out })
}

/// [`rms_norm`]'s body as a [`SimdOp`].
struct RmsNorm<'a> {
    x: &'a [f32],
    w: &'a [f32],
    eps: f32,
    out: &'a mut [f32],
}

impl SimdOp for RmsNorm<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        rms::rms_norm(s, self.x, self.w, self.eps, self.out)
    }
}
