//! NeoX rotary embedding (`kernels/rope.md`), in place on `[t, h, hd]`.

use super::IsaToken;

/// `x`: `[t, h, hd]`, row `i` at position `pos0 + i`; angles in f32 as
/// transformers computes them (`inv_freq` then `pos · inv_freq`).
pub fn rope(_isa: IsaToken, x: &mut [f32], h: usize, hd: usize, pos0: usize, theta: f32) {
    assert!(hd % 2 == 0 && h > 0);
    assert_eq!(x.len() % (h * hd), 0);
    let half = hd / 2;
    let inv: Vec<f32> = (0..half)
        .map(|j| 1.0 / theta.powf((2 * j) as f32 / hd as f32))
        .collect();
    for (i, row) in x.chunks_exact_mut(h * hd).enumerate() {
        let pos = (pos0 + i) as f32;
        for head in row.chunks_exact_mut(hd) {
            for j in 0..half {
                let (s, c) = (pos * inv[j]).sin_cos();
                let (a, b) = (head[j], head[j + half]);
                head[j] = a * c - b * s;
                head[j + half] = b * c + a * s;
            }
        }
    }
}
