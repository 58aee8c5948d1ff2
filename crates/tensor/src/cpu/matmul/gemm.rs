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
use crate::cpu::dispatch::SimdOp;
use crate::cpu::simd::{Simd, load_elem};
use crate::dtype::Element;

/// The largest register tile of any tier (`Simd::MR` × `Simd::NRV`): the
/// accumulator arrays are this size, and a tier's loops touch only its own
/// `MR × NRV` corner (constant bounds: unrolled, the rest is dead code).
pub(super) const MAX_MR: usize = 6;
pub(super) const MAX_NRV: usize = 4;

/// One row of a register tile: `NRV` vectors (of [`MAX_NRV`]).
pub(super) type Row<S> = [<S as Simd>::V; MAX_NRV];
/// A register tile of accumulators: `MR` rows (of [`MAX_MR`]).
pub(super) type Acc<S> = [Row<S>; MAX_MR];

thread_local! {
    /// The packing buffer of `x`, grown on demand and reused by every later
    /// call on this thread (rayon workers are long-lived), so GEMM does not
    /// allocate in steady state.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Loads the `S::NRV` vectors of one panel row (`NRV · LANES` columns).
///
/// # Safety
/// - `p` must be valid for reads of `S::NRV · S::LANES` elements of `E`.
/// - For bf16, `S::NRV` must be even (the panel is pair-interleaved).
#[inline(always)]
pub(super) unsafe fn load_row<S: Simd, E: Element>(s: S, p: *const E) -> Row<S> {
    const { assert!(S::NRV <= MAX_NRV && S::NRV.is_multiple_of(2)) };
    let l = S::LANES;
    let mut v = [s.zero(); MAX_NRV];
    if E::DTYPE == DType::BF16 {
        let mut i = 0;
        while i + 1 < S::NRV {
            // SAFETY: columns i·l..i·l + 2l lie inside the NRV·l the caller guarantees.
            let (lo, hi) = unsafe { s.load_bf16_pairs(p.cast::<u16>().wrapping_add(i * l)) };
            v[i] = lo;
            v[i + 1] = hi;
            i += 2;
        }
    } else {
        for (i, vi) in v.iter_mut().enumerate().take(S::NRV) {
            // SAFETY: columns i·l..i·l + l lie inside the NRV·l the caller guarantees.
            *vi = unsafe { load_elem(s, p.wrapping_add(i * l)) };
        }
    }
    v
}

/// One GEMM call: `y[i, j] = Σ_p x[i, p] · w[j, p] (· scale[j]) (+ bias[j])`.
///
/// `x`: `[m, k]`; `w`: the panels of `[n, k]` (`NR = S::NRV · LANES`);
/// `cols`: scale and bias, `[n]`; `y`: `[m, ldy]` with `ldy ≥ n` (columns
/// `n..ldy` untouched).
pub(super) struct Gemm<'a, E> {
    pub x: &'a [f32],
    pub w: &'a [E],
    pub cols: Cols<'a>,
    pub y: &'a mut [f32],
    pub ldy: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
}

impl<E: Element> SimdOp for Gemm<'_, E> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        gemm(s, self)
    }
}

/// The GEMM body on tier `S`, with its register tile `S::MR × S::NRV` and
/// blocking `S::KC`, `S::MC`.
#[inline(always)]
fn gemm<S: Simd, E: Element>(s: S, g: Gemm<'_, E>) {
    const { assert!(S::MR <= MAX_MR && S::NRV <= MAX_NRV) };
    let Gemm {
        x,
        w,
        cols,
        y,
        ldy,
        m,
        n,
        k,
    } = g;
    let mr = S::MR;
    let nr = S::NRV * S::LANES;
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
    let kc_max = S::KC.min(k);
    let mc_max = S::MC.min(m.next_multiple_of(mr));
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
            pack_x(mr, x, k, (ic, mc), (pc, kc), &mut apack);
            for q in 0..n.div_ceil(nr) {
                let col0 = q * nr;
                let nr_eff = nr.min(n - col0);
                let bp = &w[q * nr * k + pc * nr..][..kc * nr];
                let bias = bias.map(|b| &b[col0..col0 + nr_eff]);
                let scale = scale.map(|sc| &sc[col0..col0 + nr_eff]);
                for ir in (0..mc).step_by(mr) {
                    let ap = &apack[ir * kc..(ir + mr) * kc];
                    let yoff = (ic + ir) * ldy + col0;
                    let tile = Tile {
                        ldy,
                        mr: mr.min(mc - ir),
                        nr: nr_eff,
                        first,
                        scale,
                        bias,
                    };
                    micro(s, kc, ap, bp, &mut y[yoff..], tile);
                }
            }
        }
    }
    SCRATCH.set(apack);
}

