//! The Q4_0 GEMV dot product two blocks per 512-bit `vpdpbusd` (AVX512-VNNI),
//! against `x` laid out to match ([`XPair`], `qdot.rs`); its scalar twin is
//! `qdot::dot_q4_0`. Run by `qblock`'s GEMV under an `Avx512Vnni` token.
//!
//! Per pair of weight blocks: the two 16-byte nibble arrays are interleaved
//! four bytes at a time (`vpermd`), the high nibbles put above the low ones,
//! one `vpdpbusd` starting from `x`'s precomputed −8·Σ offsets gives each
//! block's sums in alternate lanes, and both blocks' f16 scales are widened
//! by one `vcvtph2ps` of their broadcast pair.
//!
//! # Safety
//! Every function here needs AVX-512F, AVX512-VNNI, AVX512-VL and AVX512-BW
//! plus AVX2, FMA and F16C (the caller's token proves them); all loads stay
//! inside the blocks' arrays.

use std::arch::x86_64::*;

use super::qdot::{XBlock, XPair};
use crate::quant::blocks::BlockQ4_0;

/// The scales (`d_w · d_x` per lane) and the integer sums (as f32) of one
/// pair of weight blocks against their [`XPair`].
///
/// # Safety
/// As in the module docs.
#[inline(always)]
unsafe fn pair_terms(b0: &BlockQ4_0, b1: &BlockQ4_0, xp: &XPair) -> (__m512, __m512) {
    // SAFETY: the caller guarantees the features; the loads are of whole
    // `qs` arrays (16 bytes) and `XPair` fields (64 bytes each).
    unsafe {
        let q = _mm256_set_m128i(
            _mm_loadu_si128(b1.qs.as_ptr().cast()),
            _mm_loadu_si128(b0.qs.as_ptr().cast()),
        );
        // Dwords [b0₀, b1₀, b0₁, b1₁, …]: lane l of block l % 2.
        let u = _mm256_permutevar8x32_epi32(q, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
        let z = _mm512_inserti64x4::<1>(_mm512_castsi256_si512(u), _mm256_srli_epi16::<4>(u));
        let z = _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
        let init = _mm512_loadu_si512(xp.init.as_ptr().cast());
        let p = _mm512_dpbusd_epi32(init, z, _mm512_loadu_si512(xp.qs.as_ptr().cast()));
        // f16 scales [d0, d1, d0, d1, …] from one broadcast pair.
        let ds = b0.d as u32 | (b1.d as u32) << 16;
        let wd = _mm512_cvtph_ps(_mm256_set1_epi32(ds as i32));
        let s = _mm512_mul_ps(wd, _mm512_loadu_ps(xp.d.as_ptr()));
        (s, _mm512_cvtepi32_ps(p))
    }
}

/// `Σ_b scale(b) · (w_b · x_b)` over the blocks of one Q4_0 row: pairs of
/// blocks against `x` (`x.len() = w.len() / 2`, two pairs per step into
/// two accumulators), an odd last block against `tail` with the 256-bit
/// body.
///
/// # Safety
/// As in the module docs.
#[inline(always)]
pub(crate) unsafe fn dot_q4_0_pairs(w: &[BlockQ4_0], x: &[XPair], tail: Option<&XBlock>) -> f32 {
    // SAFETY: the caller guarantees the features; indices stay below
    // `pairs`, so within `w` and `x`.
    unsafe {
        let (mut a0, mut a1) = (_mm512_setzero_ps(), _mm512_setzero_ps());
        let pairs = (w.len() / 2).min(x.len());
        let mut i = 0;
        while i + 2 <= pairs {
            let (s0, f0) = pair_terms(&w[2 * i], &w[2 * i + 1], &x[i]);
            let (s1, f1) = pair_terms(&w[2 * i + 2], &w[2 * i + 3], &x[i + 1]);
            a0 = _mm512_fmadd_ps(s0, f0, a0);
            a1 = _mm512_fmadd_ps(s1, f1, a1);
            i += 2;
        }
        if i < pairs {
            let (s0, f0) = pair_terms(&w[2 * i], &w[2 * i + 1], &x[i]);
            a0 = _mm512_fmadd_ps(s0, f0, a0);
        }
        let mut sum = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
        if let (Some(xb), true) = (tail, w.len() % 2 == 1) {
            let last = &w[w.len() - 1..];
            sum += super::avx2_qdot::dot_q4_0::<true>(last, std::slice::from_ref(xb));
        }
        sum
    }
}
