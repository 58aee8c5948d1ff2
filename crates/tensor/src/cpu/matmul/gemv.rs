//! GEMV body (m = 1, decode) over weight panels: memory-bound, so each
//! panel is streamed once as one contiguous read; the `NRV` output vectors
//! of a panel stay in registers (two sets, alternating `p`, to hide FMA
//! latency) and need no horizontal reduction. `kernels/matmul.md`.

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

/// The GEMV body on tier `S`: panels of `S::NRV` vectors.
#[inline(always)]
fn gemv<S: Simd, E: Element>(s: S, g: Gemv<'_, E>) {
    let Gemv { x, w, cols, y } = g;
    let (nrv, l) = (S::NRV, S::LANES);
    let nr = nrv * l;
    let k = x.len();
    let n = y.len();
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
    let xp = x.as_ptr();
    for q in 0..n.div_ceil(nr) {
        let panel = w[q * nr * k..(q + 1) * nr * k].as_ptr();
        let mut a0 = [s.zero(); MAX_NRV];
        let mut a1 = [s.zero(); MAX_NRV];
        let mut p = 0;
        while p + 2 <= k {
            // SAFETY: p + 1 < k: rows p and p + 1 of the panel (nr each) and x[p], x[p+1] are in bounds.
            let r0 = unsafe { load_row::<S, E>(s, panel.wrapping_add(p * nr)) };
            // SAFETY: as above.
            let r1 = unsafe { load_row::<S, E>(s, panel.wrapping_add((p + 1) * nr)) };
            // SAFETY: p < k.
            let x0 = s.splat(unsafe { xp.wrapping_add(p).read() });
            // SAFETY: p + 1 < k.
            let x1 = s.splat(unsafe { xp.wrapping_add(p + 1).read() });
            for v in 0..nrv {
                a0[v] = s.fma(x0, r0[v], a0[v]);
                a1[v] = s.fma(x1, r1[v], a1[v]);
            }
            p += 2;
        }
        if p < k {
            // SAFETY: p < k.
            let r0 = unsafe { load_row::<S, E>(s, panel.wrapping_add(p * nr)) };
            let x0 = s.splat(x[p]);
            for v in 0..nrv {
                a0[v] = s.fma(x0, r0[v], a0[v]);
            }
        }
        let mut out = [0.0f32; 64];
        assert!(nr <= out.len());
        for v in 0..nrv {
            // SAFETY: v·l + l ≤ nr ≤ 64.
            unsafe { s.store(out.as_mut_ptr().wrapping_add(v * l), s.add(a0[v], a1[v])) };
        }
        let j0 = q * nr;
        let cols = nr.min(n - j0);
        for j in 0..cols {
            let acc = if let Some(sc) = scale {
                out[j] * sc[j0 + j]
            } else {
                out[j]
            };
            y[j0 + j] = acc + if let Some(b) = bias { b[j0 + j] } else { 0.0 };
        }
    }
}
