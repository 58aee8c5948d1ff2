//! The scalar tier's [`Simd`]: one f32 lane, plain Rust (the slow twin).

use super::{Simd, SimdOp};
use crate::cpu::dispatch::Scalar;

impl Simd for Scalar {
    type V = f32;
    const LANES: usize = 1;
    // A small tile: the scalar tier is the reference, not a fast path.
    const MR: usize = 4;
    const NRV: usize = 2;
    const KC: usize = 256;
    const MC: usize = 64;

    #[inline(always)]
    fn vectorize<O: SimdOp>(self, op: O) -> O::Output {
        op.run(self)
    }

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
