//! GEMV body (m = 1, decode): memory-bound, so it streams each weight row
//! exactly once, four rows at a time to reuse every load of `x`, with two
//! accumulators per row to hide FMA latency. `kernels/matmul.md`.

use crate::cpu::simd::{Simd, load_elem};
use crate::dtype::Element;

/// `y[j] = Σ_p x[p] · w[j, p] (+ bias[j])` for the `y.len()` rows of `w`.
#[inline(always)]
pub(super) fn gemv<S: Simd, E: Element>(
    s: S,
    x: &[f32],            // [k]
    w: &[E],              // [n, k]
    bias: Option<&[f32]>, // [n]
    y: &mut [f32],        // [n]
) {
    let k = x.len();
    let n = y.len();
    assert_eq!(w.len(), n * k);
    if let Some(b) = bias {
        assert_eq!(b.len(), n);
    }
    let l = S::LANES;
    let k2 = k / (2 * l) * (2 * l);
    let k1 = k / l * l;
    let xp = x.as_ptr();

    let mut j = 0;
    while j + 4 <= n {
        let rows = [0, 1, 2, 3].map(|r| w[(j + r) * k..].as_ptr());
        let mut a = [s.zero(); 4];
        let mut b = [s.zero(); 4];
        let mut p = 0;
        while p < k2 {
            // SAFETY: p + 2l <= k, so x[p..p+2l] is in bounds.
            let x0 = unsafe { s.load(xp.wrapping_add(p)) };
            // SAFETY: as above.
            let x1 = unsafe { s.load(xp.wrapping_add(p + l)) };
            for r in 0..4 {
                // SAFETY: rows[r] points at a row of k elements and p + 2l <= k.
                let w0 = unsafe { load_elem(s, rows[r].wrapping_add(p)) };
                // SAFETY: as above.
                let w1 = unsafe { load_elem(s, rows[r].wrapping_add(p + l)) };
                a[r] = s.fma(x0, w0, a[r]);
                b[r] = s.fma(x1, w1, b[r]);
            }
            p += 2 * l;
        }
        while p < k1 {
            // SAFETY: p + l <= k.
            let x0 = unsafe { s.load(xp.wrapping_add(p)) };
            for r in 0..4 {
                // SAFETY: p + l <= k within row r.
                let w0 = unsafe { load_elem(s, rows[r].wrapping_add(p)) };
                a[r] = s.fma(x0, w0, a[r]);
            }
            p += l;
        }
        for r in 0..4 {
            let row = &w[(j + r) * k..(j + r + 1) * k];
            let mut sum = s.reduce_sum(s.add(a[r], b[r]));
            for q in k1..k {
                sum += x[q] * row[q].to_f32();
            }
            y[j + r] = sum + if let Some(bv) = bias { bv[j + r] } else { 0.0 };
        }
        j += 4;
    }
    while j < n {
        let row = &w[j * k..(j + 1) * k];
        let mut a = s.zero();
        let mut p = 0;
        while p < k1 {
            // SAFETY: p + l <= k.
            let x0 = unsafe { s.load(xp.wrapping_add(p)) };
            // SAFETY: p + l <= k within the row.
            let w0 = unsafe { load_elem(s, row.as_ptr().wrapping_add(p)) };
            a = s.fma(x0, w0, a);
            p += l;
        }
        let mut sum = s.reduce_sum(a);
        for q in k1..k {
            sum += x[q] * row[q].to_f32();
        }
        y[j] = sum + if let Some(bv) = bias { bv[j] } else { 0.0 };
        j += 1;
    }
}
