//! NaFlex position embeddings: the `g × g` learned grid resized to a crop's
//! `h × w` patches with antialiased bilinear interpolation (spec §4.2).
//! Host-side, once per crop shape; f64 weights, f32 result.

/// Per-axis weights `a[i][s]` resizing `g` cells to `n`: a triangle filter
/// widened by the down-scale factor (`align_corners = False`, antialias).
fn axis_weights(g: usize, n: usize) -> Vec<Vec<f64>> {
    let scale = g as f64 / n as f64;
    let support = scale.max(1.0);
    (0..n)
        .map(|i| {
            let c = (i as f64 + 0.5) * scale - 0.5;
            let mut a: Vec<f64> = (0..g)
                .map(|s| (1.0 - (s as f64 - c).abs() / support).max(0.0))
                .collect();
            let sum: f64 = a.iter().sum();
            if sum > 0.0 {
                a.iter_mut().for_each(|v| *v /= sum);
            }
            a
        })
        .collect()
}

/// `grid`: `[g·g, d]` row-major (row = vertical); returns `[h·w, d]`.
pub fn resize(grid: &[f32], g: usize, d: usize, h: usize, w: usize) -> Vec<f32> {
    assert_eq!(grid.len(), g * g * d);
    let (ah, aw) = (axis_weights(g, h), axis_weights(g, w));
    // Separable: first along the width, then the height.
    let mut tmp = vec![0.0f64; g * w * d]; // [g, w, d]
    for r in 0..g {
        for j in 0..w {
            let dst = &mut tmp[(r * w + j) * d..][..d];
            for (s, &a) in aw[j].iter().enumerate() {
                if a != 0.0 {
                    let src = &grid[(r * g + s) * d..][..d];
                    dst.iter_mut()
                        .zip(src)
                        .for_each(|(o, &v)| *o += a * v as f64);
                }
            }
        }
    }
    let mut out = vec![0.0f32; h * w * d];
    let mut acc = vec![0.0f64; d];
    for i in 0..h {
        for j in 0..w {
            acc.fill(0.0);
            for (r, &a) in ah[i].iter().enumerate() {
                if a != 0.0 {
                    let src = &tmp[(r * w + j) * d..][..d];
                    acc.iter_mut().zip(src).for_each(|(o, &v)| *o += a * v);
                }
            }
            out[(i * w + j) * d..][..d]
                .iter_mut()
                .zip(&acc)
                .for_each(|(o, &v)| *o = v as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_when_sizes_match() {
        let grid: Vec<f32> = (0..4 * 4 * 3).map(|i| i as f32 * 0.25 - 3.0).collect();
        assert_eq!(resize(&grid, 4, 3, 4, 4), grid);
    }

    #[test]
    fn weights_are_normalised_and_antialiased() {
        for n in [1, 3, 5, 12, 16, 31, 64] {
            for a in axis_weights(16, n) {
                assert!((a.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            }
        }
        // Down-scaling by 4 spreads each output over a wider support than 2 cells.
        let a = axis_weights(16, 4);
        assert!(a[1].iter().filter(|v| **v > 0.0).count() > 2);
    }
}
