//! The slow twins of the vision kernels (`kernels/layer_norm.md`,
//! `kernels/gelu.md`): f64 throughout from the same f32 inputs, rounded once
//! to f32. The formulas are the spec's, written literally.

use crate::Gelu;

/// LayerNorm of each row of `d = w.len()`: `(x − mean) / sqrt(var + eps) · w + b`
/// with the biased variance, two passes in f64.
pub fn layer_norm(
    x: &[f32], // [rows, d]
    w: &[f32], // [d]
    b: &[f32], // [d]
    eps: f32,
) -> Vec<f32> {
    let d = w.len();
    assert_eq!(b.len(), d);
    if d == 0 {
        assert!(x.is_empty());
        return Vec::new();
    }
    assert_eq!(x.len() % d, 0);
    let mut out = Vec::with_capacity(x.len());
    for xr in x.chunks_exact(d) {
        let mean = xr.iter().map(|&v| v as f64).sum::<f64>() / d as f64;
        let var = xr.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / d as f64;
        let inv = 1.0 / (var + eps as f64).sqrt();
        out.extend(
            xr.iter()
                .zip(w)
                .zip(b)
                .map(|((&v, &g), &bb)| ((v as f64 - mean) * inv * g as f64 + bb as f64) as f32),
        );
    }
    out
}

/// Elementwise GELU of `kind`:
/// - `Tanh`: `0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))` (`gelu_pytorch_tanh`);
/// - `Erf`: `0.5·z·(1 + erf(z/√2))` (the exact GELU).
pub fn gelu(x: &[f32], kind: Gelu) -> Vec<f32> {
    const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;
    x.iter()
        .map(|&v| {
            let z = v as f64;
            let y = match kind {
                Gelu::Tanh => {
                    0.5 * z * (1.0 + (SQRT_2_OVER_PI * (z + 0.044715 * z * z * z)).tanh())
                }
                Gelu::Erf => 0.5 * z * (1.0 + libm::erf(z * std::f64::consts::FRAC_1_SQRT_2)),
            };
            y as f32
        })
        .collect()
}
