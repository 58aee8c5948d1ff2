//! The [`Simd`] trait: the handful of vector operations the generic kernel
//! bodies need, implemented on the capability tokens of `dispatch.rs`.
//!
//! A kernel is written once as an `#[inline(always)]` body generic over
//! `S: Simd` and instantiated by thin `#[target_feature]` wrappers per ISA
//! (the matrixmultiply pattern). Arithmetic methods are safe because holding
//! the token proves the feature; loads and stores take raw pointers and are
//! `unsafe fn`s whose callers guarantee the bounds.

// Each `unsafe` block in the impls below has exactly two obligations, stated
// once in its SAFETY comment: the token proves the CPU feature, and the
// caller upholds the method's pointer contract. Splitting a three-intrinsic
// sequence into three blocks would repeat that comment without adding
// information, so this one lint is relaxed here (and only here).
#![allow(clippy::multiple_unsafe_ops_per_block)]

use crate::DType;
use crate::dtype::Element;

/// A SIMD instruction set, proven present by holding `self`.
pub trait Simd: Copy + Send + Sync + 'static {
    /// A vector of `LANES` f32.
    type V: Copy;
    const LANES: usize;

    fn zero(self) -> Self::V;
    fn splat(self, x: f32) -> Self::V;
    /// `a * b + acc`, fused (one rounding) where the ISA has FMA.
    fn fma(self, a: Self::V, b: Self::V, acc: Self::V) -> Self::V;
    fn add(self, a: Self::V, b: Self::V) -> Self::V;
    /// Horizontal sum of the lanes.
    fn reduce_sum(self, v: Self::V) -> f32;
    /// `a − b`.
    fn sub(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a · b`.
    fn mul(self, a: Self::V, b: Self::V) -> Self::V;
    /// `a / b`, IEEE division (correctly rounded, no reciprocal estimate).
    fn div(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a < b { a } else { b }` per lane: x86 `minps` semantics on every
    /// ISA, so when either operand is NaN the result is `b`. Pass a value
    /// that may be NaN as `b` to propagate it.
    fn min(self, a: Self::V, b: Self::V) -> Self::V;
    /// `if a > b { a } else { b }` per lane (x86 `maxps`; NaN as [`Simd::min`]).
    fn max(self, a: Self::V, b: Self::V) -> Self::V;
    /// `2ⁿ` per lane, built from the exponent bits. Lanes of `n` must hold
    /// integers in [-126, 127]; any other lane gives an unspecified value
    /// (never UB).
    fn pow2i(self, n: Self::V) -> Self::V;
    /// Horizontal max of the lanes (`cpu/attention`). Whether a NaN lane
    /// propagates is unspecified (it does on NEON, may not on x86).
    fn reduce_max(self, v: Self::V) -> f32;

    /// Loads `n ≤ LANES` f32 into the low lanes; the other lanes are 0 and
    /// their memory is not touched (masked loads on x86; a hd tail).
    ///
    /// # Safety
    /// - `n ≤ LANES`, and `p` must be valid for reads of `n` f32 (any alignment).
    unsafe fn load_partial(self, p: *const f32, n: usize) -> Self::V;

    /// Stores the low `n ≤ LANES` lanes of `v`; memory past them is not touched.
    ///
    /// # Safety
    /// - `n ≤ LANES`, and `p` must be valid for writes of `n` f32 (any alignment).
    unsafe fn store_partial(self, p: *mut f32, v: Self::V, n: usize);

    /// Loads `p[0], p[stride], …, p[(LANES − 1)·stride]` (a gather on x86;
    /// `cpu/conv` transposes `[d, l]` weights with it).
    ///
    /// # Safety
    /// - `p.add(i·stride)` must be valid for one f32 read for every
    ///   `i < LANES`, and `stride·LANES ≤ i32::MAX`.
    unsafe fn load_strided(self, p: *const f32, stride: usize) -> Self::V;

    /// Loads `LANES` f32.
    ///
    /// # Safety
    /// - `p` must be valid for reads of `LANES` f32 (any alignment).
    unsafe fn load(self, p: *const f32) -> Self::V;

    /// Stores `LANES` f32.
    ///
    /// # Safety
    /// - `p` must be valid for writes of `LANES` f32 (any alignment).
    unsafe fn store(self, p: *mut f32, v: Self::V);

    /// Loads `LANES` bf16 (as raw bits) widened exactly to f32.
    ///
    /// # Safety
    /// - `p` must be valid for reads of `LANES` u16 (any alignment).
    unsafe fn load_bf16(self, p: *const u16) -> Self::V;

    /// Loads `LANES` f16 (as raw bits) widened exactly to f32.
    ///
    /// # Safety
    /// - `p` must be valid for reads of `LANES` u16 (any alignment).
    unsafe fn load_f16(self, p: *const u16) -> Self::V;

    /// Loads `2·LANES` bf16 stored pair-interleaved (u16 `2i` and `2i+1` are
    /// the low and high half of little-endian word `i`) and returns
    /// `(low halves, high halves)` widened to f32: one load and two bit ops,
    /// no shuffle. The weight panels of `cpu/matmul/panels.rs` use this layout.
    ///
    /// # Safety
    /// - `p` must be valid for reads of `2·LANES` u16 (any alignment).
    unsafe fn load_bf16_pairs(self, p: *const u16) -> (Self::V, Self::V);

    /// Loads `LANES` i8 widened exactly to f32 (the int8 weight panels).
    ///
    /// # Safety
    /// - `p` must be valid for reads of `LANES` i8 (any alignment).
    unsafe fn load_i8(self, p: *const i8) -> Self::V;
}

