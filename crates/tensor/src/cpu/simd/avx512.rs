//! [`Simd`] on AVX-512F: sixteen f32 lanes (`__m512`), and the bf16
//! dot-product primitives of [`Avx512Bf16`] (AVX512-BF16 + AVX512-BW).

use std::arch::x86_64::*;

use super::qdot::{XBlock, XBlockK};
use super::{Simd, SimdOp};
use crate::cpu::dispatch::{Avx512, Avx512Bf16};
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0};
use crate::quant::x8::{BlockQ4_0x8, BlockQ4Kx8, BlockQ6Kx8, BlockQ8_0x8, ROWS};

impl Simd for Avx512 {
    super::avx2_qdots!();

    type V = __m512;
    const LANES: usize = 16;
    // 32 zmm registers: a 6×64 tile is 24 accumulators + 4 w vectors + 1 broadcast.
    const MR: usize = 6;
    const NRV: usize = 4;
    const KC: usize = 1024;
    const MC: usize = 96;

    #[inline(always)]
    fn vectorize<O: SimdOp>(self, op: O) -> O::Output {
        // SAFETY: the token proves the features the wrapper enables.
        unsafe { crate::cpu::dispatch::on_avx512(self, op) }
    }

    #[inline(always)]
    fn zero(self) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_setzero_ps() }
    }
    #[inline(always)]
    fn splat(self, x: f32) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_set1_ps(x) }
    }
    #[inline(always)]
    fn fma(self, a: __m512, b: __m512, acc: __m512) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_fmadd_ps(a, b, acc) }
    }
    #[inline(always)]
    fn add(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_add_ps(a, b) }
    }
    #[inline(always)]
    fn reduce_sum(self, v: __m512) -> f32 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_reduce_add_ps(v) }
    }
    #[inline(always)]
    fn sub(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_sub_ps(a, b) }
    }
    #[inline(always)]
    fn mul(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_mul_ps(a, b) }
    }
    #[inline(always)]
    fn div(self, a: __m512, b: __m512) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_div_ps(a, b) }
    }
    #[inline(always)]
    fn min(self, a: __m512, b: __m512) -> __m512 {
        // `vminps` is exactly `a < b ? a : b`.
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_min_ps(a, b) }
    }
    #[inline(always)]
    fn max(self, a: __m512, b: __m512) -> __m512 {
        // `vmaxps` is exactly `a > b ? a : b`.
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_max_ps(a, b) }
    }
    #[inline(always)]
    fn pow2i(self, n: __m512) -> __m512 {
        // SAFETY: token proves AVX-512F.
        unsafe {
            let e = _mm512_add_epi32(_mm512_cvttps_epi32(n), _mm512_set1_epi32(127));
            _mm512_castsi512_ps(_mm512_slli_epi32::<23>(e))
        }
    }
    #[inline(always)]
    fn reduce_max(self, v: __m512) -> f32 {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_reduce_max_ps(v) }
    }
    #[inline(always)]
    unsafe fn load_partial(self, p: *const f32, n: usize) -> __m512 {
        debug_assert!(n <= 16);
        // SAFETY: token proves AVX-512F; lanes ≥ n are masked off (no
        // access, no fault) and the caller guarantees the first n are readable.
        unsafe { _mm512_maskz_loadu_ps(((1u32 << n) - 1) as __mmask16, p) }
    }
    #[inline(always)]
    unsafe fn store_partial(self, p: *mut f32, v: __m512, n: usize) {
        debug_assert!(n <= 16);
        // SAFETY: token proves AVX-512F; lanes ≥ n are masked off and the
        // caller guarantees the first n are writable.
        unsafe { _mm512_mask_storeu_ps(p, ((1u32 << n) - 1) as __mmask16, v) }
    }
    #[inline(always)]
    unsafe fn load_strided(self, p: *const f32, stride: usize) -> __m512 {
        debug_assert!(stride <= i32::MAX as usize / 16);
        let st = stride as i32;
        // SAFETY: token proves AVX-512F; the caller guarantees p[i·stride]
        // readable for i < 16, and 15·stride fits the i32 indices.
        unsafe {
            let lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
            let idx = _mm512_mullo_epi32(lane, _mm512_set1_epi32(st));
            _mm512_i32gather_ps::<4>(idx, p)
        }
    }
    #[inline(always)]
    unsafe fn load(self, p: *const f32) -> __m512 {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 readable f32.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(self, p: *mut f32, v: __m512) {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 writable f32.
        unsafe { _mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn load_bf16(self, p: *const u16) -> __m512 {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 readable u16.
        unsafe {
            let h = _mm256_loadu_si256(p.cast());
            _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)))
        }
    }
    #[inline(always)]
    unsafe fn load_f16(self, p: *const u16) -> __m512 {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 readable u16.
        unsafe { _mm512_cvtph_ps(_mm256_loadu_si256(p.cast())) }
    }
    #[inline(always)]
    unsafe fn load_bf16_pairs(self, p: *const u16) -> (__m512, __m512) {
        // SAFETY: token proves AVX-512F; the caller guarantees 32 readable u16.
        unsafe {
            let w = _mm512_loadu_si512(p.cast());
            let lo = _mm512_slli_epi32::<16>(w);
            let hi = _mm512_and_si512(w, _mm512_set1_epi32(0xffff_0000_u32 as i32));
            (_mm512_castsi512_ps(lo), _mm512_castsi512_ps(hi))
        }
    }
    #[inline(always)]
    unsafe fn load_i8(self, p: *const i8) -> __m512 {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 readable i8.
        unsafe { _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(p.cast()))) }
    }
}

