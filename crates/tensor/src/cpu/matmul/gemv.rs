//! GEMV body (m = 1, decode) over weight panels: memory-bound, so each
//! panel is streamed once as one contiguous read; the `NRV` output vectors
//! of a panel stay in registers (two sets, alternating `p`, to hide FMA
//! latency) and need no horizontal reduction. `kernels/matmul.md`. Its
//! few-rows form ([`GemvRows`], batched decode) reuses each panel from
//! cache for every pair of rows, with each row's arithmetic unchanged.

use super::Cols;
use super::GEMV_ROWS;
use super::gemm::{MAX_NRV, Row, load_row};
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
/// (`[m, k]`, at most [`GEMV_ROWS`]); `put(i, j, y_ij)` receives each
/// result after the epilogue. Two rows go through a panel at a time; with
/// more, the panel is taken in slices of about 8 KiB, each passed over by
/// every pair of rows while it sits in L1 (their accumulators parked in
/// between), so the weights stream from memory once and without pauses.
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
    assert!(m <= GEMV_ROWS);
    let Cols { scale, bias } = cols;
    if let Some(b) = bias {
        assert_eq!(b.len(), n);
    }
    if let Some(sc) = scale {
        assert_eq!(sc.len(), n);
    }
    // Slice depth: an even number of panel rows (the p-pairs of the sums
    // stay whole), ~8 KiB; one slice when two rows or fewer.
    let slice = if m <= 2 {
        k.max(2)
    } else {
        (8192 / (nr * size_of::<E>())).max(2) & !1
    };
    let mut out = [[0.0f32; 64]; GEMV_ROWS];
    assert!(nr <= out[0].len());
    for q in 0..n.div_ceil(nr) {
        let panel = &w[q * nr * k..(q + 1) * nr * k];
        let mut acc = [[[s.zero(); MAX_NRV]; 2]; GEMV_ROWS];
        let mut p0 = 0;
        loop {
            let p1 = (p0 + slice).min(k);
            let mut i = 0;
            while i < m {
                let x0 = &x[i * k..(i + 1) * k];
                if m - i >= 2 {
                    let x1 = &x[(i + 1) * k..(i + 2) * k];
                    let (a, b) = acc[i..].split_at_mut(1);
                    span::<S, E, 2>(s, panel, [x0, x1], (p0, p1), [&mut a[0], &mut b[0]]);
                } else {
                    span::<S, E, 1>(s, panel, [x0], (p0, p1), [&mut acc[i]]);
                }
                i += 2;
            }
            if p1 == k {
                break;
            }
            p0 = p1;
        }
        for (o, [a0, a1]) in out.iter_mut().zip(&acc).take(m) {
            for v in 0..nrv {
                // SAFETY: v·l + l ≤ nr ≤ 64.
                unsafe { s.store(o.as_mut_ptr().wrapping_add(v * l), s.add(a0[v], a1[v])) };
            }
        }
        let j0 = q * nr;
        for (i, o) in out.iter().enumerate().take(m) {
            for j in 0..nr.min(n - j0) {
                let acc = if let Some(sc) = scale {
                    o[j] * sc[j0 + j]
                } else {
                    o[j]
                };
                put(
                    i,
                    j0 + j,
                    acc + if let Some(b) = bias { b[j0 + j] } else { 0.0 },
                );
            }
        }
    }
}

/// Panel rows `p0..p1` (`p0` even; the panel is `[k, nr]`) against `R` rows
/// of `x`, into each row's two accumulator sets (`acc[r]`: even and odd
/// `p`, to hide FMA latency; added at the end by the caller). Row `r`'s
/// order of operations does not depend on `R` or on how `0..k` is sliced.
#[inline(always)]
fn span<S: Simd, E: Element, const R: usize>(
    s: S,
    panel: &[E],
    xs: [&[f32]; R],
    (p0, p1): (usize, usize),
    acc: [&mut [Row<S>; 2]; R],
) {
    let nr = S::NRV * S::LANES;
    let k = xs[0].len();
    assert!(panel.len() == nr * k && xs.iter().all(|x| x.len() == k));
    assert!(p0.is_multiple_of(2) && p0 <= p1 && p1 <= k);
    let pp = panel.as_ptr();
    let mut a0 = [[s.zero(); MAX_NRV]; R];
    let mut a1 = [[s.zero(); MAX_NRV]; R];
    for r in 0..R {
        [a0[r], a1[r]] = *acc[r];
    }
    let mut p = p0;
    while p + 2 <= p1 {
        // SAFETY: p + 1 < p1 ≤ k: rows p and p + 1 of the panel (nr each) are in bounds.
        let r0 = unsafe { load_row::<S, E>(s, pp.wrapping_add(p * nr)) };
        // SAFETY: as above.
        let r1 = unsafe { load_row::<S, E>(s, pp.wrapping_add((p + 1) * nr)) };
        for r in 0..R {
            // SAFETY: p + 1 < k = xs[r].len().
            let x0 = s.splat(unsafe { xs[r].as_ptr().wrapping_add(p).read() });
            // SAFETY: as above.
            let x1 = s.splat(unsafe { xs[r].as_ptr().wrapping_add(p + 1).read() });
            for v in 0..S::NRV {
                a0[r][v] = s.fma(x0, r0[v], a0[r][v]);
                a1[r][v] = s.fma(x1, r1[v], a1[r][v]);
            }
        }
        p += 2;
    }
    if p < p1 {
        // The odd last row of the panel (p1 = k: slices are even).
        // SAFETY: p < k.
        let r0 = unsafe { load_row::<S, E>(s, pp.wrapping_add(p * nr)) };
        for r in 0..R {
            let x0 = s.splat(xs[r][p]);
            for v in 0..S::NRV {
                a0[r][v] = s.fma(x0, r0[v], a0[r][v]);
            }
        }
    }
    for r in 0..R {
        *acc[r] = [a0[r], a1[r]];
    }
}
