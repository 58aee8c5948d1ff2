//! The slow twin of every matmul variant (`kernels/matmul.md`): the plainest
//! loop, accumulating in f64 from the same rounded inputs the kernels see.

use crate::dtype::Element;

/// `y[i, j] = Σ_p x[i, p] · w[j, p] (+ bias[j])` in f64, rounded once to f32.
///
/// Also returns `mag[i, j] = Σ_p |x[i, p] · w[j, p]|` (+ |bias[j]|), the scale
/// the matmul tolerance is stated against.
pub fn matmul<E: Element>(
    x: &[f32],            // [m, k]
    w: &[E],              // [n, k]
    bias: Option<&[f32]>, // [n]
    m: usize,
    n: usize,
    k: usize,
) -> (Vec<f32>, Vec<f64>) {
    assert_eq!(x.len(), m * k);
    assert_eq!(w.len(), n * k);
    let mut y = vec![0.0f32; m * n];
    let mut mag = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            let mut acc = 0.0f64;
            let mut abs = 0.0f64;
            for p in 0..k {
                let prod = x[i * k + p] as f64 * w[j * k + p].to_f32() as f64;
                acc += prod;
                abs += prod.abs();
            }
            if let Some(b) = bias {
                acc += b[j] as f64;
                abs += (b[j] as f64).abs();
            }
            y[i * n + j] = acc as f32;
            mag[i * n + j] = abs;
        }
    }
    (y, mag)
}