/// The bf16 dot product (`cpu/matmul/bf16dot.rs`). A pair word holds
/// two bf16 (low half first); a pair vector holds 16 of them.
impl Avx512Bf16 {
    /// `acc + a.lo·b.lo + a.hi·b.hi` per f32 lane (`vdpbf16ps`: the
    /// products are exact; bf16 denormal inputs count as 0).
    #[inline(always)]
    pub fn dot_pairs(self, acc: __m512, a: __m512i, b: __m512i) -> __m512 {
        // SAFETY: token proves AVX512-BF16; the transmutes reinterpret
        // 64 bytes of plain bits.
        unsafe {
            let a = std::mem::transmute::<__m512i, __m512bh>(a);
            let b = std::mem::transmute::<__m512i, __m512bh>(b);
            _mm512_dpbf16_ps(acc, a, b)
        }
    }

    /// One pair word in every lane.
    #[inline(always)]
    pub fn splat_pair(self, word: u32) -> __m512i {
        // SAFETY: token proves AVX-512F.
        unsafe { _mm512_set1_epi32(word as i32) }
    }

    /// Loads 16 pair words.
    ///
    /// # Safety
    /// - `p` must be valid for reads of 16 u32 (any alignment).
    #[inline(always)]
    pub unsafe fn load_pairs(self, p: *const u32) -> __m512i {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 words.
        unsafe { _mm512_loadu_si512(p.cast()) }
    }

    /// Rounds `x[0..32]` to bf16 (nearest even; denormals flushed to 0,
    /// as `vcvtne2ps2bf16` does) and stores them as 16 pair words.
    ///
    /// # Safety
    /// - `x` must be valid for reads of 32 f32, `out` for writes of 16 u32.
    #[inline(always)]
    pub unsafe fn round_pairs(self, x: *const f32, out: *mut u32) {
        // SAFETY: token proves AVX-512F and AVX512-BF16; the caller
        // guarantees the bounds; the transmute reinterprets plain bits.
        unsafe {
            let lo = _mm512_loadu_ps(x);
            let hi = _mm512_loadu_ps(x.add(16));
            let bh = _mm512_cvtne2ps_pbh(hi, lo);
            _mm512_storeu_si512(out.cast(), std::mem::transmute::<__m512bh, __m512i>(bh));
        }
    }

    /// Pair words of two vectors: lane `i` holds `a[i]` rounded to
    /// bf16 in its low half and `b[i]` in its high half (rounding as
    /// [`Avx512Bf16::round_pairs`]): one conversion and one word shuffle.
    #[inline(always)]
    pub fn interleave_pairs(self, a: __m512, b: __m512) -> __m512i {
        // Word 2i takes word i (a's), word 2i + 1 takes word 16 + i (b's).
        const IDX: [i16; 32] = {
            let mut x = [0i16; 32];
            let mut i = 0;
            while i < 16 {
                x[2 * i] = i as i16;
                x[2 * i + 1] = 16 + i as i16;
                i += 1;
            }
            x
        };
        // SAFETY: token proves AVX-512F, AVX512-BW and AVX512-BF16; the
        // transmutes reinterpret 64 bytes of plain bits.
        unsafe {
            let bh = std::mem::transmute::<__m512bh, __m512i>(_mm512_cvtne2ps_pbh(b, a));
            let idx = std::mem::transmute::<[i16; 32], __m512i>(IDX);
            _mm512_permutexvar_epi16(idx, bh)
        }
    }

    /// Stores 16 pair words.
    ///
    /// # Safety
    /// - `p` must be valid for writes of 16 u32 (any alignment).
    #[inline(always)]
    pub unsafe fn store_pairs(self, p: *mut u32, v: __m512i) {
        // SAFETY: token proves AVX-512F; the caller guarantees 16 words.
        unsafe { _mm512_storeu_si512(p.cast(), v) }
    }
}
