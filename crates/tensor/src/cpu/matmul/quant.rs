//! Int8 weights (opt-in on the CPU backend): symmetric round-to-nearest
//! quantization with one f32 scale per weight row, `kernels/matmul.md`
//! § Int8 weights.
//!
//! For row `j` of `w[n, k]`: `scale[j] = max_p |w[j, p]| / 127` and
//! `q[j, p] = round(w[j, p] / scale[j])` in `[-127, 127]`, so each weight
//! is off by at most `scale[j] / 2`. A row of zeros gets scale 0.
//!
//! A row scale (not a per-block one) lets the matmul stay the generic body
//! of every ISA: `Σ_p x[p] · q[j, p]` accumulates in f32 like any other
//! weight dtype (the i8 values widen exactly) and `scale[j]` multiplies the
//! column once, in the epilogue. Memory-bound decode reads half the bytes of
//! bf16; the price is the quantization error above (not parity with
//! transformers, which the default bf16 weights keep).

use rayon::prelude::*;

use super::panels::{self, PanelLayout};
use crate::dtype::Element;

/// The largest |q|: the range is symmetric, so −128 is never used.
pub const Q_MAX: f32 = 127.0;

/// Row-major int8 weights and their row scales.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantRows {
    /// `[n, k]`, row-major.
    pub q: Vec<i8>,
    /// `[n]`: `w[j, p] ≈ q[j, p] · scale[j]`.
    pub scale: Vec<f32>,
}

/// Quantizes row-major `w[n, k]`, rows in parallel on the current rayon
/// pool. Errors with the first row that holds a NaN or an infinity (it has
/// no finite scale).
pub fn quantize_rows<E: Element>(w: &[E], n: usize, k: usize) -> Result<QuantRows, usize> {
    assert_eq!(w.len(), n * k, "w is not [n, k]");
    let mut q = crate::cpu::alloc::filled_vec(n * k, 0i8);
    let mut scale = vec![0.0f32; n];
    if k == 0 {
        return Ok(QuantRows { q, scale });
    }
    let bad = q
        .par_chunks_mut(k)
        .zip(scale.par_iter_mut())
        .zip(w.par_chunks(k))
        .enumerate()
        .filter_map(|(j, ((qrow, s), row))| quantize_row(row, qrow, s).err().map(|()| j))
        .min();
    match bad {
        Some(j) => Err(j),
        None => Ok(QuantRows { q, scale }),
    }
}

/// One row: its scale into `s`, its values into `q`; `Err` if non-finite.
fn quantize_row<E: Element>(row: &[E], q: &mut [i8], s: &mut f32) -> Result<(), ()> {
    let mut amax = 0.0f32;
    for v in row {
        let a = v.to_f32().abs();
        if !a.is_finite() {
            return Err(());
        }
        amax = amax.max(a);
    }
    if amax == 0.0 {
        return Ok(());
    }
    *s = amax / Q_MAX;
    for (o, v) in q.iter_mut().zip(row) {
        // |v / s| ≤ 127 up to one rounding; from_f32 rounds and saturates.
        *o = i8::from_f32(v.to_f32() / *s);
    }
    Ok(())
}

/// Unpacks int8 panels of `[n, k]` to row-major f32, each row times its scale.
pub fn dequantize(q: &[i8], scale: &[f32], n: usize, k: usize, layout: PanelLayout) -> Vec<f32> {
    assert_eq!(scale.len(), n, "scale is not [n]");
    let mut out = panels::unpack_f32(q, n, k, layout);
    if k > 0 {
        for (row, &s) in out.chunks_exact_mut(k).zip(scale) {
            row.iter_mut().for_each(|v| *v *= s);
        }
    }
    out
}

/// Unpacks row `row` of int8 panels into `out` (`k` values), times its scale.
pub fn dequantize_row(
    q: &[i8],
    scale: &[f32],
    k: usize,
    row: usize,
    layout: PanelLayout,
    out: &mut [f32],
) {
    panels::unpack_row(q, k, row, layout, out);
    let s = scale[row];
    out[..k].iter_mut().for_each(|v| *v *= s);
}

#[cfg(test)]
mod tests {
    use half::bf16;

    use super::*;

    #[test]
    fn each_weight_is_within_half_a_step() {
        let (n, k) = (5, 37);
        let w: Vec<bf16> = (0..n * k)
            .map(|i| bf16::from_f32(((i * 7919) % 1000) as f32 / 250.0 - 2.0))
            .collect();
        let qr = quantize_rows(&w, n, k).unwrap();
        for j in 0..n {
            let s = qr.scale[j];
            assert!(s > 0.0);
            let row_max = (0..k).map(|p| qr.q[j * k + p].unsigned_abs()).max();
            assert_eq!(row_max, Some(127), "row {j} uses the full range");
            for p in 0..k {
                let got = qr.q[j * k + p] as f32 * s;
                let want = w[j * k + p].to_f32();
                assert!((got - want).abs() <= s * 0.5 * (1.0 + 1e-6), "({j}, {p})");
            }
        }
    }

    #[test]
    fn zero_rows_and_empty_rows_get_scale_zero() {
        let w = [0.0f32; 6];
        let qr = quantize_rows(&w, 2, 3).unwrap();
        assert_eq!(qr.scale, vec![0.0, 0.0]);
        assert!(qr.q.iter().all(|&q| q == 0));
        let qr = quantize_rows::<f32>(&[], 3, 0).unwrap();
        assert_eq!(qr.scale, vec![0.0; 3]);
    }

    #[test]
    fn non_finite_weights_name_their_row() {
        let mut w = vec![1.0f32; 12];
        w[7] = f32::NAN;
        assert_eq!(quantize_rows(&w, 4, 3), Err(2));
        w[7] = 1.0;
        w[1] = f32::NEG_INFINITY;
        assert_eq!(quantize_rows(&w, 4, 3), Err(0));
    }

    #[test]
    fn dequantize_inverts_packing() {
        let layout = PanelLayout { nr: 8, lanes: 4 };
        let (n, k) = (11, 5);
        let w: Vec<f32> = (0..n * k).map(|i| (i as f32 - 20.0) / 7.0).collect();
        let qr = quantize_rows(&w, n, k).unwrap();
        let packed = panels::pack(&qr.q, n, k, layout);
        let rows = dequantize(&packed, &qr.scale, n, k, layout);
        let mut one = vec![0.0; k];
        for j in 0..n {
            dequantize_row(&packed, &qr.scale, k, j, layout, &mut one);
            assert_eq!(&rows[j * k..(j + 1) * k], &one[..]);
            for p in 0..k {
                assert_eq!(one[p], qr.q[j * k + p] as f32 * qr.scale[j]);
            }
        }
    }
}
