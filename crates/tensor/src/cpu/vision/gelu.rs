//! Generic GELU bodies (`kernels/gelu.md`), instantiated per ISA by the
//! wrappers in `mod.rs`. Both forms reduce to one vectorised `exp`
//! (`cpu/elementwise/exp.rs`) and need no select: only `min`/`max`, FMA and
//! one IEEE division per element.
//!
//! - tanh form: `0.5·z·(1 + tanh(u)) = z / (1 + e⁻²ᵘ)` exactly (as
//!   `1 + tanh(u) = 2/(1 + e⁻²ᵘ)`), with `−2u = z·(A + B·z²)`. No
//!   cancellation anywhere; `e⁻²ᵘ` overflowing to `+inf` for `z < −10.06`
//!   gives `−0` (the exact value is below 3e-38 there) and `e⁻²ᵘ → 0` for
//!   large positive `z` gives `z`, so `tanh` saturating to ±1 needs no
//!   special case and nothing overflows to NaN.
//! - erf form: `z·Φ(z)` with `Φ(z) = ½(1 + erf(x))`, `x = z/√2`, in two
//!   regimes blended with exact 0/1 weights:
//!   - `|x| ≤ X_SPLIT = 0.75`: `Φ = ½ + ½·x·T(x²)`, Cephes' `erff`
//!     polynomial (relative error 1.2e-9 in exact arithmetic; valid to
//!     `|x| = 1`);
//!   - `|x| > X_SPLIT`: `Φ = E/2` for `z < 0` and `1 − E/2` for `z > 0` with
//!     `E = erfc(|x|) = t·exp(−x² + P(t))`, `t = 1/(1 + |x|/2)` (Numerical
//!     Recipes' `erfcc`, relative error below 1.2e-7 in exact arithmetic),
//!     so the negative tail has relative accuracy instead of being the
//!     difference `1 + erf`. `x²` is formed exactly from `z` (Dekker's
//!     product, halved) and the exponent's sum keeps its rounding error
//!     (TwoSum), which `exp(s)·(1 + err)` puts back: rounding `x²` alone
//!     would cost a relative error of `x²·2⁻²⁴` (1e-6 at `x = 4`).
//!
//! The regime and sign choices use `min`/`max` and FMA only (no compare or
//! select in [`Simd`]): `step(y) = min(1, max(0, y·2¹²⁶))` is exactly 0 or 1
//! for every `y` that is not subnormal, and `fma(w, a, (1 − w)·b)` picks `a`
//! or `b` exactly. Each regime gets its input clamped into its own range so
//! the unused one stays finite (`0·inf` would be NaN).

use crate::cpu::elementwise::exp::exp_v;
use crate::cpu::simd::Simd;

/// Widest vector of any ISA (AVX-512: 16 f32).
const MAX_LANES: usize = 16;

/// `−2·√(2/π)`.
const TANH_A: f32 = -1.595_769_2;
/// `−2·√(2/π)·0.044715`.
const TANH_B: f32 = -0.071_354_814;

