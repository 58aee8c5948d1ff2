//! NEON dot products of row-major block-quantized weight rows with int8
//! activation blocks (the layouts and scalar twins are in `qdot.rs`; the
//! AVX2 bodies in `avx2_qdot.rs` are the model). NEON keeps the weights
//! row-major (`qblock::interleaves`), so only these four are needed.
//!
//! The integer core ([`dot16`]) is, with `DOT`, one SDOT (Armv8.2
//! dot product: four i8 × i8 products into each i32 lane), else
//! `smull` + `smlal2` (i8 × i8 → i16, two products per lane) and `sadalp`
//! (i16 pairs added into i32 lanes). Both give the same integer sum over
//! the lanes; no i16 can overflow: a lane holds two products, at most
//! 2·128·127 = 32512 in size (Q8_0's −128 against ±127), 2·15·127 (Q4
//! nibbles), 2·32·127 (Q6_K's `q − 32`).
//!
//! Weights stay signed here (NEON multiplies i8 by i8): Q4_0's +8 is taken
//! off through the accumulator's start, Q4_K's nibbles are 0..15 as they
//! are, Q6_K's six bits have 32 taken off in the bytes, so its integer sum
//! is the scalar twin's exactly. Each block's (or super-block's) integer
//! lanes are scaled in f32 into two accumulators (one for Q4_K and Q6_K,
//! whose blocks are long), summed across lanes once per row, as in
//! `avx2_qdot.rs`.
//!
//! SDOT is written as inline assembly: its intrinsic (`vdotq_s32`) is not
//! stable in this toolchain (1.95). The f16 scales are widened by `fcvt`
//! (base Armv8 floating point), also inline assembly: Rust's f16 vector
//! types are unstable, and `half` tests for the FP16 extension at run time
//! on every call.
//!
//! # Safety
//! Every function here needs NEON (always present on aarch64; the caller's
//! token proves it) and, with `DOT`, the dot-product extension (`dotprod`,
//! proven by a `NeonDot` token); all loads stay inside the blocks' arrays.

use std::arch::aarch64::*;
use std::arch::asm;

use super::qdot::{XBlock, XBlockK};
use crate::quant::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0};

/// An f16 scale (raw bits) widened exactly to f32.
#[inline(always)]
fn f16(bits: u16) -> f32 {
    let out: f32;
    // SAFETY: `fcvt` between scalar FP registers is base Armv8 floating
    // point (every aarch64 CPU); it touches no memory or stack.
    unsafe {
        asm!(
            "fcvt {o:s}, {i:h}",
            o = lateout(vreg) out,
            i = in(vreg) bits as i16,
            options(pure, nomem, nostack),
        );
    }
    out
}

/// 16 bytes of an array of at least 16, as i8 lanes.
#[inline(always)]
unsafe fn load16<T>(a: &[T]) -> int8x16_t {
    debug_assert!(size_of_val(a) >= 16);
    // SAFETY: the caller guarantees NEON; `a` holds at least 16 bytes.
    unsafe { vld1q_s8(a.as_ptr().cast()) }
}

/// `acc` + the products `a · b` (i8 × i8) summed into the i32 lanes: one
/// SDOT with `DOT` (four products per lane), else widening multiplies and
/// a pairwise add (four per lane too, in another arrangement: only the
/// lanes' total is the same).
///
/// # Safety
/// NEON; with `DOT`, the dot-product extension.
#[inline(always)]
unsafe fn dot16<const DOT: bool>(acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: the caller guarantees the features above; the assembly
    // touches registers only.
    unsafe {
        if DOT {
            let mut acc = acc;
            asm!(
                "sdot {acc:v}.4s, {a:v}.16b, {b:v}.16b",
                acc = inout(vreg) acc,
                a = in(vreg) a,
                b = in(vreg) b,
                options(pure, nomem, nostack, preserves_flags),
            );
            acc
        } else {
            let p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
            vpadalq_s16(acc, vmlal_high_s8(p, a, b))
        }
    }
}

/// Σ over blocks of `scale(block) · Σ lanes of int(block)`, two blocks per
/// step into two accumulators (one would chain every block on the last
/// block's FMA). A trait, not closures: a closure is a function of its own
/// without the caller's target features, and the intrinsics in it stay
/// calls (measured on AVX2: 20× slower).
trait Block32<X> {
    /// The block's integer sums against `x` in the lanes.
    ///
    /// # Safety
    /// As for [`dot16`].
    unsafe fn int<const DOT: bool>(&self, x: &X) -> int32x4_t;
    /// The block's scale times `x`'s.
    fn scale(&self, x: &X) -> f32;
}

