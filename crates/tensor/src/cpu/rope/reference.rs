//! The slow twin of rope (`kernels/rope.md`). The angles keep transformers'
//! f32 roundings (they are part of the spec: at position 10⁵ one f32 ulp of
//! the angle is ~8e-3 rad), computed here independently of `tables.rs`;
//! `cos`, `sin` and the rotation are f64, rounded once to f32.

/// Returns the rotated copy of `x` (`[t, h, hd]`, row `i` at `pos0 + i`)
/// and, per element, the scale `|a·cos θ| + |b·sin θ|` of its two-term dot
/// product (the tolerance is stated against it).
pub fn rope(x: &[f32], h: usize, hd: usize, pos0: usize, theta: f32) -> (Vec<f32>, Vec<f64>) {
    assert!(hd.is_multiple_of(2) && h > 0);
    let mut y = x.to_vec();
    let mut scale = vec![0.0f64; x.len()];
    if hd == 0 {
        return (y, scale);
    }
    let half = hd / 2;
    for (i, (row, srow)) in y
        .chunks_exact_mut(h * hd)
        .zip(scale.chunks_exact_mut(h * hd))
        .enumerate()
    {
        for (head, sh) in row.chunks_exact_mut(hd).zip(srow.chunks_exact_mut(hd)) {
            for j in 0..half {
                // transformers: inv_freq = 1 / base^(arange(0, hd, 2).float() / hd),
                // freqs = inv_freq · position.float(), all f32.
                let inv_freq: f32 = 1.0 / theta.powf((2 * j) as f32 / hd as f32);
                let angle: f32 = (pos0 + i) as f32 * inv_freq;
                let (sin, cos) = (angle as f64).sin_cos();
                let (a, b) = (head[j] as f64, head[j + half] as f64);
                head[j] = (a * cos - b * sin) as f32;
                head[j + half] = (b * cos + a * sin) as f32;
                sh[j] = (a * cos).abs() + (b * sin).abs();
                sh[j + half] = (b * cos).abs() + (a * sin).abs();
            }
        }
    }
    (y, scale)
}
