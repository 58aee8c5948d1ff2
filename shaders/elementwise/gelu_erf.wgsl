// Exact (erf) GELU (kernels/gelu.md): z·Φ(z), Φ(z) = ½(1 + erf(z/√2)).
// WGSL has no erf; with x = z/√2 (the regimes of cpu/vision/gelu.rs):
// - |x| ≤ 0.75: Φ = ½ + ½·x·T(x²), Cephes' erff polynomial (relative error
//   ~1e-9 in exact arithmetic);
// - |x| > 0.75: E = erfc(|x|) = t·exp(−x² + P(t)), t = 1/(1 + |x|/2)
//   (Numerical Recipes' erfcc, relative error < 1.2e-7 in exact arithmetic);
//   Φ = E/2 for z < 0 (relative accuracy in the negative tail, not the
//   difference 1 + erf) and 1 − E/2 for z > 0. Beyond |z| = 15, E rounds to 0.
// Prelude: elementwise/io.wgsl.

const FRAC_1_SQRT_2: f32 = 0.70710677;
const X_SPLIT: f32 = 0.75;
const Z_MAX: f32 = 15.0;

// erf(x) for |x| ≤ 1 (Cephes erff coefficients, highest degree first).
fn erf_small(x: f32) -> f32 {
    let s = x * x;
    var p = 7.8538615e-5;
    p = fma(p, s, -8.0101937e-4);
    p = fma(p, s, 5.1883277e-3);
    p = fma(p, s, -2.6853813e-2);
    p = fma(p, s, 0.112835854);
    p = fma(p, s, -0.37612626);
    p = fma(p, s, 1.1283791);
    return x * p;
}

// erfc(a) for a > 0 (Numerical Recipes' erfcc).
fn erfc_large(a: f32) -> f32 {
    let t = 1.0 / (1.0 + 0.5 * a);
    var p = 0.17087276;
    p = fma(p, t, -0.82215226);
    p = fma(p, t, 1.4885159);
    p = fma(p, t, -1.135204);
    p = fma(p, t, 0.27886808);
    p = fma(p, t, -0.18628806);
    p = fma(p, t, 0.09678418);
    p = fma(p, t, 0.37409195);
    p = fma(p, t, 1.0000237);
    p = fma(p, t, -1.2655122);
    return t * exp(p - a * a);
}

// Φ(z) = ½(1 + erf(z/√2)).
fn phi(z: f32) -> f32 {
    let x = z * FRAC_1_SQRT_2;
    let ax = abs(x);
    if (ax <= X_SPLIT) {
        return fma(0.5, erf_small(x), 0.5);
    }
    if (abs(z) >= Z_MAX) {
        return select(0.0, 1.0, z > 0.0);
    }
    let e = 0.5 * erfc_large(ax);
    return select(e, 1.0 - e, z > 0.0);
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = element_index(wid, nwg, li);
    if (i < params.n) {
        let z = a[i];
        out[i] = z * phi(z);
    }
}
