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
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::Simd;
    use crate::cpu::dispatch::{Avx2, Avx512};

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
    }
}
