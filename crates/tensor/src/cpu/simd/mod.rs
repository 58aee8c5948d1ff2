//! The [`Simd`] trait: the handful of vector operations the generic kernel
//! bodies need, implemented on the capability tokens of `dispatch.rs`, one
//! file per tier (`scalar.rs`, `avx2.rs`, `avx512.rs`, `neon.rs`).
//!
//! A kernel is written once as an `#[inline(always)]` body generic over
//! `S: Simd`, wrapped in a [`SimdOp`] and run with `IsaToken::dispatch` (or
//! [`Simd::vectorize`] from inside a generic body, e.g. on a pool thread),
//! which enter the tier's one `#[target_feature]` wrapper in `dispatch.rs`.
//! Arithmetic methods are safe because holding the token proves the
//! feature; loads and stores take raw pointers and are `unsafe fn`s whose
//! callers guarantee the bounds.

// Each `unsafe` block in the impls has exactly two obligations, stated
// once in its SAFETY comment: the token proves the CPU feature, and the
// caller upholds the method's pointer contract. Splitting a three-intrinsic
// sequence into three blocks would repeat that comment without adding
// information, so this one lint is relaxed here (and only here).
#![allow(clippy::multiple_unsafe_ops_per_block)]

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx2_qdot;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
pub(crate) mod avx512_qdot;
#[cfg(target_arch = "aarch64")]
mod neon;
#[cfg(target_arch = "aarch64")]
pub(crate) mod neon_qdot;
pub mod qdot;
mod scalar;

use self::qdot::{XBlock, XBlockK};
pub use super::dispatch::SimdOp;
use crate::DType;
use crate::dtype::Element;
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0};
use crate::quant::x8::{BlockQ4_0x8, BlockQ4Kx8, BlockQ6Kx8, BlockQ8_0x8, ROWS};

/// A SIMD instruction set, proven present by holding `self`.
pub trait Simd: Copy + Send + Sync + 'static {
    /// A vector of `LANES` f32.
    type V: Copy;
    const LANES: usize;

    /// Matmul microkernel rows: rows of `x` per register tile.
    const MR: usize;
    /// Matmul microkernel width in vectors (`NR = NRV · LANES` weight rows
    /// per panel); even, so bf16 panels can be pair-interleaved.
    const NRV: usize;
    /// GEMM cache blocking: depth of a `k` slice (a weight panel's slice
    /// stays in L1)…
    const KC: usize;
    /// …and rows of `x` packed per block (kept in L2).
    const MC: usize;

    /// Runs `op` on this tier inside the tier's `#[target_feature]` wrapper
    /// (`dispatch.rs`), so the generic body it inlines compiles to the
    /// tier's instructions. Holding `self` proves the features.
    fn vectorize<O: SimdOp>(self, op: O) -> O::Output;

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

    // Block-quantized weight rows · int8 activation rows (`qdot.rs`), one
    // result per row: the scalar versions unless the tier has its own.

    /// Q8_0 weights (`w.len() == x.len()` blocks).
    #[inline(always)]
    fn dot_q8_0(self, w: &[BlockQ8_0], x: &[XBlock]) -> f32 {
        qdot::dot_q8_0(w, x)
    }
    /// Q4_0 weights.
    #[inline(always)]
    fn dot_q4_0(self, w: &[BlockQ4_0], x: &[XBlock]) -> f32 {
        qdot::dot_q4_0(w, x)
    }
    /// Q4_K weights.
    #[inline(always)]
    fn dot_q4k(self, w: &[BlockQ4K], x: &[XBlockK]) -> f32 {
        qdot::dot_q4k(w, x)
    }
    /// Q6_K weights.
    #[inline(always)]
    fn dot_q6k(self, w: &[BlockQ6K], x: &[XBlockK]) -> f32 {
        qdot::dot_q6k(w, x)
    }
    /// Eight interleaved Q8_0 rows (`quant/x8.rs`) against `R` rows of
    /// int8 `x` (`out[i][r]`: row `i` of `x` times weight row `r`).
    #[inline(always)]
    fn dot_q8_0x8<const R: usize>(self, w: &[BlockQ8_0x8], x: [&[XBlock]; R]) -> [[f32; ROWS]; R] {
        x.map(|x| qdot::dot_q8_0x8(w, x))
    }
    /// Eight interleaved Q4_0 rows against `R` rows of int8 `x`.
    #[inline(always)]
    fn dot_q4_0x8<const R: usize>(self, w: &[BlockQ4_0x8], x: [&[XBlock]; R]) -> [[f32; ROWS]; R] {
        x.map(|x| qdot::dot_q4_0x8(w, x))
    }
    /// Eight interleaved Q6_K rows against one row of int8 `x`.
    #[inline(always)]
    fn dot_q6kx8(self, w: &[BlockQ6Kx8], x: &[XBlockK]) -> [f32; ROWS] {
        qdot::dot_q6kx8(w, x)
    }
    /// Eight interleaved Q4_K rows against one row of int8 `x`.
    #[inline(always)]
    fn dot_q4kx8(self, w: &[BlockQ4Kx8], x: &[XBlockK]) -> [f32; ROWS] {
        qdot::dot_q4kx8(w, x)
    }
}

/// The block dot products of `avx2_qdot.rs`, for a tier whose wrapper
/// enables AVX2, FMA and F16C.
#[cfg(target_arch = "x86_64")]
macro_rules! avx2_qdots {
    () => {
        #[inline(always)]
        fn dot_q8_0(self, w: &[BlockQ8_0], x: &[XBlock]) -> f32 {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_q8_0::<false>(w, x) }
        }
        #[inline(always)]
        fn dot_q4_0(self, w: &[BlockQ4_0], x: &[XBlock]) -> f32 {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_q4_0::<false>(w, x) }
        }
        #[inline(always)]
        fn dot_q4k(self, w: &[BlockQ4K], x: &[XBlockK]) -> f32 {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_q4k(w, x) }
        }
        #[inline(always)]
        fn dot_q6k(self, w: &[BlockQ6K], x: &[XBlockK]) -> f32 {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_q6k(w, x) }
        }
        #[inline(always)]
        fn dot_q8_0x8<const R: usize>(
            self,
            w: &[BlockQ8_0x8],
            x: [&[XBlock]; R],
        ) -> [[f32; ROWS]; R] {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_x8::<_, false, R>(w, x) }
        }
        #[inline(always)]
        fn dot_q4_0x8<const R: usize>(
            self,
            w: &[BlockQ4_0x8],
            x: [&[XBlock]; R],
        ) -> [[f32; ROWS]; R] {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_x8::<_, false, R>(w, x) }
        }
        #[inline(always)]
        fn dot_q6kx8(self, w: &[BlockQ6Kx8], x: &[XBlockK]) -> [f32; ROWS] {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_q6kx8(w, x) }
        }
        #[inline(always)]
        fn dot_q4kx8(self, w: &[BlockQ4Kx8], x: &[XBlockK]) -> [f32; ROWS] {
            // SAFETY: the token proves AVX2, FMA and F16C.
            unsafe { super::avx2_qdot::dot_q4kx8(w, x) }
        }
    };
}
#[cfg(target_arch = "x86_64")]
use avx2_qdots;

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
        _ => unreachable!("block formats are not elements"),
    }
}
