//! The one tolerance table. Each entry is a bound on |got − want| against
//! the f64 reference, with the measurement that justifies it.

/// A tolerance class of `kernels/*.md`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Tolerance {
    /// Conversions, copies, gathers, add, mul: bit-exact.
    Exact,
    /// Dot products, matmul, conv with f32 accumulation:
    /// `|x − r| ≤ abs + rel · Σ|aᵢ·bᵢ|` (the magnitude the reference reports).
    ///
    /// Measured (`cargo test -p tensor matmul -- --nocapture`, all ISAs,
    /// f32/bf16/f16 weights, k ≤ 1025): worst |x − r| / Σ|aᵢbᵢ| was 4.2e-7 on
    /// this host; the budget 1e-5 leaves room for other accumulation orders
    /// (GPU, longer k), and f32's own rounding of a k-term sum is ~k·6e-8.
    Dot { abs: f64, rel: f64 },
    /// WGSL f32 against the CPU reference: `|x − r| ≤ abs + rel·Σ|aᵢbᵢ|`.
    GpuDot { abs: f64, rel: f64 },
    /// Elementwise and normalisation kernels: `|x − r| ≤ abs + rel·|r|`
    /// (`scale` is ignored).
    Rel { abs: f64, rel: f64 },
    /// At most `max` f32 ulps from the reference (distance in the ordered
    /// f32 bit space: `±0` are 0 apart, `f32::MAX` and `inf` 1 apart; a NaN
    /// matches only a NaN). `scale` is ignored.
    Ulp { max: u64 },
}

pub const MATMUL: Tolerance = Tolerance::Dot {
    abs: 1e-6,
    rel: 1e-5,
};
pub const GPU_MATMUL: Tolerance = Tolerance::GpuDot {
    abs: 1e-5,
    rel: 1e-4,
};

// --- rms_norm, rope, elementwise (kernels/{rms_norm,rope,elementwise}.md) ---
// Measured with `cargo test -p tensor --test cpu_rms_norm --test cpu_rope
// --test cpu_elementwise -- --nocapture` (x86 host with AVX-512: scalar,
// AVX2, AVX-512) and
// `cargo xtask test-neon` (NEON under qemu-aarch64); the figures quoted are
// the worst over every tier unless one is named.

/// Vectorised f32 `exp` (`cpu/elementwise/exp.rs`) against f64 `exp`
/// rounded to f32. Measured: 1 ulp on every tier over the test sweep, and
/// exhaustively 1 ulp over every f32 in [−105, 90] on scalar, AVX2 and
/// AVX-512 (~0.8% of inputs are 1 ulp off; outside that range the results are
/// exactly `+0` or `+inf`). No slack: a 2-ulp result is a regression.
pub const EXP: Tolerance = Tolerance::Ulp { max: 1 };
/// `silu(g)·u` in f32 (exp, add, div, mul: ≤ ~3 ulp by construction).
/// Measured worst |x − r|/|r| = 2.2e-7 (scalar 2.17e-7, AVX2 2.13e-7,
/// AVX-512 1.94e-7, NEON 2.16e-7), 2 ulps. Tightened from STYLE.md's
/// `1e-6 + 4e-6·|r|` to rel 1e-6 (~4.5× the measurement). `abs` covers only
/// `g < −88.72`, where `e⁻ᵍ` overflows f32 and the result is ±0 instead of
/// `|g·eᵍ·u| ≤ 2.6e-37·|u|` (PyTorch's f32 silu does the same).
pub const SILU_MUL: Tolerance = Tolerance::Rel {
    abs: 1e-30,
    rel: 1e-6,
};
/// `add_assign`: one IEEE addition, bit-exact (measured: 0 errors).
pub const ADD: Tolerance = Tolerance::Exact;
/// RMSNorm, f32 statistics. Measured worst |x − r|/|r| = 6.1e-7 (scalar,
/// one sequential accumulator, d = 8192; 3.6e-7 at d = 2048), AVX2 2.4e-7,
/// AVX-512 2.4e-7, NEON 2.6e-7. Tightened from STYLE.md's rel 1e-5 to 4e-6:
/// an f32 sum of d squares drifts ~√d·6e-8 (2.7e-6 at d = 2048), halved by
/// the square root, so 4e-6 holds for d ≤ 8192 on the scalar tier. The
/// error is relative for every element (one rounded `inv` per row), so the
/// absolute term is only a floor.
pub const RMS_NORM: Tolerance = Tolerance::Rel {
    abs: 1e-7,
    rel: 4e-6,
};
/// Rope: a two-term dot product per element against the reference's scale
/// `|a·cos θ| + |b·sin θ|` (the angle's f32 roundings are part of the spec
/// and shared with the reference). Measured worst |x − r| / scale =
/// 1.42e-7 (positions up to 2²⁴, hd ≤ 514, every tier; all tiers are
/// bit-identical to scalar). Tightened from the dot class's 1e-5 to 1e-6;
/// `abs` only absorbs subnormal granularity.
pub const ROPE: Tolerance = Tolerance::Dot {
    abs: 1e-30,
    rel: 1e-6,
};

