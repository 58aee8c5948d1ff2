//! Weight panels: the CPU matmul's storage layout for `w[n, k]`, prepacked
//! once at load (`kernels/matmul.md`).
//!
//! Rows of `w` are grouped into panels of `nr` (the ISA's microkernel width;
//! the last panel zero-padded). A panel is stored k-major: for each `p` in
//! `0..k`, the `nr` values `w[j0..j0+nr, p]`. GEMM reads a `kc × nr` slice of
//! a panel straight into registers (no per-call packing of `w`), and GEMV
//! streams whole panels as one contiguous read.
//!
//! bf16 panels are additionally pair-interleaved per group of `2·lanes`
//! columns: u16 `2i` and `2i+1` of the group hold columns `i` and `lanes + i`,
//! so one vector load of `lanes` u32 words yields two f32 vectors with a shift
//! and a mask ([`Simd::load_bf16_pairs`](crate::cpu::simd::Simd::load_bf16_pairs)).
//! f32 and f16 panels keep columns in order.

use rayon::prelude::*;

use crate::DType;
use crate::dtype::Element;

/// Geometry of one ISA's panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PanelLayout {
    /// Rows of `w` per panel (microkernel columns): `nrv · lanes`.
    pub nr: usize,
    /// f32 lanes of the ISA's vector.
    pub lanes: usize,
}

impl PanelLayout {
    /// Number of panels for `n` rows.
    pub fn panels(self, n: usize) -> usize {
        n.div_ceil(self.nr)
    }

    /// Elements of packed storage for `w[n, k]`.
    pub fn packed_len(self, n: usize, k: usize) -> usize {
        self.panels(n) * self.nr * k
    }

    /// Position of column `j` (0..nr) within a panel row, for dtype `dt`.
    #[inline(always)]
    pub fn slot(self, dt: DType, j: usize) -> usize {
        if dt == DType::BF16 {
            let group = j / (2 * self.lanes);
            let r = j % (2 * self.lanes);
            let (i, half) = if r < self.lanes {
                (r, 0)
            } else {
                (r - self.lanes, 1)
            };
            group * 2 * self.lanes + 2 * i + half
        } else {
            j
        }
    }
}

/// Columns of `k` per block of [`pack`].
const PACK_PB: usize = 64;

/// Packs row-major `w[n, k]` into panels (dtype preserved; exact), panels
/// in parallel on the current rayon pool (model load).
pub fn pack<E: Element>(w: &[E], n: usize, k: usize, layout: PanelLayout) -> Vec<E> {
    assert_eq!(w.len(), n * k, "w is not [n, k]");
    assert!(layout.nr.is_multiple_of(2 * layout.lanes) || E::DTYPE != DType::BF16);
    let nr = layout.nr;
    let zero = E::from_f32(0.0);
    let mut out = crate::cpu::alloc::filled_vec(layout.packed_len(n, k), zero);
    if k == 0 {
        return out;
    }
    let slots: Vec<usize> = (0..nr).map(|j| layout.slot(E::DTYPE, j)).collect();
    out.par_chunks_mut(nr * k)
        .enumerate()
        .for_each(|(q, panel)| {
            let rows = nr.min(n - q * nr);
            // Blocks of PACK_PB columns of k: the block's `PACK_PB · nr`
            // outputs stay in L1 while every row of the panel fills them.
            for p0 in (0..k).step_by(PACK_PB) {
                let p1 = k.min(p0 + PACK_PB);
                for (j, &slot) in slots[..rows].iter().enumerate() {
                    let src = &w[(q * nr + j) * k..][p0..p1];
                    for (p, &v) in (p0..p1).zip(src) {
                        panel[p * nr + slot] = v;
                    }
                }
            }
        });
    out
}

/// Unpacks panels back to row-major `[n, k]`, widened to f32.
pub fn unpack_f32<E: Element>(packed: &[E], n: usize, k: usize, layout: PanelLayout) -> Vec<f32> {
    assert_eq!(packed.len(), layout.packed_len(n, k), "not a packed [n, k]");
    let mut out = vec![0.0f32; n * k];
    if k > 0 {
        for (row, o) in out.chunks_exact_mut(k).enumerate() {
            unpack_row(packed, k, row, layout, o);
        }
    }
    out
}

/// Unpacks row `row` of packed `[n, k]` into `out` (`k` values, widened to f32).
pub fn unpack_row<E: Element>(
    packed: &[E],
    k: usize,
    row: usize,
    layout: PanelLayout,
    out: &mut [f32],
) {
    let nr = layout.nr;
    let (q, j) = (row / nr, row % nr);
    let slot = layout.slot(E::DTYPE, j);
    let panel = &packed[q * nr * k..(q + 1) * nr * k];
    for (p, o) in out[..k].iter_mut().enumerate() {
        *o = panel[p * nr + slot].to_f32();
    }
}
