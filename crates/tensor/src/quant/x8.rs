//! Q8_0 and Q4_0 weights with eight rows interleaved, for the CPU's GEMV
//! (`cpu/matmul/qblock.rs`, `kernels/matmul.md` § Block formats): the same
//! blocks and bytes as the row-major file, reordered at load so that one
//! 32-byte load holds four consecutive weights of each of eight rows. A
//! 32-bit lane of an integer dot product then belongs to one row, and the
//! eight rows' sums come out in the eight lanes of one vector: no
//! horizontal sum per row, one scale multiply per eight blocks.
//!
//! Group `g` holds rows `8g..8g + 8`; its `b`-th entry holds k-block `b` of
//! each of them, entries of a group consecutive (`per` of them, `k / 32`).

use bytemuck::{Pod, Zeroable};

use super::blocks::{BlockQ4_0, BlockQ8_0, QK};

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