/// The first element outside tolerance, for a readable failure message.
#[derive(Clone, Debug)]
pub struct Mismatch {
    pub index: usize,
    pub got: f32,
    pub want: f32,
    pub bound: f64,
}

/// Worst-case error seen by a check, relative to the tolerance scale.
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorStats {
    pub max_abs: f64,
    /// max |x − r| / scale (scale = Σ|aᵢbᵢ| for dot classes, |r| otherwise).
    pub max_rel: f64,
    /// max distance in f32 ulps (see [`Tolerance::Ulp`]), for every class.
    pub max_ulp: u64,
}

/// Distance between two non-NaN f32 in units in the last place.
pub fn ulp_distance(a: f32, b: f32) -> u64 {
    // Map the sign-magnitude bits onto a monotonic integer line (−0 = +0 = 0).
    let ordered = |x: f32| {
        let i = x.to_bits() as i32;
        if i < 0 {
            i32::MIN as i64 - i as i64
        } else {
            i as i64
        }
    };
    ordered(a).abs_diff(ordered(b))
}

impl Tolerance {
    /// Checks `got` against `want`; `scale[i]` is the class's magnitude for
    /// element `i` (Σ|aᵢbᵢ| for dot classes; ignored by the other classes,
    /// which may pass `&[]`).
    pub fn check(self, got: &[f32], want: &[f32], scale: &[f64]) -> Result<ErrorStats, Mismatch> {
        assert_eq!(got.len(), want.len(), "length mismatch");
        let mut st = ErrorStats::default();
        for i in 0..got.len() {
            let (g, w) = (got[i], want[i]);
            let same_nan = g.is_nan() && w.is_nan();
            let err = (g as f64 - w as f64).abs();
            let bound = match self {
                Tolerance::Exact => 0.0,
                Tolerance::Dot { abs, rel } | Tolerance::GpuDot { abs, rel } => {
                    abs + rel * scale[i]
                }
                Tolerance::Rel { abs, rel } => abs + rel * (w as f64).abs(),
                Tolerance::Ulp { max } => max as f64,
            };
            let ulps = ulp_distance(g, w);
            let ok = same_nan
                || match self {
                    Tolerance::Exact => g.to_bits() == w.to_bits(),
                    Tolerance::Ulp { max } => !g.is_nan() && !w.is_nan() && ulps <= max,
                    _ => err <= bound || (g == w),
                };
            if !ok {
                return Err(Mismatch {
                    index: i,
                    got: g,
                    want: w,
                    bound,
                });
            }
            if !same_nan && err.is_finite() {
                st.max_abs = st.max_abs.max(err);
                st.max_ulp = st.max_ulp.max(ulps);
                let s = match self {
                    Tolerance::Dot { .. } | Tolerance::GpuDot { .. } => scale[i],
                    _ => w.abs() as f64,
                };
                if s > 0.0 {
                    st.max_rel = st.max_rel.max(err / s);
                }
            }
        }
        Ok(st)
    }
}

// --- short_conv, attention (kernels/{short_conv,attention}.md) ---
// Measured with `cargo test -p tensor --test cpu_conv_attention --
// --nocapture` (x86: scalar, AVX2, AVX-512; NEON under qemu-aarch64).

/// Short conv: `C ⊙ Σᵢ wᵢ·bxᵢ`, a dot of `l` terms then one product, so the
/// dot class with scale `|C|·Σᵢ|wᵢ·bxᵢ|`. Worst-case f32 rounding is about
/// `(l + 2)·ε` (3.6e-7 at l = 4, 2.5e-6 at l = 40); measured worst
/// `|x − r| / scale` over d ≤ 257, l ≤ 40, t ≤ 100: 2.9e-7 scalar, 2.4e-7
/// AVX2, 2.8e-7 AVX-512, 2.6e-7 NEON (qemu). Tightened from the dot class's
/// 1e-5 to 2e-6 (7× the worst measured): a kernel scaling its output by
/// 1 + 2e-5 fails. The new state is checked bit-exact (`Exact`).
pub const SHORT_CONV: Tolerance = Tolerance::Dot {
    abs: 1e-6,
    rel: 2e-6,
};