/// Packs `x[ic..ic+mc, pc..pc+kc]` into `⌈mc/mr⌉` panels of `kc × mr`,
/// zero-padding the last panel (`mr`: the tier's tile rows, a constant
/// after inlining).
#[inline(always)]
fn pack_x(
    mr: usize,
    x: &[f32],
    k: usize,
    (ic, mc): (usize, usize),
    (pc, kc): (usize, usize),
    out: &mut [f32],
) {
    for (panel, i0) in (0..mc).step_by(mr).enumerate() {
        let dst = &mut out[panel * kc * mr..(panel + 1) * kc * mr];
        let rows = mr.min(mc - i0);
        assert!(dst.len() >= kc * mr);
        let dp = dst.as_mut_ptr();
        for i in 0..rows {
            let src = &x[(ic + i0 + i) * k + pc..][..kc];
            for (p, v) in src.iter().enumerate() {
                // SAFETY: p < kc and i < mr, so p·mr + i < kc·mr ≤ dst.len().
                unsafe { dp.wrapping_add(p * mr + i).write(*v) };
            }
        }
        for i in rows..mr {
            for p in 0..kc {
                dst[p * mr + i] = 0.0;
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

/// The register-blocked microkernel: `S::MR × S::NRV` vector accumulators.
#[inline(always)]
fn micro<S: Simd, E: Element>(
    s: S,
    kc: usize,
    a: &[f32], // [kc, MR] packed x panel
    b: &[E],   // [kc, NR] slice of a weight panel
    y: &mut [f32],
    t: Tile<'_>,
) {
    let (mr, nrv, l) = (S::MR, S::NRV, S::LANES);
    let nr = nrv * l;
    assert!(a.len() >= kc * mr && b.len() >= kc * nr);
    let ap = a.as_ptr();
    let bp = b.as_ptr();
    let mut acc: Acc<S> = [[s.zero(); MAX_NRV]; MAX_MR];
    for p in 0..kc {
        // SAFETY: p < kc, so the row's nr elements lie inside b[..kc·nr].
        let bv = unsafe { load_row::<S, E>(s, bp.wrapping_add(p * nr)) };
        for i in 0..mr {
            // SAFETY: p < kc and i < mr, inside a[..kc·mr].
            let xi = unsafe { ap.wrapping_add(p * mr + i).read() };
            let av = s.splat(xi);
            for v in 0..nrv {
                acc[i][v] = s.fma(av, bv[v], acc[i][v]);
            }
        }
    }

    store_tile(s, acc, (mr, nrv), y, t);
}

/// Writes the `mr × nrv` corner of a register tile of accumulators (the
/// kernel's tile shape, constants after inlining) into `y` at `t`: times
/// the column scales (int8), plus the bias (first `kc` slice) or the
/// partial sums already in `y` (later slices).
#[inline(always)]
pub(super) fn store_tile<S: Simd>(
    s: S,
    mut acc: Acc<S>,
    (mr, nrv): (usize, usize),
    y: &mut [f32],
    t: Tile<'_>,
) {
    assert!(mr <= MAX_MR && nrv <= MAX_NRV);
    let l = S::LANES;
    let nr = nrv * l;
    if let Some(sc) = t.scale {
        assert_eq!(sc.len(), t.nr);
    }
    if let Some(b) = t.bias {
        assert_eq!(b.len(), t.nr);
    }
    if t.mr == mr && t.nr == nr {
        assert!(y.len() >= (mr - 1) * t.ldy + nr);
        if let Some(sc) = t.scale {
            for v in 0..nrv {
                // SAFETY: scale has t.nr = nr entries.
                let sv = unsafe { s.load(sc.as_ptr().wrapping_add(v * l)) };
                for row in acc.iter_mut().take(mr) {
                    row[v] = s.mul(row[v], sv);
                }
            }
        }
        let yp = y.as_mut_ptr();
        for i in 0..mr {
            for v in 0..nrv {
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
        let mut tmp = [[0.0f32; 64]; MAX_MR];
        assert!(nr <= 64);
        for i in 0..mr {
            for v in 0..nrv {
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
