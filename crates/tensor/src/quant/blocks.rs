//! ggml's block layouts (`ggml-common.h`), byte for byte, and their
//! dequantization. A block holds a run of consecutive weights of one row; a
//! row of `k` weights is `k / QK` blocks, rows follow each other. All
//! scales are f16 (`u16` bits here, so that every block is `Pod` with
//! alignment 2 and `&[u8]` from a file casts once copied to aligned memory).

use bytemuck::{Pod, Zeroable};
use half::f16;

/// Weights per block of Q8_0 and Q4_0.
pub const QK: usize = 32;
/// Weights per super-block of the k-quants (Q4_K, Q6_K).
pub const QK_K: usize = 256;

/// Q8_0: `w[i] = d · qs[i]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_0 {
    pub d: u16,
    pub qs: [i8; QK],
}

/// Q4_0: `w[i] = d · (nibble_i − 8)`; byte `j` holds element `j` in its low
/// nibble and element `j + 16` in its high one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_0 {
    pub d: u16,
    pub qs: [u8; QK / 2],
}

/// Q4_K: eight sub-blocks of 32, each with a 6-bit scale `sc` and min `m`
/// (packed in `scales`, see [`scale_min_k4`]): `w = d·sc·q − dmin·m`, `q`
/// a nibble. Each 32 bytes of `qs` hold two sub-blocks: low nibbles the
/// first, high nibbles the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4K {
    pub d: u16,
    pub dmin: u16,
    pub scales: [u8; 12],
    pub qs: [u8; QK_K / 2],
}

/// Q6_K: sixteen sub-blocks of 16 with an i8 scale each:
/// `w = d · scales[s] · (q − 32)`, `q` six bits split into `ql` (low 4)
/// and `qh` (high 2); see [`dequantize_q6k`] for the interleaving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ6K {
    pub ql: [u8; QK_K / 2],
    pub qh: [u8; QK_K / 4],
    pub scales: [i8; QK_K / 16],
    pub d: u16,
}

impl Default for BlockQ4K {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

impl Default for BlockQ6K {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

const _: () = assert!(size_of::<BlockQ8_0>() == 34);
const _: () = assert!(size_of::<BlockQ4_0>() == 18);
const _: () = assert!(size_of::<BlockQ4K>() == 144);
const _: () = assert!(size_of::<BlockQ6K>() == 210);

/// An f16 scale's value.
#[inline(always)]
pub fn h(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// Scale and min of sub-block `j` (0..8) of a Q4_K block: six bits each,
/// `j < 4` in the low bits of bytes `j` and `j + 4`, the others split
/// between the high nibbles of bytes 8..12 and the top two bits of 0..8.
#[inline(always)]
pub fn scale_min_k4(j: usize, q: &[u8; 12]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        (
            (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4),
            (q[j + 4] >> 4) | ((q[j] >> 6) << 4),
        )
    }
}

pub fn dequantize_q8_0(b: &BlockQ8_0, out: &mut [f32]) {
    let d = h(b.d);
    for (o, &q) in out[..QK].iter_mut().zip(&b.qs) {
        *o = d * q as f32;
    }
}

pub fn dequantize_q4_0(b: &BlockQ4_0, out: &mut [f32]) {
    let d = h(b.d);
    let (lo, hi) = out[..QK].split_at_mut(QK / 2);
    for ((l, u), &q) in lo.iter_mut().zip(hi).zip(&b.qs) {
        *l = d * ((q & 0xF) as i32 - 8) as f32;
        *u = d * ((q >> 4) as i32 - 8) as f32;
    }
}

pub fn dequantize_q4k(b: &BlockQ4K, out: &mut [f32]) {
    let (d, dmin) = (h(b.d), h(b.dmin));
    for (pair, (qs, y)) in
        b.qs.chunks_exact(32)
            .zip(out[..QK_K].chunks_exact_mut(64))
            .enumerate()
    {
        let (sc0, m0) = scale_min_k4(2 * pair, &b.scales);
        let (sc1, m1) = scale_min_k4(2 * pair + 1, &b.scales);
        let (d0, d1) = (d * sc0 as f32, d * sc1 as f32);
        let (m0, m1) = (dmin * m0 as f32, dmin * m1 as f32);
        let (lo, hi) = y.split_at_mut(32);
        for ((l, u), &q) in lo.iter_mut().zip(hi).zip(qs) {
            *l = d0 * (q & 0xF) as f32 - m0;
            *u = d1 * (q >> 4) as f32 - m1;
        }
    }
}

/// The six-bit value of element `l` of the 128-element half `half` (0, 1)
/// of a Q6_K block, before the −32 offset.
#[inline(always)]
pub fn q6k_value(b: &BlockQ6K, half: usize, l: usize) -> u8 {
    let (ql, qh) = (&b.ql[64 * half..], &b.qh[32 * half..]);
    let (quarter, i) = (l / 32, l % 32);
    let low = match quarter {
        0 => ql[i] & 0xF,
        1 => ql[i + 32] & 0xF,
        2 => ql[i] >> 4,
        _ => ql[i + 32] >> 4,
    };
    low | (((qh[i] >> (2 * quarter)) & 3) << 4)
}

pub fn dequantize_q6k(b: &BlockQ6K, out: &mut [f32]) {
    let d = h(b.d);
    for (half, y) in out[..QK_K].chunks_exact_mut(128).enumerate() {
        for (l, o) in y.iter_mut().enumerate() {
            let sc = b.scales[8 * half + l / 16] as f32;
            *o = d * sc * (q6k_value(b, half, l) as i32 - 32) as f32;
        }
    }
}
