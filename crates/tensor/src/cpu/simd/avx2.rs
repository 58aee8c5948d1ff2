//! [`Simd`] on AVX2 + FMA + F16C: eight f32 lanes (`__m256`).

use std::arch::x86_64::*;

use super::qdot::{XBlock, XBlockK};
use super::{Simd, SimdOp};
use crate::cpu::dispatch::Avx2;
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0};
use crate::quant::x8::{BlockQ4_0x8, BlockQ4Kx8, BlockQ6Kx8, BlockQ8_0x8, ROWS};

impl Simd for Avx2 {
    super::avx2_qdots!();

    type V = __m256;
    const LANES: usize = 8;
    // 16 ymm registers: a 6×16 tile is 12 accumulators + 2 w vectors + 1 broadcast.
    const MR: usize = 6;
    const NRV: usize = 2;
    const KC: usize = 1024;
    const MC: usize = 72;

    #[inline(always)]
    fn vectorize<O: SimdOp>(self, op: O) -> O::Output {
        // SAFETY: the token proves the features the wrapper enables.
        unsafe { crate::cpu::dispatch::on_avx2(self, op) }
    }

    #[inline(always)]
    fn zero(self) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe { _mm256_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe { _mm256_set1_ps(x) }
    }
    #[inline(always)]
    fn fma(self, a: __m256, b: __m256, acc: __m256) -> __m256 {
        // SAFETY: token proves FMA.
        unsafe { _mm256_fmadd_ps(a, b, acc) }
    }
    #[inline(always)]
    fn add(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe { _mm256_add_ps(a, b) }
    }
    #[inline(always)]
    fn reduce_sum(self, v: __m256) -> f32 {
        // SAFETY: token proves AVX2.
        unsafe { hsum(v) }
    }
    #[inline(always)]
    fn sub(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe { _mm256_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe { _mm256_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m256, b: __m256) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe { _mm256_div_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m256, b: __m256) -> __m256 {
        // `vminps` is exactly `a < b ? a : b`.
        // SAFETY: token proves AVX2.
        unsafe { _mm256_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m256, b: __m256) -> __m256 {
        // `vmaxps` is exactly `a > b ? a : b`.
        // SAFETY: token proves AVX2.
        unsafe { _mm256_max_ps(a, b) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m256) -> __m256 {
        // SAFETY: token proves AVX2.
        unsafe {
            let e = _mm256_add_epi32(_mm256_cvttps_epi32(n), _mm256_set1_epi32(127));
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m256) -> f32 {
        // SAFETY: token proves AVX2 (and so SSE3).
        unsafe {
            let m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
            let m = _mm_max_ss(m, _mm_movehdup_ps(m));
            _mm_cvtss_f32(m)
        }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m256 {
        debug_assert!(n <= 8);
        // SAFETY: token proves AVX2; lanes ≥ n are masked off (no access,
        // no fault) and the caller guarantees the first n are readable.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
            _mm256_maskload_ps(p, mask)
        }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, v: __m256, n: usize) {
        debug_assert!(n <= 8);
        // SAFETY: token proves AVX2; lanes ≥ n are masked off and the
        // caller guarantees the first n are writable.
        unsafe {
            let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx);
            _mm256_maskstore_ps(p, mask, v)
        }
    }
    #[inline(always)]
    unsafe fn load_strided(self, p: *const f32, stride: usize) -> __m256 {
        debug_assert!(stride <= i32::MAX as usize / 8);
        let st = stride as i32;
        // SAFETY: token proves AVX2; the caller guarantees p[i·stride]
        // readable for i < 8, and 7·stride fits the i32 indices.
        unsafe {
            let idx = _mm256_mullo_epi32(
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                _mm256_set1_epi32(st),
            );
            _mm256_i32gather_ps::<4>(p, idx)
        }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m256 {
        // SAFETY: token proves AVX2; the caller guarantees 8 readable f32.
        unsafe { _mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m256) {
        // SAFETY: token proves AVX2; the caller guarantees 8 writable f32.
        unsafe { _mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_bf16(self, p: *const u16) -> __m256 {
        // SAFETY: token proves AVX2; the caller guarantees 8 readable u16.
        unsafe {
            let h = _mm_loadu_si128(p.cast());
            _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(h)))
        }
    }
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> __m256 {
        // SAFETY: token proves F16C; the caller guarantees 8 readable u16.
        unsafe { _mm256_cvtph_ps(_mm_loadu_si128(p.cast())) }
    }
    #[inline(always)]
    unsafe fn load_bf16_pairs(self, p: *const u16) -> (__m256, __m256) {
        // SAFETY: token proves AVX2; the caller guarantees 16 readable u16.
        unsafe {
            let w = _mm256_loadu_si256(p.cast());
            let lo = _mm256_slli_epi32::<16>(w);
            let hi = _mm256_and_si256(w, _mm256_set1_epi32(0xffff_0000_u32 as i32));
            (_mm256_castsi256_ps(lo), _mm256_castsi256_ps(hi))
        }
    }
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> __m256 {
        // SAFETY: token proves AVX2; the caller guarantees 8 readable i8.
        unsafe { _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(p.cast()))) }
    }
}

/// The sum of `v`'s eight lanes ([`Simd::reduce_sum`] of the AVX2 tier, and
/// the block dot products' in `avx2_qdot.rs`, which hold no token).
///
/// # Safety
/// The CPU must have AVX2 (and so SSE3).
#[inline(always)]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: the caller guarantees AVX2.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}
