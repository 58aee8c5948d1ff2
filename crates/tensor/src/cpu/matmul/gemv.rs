//! GEMV body (m = 1, decode) over weight panels: memory-bound, so each
//! panel is streamed once as one contiguous read; the `NRV` output vectors
//! of a panel stay in registers (two sets, alternating `p`, to hide FMA
//! latency) and need no horizontal reduction. `kernels/matmul.md`. Its
//! few-rows form ([`GemvRows`], batched decode) reuses each panel from
//! cache for every pair of rows, with each row's arithmetic unchanged.

use super::Cols;
use super::gemm::{MAX_NRV, load_row};
use crate::cpu::dispatch::SimdOp;
use crate::cpu::simd::Simd;
use crate::dtype::Element;

/// One GEMV call: `y[j] = Σ_p x[p] · w[j, p] (· scale[j]) (+ bias[j])` for
/// the `y.len()` rows packed in `w`.
pub(super) struct Gemv<'a, E> {
    pub x: &'a [f32],     // [k]
    pub w: &'a [E],       // panels of [n, k]
    pub cols: Cols<'a>,   // scale, bias: [n]
    pub y: &'a mut [f32], // [n]
}

impl<E: Element> SimdOp for Gemv<'_, E> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        gemv(s, self)
    }
}

/// A few rows of `x` at once (decode steps of several sequences): `y[i, j]
/// = Σ_p x[i, p] · w[j, p] …` for `i < m`, `y` with row stride `ldy`. Each
/// panel is read from memory once and reused from cache for every pair of
/// rows, and each row's sums run in exactly [`Gemv`]'s order: a row's
/// result is bit-identical to a GEMV of that row alone.
pub(super) struct GemvRows<'a, E> {
    pub x: &'a [f32], // [m, k]
    pub m: usize,
    pub w: &'a [E],     // panels of [n, k]
    pub cols: Cols<'a>, // scale, bias: [n]
    pub y: &'a mut [f32],
    pub ldy: usize,
    pub n: usize,
    pub k: usize,
}

impl<E: Element> SimdOp for GemvRows<'_, E> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        let GemvRows {
            x,
            m,
            w,
            cols,
            y,
            ldy,
            n,
            k,
        } = self;
        assert_eq!(x.len(), m * k, "x is not [m, k]");
        assert!(m == 0 || y.len() >= (m - 1) * ldy + n, "y is not [m, ldy]");
        assert!(ldy >= n);
        panels(s, (x, m, k), w, cols, n, |i, j, v| y[i * ldy + j] = v);
    }
}

/// The GEMV body on tier `S`: panels of `S::NRV` vectors.
#[inline(always)]
fn gemv<S: Simd, E: Element>(s: S, g: Gemv<'_, E>) {
    let Gemv { x, w, cols, y } = g;
    let n = y.len();
    panels(s, (x, 1, x.len()), w, cols, n, |_, j, v| y[j] = v);
}

/// Streams the panels of `w` (`n` rows of `k`) against the `m` rows of `x`
/// (`[m, k]`), two rows per pass over a panel; `put(i, j, y_ij)` receives
/// each result after the epilogue.
#[inline(always)]
fn panels<S: Simd, E: Element>(
    s: S,
    (x, m, k): (&[f32], usize, usize),
    w: &[E],
    cols: Cols<'_>,
    n: usize,
    mut put: impl FnMut(usize, usize, f32),
) {
    let (nrv, l) = (S::NRV, S::LANES);
    let nr = nrv * l;
    assert_eq!(
        w.len(),
        n.div_ceil(nr) * nr * k,
        "w is not the panels of [n, k]"
    );
    let Cols { scale, bias } = cols;
    if let Some(b) = bias {
        assert_eq!(b.len(), n);
    }
    if let Some(sc) = scale {
        assert_eq!(sc.len(), n);
    }
    let mut out = [[0.0f32; 64]; 2];
    assert!(nr <= out[0].len());
    for q in 0..n.div_ceil(nr) {
        let panel = &w[q * nr * k..(q + 1) * nr * k];
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(2);
            let x0 = &x[i * k..(i + 1) * k];
            if rows == 2 {
                let x1 = &x[(i + 1) * k..(i + 2) * k];
                panel_dot::<S, E, 2>(s, panel, [x0, x1], &mut out);
            } else {
                panel_dot::<S, E, 1>(s, panel, [x0], &mut out);
            }
            let j0 = q * nr;
            for (r, o) in out.iter().enumerate().take(rows) {
                for j in 0..nr.min(n - j0) {
                    let acc = if let Some(sc) = scale {
                        o[j] * sc[j0 + j]
                    } else {
                        o[j]
                    };
                    put(
                        i + r,
                        j0 + j,
                        acc + if let Some(b) = bias { b[j0 + j] } else { 0.0 },
                    );
                }
            }
            i += rows;
        }
    }
}

/// One panel (`nr` rows of `k`, as `[k, nr]`) against `R` rows of `x`:
/// `out[r][j] = Σ_p x_r[p] · panel[p, j]`, summed as two interleaved
/// accumulator sets (even and odd `p`, to hide FMA latency) added at the
/// end. The order per row does not depend on `R`.
#[inline(always)]
fn panel_dot<S: Simd, E: Element, const R: usize>(
    s: S,
    panel: &[E],
    xs: [&[f32]; R],
    out: &mut [[f32; 64]; 2],
) {
    let (nrv, l) = (S::NRV, S::LANES);
    let nr = nrv * l;
    let k = xs[0].len();
    assert!(panel.len() == nr * k && xs.iter().all(|x| x.len() == k) && R <= 2);
    let pp = panel.as_ptr();
    let mut a0 = [[s.zero(); MAX_NRV]; R];
    let mut a1 = [[s.zero(); MAX_NRV]; R];
    let mut p = 0;
    while p + 2 <= k {
        // SAFETY: p + 1 < k: rows p and p + 1 of the panel (nr each) are in bounds.
        let r0 = unsafe { load_row::<S, E>(s, pp.wrapping_add(p * nr)) };
        // SAFETY: as above.
        let r1 = unsafe { load_row::<S, E>(s, pp.wrapping_add((p + 1) * nr)) };
        for r in 0..R {
            // SAFETY: p + 1 < k = xs[r].len().
            let x0 = s.splat(unsafe { xs[r].as_ptr().wrapping_add(p).read() });
            // SAFETY: as above.
            let x1 = s.splat(unsafe { xs[r].as_ptr().wrapping_add(p + 1).read() });
            for v in 0..nrv {
                a0[r][v] = s.fma(x0, r0[v], a0[r][v]);
                a1[r][v] = s.fma(x1, r1[v], a1[r][v]);
            }
        }
        p += 2;
    }
    if p < k {
        // SAFETY: p < k.
        let r0 = unsafe { load_row::<S, E>(s, pp.wrapping_add(p * nr)) };
        for r in 0..R {
            let x0 = s.splat(xs[r][p]);
            for v in 0..nrv {
                a0[r][v] = s.fma(x0, r0[v], a0[r][v]);
            }
        }
    }
    for r in 0..R {
        for v in 0..nrv {
            // SAFETY: v·l + l ≤ nr ≤ 64.
            unsafe {
                s.store(
                    out[r].as_mut_ptr().wrapping_add(v * l),
                    s.add(a0[r][v], a1[r][v]),
                )
            };
        }
    }
}
