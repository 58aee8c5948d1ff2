//! RMSNorm (`kernels/rms_norm.md`): `out = w ⊙ (x · 1/sqrt(mean(x²) + eps))`
//! per row of `d`, statistics in f32, in transformers' order (`x` times the
//! reciprocal square root first, then the weight).
//!
//! One generic body (`rms.rs`, over [`Simd`]); each ISA instantiates it
//! through a thin `#[target_feature]` wrapper stamped by `isa!` into
//! [`NormIsa`]. Single-threaded: one call is memory-bound.

pub mod reference;
mod rms;

use crate::cpu::dispatch::{IsaToken, Scalar};
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
    match isa {
        IsaToken::Scalar(s) => s.rms_norm(x, w, eps, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx2(s) => s.rms_norm(x, w, eps, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx512(s) => s.rms_norm(x, w, eps, out),
        #[cfg(target_arch = "aarch64")]
        IsaToken::Neon(s) => s.rms_norm(x, w, eps, out),
    }
}

/// The norm kernels of one ISA: the generic body behind `#[target_feature]`.
pub(crate) trait NormIsa: Simd {
    fn rms_norm(self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]);
}

impl NormIsa for Scalar {
    fn rms_norm(self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
        rms::rms_norm(self, x, w, eps, out)
    }
}

/// Stamps the `#[target_feature(enable = $feat)]` wrapper `$f` around the
/// generic body and the [`NormIsa`] impl of token `$tok`.
macro_rules! isa {
    ($f:ident, $tok:ident, $feat:literal) => {
        #[target_feature(enable = $feat)]
        fn $f(s: crate::cpu::dispatch::$tok, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
            rms::rms_norm(s, x, w, eps, out)
        }

        impl NormIsa for crate::cpu::dispatch::$tok {
            fn rms_norm(self, x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $f(self, x, w, eps, out) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
isa!(rms_norm_avx2, Avx2, "avx2,fma,f16c");
#[cfg(target_arch = "x86_64")]
isa!(rms_norm_avx512, Avx512, "avx512f,avx2,fma,f16c");
#[cfg(target_arch = "aarch64")]
isa!(rms_norm_neon, Neon, "neon");
