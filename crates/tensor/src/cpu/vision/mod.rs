//! Kernels of the vision tower and connector: LayerNorm
//! (`kernels/layer_norm.md`), the two GELUs (`kernels/gelu.md`) and pixel
//! unshuffle (`lfm2vl.md` §5, plain data movement).
//!
//! One generic body per kernel (`layer_norm.rs`, `gelu.rs`, over [`Simd`]);
//! each ISA instantiates it through a thin `#[target_feature]` wrapper
//! stamped by `isa!` into [`VisionIsa`]. Single-threaded: one call is
//! memory-bound. Slices may start at any element offset.

mod gelu;
mod layer_norm;
pub mod reference;

use crate::Gelu;
use crate::cpu::dispatch::{IsaToken, Scalar};
use crate::cpu::simd::Simd;

/// LayerNorm of each row: `x`, `out`: `[rows, d]` row-major, contiguous,
/// any element offset; `w`, `b`: `[d]`. `out = (x − mean)·rstd·w + b` with
/// the biased variance and `rstd = 1/sqrt(var + eps)`, statistics in f32
/// by a shifted two-pass scheme that stays accurate for rows with a large
/// mean offset (tolerance class: layer_norm, `testing::tolerance::LAYER_NORM`).
/// A constant row gives `b` exactly. NaN or `±inf` anywhere in a row makes
/// the whole row NaN (as the f64 reference and PyTorch). `rows = 0` or
/// `d = 0` is a no-op.
///
/// Panics if `w` and `b` differ in length, or `x` and `out` differ in length
/// or are not whole rows of `d`.
#[track_caller]
pub fn layer_norm(isa: IsaToken, x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
    let d = w.len();
    assert_eq!(b.len(), d, "layer_norm: w has {d} elements, b {}", b.len());
    assert_eq!(x.len(), out.len(), "layer_norm: x and out lengths differ");
    if x.is_empty() {
        return;
    }
    assert!(
        d > 0 && x.len().is_multiple_of(d),
        "layer_norm: x ({} elements) is not [rows, {d}]",
        x.len()
    );
    match isa {
        IsaToken::Scalar(s) => s.layer_norm(x, w, b, eps, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx2(s) => s.layer_norm(x, w, b, eps, out),
        #[cfg(target_arch = "x86_64")]
        IsaToken::Avx512(s) => s.layer_norm(x, w, b, eps, out),
        #[cfg(target_arch = "aarch64")]
        IsaToken::Neon(s) => s.layer_norm(x, w, b, eps, out),
    }
}

/// Elementwise GELU of `kind`, f32 with the vectorised `exp`
/// (`kernels/gelu.md`; tolerances `testing::tolerance::{GELU_TANH,
/// GELU_ERF}`): `Tanh` is `gelu_pytorch_tanh`, `Erf` the exact GELU.
/// `+inf → +inf`, `−inf → NaN` (`−inf·0`, as the reference and PyTorch),
/// NaN → NaN.
///
/// Panics unless the slices have the same length.
#[track_caller]
pub fn gelu(isa: IsaToken, x: &[f32], kind: Gelu, out: &mut [f32]) {
    assert_eq!(x.len(), out.len(), "gelu: x and out lengths differ");
    match (isa, kind) {
        (IsaToken::Scalar(s), Gelu::Tanh) => s.gelu_tanh(x, out),
        (IsaToken::Scalar(s), Gelu::Erf) => s.gelu_erf(x, out),
        #[cfg(target_arch = "x86_64")]
        (IsaToken::Avx2(s), Gelu::Tanh) => s.gelu_tanh(x, out),
        #[cfg(target_arch = "x86_64")]
        (IsaToken::Avx2(s), Gelu::Erf) => s.gelu_erf(x, out),
        #[cfg(target_arch = "x86_64")]
        (IsaToken::Avx512(s), Gelu::Tanh) => s.gelu_tanh(x, out),
        #[cfg(target_arch = "x86_64")]
        (IsaToken::Avx512(s), Gelu::Erf) => s.gelu_erf(x, out),
        #[cfg(target_arch = "aarch64")]
        (IsaToken::Neon(s), Gelu::Tanh) => s.gelu_tanh(x, out),
        #[cfg(target_arch = "aarch64")]
        (IsaToken::Neon(s), Gelu::Erf) => s.gelu_erf(x, out),
    }
}

/// The vision kernels of one ISA: the generic bodies behind
/// `#[target_feature]`.
pub(crate) trait VisionIsa: Simd {
    fn layer_norm(self, x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]);
    fn gelu_tanh(self, x: &[f32], out: &mut [f32]);
    fn gelu_erf(self, x: &[f32], out: &mut [f32]);
}

impl VisionIsa for Scalar {
    fn layer_norm(self, x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
        layer_norm::layer_norm(self, x, w, b, eps, out)
    }
    fn gelu_tanh(self, x: &[f32], out: &mut [f32]) {
        gelu::gelu::<_, false>(self, x, out)
    }
    fn gelu_erf(self, x: &[f32], out: &mut [f32]) {
        gelu::gelu::<_, true>(self, x, out)
    }
}

/// Stamps module `$m` of `#[target_feature(enable = $feat)]` wrappers around
/// the generic bodies and the [`VisionIsa`] impl of token `$tok`.
macro_rules! isa {
    ($m:ident, $tok:ident, $feat:literal) => {
        mod $m {
            use crate::cpu::dispatch::$tok;

            #[target_feature(enable = $feat)]
            pub(super) fn layer_norm(
                s: $tok,
                x: &[f32],
                w: &[f32],
                b: &[f32],
                eps: f32,
                out: &mut [f32],
            ) {
                super::layer_norm::layer_norm(s, x, w, b, eps, out)
            }
            #[target_feature(enable = $feat)]
            pub(super) fn gelu_tanh(s: $tok, x: &[f32], out: &mut [f32]) {
                super::gelu::gelu::<_, false>(s, x, out)
            }
            #[target_feature(enable = $feat)]
            pub(super) fn gelu_erf(s: $tok, x: &[f32], out: &mut [f32]) {
                super::gelu::gelu::<_, true>(s, x, out)
            }
        }

        impl VisionIsa for crate::cpu::dispatch::$tok {
            fn layer_norm(self, x: &[f32], w: &[f32], b: &[f32], eps: f32, out: &mut [f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $m::layer_norm(self, x, w, b, eps, out) }
            }
            fn gelu_tanh(self, x: &[f32], out: &mut [f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $m::gelu_tanh(self, x, out) }
            }
            fn gelu_erf(self, x: &[f32], out: &mut [f32]) {
                // SAFETY: the token proves the features the wrapper enables.
                unsafe { $m::gelu_erf(self, x, out) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
isa!(avx2, Avx2, "avx2,fma,f16c");
#[cfg(target_arch = "x86_64")]
isa!(avx512, Avx512, "avx512f,avx2,fma,f16c");
#[cfg(target_arch = "aarch64")]
isa!(neon, Neon, "neon");

/// `x`: `[h·w, d]`; `out`: `[(h/2)·(w/2), 4d]`.
pub fn pixel_unshuffle(x: &[f32], h: usize, w: usize, d: usize, out: &mut [f32]) {
    assert!(
        h.is_multiple_of(2) && w.is_multiple_of(2) && x.len() == h * w * d && out.len() == x.len()
    );
    let mut o = 0;
    for a in 0..h / 2 {
        for b in 0..w / 2 {
            for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                let src = ((2 * a + dy) * w + 2 * b + dx) * d;
                out[o..o + d].copy_from_slice(&x[src..src + d]);
                o += d;
            }
        }
    }
}
