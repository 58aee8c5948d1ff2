//! The GEMV of row-major block weights ([`super::QKernels::gemv`]): one
//! block dot product per weight row, on the tier's bodies (`Simd::dot_*`),
//! on `vpdpbusd` (an `Avx512Vnni` token, [`super::vnni_gemv`]) or on SDOT
//! (a `NeonDot` token, [`super::neon_dotprod`]); interleaved weights go to
//! `qx8.rs` from here.

use super::{BlockRef, QKernels, XQuant, qx8};
#[cfg(target_arch = "x86_64")]
use crate::cpu::dispatch::Avx512Vnni;
#[cfg(target_arch = "aarch64")]
use crate::cpu::dispatch::NeonDot;
use crate::cpu::dispatch::SimdOp;
use crate::cpu::simd::Simd;

/// [`QGemv`] on `vpdpbusd` (Q8_0 and Q4_0 only, [`super::vnni_gemv`]).
#[cfg(target_arch = "x86_64")]
pub(super) struct QGemvVnni<'a, 'k, S> {
    pub kern: &'k QKernels<'a, S>,
    pub j0: usize,
    pub j1: usize,
    pub y: &'k mut [f32],
}

#[cfg(target_arch = "x86_64")]
impl<S: Simd> crate::cpu::dispatch::VnniOp for QGemvVnni<'_, '_, S> {
    type Output = ();

    #[inline(always)]
    fn run(self, tok: Avx512Vnni) {
        use crate::cpu::simd::avx2_qdot;
        let QGemvVnni { kern, j0, j1, y } = self;
        let per = kern.k / kern.w.dtype().block_elems();
        if kern.w.int_gemm() {
            return qx8::gemv(qx8::VnniDots(tok), &kern.x8_args(), (j0, j1), y);
        }
        for (j, out) in (j0..j1).zip(y.iter_mut()) {
            let r = j * per..(j + 1) * per;
            // The token proves AVX-512F, AVX512-BW, -VNNI and -VL, AVX2, FMA, F16C,
            // and `run` is inlined into its wrapper.
            let dot = match (kern.w, kern.x) {
                // SAFETY: as above.
                (BlockRef::Q8_0(w), XQuant::Q8(x)) => unsafe {
                    avx2_qdot::dot_q8_0::<true>(&w[r], x)
                },
                // SAFETY: as above.
                (BlockRef::Q4_0(w), XQuant::Pairs(x, pairs)) => unsafe {
                    crate::cpu::simd::avx512_qdot::dot_q4_0_pairs(&w[r], pairs, x.last())
                },
                _ => unreachable!("vnni_gemv admits Q8_0 and Q4_0 only"),
            };
            *out = dot + kern.bias.map_or(0.0, |b| b[j]);
        }
    }
}

/// [`QGemv`] on SDOT (row-major weights of every block format,
/// [`super::neon_dotprod`]).
#[cfg(target_arch = "aarch64")]
pub(super) struct QGemvDot<'a, 'k, S> {
    pub kern: &'k QKernels<'a, S>,
    pub j0: usize,
    pub j1: usize,
    pub y: &'k mut [f32],
}

#[cfg(target_arch = "aarch64")]
impl<S: Simd> crate::cpu::dispatch::NeonDotOp for QGemvDot<'_, '_, S> {
    type Output = ();

    #[inline(always)]
    fn run(self, _: NeonDot) {
        use crate::cpu::simd::neon_qdot;
        let QGemvDot { kern, j0, j1, y } = self;
        let per = kern.k / kern.w.dtype().block_elems();
        for (j, out) in (j0..j1).zip(y.iter_mut()) {
            let r = j * per..(j + 1) * per;
            // The token proves NEON and the dot-product extension, and
            // `run` is inlined into its wrapper.
            let dot = match (kern.w, kern.x) {
                // SAFETY: as above.
                (BlockRef::Q8_0(w), XQuant::Q8(x)) => unsafe {
                    neon_qdot::dot_q8_0::<true>(&w[r], x)
                },
                // SAFETY: as above.
                (BlockRef::Q4_0(w), XQuant::Q8(x)) => unsafe {
                    neon_qdot::dot_q4_0::<true>(&w[r], x)
                },
                // SAFETY: as above.
                (BlockRef::Q4K(w), XQuant::K(x)) => unsafe { neon_qdot::dot_q4k::<true>(&w[r], x) },
                // SAFETY: as above.
                (BlockRef::Q6K(w), XQuant::K(x)) => unsafe { neon_qdot::dot_q6k::<true>(&w[r], x) },
                _ => unreachable!("neon_dotprod admits row-major weights only"),
            };
            *out = dot + kern.bias.map_or(0.0, |b| b[j]);
        }
    }
}

/// Rows `j0..j1` of one GEMV: one block dot product each.
pub(super) struct QGemv<'a, 'k, S> {
    pub kern: &'k QKernels<'a, S>,
    pub j0: usize,
    pub j1: usize,
    pub y: &'k mut [f32],
}

impl<S: Simd> SimdOp for QGemv<'_, '_, S> {
    type Output = ();

    #[inline(always)]
    fn run<T: Simd>(self, _: T) {
        let QGemv { kern, j0, j1, y } = self;
        let s = kern.s;
        let per = kern.k / kern.w.dtype().block_elems();
        if let (w @ (BlockRef::Q4Kx8(_) | BlockRef::Q6Kx8(_)), XQuant::K(x)) = (kern.w, kern.x) {
            return qx8::gemv_k(s, w, x, kern.bias, (j0, j1), y);
        }
        if kern.w.is_x8() {
            return qx8::gemv(qx8::TierDots(s), &kern.x8_args(), (j0, j1), y);
        }
        for (j, out) in (j0..j1).zip(y.iter_mut()) {
            let r = j * per..(j + 1) * per;
            let dot = match (kern.w, kern.x) {
                (BlockRef::Q8_0(w), XQuant::Q8(x)) => s.dot_q8_0(&w[r], x),
                (BlockRef::Q4_0(w), XQuant::Q8(x)) => s.dot_q4_0(&w[r], x),
                (BlockRef::Q4K(w), XQuant::K(x)) => s.dot_q4k(&w[r], x),
                (BlockRef::Q6K(w), XQuant::K(x)) => s.dot_q6k(&w[r], x),
                _ => unreachable!("x is quantized for its weight format"),
            };
            *out = dot + kern.bias.map_or(0.0, |b| b[j]);
        }
    }
}
