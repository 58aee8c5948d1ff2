//! The slow twin of RMSNorm (`kernels/rms_norm.md`): f64 throughout from
//! the same f32 inputs, rounded once to f32.

/// `out = w ⊙ (x / sqrt(mean(x²) + eps))` per row of `d = w.len()`.
pub fn rms_norm(
    x: &[f32], // [rows, d]
    w: &[f32], // [d]
    eps: f32,
) -> Vec<f32> {
    let d = w.len();
    if d == 0 {
        return Vec::new();
    }
    assert_eq!(x.len() % d, 0);
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(d) {
        let mean_sq = row.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
        let inv = 1.0 / (mean_sq + eps as f64).sqrt();
        out.extend(
            row.iter()
                .zip(w)
                .map(|(&v, &g)| (g as f64 * (v as f64 * inv)) as f32),
        );
    }
    out
}
