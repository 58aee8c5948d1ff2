//! [`Simd`] on aarch64 Advanced SIMD: four f32 lanes (`float32x4_t`).

use std::arch::aarch64::*;

use super::qdot::{XBlock, XBlockK};
use super::{Simd, SimdOp, neon_qdot};
use crate::cpu::dispatch::Neon;
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0};

impl Simd for Neon {
    type V = float32x4_t;
    const LANES: usize = 4;
    // 32 q registers: a 6×16 tile is 24 accumulators + 4 w vectors + 1 broadcast.
    const MR: usize = 6;
    const NRV: usize = 4;
    const KC: usize = 256;
    const MC: usize = 96;

    #[inline(always)]
    fn vectorize<O: SimdOp>(self, op: O) -> O::Output {
        // SAFETY: the token proves the features the wrapper enables.
        unsafe { crate::cpu::dispatch::on_neon(self, op) }
    }

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

    // The block dot products without SDOT (`neon_qdot.rs`); `qblock`'s
    // GEMV runs the SDOT ones under a `NeonDot` token where the CPU has it.
    #[inline(always)]
    fn dot_q8_0(self, w: &[BlockQ8_0], x: &[XBlock]) -> f32 {
        // SAFETY: the token proves NEON, all the bodies without DOT need.
        unsafe { neon_qdot::dot_q8_0::<false>(w, x) }
    }
    #[inline(always)]
    fn dot_q4_0(self, w: &[BlockQ4_0], x: &[XBlock]) -> f32 {
        // SAFETY: as above.
        unsafe { neon_qdot::dot_q4_0::<false>(w, x) }
    }
    #[inline(always)]
    fn dot_q4k(self, w: &[BlockQ4K], x: &[XBlockK]) -> f32 {
        // SAFETY: as above.
        unsafe { neon_qdot::dot_q4k::<false>(w, x) }
    }
    #[inline(always)]
    fn dot_q6k(self, w: &[BlockQ6K], x: &[XBlockK]) -> f32 {
        // SAFETY: as above.
        unsafe { neon_qdot::dot_q6k::<false>(w, x) }
    }
}
