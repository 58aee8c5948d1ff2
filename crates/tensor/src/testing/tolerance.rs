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
}

pub const MATMUL: Tolerance = Tolerance::Dot {
    abs: 1e-6,
    rel: 1e-5,
};
pub const GPU_MATMUL: Tolerance = Tolerance::GpuDot {
    abs: 1e-5,
    rel: 1e-4,
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
}

impl Tolerance {
    /// Checks `got` against `want`; `scale[i]` is the class's magnitude for
    /// element `i` (Σ|aᵢbᵢ| for dot classes; ignored for `Exact`).
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
            };
            let ok = same_nan
                || match self {
                    Tolerance::Exact => g.to_bits() == w.to_bits(),
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
                let s = if self == Tolerance::Exact {
                    w.abs() as f64
                } else {
                    scale[i]
                };
                if s > 0.0 {
                    st.max_rel = st.max_rel.max(err / s);
                }
            }
        }
        Ok(st)
    }
}
