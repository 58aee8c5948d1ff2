//! Kernels of the vision tower and connector: LayerNorm
//! (`kernels/layer_norm.md`), the two GELUs (`kernels/gelu.md`) and pixel
//! unshuffle (`lfm2vl.md` §5, plain data movement).
//!
//! One generic body per kernel (`layer_norm.rs`, `gelu.rs`, over [`Simd`]),
//! run on the backend's tier by `IsaToken::dispatch`. Single-threaded: one
//! call is memory-bound. Slices may start at any element offset.

mod gelu;
mod layer_norm;
pub mod reference;

use crate::Gelu;
use crate::cpu::dispatch::{IsaToken, SimdOp};
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
    isa.dispatch(LayerNorm { x, w, b, eps, out })
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
    match kind {
        Gelu::Tanh => isa.dispatch(GeluOp::<false> { x, out }),
        Gelu::Erf => isa.dispatch(GeluOp::<true> { x, out }),
    }
}

/// [`layer_norm`]'s body as a [`SimdOp`].
struct LayerNorm<'a> {
    x: &'a [f32],
    w: &'a [f32],
    b: &'a [f32],
    eps: f32,
    out: &'a mut [f32],
}

impl SimdOp for LayerNorm<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        layer_norm::layer_norm(s, self.x, self.w, self.b, self.eps, self.out)
    }
}

/// [`gelu`]'s body as a [`SimdOp`] (the erf form if `ERF`).
struct GeluOp<'a, const ERF: bool> {
    x: &'a [f32],
    out: &'a mut [f32],
}

impl<const ERF: bool> SimdOp for GeluOp<'_, ERF> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        gelu::gelu::<S, ERF>(s, self.x, self.out)
    }
}

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
