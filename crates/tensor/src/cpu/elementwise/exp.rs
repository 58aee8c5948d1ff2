//! A vectorised f32 `exp` (`kernels/elementwise.md`): Cody–Waite range
//! reduction to `r ∈ [−ln2/2, ln2/2]`, a degree-6 polynomial, and a scale by
//! `2ⁿ` split in two factors so that overflow to `+inf` and gradual underflow
//! into subnormals round once, as a correctly rounded `exp` would.
//!
//! Measured worst error against `f64::exp` rounded to f32: see
//! `testing::tolerance::EXP`.

use crate::cpu::simd::Simd;

/// Inputs are clamped to `[LO, HI]`: `exp(−104) < 2⁻¹⁵⁰` rounds to `+0` and
/// `exp(89) > f32::MAX` overflows to `+inf`, so the clamp changes no result
/// and keeps `n` (below) inside the range the scaling handles.
const LO: f32 = -104.0;
const HI: f32 = 89.0;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// `ln 2 = LN2_HI + LN2_LO`; `LN2_HI` has 9 significant bits, so `n·LN2_HI`
/// is exact for `|n| ≤ 2¹⁵` (Cephes `expf`).
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5·2²³`: adding and subtracting it rounds an f32 of magnitude < 2²² to
/// the nearest integer (ties to even) with two plain additions.
const ROUND: f32 = 12_582_912.0;
/// Taylor-like minimax coefficients of `(eʳ − 1 − r) / r²` on
/// `[−ln2/2, ln2/2]` (SLEEF `xexpf`, 1-ulp class).
const P: [f32; 6] = [
    1.985_276_2e-4,
    1.393_043_6e-3,
    8.333_361e-3,
    4.166_648_5e-2,
    0.166_666_67,
    0.5,
];

/// `eˣ` per lane. `±inf → (+inf, +0)`, NaN → NaN, results below the
/// smallest subnormal round to `+0`.
#[inline(always)]
pub(crate) fn exp_v<S: Simd>(s: S, x: S::V) -> S::V {
    // `x` goes second so a NaN survives both clamps (`Simd::min`/`max`).
    let x = s.min(s.splat(HI), s.max(s.splat(LO), x));
    // n = round(x / ln2), an integer in [−150, 128].
    let round = s.splat(ROUND);
    let n = s.sub(s.fma(x, s.splat(LOG2E), round), round);
    // r = x − n·ln2, in two steps (the first is exact).
    let r = s.fma(n, s.splat(-LN2_HI), x);
    let r = s.fma(n, s.splat(-LN2_LO), r);
    let mut p = s.splat(P[0]);
    for &c in &P[1..] {
        p = s.fma(p, r, s.splat(c));
    }
    // eʳ ≈ 1 + r + r²·p.
    let y = s.add(s.fma(s.mul(r, r), p, r), s.splat(1.0));
    // 2ⁿ = 2^n1 · 2^n2 with n1 = round(n/2), both factors normal
    // (n1, n2 ∈ [−75, 64]); y·2^n1 is exact, the second product rounds once.
    let n1 = s.sub(s.fma(n, s.splat(0.5), round), round);
    let n2 = s.sub(n, n1);
    s.mul(s.mul(y, s.pow2i(n1)), s.pow2i(n2))
}