/// Attention (f32, any algorithm) against the f64 reference, STYLE.md §7
/// (there: max abs ≤ 1e-5, NMSE ≤ 1e-10): NMSE `Σ(x − r)² / Σr²` at most
/// `nmse`, every element within `max_abs`. Inputs uniform in ±1, scores of
/// O(1), hd ≤ 72, kv_len ≤ 1000. Measured worst: max abs 1.8e-7 (scalar,
/// AVX2, NEON), 1.3e-7 (AVX-512); NMSE 4.6e-13 (AVX-512), 3.8e-13 (scalar),
/// 3.8e-13 (AVX2), 3.7e-13 (NEON, qemu). Tightened to 5× / 4× those, so
/// that a kernel off by a factor 1 + 2e-6 (e.g. a mis-scaled p·v) fails.
pub const ATTENTION: AttnTolerance = AttnTolerance {
    max_abs: 1e-6,
    score_rel: 0.0,
    nmse: 2e-12,
};

/// Attention with scores up to ~1e4 (q, k uniform in ±100): an f32 score of
/// magnitude `S` carries a rounding error ~`ε·S` (~1e-3 at 1e4) that the
/// softmax passes on to the output wherever two scores are that close, so
/// no fixed `max_abs` holds for any f32 algorithm. Elements get
/// `max_abs + score_rel · S · V` (`S = maxⱼ |scale|·Σ|q·kⱼ|`, `V = maxⱼ |vⱼ|`,
/// the reference's `mag`) and a wider NMSE budget. Measured worst (hd 64 and
/// 72, t ≤ 65, kv_len ≤ 1000): max abs 6.4e-4 with `|x − r| / (S·V)` 2.5e-8
/// and NMSE 3.6e-9 (scalar: sequential dot sums), 4.0e-4 / 1.5e-8 / 7.2e-10
/// (AVX-512), 1.9e-4 / 6.7e-9 / 1.0e-10 (AVX2). Budgets 4× and 3× the
/// scalar figures.
pub const ATTENTION_LARGE_LOGITS: AttnTolerance = AttnTolerance {
    max_abs: 1e-6,
    score_rel: 1e-7,
    nmse: 1e-8,
};

/// The bf16 dot-product kernel (`cpu::attention::attention_bf16`) against
/// the f64 reference on q, k, v rounded to bf16: what remains is each `p`
/// rounded to bf16 (relative error ≤ 2⁻⁸, bf16's unit roundoff, so
/// `|Σ (p̃ − p)·v| / Σ p ≤ 2⁻⁸·max |v|`) and the f32 sums. The test inputs
/// have `|v| ≤ 1`, so `max_abs` is that bound. Measured worst (AVX-512 with
/// AVX512-BF16, every case family): max abs 2.5e-3 (t = 1024, hd 64),
/// NMSE 4.8e-5 (hd = 1 cases with near-zero outputs); budget 2× the NMSE.
pub const ATTENTION_BF16: AttnTolerance = AttnTolerance {
    max_abs: 3.9e-3,
    score_rel: 0.0,
    nmse: 1e-4,
};

/// See [`ATTENTION`] and [`ATTENTION_LARGE_LOGITS`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttnTolerance {
    pub max_abs: f64,
    pub score_rel: f64,
    pub nmse: f64,
}

/// What [`AttnTolerance::check`] measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttnStats {
    /// max |x − r|.
    pub max_abs: f64,
    /// max |x − r| / (S·V) over elements whose error exceeds `max_abs`.
    pub max_score_rel: f64,
    pub nmse: f64,
}

/// Why [`AttnTolerance::check`] failed.
#[derive(Clone, Debug)]
pub enum AttnFailure {
    /// The first element over its bound (or NaN against a number).
    Element(Mismatch),
    /// Every element is within bounds but the NMSE is over budget.
    Nmse { nmse: f64, bound: f64 },
}

