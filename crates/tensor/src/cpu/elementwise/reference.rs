//! The slow twins of the elementwise kernels (`kernels/elementwise.md`):
//! plain loops in f64 from the same f32 inputs, rounded once to f32.

/// `silu(g)·u = g / (1 + e⁻ᵍ) · u` in f64.
pub fn silu_mul(gate: &[f32], up: &[f32]) -> Vec<f32> {
    assert_eq!(gate.len(), up.len());
    gate.iter()
        .zip(up)
        .map(|(&g, &u)| {
            let g = g as f64;
            (g / (1.0 + (-g).exp()) * u as f64) as f32
        })
        .collect()
}

/// `x + y` in f64 (exact for two f32), rounded to f32.
pub fn add(x: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), y.len());
    x.iter()
        .zip(y)
        .map(|(&a, &b)| (a as f64 + b as f64) as f32)
        .collect()
}

/// `eˣ` in f64, rounded to f32.
pub fn exp(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| (v as f64).exp() as f32).collect()
}
