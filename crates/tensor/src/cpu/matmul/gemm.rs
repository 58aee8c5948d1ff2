//! GEMM body (m ≥ 2, prefill): BLIS-style blocking with a register-blocked
//! `MR × NR` microkernel (`NR = NRV · LANES`). The weights are already in
//! panels (`panels.rs`, prepacked once at load), so the microkernel reads
//! them directly, widening bf16 with a shift and a mask; only `x` is packed
//! per call. `kernels/matmul.md`.
//!
//! Loop nest (outermost first): `pc` over `kc`-deep slices → `ic` over
//! `mc`-row blocks of `x` (packed into `kc × MR` panels, kept in L2) → `jr`
//! over weight panels (one `kc × NR` slice stays in L1) → `ir` over the
//! `x` panels.

use std::cell::RefCell;

use super::Cols;
use crate::DType;
use crate::cpu::simd::{Simd, load_elem};
use crate::dtype::Element;

/// Cache blocking of one ISA's GEMM (element counts).
#[derive(Clone, Copy, Debug)]
pub struct Blocking {
    pub kc: usize,
    pub mc: usize,
}

thread_local! {
    /// The packing buffer of `x`, grown on demand and reused by every later
    /// call on this thread (rayon workers are long-lived), so GEMM does not
    /// allocate in steady state.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Loads the `NRV` vectors of one panel row (`NRV · LANES` columns).
///
/// # Safety
/// - `p` must be valid for reads of `NRV · S::LANES` elements of `E`.
/// - For bf16, `NRV` must be even (the panel is pair-interleaved).
#[inline(always)]
pub(super) unsafe fn load_row<S: Simd, E: Element, const NRV: usize>(
    s: S,
    p: *const E,
) -> [S::V; NRV] {
    let l = S::LANES;
    let mut v = [s.zero(); NRV];
    if E::DTYPE == DType::BF16 {
        let mut i = 0;
        while i + 1 < NRV {
            // SAFETY: columns i·l..i·l + 2l lie inside the NRV·l the caller guarantees.
            let (lo, hi) = unsafe { s.load_bf16_pairs(p.cast::<u16>().wrapping_add(i * l)) };
            v[i] = lo;
            v[i + 1] = hi;
            i += 2;
        }
    } else {
        for (i, vi) in v.iter_mut().enumerate() {
            // SAFETY: columns i·l..i·l + l lie inside the NRV·l the caller guarantees.
            *vi = unsafe { load_elem(s, p.wrapping_add(i * l)) };
        }
    }
    v
}

/// `y[i, j] = Σ_p x[i, p] · w[j, p] (· scale[j]) (+ bias[j])` for one chunk.
///
/// `x`: `[m, k]`; `w`: the panels of `[n, k]` (`NR = NRV · LANES`);
/// `cols`: scale and bias, `[n]`; `y`: `[m, ldy]` with `ldy ≥ n` (columns
/// `n..ldy` untouched).
#[inline(always)]
pub(super) fn gemm<S: Simd, E: Element, const MR: usize, const NRV: usize>(
    s: S,
    blk: Blocking,
    x: &[f32],
    w: &[E],
    cols: Cols<'_>,
    y: &mut [f32],
    ldy: usize,
    m: usize,
    n: usize,
    k: usize,
) {
    let nr = NRV * S::LANES;
    let Cols { scale, bias } = cols;
    if let Some(sc) = scale {
        assert_eq!(sc.len(), n);
    }
    assert_eq!(x.len(), m * k);
    assert_eq!(
        w.len(),
        n.div_ceil(nr) * nr * k,
        "w is not the panels of [n, k]"
    );
    if let Some(b) = bias {
        assert_eq!(b.len(), n);
    }
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldy >= n && y.len() >= (m - 1) * ldy + n);
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                y[i * ldy + j] = if let Some(b) = bias { b[j] } else { 0.0 };
            }
        }
        return;
    }
    let kc_max = blk.kc.min(k);
    let mc_max = blk.mc.min(m.next_multiple_of(MR));
    // Borrow the buffer out of the thread-local for the duration: the loop
    // nest must not sit in a closure, which would not inherit the caller's
    // `#[target_feature]`s and would turn every intrinsic into a call.
    let mut apack = SCRATCH.take();
    if apack.len() < mc_max * kc_max {
        apack.resize(mc_max * kc_max, 0.0);
    }
    for pc in (0..k).step_by(kc_max) {
        let kc = kc_max.min(k - pc);
        let first = pc == 0;
        for ic in (0..m).step_by(mc_max) {
            let mc = mc_max.min(m - ic);
            pack_x::<MR>(x, k, ic, mc, pc, kc, &mut apack);
            for q in 0..n.div_ceil(nr) {
                let col0 = q * nr;
                let nr_eff = nr.min(n - col0);
                let bp = &w[q * nr * k + pc * nr..][..kc * nr];
                let bias = bias.map(|b| &b[col0..col0 + nr_eff]);
                let scale = scale.map(|sc| &sc[col0..col0 + nr_eff]);
                for ir in (0..mc).step_by(MR) {
                    let ap = &apack[ir * kc..(ir + MR) * kc];
                    let yoff = (ic + ir) * ldy + col0;
                    let tile = Tile {
                        ldy,
                        mr: MR.min(mc - ir),
                        nr: nr_eff,
                        first,
                        scale,
                        bias,
                    };
                    micro::<S, E, MR, NRV>(s, kc, ap, bp, &mut y[yoff..], tile);
                }
            }
        }
    }
    SCRATCH.set(apack);
}