impl Block32<XBlock> for BlockQ8_0 {
    #[inline(always)]
    unsafe fn int<const DOT: bool>(&self, x: &XBlock) -> int32x4_t {
        // SAFETY: the caller guarantees the features; loads at 0 and 16
        // of the 32-byte arrays.
        unsafe {
            let s = dot16::<DOT>(vdupq_n_s32(0), load16(&self.qs), load16(&x.qs));
            dot16::<DOT>(s, load16(&self.qs[16..]), load16(&x.qs[16..]))
        }
    }
    #[inline(always)]
    fn scale(&self, x: &XBlock) -> f32 {
        f16(self.d) * x.d
    }
}

impl Block32<XBlock> for BlockQ4_0 {
    #[inline(always)]
    unsafe fn int<const DOT: bool>(&self, x: &XBlock) -> int32x4_t {
        // SAFETY: the caller guarantees the features; the 16-byte `qs`
        // whole, `x.qs` at 0 and 16.
        unsafe {
            let q = vld1q_u8(self.qs.as_ptr());
            let lo = vreinterpretq_s8_u8(vandq_u8(q, vdupq_n_u8(0x0F)));
            let hi = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q));
            // The nibbles' +8, exactly: 4 lanes × −2·Σ qs.
            let s = dot16::<DOT>(vdupq_n_s32(-2 * x.sum), lo, load16(&x.qs));
            dot16::<DOT>(s, hi, load16(&x.qs[16..]))
        }
    }
    #[inline(always)]
    fn scale(&self, x: &XBlock) -> f32 {
        f16(self.d) * x.d
    }
}

/// # Safety
/// As for [`dot16`].
#[inline(always)]
unsafe fn blocks2<W: Block32<X>, X, const DOT: bool>(w: &[W], x: &[X]) -> f32 {
    // SAFETY: the caller guarantees the features.
    unsafe {
        let (mut a0, mut a1) = (vdupq_n_f32(0.0), vdupq_n_f32(0.0));
        let n = w.len().min(x.len());
        let mut i = 0;
        while i + 2 <= n {
            let f0 = vcvtq_f32_s32(w[i].int::<DOT>(&x[i]));
            let f1 = vcvtq_f32_s32(w[i + 1].int::<DOT>(&x[i + 1]));
            a0 = vfmaq_n_f32(a0, f0, w[i].scale(&x[i]));
            a1 = vfmaq_n_f32(a1, f1, w[i + 1].scale(&x[i + 1]));
            i += 2;
        }
        if i < n {
            let f0 = vcvtq_f32_s32(w[i].int::<DOT>(&x[i]));
            a0 = vfmaq_n_f32(a0, f0, w[i].scale(&x[i]));
        }
        vaddvq_f32(vaddq_f32(a0, a1))
    }
}

/// # Safety
/// As for [`dot16`].
#[inline(always)]
pub(crate) unsafe fn dot_q8_0<const DOT: bool>(w: &[BlockQ8_0], x: &[XBlock]) -> f32 {
    // SAFETY: the caller guarantees the features.
    unsafe { blocks2::<_, _, DOT>(w, x) }
}

/// # Safety
/// As for [`dot16`].
#[inline(always)]
pub(crate) unsafe fn dot_q4_0<const DOT: bool>(w: &[BlockQ4_0], x: &[XBlock]) -> f32 {
    // SAFETY: the caller guarantees the features.
    unsafe { blocks2::<_, _, DOT>(w, x) }
}

/// A Q4_K block's eight six-bit scales and eight mins, a byte each
/// (`blocks::scale_min_k4` for all eight at once, on 32-bit words).
#[inline(always)]
fn scales_mins_k4(q: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    const LOW6: u32 = 0x3F3F_3F3F;
    const LOW4: u32 = 0x0F0F_0F0F;
    const LOW2: u32 = 0x0303_0303;
    let word = |i: usize| u32::from_le_bytes([q[4 * i], q[4 * i + 1], q[4 * i + 2], q[4 * i + 3]]);
    let (a, b, c) = (word(0), word(1), word(2));
    // Sub-blocks 0..4 in the low six bits of bytes 0..4 (scales) and 4..8
    // (mins); 4..8 in the nibbles of bytes 8..12 with the top two bits of
    // bytes 0..4 (scales) and 4..8 (mins) above them.
    let sc = [a & LOW6, (c & LOW4) | (((a >> 6) & LOW2) << 4)];
    let m = [b & LOW6, ((c >> 4) & LOW4) | (((b >> 6) & LOW2) << 4)];
    let bytes = |w: [u32; 2]| {
        let (l, h) = (w[0].to_le_bytes(), w[1].to_le_bytes());
        [l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]]
    };
    (bytes(sc), bytes(m))
}