/// `1/√2`.
const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// `|x|` where the regimes meet.
const X_SPLIT: f32 = 0.75;
/// `|z| = √2·X_SPLIT`.
const Z_SPLIT: f32 = X_SPLIT * std::f32::consts::SQRT_2;
/// Beyond `|z| = 15` (`x ≈ 10.6`), `erfc(x) < 1e-50` rounds to `+0`.
const Z_MAX: f32 = 15.0;
/// `erf(x) ≈ x·Σ ERF_T[i]·x²ⁱ` on `|x| ≤ 1`, highest degree first: Cephes
/// `erff`'s coefficients rounded to f32.
const ERF_T: [f32; 7] = [
    7.853_861_5e-5,
    -8.010_193_7e-4,
    5.188_327_7e-3,
    -2.685_381_3e-2,
    0.112_835_854,
    -0.376_126_26,
    // The f32 nearest 2/√π, 6e-8 above Cephes' 1.128379165726710: the
    // difference is `ERF_T0_LO`, added separately.
    std::f32::consts::FRAC_2_SQRT_PI,
];
/// Cephes' `T₀ = 1.128379165726710` minus `ERF_T[6]`.
const ERF_T0_LO: f32 = -6.000_418e-8;
/// `erfc(x) ≈ t·exp(−x² + Σ ERFC[i]·tⁱ)`: Numerical Recipes' `erfcc`
/// coefficients (−1.26551223, 1.00002368, …, 0.17087277) rounded to f32.
const ERFC: [f32; 10] = [
    -1.265_512_2,
    1.000_023_7,
    0.374_091_95,
    0.096_784_18,
    -0.186_288_06,
    0.278_868_08,
    -1.135_204,
    1.488_515_9,
    -0.822_152_26,
    0.170_872_76,
];
/// Veltkamp's splitter for f32 (`2¹² + 1`): splits a 24-bit significand
/// into two halves whose products are exact.
const SPLIT: f32 = 4097.0;
/// `2¹²⁶`: `y·STEP ≥ 1` for every normal `y > 0`, so `min(1, max(0, y·STEP))`
/// is the step function except on subnormal `y`, where the two sides it
/// chooses between agree to far below an f32 ulp anyway.
const STEP: f32 = 8.507_059e37;

/// `gelu_pytorch_tanh(z) = z / (1 + e^(z·(A + B·z²)))` per lane.
#[inline(always)]
pub(super) fn gelu_tanh_v<S: Simd>(s: S, z: S::V) -> S::V {
    let v = s.mul(z, s.fma(s.splat(TANH_B), s.mul(z, z), s.splat(TANH_A)));
    s.div(z, s.add(s.splat(1.0), exp_v(s, v)))
}

/// 1 where `y > 0` (normal), 0 where `y ≤ 0`; NaN stays NaN.
#[inline(always)]
fn step_v<S: Simd>(s: S, y: S::V) -> S::V {
    // `y` goes second so that NaN survives `min`/`max`.
    s.min(s.splat(1.0), s.max(s.zero(), s.mul(y, s.splat(STEP))))
}

/// `erf(x) = x·T(x²)` per lane for `|x| ≤ 1`, the leading term `x·T₀`
/// added last in one FMA with `T₀` split in two f32 (rounding it to one f32
/// alone would cost 6e-8 at `|x| = 1`).
#[inline(always)]
fn erf_small_v<S: Simd>(s: S, x: S::V) -> S::V {
    let x2 = s.mul(x, x);
    let mut q = s.splat(ERF_T[0]);
    for &c in &ERF_T[1..6] {
        q = s.fma(q, x2, s.splat(c));
    }
    // x·T₀ + x³·q(x²) with T₀ = ERF_T[6] + ERF_T0_LO.
    let tail = s.fma(x, s.splat(ERF_T0_LO), s.mul(s.mul(x, x2), q));
    s.fma(x, s.splat(ERF_T[6]), tail)
}

/// `E = erfc(a/√2)` per lane for `a ∈ [Z_SPLIT, Z_MAX]` (measured relative
/// error ≤ 3.9e-7, `tests::erf_accuracy`).
#[inline(always)]
fn erfc_large_v<S: Simd>(s: S, a: S::V) -> S::V {
    let one = s.splat(1.0);
    let t = s.div(one, s.fma(a, s.splat(0.5 * FRAC_1_SQRT_2), one));
    let mut p = s.splat(ERFC[9]);
    for &c in ERFC[..9].iter().rev() {
        p = s.fma(p, t, s.splat(c));
    }
    // a² = hi + lo exactly (Dekker; plain products, so every tier agrees).
    let c = s.mul(a, s.splat(SPLIT));
    let ah = s.sub(c, s.sub(c, a));
    let al = s.sub(a, ah);
    let hi = s.mul(a, a);
    let lo = s.add(
        s.add(s.sub(s.mul(ah, ah), hi), s.mul(s.add(ah, ah), al)),
        s.mul(al, al),
    );
    // −x² + p = u + p − lo/2 with u = −hi/2 exact; TwoSum keeps the error
    // of `u + p`.
    let u = s.mul(hi, s.splat(-0.5));
    let sum = s.add(u, p);
    let bb = s.sub(sum, u);
    let err = s.add(s.sub(u, s.sub(sum, bb)), s.sub(p, bb));
    let corr = s.fma(lo, s.splat(-0.5), err);
    let e = exp_v(s, sum);
    s.mul(t, s.fma(e, corr, e))
}