impl AttnTolerance {
    /// Checks `got` against `want`; `mag[i]` is `S·V` of element `i`'s row
    /// and head. NaN matches NaN and equal infinities match; both are left
    /// out of the statistics.
    pub fn check(self, got: &[f32], want: &[f32], mag: &[f64]) -> Result<AttnStats, AttnFailure> {
        assert!(
            got.len() == want.len() && want.len() == mag.len(),
            "length mismatch"
        );
        let (mut st, mut se, mut sr) = (AttnStats::default(), 0.0f64, 0.0f64);
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            if (g.is_nan() && w.is_nan()) || (g.is_infinite() && g == w) {
                continue;
            }
            let err = (g as f64 - w as f64).abs();
            // (`0 · inf` would be NaN for a row with an infinite score.)
            let bound = match self.score_rel {
                0.0 => self.max_abs,
                rel => self.max_abs + rel * mag[i],
            };
            if err.is_nan() || err > bound {
                return Err(AttnFailure::Element(Mismatch {
                    index: i,
                    got: g,
                    want: w,
                    bound,
                }));
            }
            st.max_abs = st.max_abs.max(err);
            if err > self.max_abs && mag[i] > 0.0 {
                st.max_score_rel = st.max_score_rel.max(err / mag[i]);
            }
            se += err * err;
            sr += (w as f64) * (w as f64);
        }
        st.nmse = if sr > 0.0 { se / sr } else { se };
        if st.nmse > self.nmse {
            return Err(AttnFailure::Nmse {
                nmse: st.nmse,
                bound: self.nmse,
            });
        }
        Ok(st)
    }
}

// --- layer_norm, gelu (kernels/{layer_norm,gelu}.md) ---
// Measured with `cargo test -p tensor --test cpu_vision_kernels --lib --
// --nocapture` (x86 host with AVX-512: scalar, AVX2, AVX-512) and
// `cargo xtask test-neon` (NEON under qemu-aarch64).

/// LayerNorm, f32 statistics (shifted corrected two-pass, two-level sums).
/// An element's error is ~`ε·(|n·w| + |b|)` plus a row-wide `ε`-sized term
/// (`n` the normalised value), so where `n·w ≈ −b` only `abs` covers it
/// (test weights `1 ± 0.5`, biases `±0.5`). Measured over every sweep
/// (widths to 4608, offsets up to 1e4 with spreads down to 1e-3, outliers,
/// constant and special rows): `|x − r| ≤ A + 1e-6·|r|` everywhere with
/// A = 1.30e-7 scalar, 8.2e-8 AVX2, 1.13e-7 AVX-512, 8.0e-8 NEON; worst
/// share of this budget used 0.27 (scalar). Tightened from STYLE.md's
/// `1e-6 + 1e-5·|r|` to ~4× / 2× those figures: a kernel whose `rstd` is off
/// by 1 + 4e-6 fails.
pub const LAYER_NORM: Tolerance = Tolerance::Rel {
    abs: 5e-7,
    rel: 2e-6,
};
/// `gelu_pytorch_tanh` as `z / (1 + e^v)`: the f32 rounding of `v` is
/// amplified by `e^v` where the result is small, a relative error of about
/// `|v|·2⁻²⁴`. Measured worst |x − r|/|r| over |r| ≥ 1e-4: scalar 1.29e-6,
/// AVX2 1.07e-6, AVX-512 1.07e-6, NEON 1.07e-6 (16–19 ulps); with this rel
/// an abs of 4.5e-16 would do (5e-14 with rel 2e-6). `abs` covers the far
/// tail (|r| < 1e-8, relative error up to 1e-5 at f32 underflow) and the
/// f64 reference's own `1 + tanh` cancellation (it returns `−0` below
/// z ≈ −9). Tightened from STYLE.md's `1e-6 + 4e-6·|r|`.
pub const GELU_TANH: Tolerance = Tolerance::Rel {
    abs: 1e-12,
    rel: 3e-6,
};
/// Exact (erf) GELU: Cephes `erff` polynomial for |z/√2| ≤ 0.75, else
/// `erfc` (Numerical Recipes' fit, exponent argument kept exact) so the
/// negative tail is relative. Measured worst |x − r|/|r| over |r| ≥ 1e-4:
/// scalar 4.8e-7, AVX2 4.3e-7, AVX-512 4.3e-7, NEON 4.3e-7 (≤ 7 ulps); with
/// rel 5e-7 an abs of 2.3e-16 suffices on AVX2/AVX-512 (the reference's own
/// `1 + erf` cancellation), 1.5e-11 on scalar. Tightened from STYLE.md's
/// `1e-6 + 4e-6·|r|` to rel 1e-6 with a 1e-12 floor, so that an erf off by
/// 1.5e-7 (Abramowitz–Stegun 7.1.26) fails in the negative tail.
pub const GELU_ERF: Tolerance = Tolerance::Rel {
    abs: 1e-12,
    rel: 1e-6,
};

