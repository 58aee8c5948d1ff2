//! Dot products of block-quantized weight rows (ggml's Q8_0, Q4_0, Q4_K,
//! Q6_K; `crate::quant::blocks`) with an activation row quantized to int8
//! per block, as llama.cpp does (`kernels/matmul.md` § Block formats): the
//! integer products are exact, each block's sum is scaled once.
//!
//! This file holds the activation blocks, their quantizer, and the scalar
//! dot products: the [`super::Simd`] defaults (the scalar tier runs them)
//! and the reference the vector versions are tested against
//! (`avx2_qdot.rs`, used by the AVX2 and AVX-512 tiers; `neon_qdot.rs`).

use bytemuck::{Pod, Zeroable};

use crate::quant::blocks::{
    BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0, QK, QK_K, h, q6k_value, scale_min_k4,
};
use crate::quant::x8::{self, BlockQ4_0x8, BlockQ4Kx8, BlockQ6Kx8, BlockQ8_0x8, ROWS};

/// 32 activations for Q8_0 and Q4_0 weights: `x[i] ≈ d · qs[i]`, and
/// `sum = Σ qs` (Q4_0's nibbles carry +8, taken off through it exactly, in
/// integers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct XBlock {
    pub d: f32,
    pub sum: i32,
    pub qs: [i8; QK],
}

/// 256 activations for the k-quants: `x[i] ≈ d · qs[i]`, and the sums of
/// `qs` over each run of 16 (for the k-quants' mins and offsets).
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C)]
pub struct XBlockK {
    pub d: f32,
    pub qs: [i8; QK_K],
    pub bsums: [i16; QK_K / 16],
}