/// `Φ(z) = ½(1 + erf(z/√2))` per lane (the regimes of the module docs).
#[inline(always)]
pub(super) fn phi_v<S: Simd>(s: S, z: S::V) -> S::V {
    let (one, half) = (s.splat(1.0), s.splat(0.5));
    // |z| = max(−z, z); NaN stays NaN.
    let a = s.max(s.sub(s.zero(), z), z);
    // |x| ≤ X_SPLIT: ½ + ½·erf(x), x clamped to [−X_SPLIT, X_SPLIT].
    let xs = s.splat(X_SPLIT);
    let x = s.min(
        xs,
        s.max(s.sub(s.zero(), xs), s.mul(z, s.splat(FRAC_1_SQRT_2))),
    );
    let phi_small = s.fma(half, erf_small_v(s, x), half);
    // |x| > X_SPLIT: E/2 or 1 − E/2 by the sign of z, |z| clamped to
    // [Z_SPLIT, Z_MAX].
    let e = erfc_large_v(s, s.min(s.splat(Z_MAX), s.max(s.splat(Z_SPLIT), a)));
    let phi_large = s.fma(step_v(s, z), s.sub(one, e), s.mul(half, e));
    let w = step_v(s, s.sub(a, s.splat(Z_SPLIT)));
    s.fma(w, phi_large, s.mul(s.sub(one, w), phi_small))
}

/// The exact GELU `z·Φ(z)` per lane.
#[inline(always)]
pub(super) fn gelu_erf_v<S: Simd>(s: S, z: S::V) -> S::V {
    s.mul(z, phi_v(s, z))
}

/// The form `ERF` selects (a constant: the branch folds away). A function,
/// not a closure: a closure would not inherit the wrapper's target features.
#[inline(always)]
fn gelu_v<S: Simd, const ERF: bool>(s: S, v: S::V) -> S::V {
    if ERF {
        gelu_erf_v(s, v)
    } else {
        gelu_tanh_v(s, v)
    }
}

/// `out[i] = gelu(x[i])` (the erf form if `ERF`, else the tanh form): whole
/// vectors, then the tail through the same vector code on a zero-padded
/// stack copy.
#[inline(always)]
pub(super) fn gelu<S: Simd, const ERF: bool>(s: S, x: &[f32], out: &mut [f32]) {
    const { assert!(S::LANES <= MAX_LANES) };
    let (n, l) = (out.len(), S::LANES);
    assert_eq!(x.len(), n);
    let (xp, op) = (x.as_ptr(), out.as_mut_ptr());
    let mut i = 0;
    while i + l <= n {
        // SAFETY: i + LANES ≤ n, the length of both slices.
        let v = unsafe { s.load(xp.wrapping_add(i)) };
        // SAFETY: as above.
        unsafe { s.store(op.wrapping_add(i), gelu_v::<S, ERF>(s, v)) };
        i += l;
    }
    if i < n {
        let r = n - i;
        let mut t = [0.0f32; MAX_LANES];
        t[..r].copy_from_slice(&x[i..]);
        // SAFETY: LANES ≤ MAX_LANES: the buffer holds a whole vector.
        let v = unsafe { s.load(t.as_ptr()) };
        // SAFETY: as above.
        unsafe { s.store(t.as_mut_ptr(), gelu_v::<S, ERF>(s, v)) };
        out[i..].copy_from_slice(&t[..r]);
    }
}

#[cfg(test)]
mod tests {
    use super::{Simd, Z_MAX, Z_SPLIT, erf_small_v, erfc_large_v, phi_v};
    use crate::cpu::dispatch::{Isa, IsaToken, SimdOp};

