//! The generic short-conv body (`kernels/short_conv.md`), instantiated per
//! ISA by the wrappers in `mod.rs`.
//!
//! `seq = state ++ bx` is never built: row `j` of it is read on the fly,
//! from `state` (`j < l − 1`) or as `B ⊙ X` of `bcx` row `j − (l − 1)`, so
//! the `B` gate, the taps and the `C` gate are one pass over the channels
//! and nothing is allocated. `bx` is recomputed once per tap (`l` f32
//! products per output instead of one), which is cheaper than a buffer.
//! The state is rewritten after every output has been computed, from the
//! same products, so prefill, chunked prefill and token-by-token decode give
//! bit-identical results.
//!
//! Weights are `[d, l]` (taps of a channel contiguous); vectorising over
//! channels needs them tap-major, so each block of [`CB`] channels is
//! transposed into a stack buffer, once per tile of [`RT`] rows.

use crate::cpu::simd::Simd;

/// Channels per transposed weight block (a multiple of every `LANES`).
const CB: usize = 64;
/// Capacity of the stack weight block, in f32: `CB` channels up to `l = 8`;
/// longer kernels shrink the block, and past `WCAP / LANES` taps every
/// channel takes the scalar path.
const WCAP: usize = 512;
/// Output rows per tile; the weight block is re-transposed once per tile.
const RT: usize = 32;