/// Packs `x[ic..ic+mc, pc..pc+kc]` into `⌈mc/MR⌉` panels of `kc × MR`,
/// zero-padding the last panel.
#[inline(always)]
fn pack_x<const MR: usize>(
    x: &[f32],
    k: usize,
    ic: usize,
    mc: usize,
    pc: usize,
    kc: usize,
    out: &mut [f32],
) {
    for (panel, i0) in (0..mc).step_by(MR).enumerate() {
        let dst = &mut out[panel * kc * MR..(panel + 1) * kc * MR];
        let rows = MR.min(mc - i0);
        assert!(dst.len() >= kc * MR);
        let dp = dst.as_mut_ptr();
        for i in 0..rows {
            let src = &x[(ic + i0 + i) * k + pc..][..kc];
            for (p, v) in src.iter().enumerate() {
                // SAFETY: p < kc and i < MR, so p·MR + i < kc·MR ≤ dst.len().
                unsafe { dp.wrapping_add(p * MR + i).write(*v) };
            }
        }
        for i in rows..MR {
            for p in 0..kc {
                dst[p * MR + i] = 0.0;
            }
        }
    }
}

/// Where and how a microkernel writes its `MR × NR` tile.
pub(super) struct Tile<'a> {
    pub ldy: usize,
    /// Valid rows and columns of the tile (≤ MR, ≤ NR at the edges).
    pub mr: usize,
    pub nr: usize,
    /// First `kc` slice: overwrite `y` (adding the bias) instead of accumulating.
    pub first: bool,
    /// Per-column multipliers of the accumulators (int8 weights), `[nr]`.
    pub scale: Option<&'a [f32]>,
    pub bias: Option<&'a [f32]>,
}

/// The register-blocked microkernel: `MR × NRV` vector accumulators.
#[inline(always)]
fn micro<S: Simd, E: Element, const MR: usize, const NRV: usize>(
    s: S,
    kc: usize,
    a: &[f32], // [kc, MR] packed x panel
    b: &[E],   // [kc, NR] slice of a weight panel
    y: &mut [f32],
    t: Tile<'_>,
) {
    let l = S::LANES;
    let nr = NRV * l;
    assert!(a.len() >= kc * MR && b.len() >= kc * nr);
    let ap = a.as_ptr();
    let bp = b.as_ptr();
    let mut acc = [[s.zero(); NRV]; MR];
    for p in 0..kc {
        // SAFETY: p < kc, so the row's nr elements lie inside b[..kc·nr].
        let bv = unsafe { load_row::<S, E, NRV>(s, bp.wrapping_add(p * nr)) };
        for i in 0..MR {
            // SAFETY: p < kc and i < MR, inside a[..kc·MR].
            let xi = unsafe { ap.wrapping_add(p * MR + i).read() };
            let av = s.splat(xi);
            for v in 0..NRV {
                acc[i][v] = s.fma(av, bv[v], acc[i][v]);
            }
        }
    }

    store_tile::<S, MR, NRV>(s, acc, y, t);
}

/// Writes one `MR × NRV` register tile of accumulators into `y` at `t`:
/// times the column scales (int8), plus the bias (first `kc` slice) or
/// the partial sums already in `y` (later slices).
#[inline(always)]
pub(super) fn store_tile<S: Simd, const MR: usize, const NRV: usize>(
    s: S,
    mut acc: [[S::V; NRV]; MR],
    y: &mut [f32],
    t: Tile<'_>,
) {
    let l = S::LANES;
    let nr = NRV * l;
    if let Some(sc) = t.scale {
        assert_eq!(sc.len(), t.nr);
    }
    if let Some(b) = t.bias {
        assert_eq!(b.len(), t.nr);
    }
    if t.mr == MR && t.nr == nr {
        assert!(y.len() >= (MR - 1) * t.ldy + nr);
        if let Some(sc) = t.scale {
            for v in 0..NRV {
                // SAFETY: scale has t.nr = nr entries.
                let sv = unsafe { s.load(sc.as_ptr().wrapping_add(v * l)) };
                for row in acc.iter_mut() {
                    row[v] = s.mul(row[v], sv);
                }
            }
        }
        let yp = y.as_mut_ptr();
        for i in 0..MR {
            for v in 0..NRV {
                let dst = yp.wrapping_add(i * t.ldy + v * l);
                let mut r = acc[i][v];
                if !t.first {
                    // SAFETY: the assert above bounds row i, columns v·l..v·l+l.
                    r = s.add(r, unsafe { s.load(dst) });
                } else if let Some(bias) = t.bias {
                    // SAFETY: bias has t.nr = nr entries.
                    r = s.add(r, unsafe { s.load(bias.as_ptr().wrapping_add(v * l)) });
                }
                // SAFETY: as for the load above.
                unsafe { s.store(dst, r) };
            }
        }
    } else {
        // Edge tile: spill the accumulators and copy the valid part.
        let mut tmp = [[0.0f32; 64]; MR];
        assert!(nr <= 64);
        for i in 0..MR {
            for v in 0..NRV {
                // SAFETY: v·l + l ≤ nr ≤ 64.
                unsafe { s.store(tmp[i].as_mut_ptr().wrapping_add(v * l), acc[i][v]) };
            }
        }
        for i in 0..t.mr {
            let row = &mut y[i * t.ldy..i * t.ldy + t.nr];
            for (j, out) in row.iter_mut().enumerate() {
                let base = match (t.first, t.bias) {
                    (true, Some(b)) => b[j],
                    (true, None) => 0.0,
                    (false, _) => *out,
                };
                let acc = if let Some(sc) = t.scale {
                    tmp[i][j] * sc[j]
                } else {
                    tmp[i][j]
                };
                *out = base + acc;
            }
        }
    }
}