// --- WGSL kernels other than matmul (crates/tensor/src/wgpu/ops.rs) ---
// STYLE.md: WGSL f32 against the CPU f64 reference within
// `1e-5 + 1e-4·|r|` (NMSE ≤ 1e-8); each entry is tightened towards what
// `cargo test -p tensor --test wgpu_ops -- --nocapture` measured on lavapipe
// (llvmpipe, Mesa 22.3.6, LLVM 15.0.6, 256-bit) and keeps headroom for GPU
// drivers whose `exp`/`sqrt` are only as accurate as WGSL requires (exp:
// 3 + 2|x| ulp). Not yet measured on a hardware GPU.
// `add_assign`, copies, gathers and pixel unshuffle are checked `Exact`.

/// `silu_mul` on wgpu. Measured worst |x − r|/|r| = 8.0e-7 (13 ulps; the
/// driver's `exp` is not the CPU's); rel 5e-6 leaves room for drivers at
/// WGSL's `exp` bound (3 + 2|x| ulps: 27 ulps = 1.6e-6 at g = −12).
pub const GPU_SILU_MUL: Tolerance = Tolerance::Rel {
    abs: 1e-30,
    rel: 5e-6,
};
/// `gelu` tanh form on wgpu (`z / (1 + e^(−2u))`). Measured worst
/// |x − r|/|r| = 1.6e-6 over |r| ≥ 1e-6 (max abs 4.8e-7), sweep over
/// [−16, 16). `abs` as the CPU entry: below ~1e-30 the f64 reference's
/// `1 + tanh` rounds to 0 while the kernel keeps the tiny exact value.
pub const GPU_GELU_TANH: Tolerance = Tolerance::Rel {
    abs: 1e-12,
    rel: 1e-5,
};
/// `gelu` erf form on wgpu (Cephes erff / Numerical Recipes erfcc, no
/// Dekker product: WGSL does not promise a fused `fma`). Measured worst
/// |x − r|/|r| = 2.2e-6 over |r| ≥ 1e-6 (max abs 4.8e-7).
pub const GPU_GELU_ERF: Tolerance = Tolerance::Rel {
    abs: 1e-12,
    rel: 1e-5,
};
/// `rms_norm` on wgpu (tree reduction in workgroup memory). Measured worst
/// |x − r|/|r| = 2.4e-7 (d ≤ 2048); rel 2e-6.
pub const GPU_RMS_NORM: Tolerance = Tolerance::Rel {
    abs: 1e-7,
    rel: 2e-6,
};
/// `layer_norm` on wgpu (two passes, tree reductions). Measured worst
/// |x − r| = 7.2e-7 on outputs of magnitude ≤ ~4 (3 ulps; near-zero outputs
/// are the cancellation `(x − mean)·inv·w + b`, hence the absolute term).
pub const GPU_LAYER_NORM: Tolerance = Tolerance::Rel {
    abs: 2e-6,
    rel: 4e-6,
};
/// `rope` on wgpu, against the scale `|a·cos θ| + |b·sin θ|` (the host
/// computes cos/sin of the f32 angles in f64). Measured worst
/// |x − r|/scale = 1.5e-7 (positions ≤ 100 000, hd ≤ 128); rel 1e-6.
pub const GPU_ROPE: Tolerance = Tolerance::GpuDot {
    abs: 1e-30,
    rel: 1e-6,
};
/// `short_conv` on wgpu, against `|C|·Σ|w·bx|`. Measured worst
/// |x − r|/scale = 1.9e-7 (l ≤ 4, d ≤ 65, state carried over 7 calls);
/// rel 2e-6 as the CPU entry. The new state is checked `Exact`.
pub const GPU_SHORT_CONV: Tolerance = Tolerance::GpuDot {
    abs: 1e-7,
    rel: 2e-6,
};
/// `attention` on wgpu (online softmax; decode: key tiles of 64 or 128,
/// t > 1: the tiled kernel's key blocks of ≤ 32). Measured worst max abs 1.3e-7,
/// NMSE 1.1e-13 (inputs uniform in ±1, hd ≤ 256, kv_len ≤ 257); tiled edge
/// shapes 1.8e-7, 5.8e-13. Budgets 5× and 17× (the driver's `exp` may sit
/// at WGSL's bound); other `LFM_TEST_SEED`s reach NMSE 3.5e-12 only on
/// cases of a few near-zero outputs (hd = 1).
pub const GPU_ATTENTION: AttnTolerance = AttnTolerance {
    max_abs: 1e-6,
    score_rel: 0.0,
    nmse: 1e-11,
};