/// # Safety
/// As for [`dot16`].
#[inline(always)]
pub(crate) unsafe fn dot_q4k<const DOT: bool>(w: &[BlockQ4K], x: &[XBlockK]) -> f32 {
    // SAFETY: the caller guarantees the features; loads at 32·p, 32·p + 16
    // of the 128-byte `qs`, 64·p + 16·i of the 256-byte `x.qs`, and the
    // 16 i16 of `x.bsums` at 0 and 8.
    unsafe {
        let low4 = vdupq_n_u8(0x0F);
        let mut acc = vdupq_n_f32(0.0);
        let mut mins = 0.0f32;
        for (b, xb) in w.iter().zip(x) {
            let (sc, m) = scales_mins_k4(&b.scales);
            let mut sumi = vdupq_n_s32(0);
            for p in 0..4 {
                let q0 = vld1q_u8(b.qs[32 * p..].as_ptr());
                let q1 = vld1q_u8(b.qs[32 * p + 16..].as_ptr());
                let xq = &xb.qs[64 * p..];
                let lo0 = vreinterpretq_s8_u8(vandq_u8(q0, low4));
                let lo1 = vreinterpretq_s8_u8(vandq_u8(q1, low4));
                let hi0 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q0));
                let hi1 = vreinterpretq_s8_u8(vshrq_n_u8::<4>(q1));
                let z = vdupq_n_s32(0);
                let d0 = dot16::<DOT>(dot16::<DOT>(z, lo0, load16(xq)), lo1, load16(&xq[16..]));
                let d1 = dot16::<DOT>(
                    dot16::<DOT>(z, hi0, load16(&xq[32..])),
                    hi1,
                    load16(&xq[48..]),
                );
                sumi = vmlaq_n_s32(sumi, d0, sc[2 * p] as i32);
                sumi = vmlaq_n_s32(sumi, d1, sc[2 * p + 1] as i32);
            }
            // Σ m · (the sub-block's two per-16 sums): the pair sums fit
            // i16 (2·16·127), their products with six-bit mins i32.
            let bs = vpaddq_s16(
                vld1q_s16(xb.bsums.as_ptr()),
                vld1q_s16(xb.bsums[8..].as_ptr()),
            );
            let mv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(m.as_ptr())));
            let prod = vmull_s16(vget_low_s16(bs), vget_low_s16(mv));
            let summ = vaddvq_s32(vmlal_high_s16(prod, bs, mv));
            let dx = xb.d;
            acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), f16(b.d) * dx);
            mins += f16(b.dmin) * dx * summ as f32;
        }
        vaddvq_f32(acc) - mins
    }
}

/// # Safety
/// As for [`dot16`].
#[inline(always)]
pub(crate) unsafe fn dot_q6k<const DOT: bool>(w: &[BlockQ6K], x: &[XBlockK]) -> f32 {
    // SAFETY: the caller guarantees the features; loads at 64·h + 16·i of
    // the 128-byte `ql`, 32·h + 16·i of the 64-byte `qh` (i < 4, 2), and
    // 128·h + 16·i of the 256-byte `x.qs` (i < 8).
    unsafe {
        let (low4, m32) = (vdupq_n_u8(0x0F), vdupq_n_s8(32));
        let three = vdupq_n_u8(3);
        let mut acc = vdupq_n_f32(0.0);
        for (b, xb) in w.iter().zip(x) {
            let mut sumi = vdupq_n_s32(0);
            for h in 0..2 {
                let ql = &b.ql[64 * h..];
                let xq = &xb.qs[128 * h..];
                // Each 16 bytes of a quarter are one sub-block of 16: the
                // quarter `q`, half `i` of its 32 values has scale
                // `8h + 2q + i`.
                for i in 0..2 {
                    let l0 = vld1q_u8(ql[16 * i..].as_ptr());
                    let l1 = vld1q_u8(ql[32 + 16 * i..].as_ptr());
                    let qh = vld1q_u8(b.qh[32 * h + 16 * i..].as_ptr());
                    let quarters = [
                        (vandq_u8(l0, low4), qh),
                        (vandq_u8(l1, low4), vshrq_n_u8::<2>(qh)),
                        (vshrq_n_u8::<4>(l0), vshrq_n_u8::<4>(qh)),
                        (vshrq_n_u8::<4>(l1), vshrq_n_u8::<6>(qh)),
                    ];
                    for (q, (low, high)) in quarters.into_iter().enumerate() {
                        let six = vorrq_u8(low, vshlq_n_u8::<4>(vandq_u8(high, three)));
                        let v = vsubq_s8(vreinterpretq_s8_u8(six), m32);
                        let d = dot16::<DOT>(vdupq_n_s32(0), v, load16(&xq[32 * q + 16 * i..]));
                        sumi = vmlaq_n_s32(sumi, d, b.scales[8 * h + 2 * q + i] as i32);
                    }
                }
            }
            acc = vfmaq_n_f32(acc, vcvtq_f32_s32(sumi), f16(b.d) * xb.d);
        }
        vaddvq_f32(acc)
    }
}