/// `bcx`: `[t, 3d]` (B | C | X); `w`: `[d, l]`; `state`: `[l − 1, d]`
/// (replaced by the last `l − 1` rows of `state ++ bx`); `out`: `[t, d]`.
/// The safe entry has checked every length.
#[inline(always)]
pub(super) fn short_conv<S: Simd>(
    s: S,
    bcx: &[f32],
    w: &[f32],
    state: &mut [f32],
    out: &mut [f32],
    d: usize,
    l: usize,
) {
    let lanes = S::LANES;
    let t = out.len() / d;
    let hist = l - 1;
    debug_assert!(bcx.len() == 3 * d * t && w.len() == d * l && state.len() == hist * d);
    // Channels 0..dv go through vectors in blocks of `cb`; dv..d are scalar.
    let cb = (WCAP / l).min(CB) / lanes * lanes;
    let dv = if cb == 0 { 0 } else { d / lanes * lanes };
    let bp = bcx.as_ptr();
    let mut wt = [0.0f32; WCAP];
    for r0 in (0..t).step_by(RT) {
        let r1 = (r0 + RT).min(t);
        // Re-derived per tile: the scalar tail below writes through `out`.
        let (sp, op) = (state.as_ptr(), out.as_mut_ptr());
        let mut c0 = 0;
        while c0 < dv {
            let nc = cb.min(dv - c0);
            // wt[i·nc + c] = w[c0 + c, i]: tap-major, nc ≤ cb, nc·l ≤ WCAP.
            let wtp = wt.as_mut_ptr();
            for i in 0..l {
                let mut c = 0;
                while c < nc {
                    // SAFETY: w[(c0 + c + u)·l + i] for u < LANES: channel
                    // c0 + c + u < dv ≤ d and i < l; l·LANES ≤ WCAP fits i32.
                    let g = unsafe { s.load_strided(w.as_ptr().wrapping_add((c0 + c) * l + i), l) };
                    // SAFETY: i·nc + c + LANES ≤ l·nc ≤ WCAP.
                    unsafe { s.store(wtp.wrapping_add(i * nc + c), g) };
                    c += lanes;
                }
            }
            let wtp = wt.as_ptr();
            for r in r0..r1 {
                // Taps 0..ns read state rows r + i; taps ns..l read bx rows r + i − hist.
                let ns = hist.saturating_sub(r);
                let mut c = 0;
                while c < nc {
                    let ch = c0 + c;
                    let mut acc = s.zero();
                    for i in 0..ns {
                        // SAFETY: c + LANES ≤ nc and i < l keep the read
                        // inside wt[..l·nc], l·nc ≤ WCAP.
                        let wv = unsafe { s.load(wtp.wrapping_add(i * nc + c)) };
                        // SAFETY: i < ns ⇒ r + i < hist, so state row r + i
                        // exists, and ch + LANES ≤ dv ≤ d.
                        let x = unsafe { s.load(sp.wrapping_add((r + i) * d + ch)) };
                        acc = s.fma(wv, x, acc);
                    }
                    for i in ns..l {
                        // r + i − hist ≤ r < t: a bcx row; B at +0, X at +2d.
                        let row = bp.wrapping_add((r + i - hist) * 3 * d + ch);
                        // SAFETY: as the wt read above.
                        let wv = unsafe { s.load(wtp.wrapping_add(i * nc + c)) };
                        // SAFETY: the B chunk of a bcx row holds d ≥ ch + LANES.
                        let b = unsafe { s.load(row) };
                        // SAFETY: the X chunk of a bcx row holds d ≥ ch + LANES.
                        let x = unsafe { s.load(row.wrapping_add(2 * d)) };
                        acc = s.fma(wv, s.mul(b, x), acc);
                    }
                    // SAFETY: r < t; the C chunk of bcx row r holds d ≥ ch + LANES.
                    let cg = unsafe { s.load(bp.wrapping_add(r * 3 * d + d + ch)) };
                    // SAFETY: out row r < t holds d ≥ ch + LANES.
                    unsafe { s.store(op.wrapping_add(r * d + ch), s.mul(cg, acc)) };
                    c += lanes;
                }
            }
            c0 += nc;
        }
        // The last d − dv channels (and all of them when l is too long for
        // the weight block): scalar, weights read in place.
        for r in r0..r1 {
            let ns = hist.saturating_sub(r);
            for ch in dv..d {
                let mut acc = 0.0f32;
                for i in 0..ns {
                    acc += w[ch * l + i] * state[(r + i) * d + ch];
                }
                for i in ns..l {
                    let row = (r + i - hist) * 3 * d;
                    acc += w[ch * l + i] * (bcx[row + ch] * bcx[row + 2 * d + ch]);
                }
                out[r * d + ch] = bcx[r * 3 * d + d + ch] * acc;
            }
        }
    }
    // New state: the last `hist` rows of state ++ bx.
    if t < hist {
        state.copy_within(t * d.., 0);
    }
    let first = t.saturating_sub(hist); // first bcx row that lands in the state
    let dst0 = hist - (t - first); // its state row
    for (j, r) in (first..t).enumerate() {
        let row = &bcx[r * 3 * d..(r + 1) * 3 * d];
        let dst = &mut state[(dst0 + j) * d..(dst0 + j + 1) * d];
        bx_row(s, &row[..d], &row[2 * d..], dst);
    }
}

/// `dst = b ⊙ x`: the same f32 products as the on-the-fly reads above.
#[inline(always)]
fn bx_row<S: Simd>(s: S, b: &[f32], x: &[f32], dst: &mut [f32]) {
    let lanes = S::LANES;
    let n = dst.len();
    debug_assert!(b.len() >= n && x.len() >= n);
    let nv = n / lanes * lanes;
    let (bp, xp, dp) = (b.as_ptr(), x.as_ptr(), dst.as_mut_ptr());
    let mut c = 0;
    while c < nv {
        // SAFETY: c + LANES ≤ n ≤ b.len().
        let bv = unsafe { s.load(bp.wrapping_add(c)) };
        // SAFETY: c + LANES ≤ n ≤ x.len().
        let xv = unsafe { s.load(xp.wrapping_add(c)) };
        // SAFETY: c + LANES ≤ n = dst.len().
        unsafe { s.store(dp.wrapping_add(c), s.mul(bv, xv)) };
        c += lanes;
    }
    for c in nv..n {
        dst[c] = b[c] * x[c];
    }
}
