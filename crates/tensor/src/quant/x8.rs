//! Q8_0, Q4_0, Q4_K and Q6_K weights with eight rows interleaved, for the CPU's GEMV
//! (`cpu/matmul/qblock.rs`, `kernels/matmul.md` § Block formats): the same
//! blocks and bytes as the row-major file (Q4_K's packed six-bit scales and
//! mins unpacked to a byte each), reordered at load so that one
//! 32-byte load holds four consecutive weights of each of eight rows. A
//! 32-bit lane of an integer dot product then belongs to one row, and the
//! eight rows' sums come out in the eight lanes of one vector: no
//! horizontal sum per row, one scale multiply per eight blocks.
//!
//! Group `g` holds rows `8g..8g + 8`; its `b`-th entry holds k-block `b` of
//! each of them, entries of a group consecutive (`per` of them: `k / 32`,
//! `k / 256` for the k-quants).

use bytemuck::{Pod, Zeroable};

use super::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0, QK, QK_K, h, scale_min_k4};

/// Rows per interleaved group.
pub const ROWS: usize = 8;

/// One k-block of eight Q8_0 rows: `d[r]` is row `r`'s scale, and
/// `qs[32t + 4r + i]` its weight `4t + i` (`t < 8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ8_0x8 {
    pub d: [u16; ROWS],
    pub qs: [i8; ROWS * QK],
}

/// One k-block of eight Q4_0 rows: `d[r]` is row `r`'s scale, and
/// `qs[32t + 4r + i]` its byte `4t + i` (`t < 4`): low nibbles weights
/// `4t + i`, high nibbles weights `16 + 4t + i`, as in [`BlockQ4_0`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4_0x8 {
    pub d: [u16; ROWS],
    pub qs: [u8; ROWS * QK / 2],
}