    /// `f` over `x` (a whole number of vectors).
    fn map<S: Simd>(s: S, x: &[f32], f: fn(S, S::V) -> S::V) -> Vec<f32> {
        let mut out = vec![0.0; x.len()];
        for (xc, oc) in x.chunks_exact(S::LANES).zip(out.chunks_exact_mut(S::LANES)) {
            // SAFETY: `xc` holds exactly LANES f32.
            let v = unsafe { s.load(xc.as_ptr()) };
            // SAFETY: `oc` holds exactly LANES f32.
            unsafe { s.store(oc.as_mut_ptr(), f(s, v)) };
        }
        out
    }

    /// `n` points spread evenly over `[lo, hi]`.
    fn grid(lo: f32, hi: f32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| lo + (hi - lo) * (i as f64 / (n - 1) as f64) as f32)
            .collect()
    }

    /// The three functions `[erf_small, erfc_large, Φ]` on one tier.
    struct Eval<'a> {
        x: &'a [f32],
        a: &'a [f32],
        z: &'a [f32],
    }

    impl SimdOp for Eval<'_> {
        type Output = [Vec<f32>; 3];

        #[inline(always)]
        fn run<S: Simd>(self, s: S) -> [Vec<f32>; 3] {
            [
                map(s, self.x, erf_small_v),
                map(s, self.a, erfc_large_v),
                map(s, self.z, phi_v),
            ]
        }
    }

    /// The erf behind the exact GELU, piece by piece, densely: `x·T(x²)`
    /// on `|x| ≤ 1` against `libm::erf` (absolute error), `erfc(|z|/√2)` on
    /// `[Z_SPLIT, Z_MAX]` against `libm::erfc` (relative), and the assembled
    /// `Φ(z)` on `[−15, 15]` against `½·erfc(−z/√2)` (relative: what the
    /// GELU's negative tail sees).
    #[test]
    fn erf_accuracy() {
        let n = 1 << 18;
        let x = grid(-1.0, 1.0, n);
        let a = grid(Z_SPLIT, Z_MAX, n);
        let z = grid(-15.0, 15.0, 4 * n);
        let mut ok = true;
        for isa in Isa::available() {
            let [erf, erfc, phi] = IsaToken::new(isa).unwrap().dispatch(Eval {
                x: &x,
                a: &a,
                z: &z,
            });
            let erf_abs = x
                .iter()
                .zip(&erf)
                .map(|(&x, &e)| (e as f64 - libm::erf(x as f64)).abs())
                .fold(0.0, f64::max);
            let rel = |got: f32, want: f64| {
                if want > 1e-37 {
                    (got as f64 - want).abs() / want
                } else {
                    assert!(got <= 1e-36, "{isa}: {got} for {want}");
                    0.0
                }
            };
            let erfc_rel = a
                .iter()
                .zip(&erfc)
                .map(|(&a, &e)| rel(e, libm::erfc(a as f64 * std::f64::consts::FRAC_1_SQRT_2)))
                .fold(0.0, f64::max);
            let phi_rel = z
                .iter()
                .zip(&phi)
                .map(|(&z, &p)| {
                    rel(
                        p,
                        0.5 * libm::erfc(-(z as f64) * std::f64::consts::FRAC_1_SQRT_2),
                    )
                })
                .fold(0.0, f64::max);
            println!(
                "{isa}: erf (|x| <= 1) max abs err {erf_abs:.3e}; erfc (x >= {:.2}) max rel \
                 err {erfc_rel:.3e}; Phi max rel err {phi_rel:.3e}",
                Z_SPLIT / std::f32::consts::SQRT_2
            );
            // The scalar tier's `fma` rounds twice (one more rounding of
            // `erf` near 0.84: ~0.5e-7).
            let erf_bound = if isa == Isa::Scalar { 1.5e-7 } else { 1e-7 };
            ok &= erf_abs <= erf_bound && erfc_rel <= 5e-7 && phi_rel <= 1e-6;
        }
        assert!(ok, "see the figures above");
    }
}