/// Loads `LANES` elements of type `E`, widened to f32. The `match` is on a
/// constant and disappears after monomorphisation.
///
/// # Safety
/// - `p` must be valid for reads of `S::LANES` elements of `E` (any alignment).
#[inline(always)]
pub unsafe fn load_elem<S: Simd, E: Element>(s: S, p: *const E) -> S::V {
    // Each arm reads exactly LANES elements of E's size.
    match E::DTYPE {
        // SAFETY: the caller guarantees `p` is valid for LANES elements.
        DType::F32 => unsafe { s.load(p.cast()) },
        // SAFETY: as above.
        DType::BF16 => unsafe { s.load_bf16(p.cast()) },
        // SAFETY: as above.
        DType::F16 => unsafe { s.load_f16(p.cast()) },
        // SAFETY: as above.
        DType::I8 => unsafe { s.load_i8(p.cast()) },
    }
}

mod scalar {
    use super::Simd;
    use crate::cpu::dispatch::Scalar;

    impl Simd for Scalar {
        type V = f32;
        const LANES: usize = 1;

        #[inline(always)]
        fn zero(self) -> f32 {
            0.0
        }
        #[inline(always)]
        fn splat(self, x: f32) -> f32 {
            x
        }
        #[inline(always)]
        fn fma(self, a: f32, b: f32, acc: f32) -> f32 {
            // Two roundings: `mul_add` would be a libm call on baseline x86-64.
            a * b + acc
        }
        #[inline(always)]
        fn add(self, a: f32, b: f32) -> f32 {
            a + b
        }
        #[inline(always)]
        fn reduce_sum(self, v: f32) -> f32 {
            v
        }
        #[inline(always)]
        fn sub(self, a: f32, b: f32) -> f32 {
            a - b
        }
        #[inline(always)]
        fn mul(self, a: f32, b: f32) -> f32 {
            a * b
        }
        #[inline(always)]
        fn div(self, a: f32, b: f32) -> f32 {
            a / b
        }
        #[inline(always)]
        fn min(self, a: f32, b: f32) -> f32 {
            if a < b { a } else { b }
        }
        #[inline(always)]
        fn max(self, a: f32, b: f32) -> f32 {
            if a > b { a } else { b }
        }
        #[inline(always)]
        fn pow2i(self, n: f32) -> f32 {
            // `as` saturates (NaN → 0); `<<` cannot panic for a shift of 23.
            f32::from_bits(((n as i32).wrapping_add(127) << 23) as u32)
        }
        #[inline(always)]
        fn reduce_max(self, v: f32) -> f32 {
            v
        }
        #[inline(always)]
        unsafe fn load_partial(self, p: *const f32, n: usize) -> f32 {
            debug_assert!(n <= 1);
            if n == 0 {
                return 0.0;
            }
            // SAFETY: n = 1 and the caller guarantees `p` is valid for n reads.
            unsafe { p.read_unaligned() }
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, v: f32, n: usize) {
            debug_assert!(n <= 1);
            if n == 1 {
                // SAFETY: the caller guarantees `p` is valid for n = 1 writes.
                unsafe { p.write_unaligned(v) }
            }
        }
        #[inline(always)]
        unsafe fn load_strided(self, p: *const f32, _stride: usize) -> f32 {
            // SAFETY: the caller guarantees `p` is valid for one read.
            unsafe { p.read_unaligned() }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> f32 {
            // SAFETY: the caller guarantees `p` is valid for one read.
            unsafe { p.read_unaligned() }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: f32) {
            // SAFETY: the caller guarantees `p` is valid for one write.
            unsafe { p.write_unaligned(v) }
        }
        #[inline(always)]
        unsafe fn load_bf16(self, p: *const u16) -> f32 {
            // SAFETY: the caller guarantees `p` is valid for one read.
            let bits = unsafe { p.read_unaligned() };
            f32::from_bits((bits as u32) << 16)
        }
        #[inline(always)]
        unsafe fn load_f16(self, p: *const u16) -> f32 {
            // SAFETY: the caller guarantees `p` is valid for one read.
            let bits = unsafe { p.read_unaligned() };
            half::f16::from_bits(bits).to_f32()
        }
        #[inline(always)]
        unsafe fn load_bf16_pairs(self, p: *const u16) -> (f32, f32) {
            // SAFETY: the caller guarantees `p` is valid for two u16 reads.
            let word = unsafe { p.cast::<u32>().read_unaligned() };
            (
                f32::from_bits(word << 16),
                f32::from_bits(word & 0xffff_0000),
            )
        }
        #[inline(always)]
        unsafe fn load_i8(self, p: *const i8) -> f32 {
            // SAFETY: the caller guarantees `p` is valid for one read.
            unsafe { p.read() as f32 }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Simd;
    use crate::cpu::dispatch::{Avx2, Avx512, Avx512Bf16};

    impl Simd for Avx2 {
        type V = __m256;
        const LANES: usize = 8;

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
            // SAFETY: token proves AVX2 (and so SSE3).
            unsafe {
                let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
                let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
                let s = _mm_add_ss(s, _mm_movehdup_ps(s));
                _mm_cvtss_f32(s)
            }
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

    impl Simd for Avx512 {
        type V = __m512;
        const LANES: usize = 16;

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
}

#[cfg(target_arch = "aarch64")]
mod arm {
    use std::arch::aarch64::*;

    use super::Simd;
    use crate::cpu::dispatch::Neon;

    impl Simd for Neon {
        type V = float32x4_t;
        const LANES: usize = 4;

        #[inline(always)]
        fn zero(self) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vdupq_n_f32(0.0) }
        }
        #[inline(always)]
        fn splat(self, x: f32) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vdupq_n_f32(x) }
        }
        #[inline(always)]
        fn fma(self, a: float32x4_t, b: float32x4_t, acc: float32x4_t) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vfmaq_f32(acc, a, b) }
        }
        #[inline(always)]
        fn add(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vaddq_f32(a, b) }
        }
        #[inline(always)]
        fn reduce_sum(self, v: float32x4_t) -> f32 {
            // SAFETY: token proves NEON.
            unsafe { vaddvq_f32(v) }
        }
        #[inline(always)]
        fn sub(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vsubq_f32(a, b) }
        }
        #[inline(always)]
        fn mul(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vmulq_f32(a, b) }
        }
        #[inline(always)]
        fn div(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe { vdivq_f32(a, b) }
        }
        #[inline(always)]
        fn min(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // `vminq_f32` returns NaN for a NaN in either operand: select
            // explicitly for the x86 semantics the trait promises.
            // SAFETY: token proves NEON.
            unsafe { vbslq_f32(vcltq_f32(a, b), a, b) }
        }
        #[inline(always)]
        fn max(self, a: float32x4_t, b: float32x4_t) -> float32x4_t {
            // As `min`: `a > b ? a : b`, not `vmaxq_f32`.
            // SAFETY: token proves NEON.
            unsafe { vbslq_f32(vcgtq_f32(a, b), a, b) }
        }
        #[inline(always)]
        fn pow2i(self, n: float32x4_t) -> float32x4_t {
            // SAFETY: token proves NEON.
            unsafe {
                let e = vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127));
                vreinterpretq_f32_s32(vshlq_n_s32::<23>(e))
            }
        }
        #[inline(always)]
        fn reduce_max(self, v: float32x4_t) -> f32 {
            // SAFETY: token proves NEON.
            unsafe { vmaxvq_f32(v) }
        }
        #[inline(always)]
        unsafe fn load_partial(self, p: *const f32, n: usize) -> float32x4_t {
            debug_assert!(n <= 4);
            let mut b = [0.0f32; 4];
            // SAFETY: the caller guarantees n ≤ 4 readable f32 at `p`; `b`
            // holds 4 and cannot overlap caller memory; token proves NEON.
            unsafe {
                std::ptr::copy_nonoverlapping(p, b.as_mut_ptr(), n);
                vld1q_f32(b.as_ptr())
            }
        }
        #[inline(always)]
        unsafe fn store_partial(self, p: *mut f32, v: float32x4_t, n: usize) {
            debug_assert!(n <= 4);
            let mut b = [0.0f32; 4];
            // SAFETY: token proves NEON; `b` holds 4 f32; the caller
            // guarantees n ≤ 4 writable f32 at `p`, which cannot overlap `b`.
            unsafe {
                vst1q_f32(b.as_mut_ptr(), v);
                std::ptr::copy_nonoverlapping(b.as_ptr(), p, n);
            }
        }
        #[inline(always)]
        unsafe fn load_strided(self, p: *const f32, stride: usize) -> float32x4_t {
            let mut b = [0.0f32; 4];
            for (i, x) in b.iter_mut().enumerate() {
                // SAFETY: the caller guarantees p[i·stride] readable for i < 4.
                *x = unsafe { p.wrapping_add(i * stride).read_unaligned() };
            }
            // SAFETY: token proves NEON; `b` holds 4 f32.
            unsafe { vld1q_f32(b.as_ptr()) }
        }
        #[inline(always)]
        unsafe fn load(self, p: *const f32) -> float32x4_t {
            // SAFETY: token proves NEON; the caller guarantees 4 readable f32.
            unsafe { vld1q_f32(p) }
        }
        #[inline(always)]
        unsafe fn store(self, p: *mut f32, v: float32x4_t) {
            // SAFETY: token proves NEON; the caller guarantees 4 writable f32.
            unsafe { vst1q_f32(p, v) }
        }
        #[inline(always)]
        unsafe fn load_bf16(self, p: *const u16) -> float32x4_t {
            // SAFETY: token proves NEON; the caller guarantees 4 readable u16.
            unsafe { vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(p))) }
        }
        #[inline(always)]
        unsafe fn load_f16(self, p: *const u16) -> float32x4_t {
            // Rust's f16 NEON vector types are unstable: widen through `half`.
            // SAFETY: the caller guarantees 4 readable u16.
            let bits: [u16; 4] = unsafe { p.cast::<[u16; 4]>().read_unaligned() };
            let f = bits.map(|b| half::f16::from_bits(b).to_f32());
            // SAFETY: token proves NEON; `f` holds 4 f32.
            unsafe { vld1q_f32(f.as_ptr()) }
        }
        #[inline(always)]
        unsafe fn load_bf16_pairs(self, p: *const u16) -> (float32x4_t, float32x4_t) {
            // SAFETY: token proves NEON; the caller guarantees 8 readable u16.
            unsafe {
                let w = vld1q_u32(p.cast());
                let lo = vshlq_n_u32::<16>(w);
                let hi = vandq_u32(w, vdupq_n_u32(0xffff_0000));
                (vreinterpretq_f32_u32(lo), vreinterpretq_f32_u32(hi))
            }
        }
        #[inline(always)]
        unsafe fn load_i8(self, p: *const i8) -> float32x4_t {
            // SAFETY: the caller guarantees 4 readable i8 (one unaligned u32).
            let word = unsafe { p.cast::<u32>().read_unaligned() };
            // SAFETY: token proves NEON.
            unsafe {
                let b = vreinterpret_s8_u32(vdup_n_u32(word));
                let h = vget_low_s16(vmovl_s8(b));
                vcvtq_f32_s32(vmovl_s16(h))
            }
        }
    }
}
