//! The slow twin of the attention kernel (`kernels/attention.md`): scores
//! materialised per query row, a plain softmax, everything in f64 from the
//! same f32 inputs the kernels see.

use super::AttnDims;

/// What the reference returns for one call.
#[derive(Clone, Debug)]
pub struct AttnRef {
    /// `[t, h, hd]`: the attention output, in f64, rounded once.
    pub out: Vec<f32>,
    /// `[t, h, hd]`: `S · V` of the element's row and head, with
    /// `S = maxⱼ |scale|·Σ|q·kⱼ|` and `V = maxⱼ |vⱼ|` over the visible keys:
    /// the scale of the score-rounding term of `testing::tolerance::ATTENTION`.
    pub mag: Vec<f64>,
}

/// `out[r, i, :] = Σⱼ softmax(scale · q[r, i, :] · k[j, g, :])ⱼ · v[j, g, :]`
/// over the keys `j` row `r` sees, `g = i / (h / h_kv)`; rounded once to f32.
///
/// `q`: `[t, h, hd]`; `k`, `v`: `[≥ kv_len, h_kv, hd]` (rows past `kv_len`
/// are never read). A row that sees no key (`kv_len = 0`) gives zeros. NaN
/// anywhere in a row's scores makes the row NaN; NaN in a visible `v` row
/// reaches the output columns it sits in (IEEE, `0 · NaN = NaN`).
pub fn attention(q: &[f32], k: &[f32], v: &[f32], a: AttnDims) -> AttnRef {
    let AttnDims {
        t,
        h,
        h_kv,
        hd,
        kv_len,
        causal,
        scale,
    } = a;
    assert!(h_kv > 0 && h.is_multiple_of(h_kv));
    assert_eq!(q.len(), t * h * hd);
    assert!(k.len() >= kv_len * h_kv * hd && v.len() >= kv_len * h_kv * hd);
    let group = h / h_kv;
    let mut out = vec![0.0f32; t * h * hd];
    let mut mag = vec![0.0f64; t * h * hd];
    for r in 0..t {
        // Keys 0..seen are visible to row r.
        let seen = if causal { kv_len - t + r + 1 } else { kv_len };
        for i in 0..h {
            let g = i / group;
            let qr = &q[(r * h + i) * hd..][..hd];
            let scores: Vec<f64> = (0..seen)
                .map(|j| {
                    let kr = &k[(j * h_kv + g) * hd..][..hd];
                    let dot: f64 = qr.iter().zip(kr).map(|(&a, &b)| a as f64 * b as f64).sum();
                    scale as f64 * dot
                })
                .collect();
            if seen == 0 {
                continue;
            }
            let smag = (0..seen)
                .map(|j| {
                    let kr = &k[(j * h_kv + g) * hd..][..hd];
                    let abs: f64 = qr
                        .iter()
                        .zip(kr)
                        .map(|(&a, &b)| (a as f64 * b as f64).abs())
                        .sum();
                    (scale as f64).abs() * abs
                })
                .fold(0.0f64, f64::max);
            let vmag = (0..seen)
                .flat_map(|j| &v[(j * h_kv + g) * hd..][..hd])
                .fold(0.0f64, |m, &x| m.max((x as f64).abs()));
            mag[(r * h + i) * hd..][..hd].fill(smag * vmag);
            // NaN-propagating max.
            let m = scores.iter().fold(f64::NEG_INFINITY, |m, &s| {
                if s.is_nan() || m.is_nan() {
                    f64::NAN
                } else {
                    m.max(s)
                }
            });
            let p: Vec<f64> = scores.iter().map(|&s| (s - m).exp()).collect();
            let sum: f64 = p.iter().sum();
            for c in 0..hd {
                let acc: f64 = (0..seen)
                    .map(|j| p[j] * v[(j * h_kv + g) * hd + c] as f64)
                    .sum();
                out[(r * h + i) * hd + c] = (acc / sum) as f32;
            }
        }
    }
    AttnRef { out, mag }
}