impl Default for BlockQ8_0x8 {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

impl Default for BlockQ4_0x8 {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

const _: () = assert!(size_of::<BlockQ8_0x8>() == ROWS * size_of::<BlockQ8_0>());
const _: () = assert!(size_of::<BlockQ4_0x8>() == ROWS * size_of::<BlockQ4_0>());

/// A block format that interleaves by eight rows.
pub trait Interleave: Copy {
    type X8: Pod + Default;
    /// The scale and the bytes of one block, in 4-byte steps.
    fn parts(&self) -> (u16, &[[u8; 4]]);
    fn parts_mut(&mut self) -> (&mut u16, &mut [[u8; 4]]);
    fn x8_parts(x: &Self::X8) -> (&[u16; ROWS], &[[u8; 4]]);
    fn x8_parts_mut(x: &mut Self::X8) -> (&mut [u16; ROWS], &mut [[u8; 4]]);
}

impl Interleave for BlockQ8_0 {
    type X8 = BlockQ8_0x8;
    fn parts(&self) -> (u16, &[[u8; 4]]) {
        (self.d, bytemuck::cast_slice(&self.qs[..]))
    }
    fn parts_mut(&mut self) -> (&mut u16, &mut [[u8; 4]]) {
        (&mut self.d, bytemuck::cast_slice_mut(&mut self.qs[..]))
    }
    fn x8_parts(x: &BlockQ8_0x8) -> (&[u16; ROWS], &[[u8; 4]]) {
        (&x.d, bytemuck::cast_slice(&x.qs[..]))
    }
    fn x8_parts_mut(x: &mut BlockQ8_0x8) -> (&mut [u16; ROWS], &mut [[u8; 4]]) {
        (&mut x.d, bytemuck::cast_slice_mut(&mut x.qs[..]))
    }
}

impl Interleave for BlockQ4_0 {
    type X8 = BlockQ4_0x8;
    fn parts(&self) -> (u16, &[[u8; 4]]) {
        (self.d, bytemuck::cast_slice(&self.qs[..]))
    }
    fn parts_mut(&mut self) -> (&mut u16, &mut [[u8; 4]]) {
        (&mut self.d, bytemuck::cast_slice_mut(&mut self.qs[..]))
    }
    fn x8_parts(x: &BlockQ4_0x8) -> (&[u16; ROWS], &[[u8; 4]]) {
        (&x.d, bytemuck::cast_slice(&x.qs[..]))
    }
    fn x8_parts_mut(x: &mut BlockQ4_0x8) -> (&mut [u16; ROWS], &mut [[u8; 4]]) {
        (&mut x.d, bytemuck::cast_slice_mut(&mut x.qs[..]))
    }
}

/// Row-major blocks of `[n, k]` (`per = k / 32` a row, `n` a multiple of
/// [`ROWS`]) interleaved by eight rows.
pub fn interleave<B: Interleave>(blocks: &[B], per: usize) -> Vec<B::X8> {
    debug_assert!(per > 0 && blocks.len().is_multiple_of(ROWS * per));
    let groups = blocks.len() / (ROWS * per).max(1);
    let mut out = vec![B::X8::default(); groups * per];
    for (g, xs) in out.chunks_exact_mut(per.max(1)).enumerate() {
        for (b, x) in xs.iter_mut().enumerate() {
            let (d, steps) = B::x8_parts_mut(x);
            for r in 0..ROWS {
                let (dr, src) = blocks[(ROWS * g + r) * per + b].parts();
                d[r] = dr;
                for (t, &s) in src.iter().enumerate() {
                    steps[ROWS * t + r] = s;
                }
            }
        }
    }
    out
}

/// Row `r` (< [`ROWS`]) of one interleaved block, as its own block.
#[inline(always)]
pub fn row_block<B: Interleave + Default>(x: &B::X8, r: usize) -> B {
    let mut out = B::default();
    let (d, steps) = B::x8_parts(x);
    let (od, dst) = out.parts_mut();
    *od = d[r];
    for (t, o) in dst.iter_mut().enumerate() {
        *o = steps[ROWS * t + r];
    }
    out
}

/// One super-block of eight Q6_K rows: `d[r]` row `r`'s scale,
/// `scales[8s + r]` its sub-block `s` scale, and `q` its `ql` and `qh`
/// bytes in 4-byte steps (`32t + 4r + i` within a step holds byte `4t + i`
/// of row `r`), in the order the GEMV reads them: for half `h` and step
/// `j < 8`, 96 bytes at `96·(8h + j)`: `ql` step `16h + j` (low nibbles
/// quarter 0, high quarter 2), `ql` step `16h + 8 + j` (quarters 1 and 3),
/// `qh` step `8h + j` (two bits of each quarter). Read in one sweep, the
/// prefetcher sees one stream (`ql` and `qh` as two far-apart streams
/// stalled on `qh`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ6Kx8 {
    pub d: [u16; ROWS],
    pub scales: [i8; ROWS * QK_K / 16],
    pub q: [u8; ROWS * (QK_K / 2 + QK_K / 4)],
}

impl Default for BlockQ6Kx8 {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

const _: () = assert!(size_of::<BlockQ6Kx8>() == ROWS * size_of::<BlockQ6K>());

/// Where 4-byte step `t` of `ql` (`t < 32`) and of `qh` (`t < 16`) sit in
/// [`BlockQ6Kx8::q`].
pub fn q6k_ql_step(t: usize) -> usize {
    let (h, j, hi) = (t / 16, t % 8, (t % 16) / 8);
    96 * (8 * h + j) + 32 * hi
}

pub fn q6k_qh_step(t: usize) -> usize {
    96 * t + 64
}

/// Row-major Q6_K blocks of `[n, k]` (`per = k / 256` a row, `n` a
/// multiple of [`ROWS`]) interleaved by eight rows.
pub fn interleave_q6k(blocks: &[BlockQ6K], per: usize) -> Vec<BlockQ6Kx8> {
    debug_assert!(per > 0 && blocks.len().is_multiple_of(ROWS * per));
    let groups = blocks.len() / (ROWS * per).max(1);
    let mut out = vec![BlockQ6Kx8::default(); groups * per];
    for (g, xs) in out.chunks_exact_mut(per.max(1)).enumerate() {
        for (b, x) in xs.iter_mut().enumerate() {
            for r in 0..ROWS {
                let src = &blocks[(ROWS * g + r) * per + b];
                x.d[r] = src.d;
                for (s, &sc) in src.scales.iter().enumerate() {
                    x.scales[ROWS * s + r] = sc;
                }
                for (t, c) in src.ql.chunks_exact(4).enumerate() {
                    let o = q6k_ql_step(t) + 4 * r;
                    x.q[o..o + 4].copy_from_slice(c);
                }
                for (t, c) in src.qh.chunks_exact(4).enumerate() {
                    let o = q6k_qh_step(t) + 4 * r;
                    x.q[o..o + 4].copy_from_slice(c);
                }
            }
        }
    }
    out
}

/// Row `r` (< [`ROWS`]) of one interleaved Q6_K super-block, as its own
/// block.
#[inline(always)]
pub fn row_block_q6k(x: &BlockQ6Kx8, r: usize) -> BlockQ6K {
    let mut out = BlockQ6K {
        d: x.d[r],
        ..Default::default()
    };
    for (s, o) in out.scales.iter_mut().enumerate() {
        *o = x.scales[ROWS * s + r];
    }
    for (t, o) in out.ql.chunks_exact_mut(4).enumerate() {
        let i = q6k_ql_step(t) + 4 * r;
        o.copy_from_slice(&x.q[i..i + 4]);
    }
    for (t, o) in out.qh.chunks_exact_mut(4).enumerate() {
        let i = q6k_qh_step(t) + 4 * r;
        o.copy_from_slice(&x.q[i..i + 4]);
    }
    out
}

/// One super-block of eight Q4_K rows: `d[r]`, `dmin[r]` row `r`'s scales,
/// `scales[8s + r]` and `mins[8s + r]` its sub-block `s` six-bit scale and
/// min unpacked to bytes (the file packs them into 12 bytes a row: this
/// layout is 32 bytes longer per eight rows, +2.8%), and `qs` its bytes in
/// 4-byte steps, `qs[32t + 4r + i]` = byte `4t + i` of row `r` (`t < 32`;
/// step `t` holds sub-block `2(t / 8)` in its low nibbles and `2(t / 8) + 1`
/// in its high ones, elements `4(t % 8)..+4` of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
#[repr(C)]
pub struct BlockQ4Kx8 {
    pub d: [u16; ROWS],
    pub dmin: [u16; ROWS],
    pub scales: [u8; ROWS * 8],
    pub mins: [u8; ROWS * 8],
    pub qs: [u8; ROWS * QK_K / 2],
}

impl Default for BlockQ4Kx8 {
    fn default() -> Self {
        Zeroable::zeroed()
    }
}

/// Row-major Q4_K blocks of `[n, k]` (`per = k / 256` a row, `n` a
/// multiple of [`ROWS`]) interleaved by eight rows.
pub fn interleave_q4k(blocks: &[BlockQ4K], per: usize) -> Vec<BlockQ4Kx8> {
    debug_assert!(per > 0 && blocks.len().is_multiple_of(ROWS * per));
    let groups = blocks.len() / (ROWS * per).max(1);
    let mut out = vec![BlockQ4Kx8::default(); groups * per];
    for (g, xs) in out.chunks_exact_mut(per.max(1)).enumerate() {
        for (b, x) in xs.iter_mut().enumerate() {
            for r in 0..ROWS {
                let src = &blocks[(ROWS * g + r) * per + b];
                (x.d[r], x.dmin[r]) = (src.d, src.dmin);
                for s in 0..8 {
                    let (sc, m) = scale_min_k4(s, &src.scales);
                    (x.scales[ROWS * s + r], x.mins[ROWS * s + r]) = (sc, m);
                }
                for (t, c) in src.qs.chunks_exact(4).enumerate() {
                    x.qs[32 * t + 4 * r..32 * t + 4 * r + 4].copy_from_slice(c);
                }
            }
        }
    }
    out
}

/// Row `r` (< [`ROWS`]) of one interleaved Q4_K super-block decoded into
/// `out[..256]`, with the arithmetic of `blocks::dequantize_q4k`.
pub fn dequantize_q4kx8_row(x: &BlockQ4Kx8, r: usize, out: &mut [f32]) {
    let (d, dmin) = (h(x.d[r]), h(x.dmin[r]));
    for (pair, y) in out[..QK_K].chunks_exact_mut(64).enumerate() {
        let (s0, s1) = (2 * pair, 2 * pair + 1);
        let (d0, d1) = (
            d * x.scales[ROWS * s0 + r] as f32,
            d * x.scales[ROWS * s1 + r] as f32,
        );
        let (m0, m1) = (
            dmin * x.mins[ROWS * s0 + r] as f32,
            dmin * x.mins[ROWS * s1 + r] as f32,
        );
        let (lo, hi) = y.split_at_mut(32);
        for (e, (l, u)) in lo.iter_mut().zip(hi).enumerate() {
            let t = 8 * pair + e / 4;
            let q = x.qs[32 * t + 4 * r + e % 4];
            *l = d0 * (q & 0xF) as f32 - m0;
            *u = d1 * (q >> 4) as f32 - m1;
        }
    }
}
