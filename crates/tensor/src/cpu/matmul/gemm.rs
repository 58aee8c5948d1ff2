//! GEMM body (m ≥ 2, prefill): BLIS-style blocking with packed panels and a
//! register-blocked `MR × NR` microkernel (`NR = NRV · LANES`). Weights are
//! widened to f32 while packing, so one f32 microkernel serves every weight
//! dtype. `kernels/matmul.md`.
//!
//! Loop nest (outermost first): `jc` over `nc`-column blocks of `w` →
//! `pc` over `kc`-deep slices (pack `w` into `kc × NR` panels) → `ic` over
//! `mc`-row blocks of `x` (pack into `kc × MR` panels) → `jr` over panels
//! of `w` (one `kc × NR` panel stays in L1) → `ir` over panels of `x`.

use std::cell::RefCell;

use crate::cpu::simd::Simd;
use crate::dtype::Element;

/// Cache blocking of one ISA's GEMM (element counts).
#[derive(Clone, Copy, Debug)]
pub struct Blocking {
    pub kc: usize,
    pub mc: usize,
    pub nc: usize,
}

thread_local! {
    /// Packing buffers, grown on demand and reused by every later call on
    /// this thread (rayon workers are long-lived), so GEMM does not allocate
    /// in steady state.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// `y[i, j] = Σ_p x[i, p] · w[j, p] (+ bias[j])` for one chunk.
///
/// `x`: `[m, k]`; `w`: `[n, k]`; `bias`: `[n]`; `y`: `[m, ldy]` with `ldy ≥ n`
/// (columns `n..ldy` are left untouched).
#[inline(always)]
pub(super) fn gemm<S: Simd, E: Element, const MR: usize, const NRV: usize>(
    s: S,
    blk: Blocking,
    x: &[f32],
    w: &[E],
    bias: Option<&[f32]>,
    y: &mut [f32],
    ldy: usize,
    m: usize,
    n: usize,
    k: usize,
) {
    let nr = NRV * S::LANES;
    assert_eq!(x.len(), m * k);
    assert_eq!(w.len(), n * k);
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
                y[i * ldy + j] = bias.map_or(0.0, |b| b[j]);
            }
        }
        return;
    }
    let kc_max = blk.kc.min(k);
    let mc_max = blk.mc.min(m.next_multiple_of(MR));
    let nc_max = blk.nc.min(n.next_multiple_of(nr));
    // Borrow the buffers out of the thread-local for the duration: the loop
    // nest must not sit in a closure, which would not inherit the caller's
    // `#[target_feature]`s and would turn every intrinsic into a call.
    let (mut apack, mut bpack) = SCRATCH.take();
    {
        grow(&mut apack, mc_max * kc_max);
        grow(&mut bpack, nc_max * kc_max);
        for jc in (0..n).step_by(nc_max) {
            let nc = nc_max.min(n - jc);
            for pc in (0..k).step_by(kc_max) {
                let kc = kc_max.min(k - pc);
                pack_w(w, k, jc, nc, pc, kc, nr, &mut bpack);
                let first = pc == 0;
                for ic in (0..m).step_by(mc_max) {
                    let mc = mc_max.min(m - ic);
                    pack_x::<MR>(x, k, ic, mc, pc, kc, &mut apack);
                    for jr in (0..nc).step_by(nr) {
                        let nr_eff = nr.min(nc - jr);
                        let bp = &bpack[jr * kc..(jr + nr) * kc];
                        for ir in (0..mc).step_by(MR) {
                            let mr_eff = MR.min(mc - ir);
                            let ap = &apack[ir * kc..(ir + MR) * kc];
                            let row0 = ic + ir;
                            let col0 = jc + jr;
                            let yoff = row0 * ldy + col0;
                            let tile = Tile {
                                ldy,
                                mr: mr_eff,
                                nr: nr_eff,
                                first,
                                bias: bias.map(|b| &b[col0..col0 + nr_eff]),
                            };
                            micro::<S, MR, NRV>(s, kc, ap, bp, &mut y[yoff..], tile);
                        }
                    }
                }
            }
        }
    }
    SCRATCH.set((apack, bpack));
}

fn grow(v: &mut Vec<f32>, len: usize) {
    if v.len() < len {
        v.resize(len, 0.0);
    }
}

/// Packs `w[jc..jc+nc, pc..pc+kc]` into `⌈nc/NR⌉` panels of `kc × NR`
/// (column `j` of a panel is row `j` of `w`), zero-padding the last panel.
#[inline(always)]
fn pack_w<E: Element>(
    w: &[E],
    k: usize,
    jc: usize,
    nc: usize,
    pc: usize,
    kc: usize,
    nr: usize,
    out: &mut [f32],
) {
    for (panel, j0) in (0..nc).step_by(nr).enumerate() {
        let dst = &mut out[panel * kc * nr..(panel + 1) * kc * nr];
        let cols = nr.min(nc - j0);
        assert!(dst.len() >= kc * nr);
        let dp = dst.as_mut_ptr();
        for j in 0..cols {
            let src = &w[(jc + j0 + j) * k + pc..][..kc];
            for (p, v) in src.iter().enumerate() {
                // SAFETY: p < kc and j < nr, so p·nr + j < kc·nr ≤ dst.len().
                unsafe { dp.add(p * nr + j).write(v.to_f32()) };
            }
        }
        for j in cols..nr {
            for p in 0..kc {
                dst[p * nr + j] = 0.0;
            }
        }
    }
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
                unsafe { dp.add(p * MR + i).write(*v) };
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
struct Tile<'a> {
    ldy: usize,
    /// Valid rows and columns of the tile (≤ MR, ≤ NR at the edges).
    mr: usize,
    nr: usize,
    /// First `kc` slice: overwrite `y` (adding the bias) instead of accumulating.
    first: bool,
    bias: Option<&'a [f32]>,
}

/// The register-blocked microkernel: `MR × NRV` vector accumulators.
#[inline(always)]
fn micro<S: Simd, const MR: usize, const NRV: usize>(
    s: S,
    kc: usize,
    a: &[f32], // [kc, MR] packed x panel
    b: &[f32], // [kc, NR] packed w panel
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
        let mut bv = [s.zero(); NRV];
        for v in 0..NRV {
            // SAFETY: p < kc and v·l + l ≤ nr, so the read stays inside b[..kc·nr].
            bv[v] = unsafe { s.load(bp.wrapping_add(p * nr + v * l)) };
        }
        for i in 0..MR {
            // SAFETY: p < kc and i < MR, inside a[..kc·MR].
            let xi = unsafe { ap.wrapping_add(p * MR + i).read() };
            let av = s.splat(xi);
            for v in 0..NRV {
                acc[i][v] = s.fma(av, bv[v], acc[i][v]);
            }
        }
    }

    if t.mr == MR && t.nr == nr {
        assert!(y.len() >= (MR - 1) * t.ldy + nr);
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
                let base = if t.first { t.bias.map_or(0.0, |b| b[j]) } else { *out };
                *out = base + tmp[i][j];
            }
        }
    }
}