impl Default for XBlockK {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

/// `d = max|x| / 127` and `q = round(x / d)`, into `qs`; returns `d`.
/// A non-finite `x` gives a non-finite `d` (the matmul's output is then
/// non-finite, as it would be unquantized).
#[inline(always)]
fn quantize_into(x: &[f32], qs: &mut [i8]) -> f32 {
    let amax = x.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    for (q, &v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    d
}

/// Quantizes `x` (a multiple of 32 long) into `out` (`x.len() / 32` blocks).
/// The scale is rounded to f16 after the values are (ggml's `block_q8_0`
/// stores it so: the products then match llama.cpp's; the k-quants'
/// activation blocks keep an f32 scale in both).
pub fn quantize_x(x: &[f32], out: &mut [XBlock]) {
    for (xb, o) in x.chunks_exact(QK).zip(out) {
        o.d = half::f16::from_f32(quantize_into(xb, &mut o.qs)).to_f32();
        o.sum = o.qs.iter().map(|&q| q as i32).sum();
    }
}

/// Two [`XBlock`]s laid out for a 512-bit `vpdpbusd` against two Q4_0
/// weight blocks at once (`avx512_qdot.rs`): 32-bit lane `l` holds four
/// values of block `l % 2`, elements `4·(l / 2)..` of its first half for
/// `l < 8` (the low nibbles' elements) and `16 + 4·((l − 8) / 2)..` for the
/// rest (the high nibbles'); `init[l]` is −8 × the sum of lane `l`'s four
/// values (the nibbles' +8, taken off through the accumulator's start) and
/// `d[l]` its block's scale.
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
#[repr(C, align(64))]
pub struct XPair {
    pub qs: [i8; 64],
    pub init: [i32; 16],
    pub d: [f32; 16],
}

impl Default for XPair {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

/// Lays out blocks `2i, 2i + 1` of `x` as `out[i]` ([`XPair`]); an odd last
/// block is left out (the caller takes it alone).
pub fn pair_x(x: &[XBlock], out: &mut [XPair]) {
    for (p, o) in x.chunks_exact(2).zip(out) {
        for l in 0..16 {
            let b = &p[l % 2];
            let e0 = if l < 8 {
                4 * (l / 2)
            } else {
                16 + 4 * ((l - 8) / 2)
            };
            let q = &b.qs[e0..e0 + 4];
            o.qs[4 * l..4 * l + 4].copy_from_slice(q);
            o.init[l] = -8 * q.iter().map(|&v| v as i32).sum::<i32>();
            o.d[l] = b.d;
        }
    }
}

/// Quantizes `x` (a multiple of 256 long) into `out` (`x.len() / 256` blocks).
pub fn quantize_x_k(x: &[f32], out: &mut [XBlockK]) {
    for (xb, o) in x.chunks_exact(QK_K).zip(out) {
        o.d = quantize_into(xb, &mut o.qs);
        for (s, q) in o.bsums.iter_mut().zip(o.qs.chunks_exact(16)) {
            *s = q.iter().map(|&v| v as i16).sum();
        }
    }
}

pub fn dot_q8_0(w: &[BlockQ8_0], x: &[XBlock]) -> f32 {
    w.iter().zip(x).fold(0.0, |acc, (b, xb)| {
        let s: i32 =
            b.qs.iter()
                .zip(&xb.qs)
                .map(|(&p, &q)| p as i32 * q as i32)
                .sum();
        acc + h(b.d) * xb.d * s as f32
    })
}

pub fn dot_q4_0(w: &[BlockQ4_0], x: &[XBlock]) -> f32 {
    w.iter().zip(x).fold(0.0, |acc, (b, xb)| {
        let (lo, hi) = xb.qs.split_at(QK / 2);
        let s: i32 =
            b.qs.iter()
                .zip(lo.iter().zip(hi))
                .map(|(&q, (&l, &u))| (q & 0xF) as i32 * l as i32 + (q >> 4) as i32 * u as i32)
                .sum();
        acc + h(b.d) * xb.d * (s - 8 * xb.sum) as f32
    })
}

/// Eight interleaved rows of Q8_0 (`quant/x8.rs`): each row's blocks
/// summed in order, one block's `scale · int` at a time, as the vector
/// versions do in their eight lanes.
pub fn dot_q8_0x8(w: &[BlockQ8_0x8], x: &[XBlock]) -> [f32; ROWS] {
    let mut acc = [0.0f32; ROWS];
    for (b, xb) in w.iter().zip(x) {
        for (r, a) in acc.iter_mut().enumerate() {
            *a += dot_q8_0(&[x8::row_block(b, r)], std::slice::from_ref(xb));
        }
    }
    acc
}

/// Eight interleaved rows of Q4_0, as [`dot_q8_0x8`].
pub fn dot_q4_0x8(w: &[BlockQ4_0x8], x: &[XBlock]) -> [f32; ROWS] {
    let mut acc = [0.0f32; ROWS];
    for (b, xb) in w.iter().zip(x) {
        for (r, a) in acc.iter_mut().enumerate() {
            *a += dot_q4_0(&[x8::row_block(b, r)], std::slice::from_ref(xb));
        }
    }
    acc
}

/// Eight interleaved Q6_K rows, as [`dot_q8_0x8`] (one super-block's
/// `scale · int` at a time).
pub fn dot_q6kx8(w: &[BlockQ6Kx8], x: &[XBlockK]) -> [f32; ROWS] {
    let mut acc = [0.0f32; ROWS];
    for (b, xb) in w.iter().zip(x) {
        for (r, a) in acc.iter_mut().enumerate() {
            *a += dot_q6k(&[x8::row_block_q6k(b, r)], std::slice::from_ref(xb));
        }
    }
    acc
}

/// Eight interleaved Q4_K rows, as [`dot_q4k`] on each (one super-block's
/// `d·Σ sc·q·x − dmin·Σ m·x` at a time).
pub fn dot_q4kx8(w: &[BlockQ4Kx8], x: &[XBlockK]) -> [f32; ROWS] {
    let mut acc = [0.0f32; ROWS];
    for (b, xb) in w.iter().zip(x) {
        for (r, a) in acc.iter_mut().enumerate() {
            let (mut sumi, mut summ) = (0i32, 0i32);
            for s in 0..8 {
                let dot: i32 = (0..32)
                    .map(|e| {
                        let q = b.qs[32 * (8 * (s / 2) + e / 4) + 4 * r + e % 4];
                        ((q >> (4 * (s % 2))) & 0xF) as i32 * xb.qs[32 * s + e] as i32
                    })
                    .sum();
                sumi += b.scales[ROWS * s + r] as i32 * dot;
                summ += b.mins[ROWS * s + r] as i32
                    * (xb.bsums[2 * s] as i32 + xb.bsums[2 * s + 1] as i32);
            }
            *a += h(b.d[r]) * xb.d * sumi as f32 - h(b.dmin[r]) * xb.d * summ as f32;
        }
    }
    acc
}

pub fn dot_q4k(w: &[BlockQ4K], x: &[XBlockK]) -> f32 {
    w.iter().zip(x).fold(0.0, |acc, (b, xb)| {
        let (mut sumi, mut summ) = (0i32, 0i32);
        for s in 0..8 {
            let (sc, m) = scale_min_k4(s, &b.scales);
            let qs = &b.qs[32 * (s / 2)..32 * (s / 2) + 32];
            let dot: i32 = qs
                .iter()
                .zip(&xb.qs[32 * s..32 * s + 32])
                .map(|(&q, &v)| ((q >> (4 * (s % 2))) & 0xF) as i32 * v as i32)
                .sum();
            sumi += sc as i32 * dot;
            summ += m as i32 * (xb.bsums[2 * s] as i32 + xb.bsums[2 * s + 1] as i32);
        }
        acc + h(b.d) * xb.d * sumi as f32 - h(b.dmin) * xb.d * summ as f32
    })
}

pub fn dot_q6k(w: &[BlockQ6K], x: &[XBlockK]) -> f32 {
    w.iter().zip(x).fold(0.0, |acc, (b, xb)| {
        let mut sumi = 0i32;
        for half in 0..2 {
            for l in 0..128 {
                let v = q6k_value(b, half, l) as i32 - 32;
                sumi += b.scales[8 * half + l / 16] as i32 * v * xb.qs[128 * half + l] as i32;
            }
        }
        acc + h(b.d) * xb.d * sumi as f32
    })
}
