//! Comparing the engine's outputs with the references: [`compare`] under an
//! element-wise [`Tolerance`] (returning a [`Report`] of the worst errors, or
//! a typed [`Mismatch`] whose `Display` says what went wrong where),
//! [`compare_exact`] for ids, pixels and shapes, and [`unravel`] for messages
//! about shaped tensors.

use std::fmt;

/// Element-wise tolerance: an element passes when `|got - want| <= abs + rel * |want|`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

impl Tolerance {
    pub const fn new(abs: f32, rel: f32) -> Tolerance {
        Tolerance { abs, rel }
    }

    pub const fn abs(abs: f32) -> Tolerance {
        Tolerance { abs, rel: 0.0 }
    }

    pub const fn exact() -> Tolerance {
        Tolerance { abs: 0.0, rel: 0.0 }
    }

    fn allows(&self, got: f32, want: f32) -> bool {
        if got == want {
            return true; // also equal infinities
        }
        let diff = (got - want).abs();
        diff <= self.abs + self.rel * want.abs() // false for NaN
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "abs {:e} + rel {:e}", self.abs, self.rel)
    }
}

/// Statistics of a comparison (returned on success, embedded in a failure).
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub name: String,
    pub len: usize,
    /// max |got - want| and where.
    pub max_abs: f32,
    pub max_abs_index: usize,
    /// max |got - want| / |want| over elements with want != 0, and where.
    pub max_rel: f32,
    pub max_rel_index: usize,
    pub tol: Tolerance,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} values, max abs err {:.3e} at [{}], max rel err {:.3e} at [{}] (tolerance {})",
            self.name,
            self.len,
            self.max_abs,
            self.max_abs_index,
            self.max_rel,
            self.max_rel_index,
            self.tol
        )
    }
}

/// Why a comparison failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Mismatch {
    /// The slices have different lengths.
    Length {
        name: String,
        got: usize,
        want: usize,
    },
    /// Some elements are outside the tolerance (or NaN).
    OutOfTolerance {
        report: Report,
        /// The first failing flat index, with its values.
        first_bad_index: usize,
        got: f32,
        want: f32,
        /// How many elements fail.
        num_bad: usize,
    },
    /// Exact (integer) comparison failed.
    NotEqual {
        name: String,
        first_bad_index: usize,
        got: String,
        want: String,
        num_bad: usize,
        len: usize,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Length { name, got, want } => {
                write!(f, "{name}: length mismatch: got {got} values, want {want}")
            }
            Mismatch::OutOfTolerance {
                report,
                first_bad_index,
                got,
                want,
                num_bad,
            } => write!(
                f,
                "{}: {num_bad} of {} values out of tolerance ({}); first bad index {first_bad_index}: got {got:e}, want {want:e} (diff {:.3e}); max abs err {:.3e} at [{}], max rel err {:.3e} at [{}]",
                report.name,
                report.len,
                report.tol,
                (got - want).abs(),
                report.max_abs,
                report.max_abs_index,
                report.max_rel,
                report.max_rel_index
            ),
            Mismatch::NotEqual {
                name,
                first_bad_index,
                got,
                want,
                num_bad,
                len,
            } => write!(
                f,
                "{name}: {num_bad} of {len} values differ; first at index {first_bad_index}: got {got}, want {want}"
            ),
        }
    }
}

impl std::error::Error for Mismatch {}

/// Compares `got` with the reference `want` element-wise under `tol`.
///
/// NaN in `got` (or `want`) always fails. Returns the error statistics either way.
pub fn compare(name: &str, got: &[f32], want: &[f32], tol: Tolerance) -> Result<Report, Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch::Length {
            name: name.to_string(),
            got: got.len(),
            want: want.len(),
        });
    }
    let mut report = Report {
        name: name.to_string(),
        len: got.len(),
        max_abs: 0.0,
        max_abs_index: 0,
        max_rel: 0.0,
        max_rel_index: 0,
        tol,
    };
    let mut first_bad: Option<usize> = None;
    let mut num_bad = 0usize;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let diff = if g == w { 0.0 } else { (g - w).abs() };
        let diff = if diff.is_nan() { f32::INFINITY } else { diff };
        if diff > report.max_abs {
            report.max_abs = diff;
            report.max_abs_index = i;
        }
        if w != 0.0 {
            let rel = diff / w.abs();
            if rel > report.max_rel {
                report.max_rel = rel;
                report.max_rel_index = i;
            }
        }
        if !tol.allows(g, w) {
            num_bad += 1;
            first_bad.get_or_insert(i);
        }
    }
    match first_bad {
        None => Ok(report),
        Some(i) => Err(Mismatch::OutOfTolerance {
            report,
            first_bad_index: i,
            got: got[i],
            want: want[i],
            num_bad,
        }),
    }
}

/// Exact comparison for ids, pixels and shapes.
pub fn compare_exact<T: PartialEq + fmt::Debug>(
    name: &str,
    got: &[T],
    want: &[T],
) -> Result<(), Mismatch> {
    if got.len() != want.len() {
        return Err(Mismatch::Length {
            name: name.to_string(),
            got: got.len(),
            want: want.len(),
        });
    }
    let mut first: Option<usize> = None;
    let mut num_bad = 0;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        if g != w {
            num_bad += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        None => Ok(()),
        Some(i) => Err(Mismatch::NotEqual {
            name: name.to_string(),
            first_bad_index: i,
            got: format!("{:?}", got[i]),
            want: format!("{:?}", want[i]),
            num_bad,
            len: got.len(),
        }),
    }
}

/// Row-major multi-index of a flat index (for messages about shaped tensors).
pub fn unravel(mut index: usize, shape: &[usize]) -> Vec<usize> {
    let mut out = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        if n == 0 {
            return out;
        }
        out[d] = index % n;
        index /= n;
    }
    out
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn compare_passes_and_reports() {
        let r = compare(
            "x",
            &[1.0, 2.0, 3.0],
            &[1.0, 2.001, 3.0],
            Tolerance::abs(1e-2),
        )
        .unwrap();
        assert_eq!(r.max_abs_index, 1);
        assert!((r.max_abs - 0.001).abs() < 1e-6);
        assert!(r.to_string().contains("max abs err"));
    }

    #[test]
    fn compare_fails_with_first_bad_index() {
        let e = compare(
            "y",
            &[0.0, 5.0, f32::NAN, 1.0],
            &[0.0, 1.0, 1.0, 1.0],
            Tolerance::new(1e-3, 1e-3),
        )
        .unwrap_err();
        match &e {
            Mismatch::OutOfTolerance {
                first_bad_index,
                num_bad,
                ..
            } => {
                assert_eq!(*first_bad_index, 1);
                assert_eq!(*num_bad, 2);
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = e.to_string();
        assert!(msg.contains("first bad index 1"), "{msg}");
        assert!(compare("z", &[1.0], &[1.0, 2.0], Tolerance::exact()).is_err());
    }

    #[test]
    fn exact_and_unravel() {
        assert!(compare_exact("ids", &[1i64, 2, 3], &[1, 2, 3]).is_ok());
        let e = compare_exact("ids", &[1i64, 9, 3], &[1, 2, 3]).unwrap_err();
        assert!(e.to_string().contains("first at index 1"));
        assert_eq!(unravel(7, &[2, 3, 2]), vec![1, 0, 1]);
    }
}
