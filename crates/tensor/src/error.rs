//! The tensor crate's one error type.

use crate::{DType, Shape};

pub type Result<T, E = TensorError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TensorError {
    #[error("{op}: shape mismatch for {what}: expected {expected}, got {got}")]
    ShapeMismatch {
        op: &'static str,
        what: &'static str,
        expected: Shape,
        got: Shape,
    },
    #[error("{op}: unsupported dtype {dtype} for {what}")]
    UnsupportedDType {
        op: &'static str,
        what: &'static str,
        dtype: DType,
    },
    #[error("host data holds {got} bytes but {dtype} {shape} needs {expected}")]
    ByteLength {
        dtype: DType,
        shape: Shape,
        expected: usize,
        got: usize,
    },
    #[error("{dtype} {shape}: rows of {dtype} must be whole blocks of {block} elements")]
    BlockRows {
        dtype: DType,
        shape: Shape,
        block: usize,
    },
    #[error(
        "CPU tier {requested:?} (LFM_ISA, --isa or CpuOptions::isa) is not {reason} (available on this host: {available})"
    )]
    IsaUnavailable {
        requested: String,
        reason: &'static str,
        available: String,
    },
    #[error("{op} is not implemented by the {backend} backend yet")]
    Unsupported {
        op: &'static str,
        backend: &'static str,
    },
    #[error("{op}: {what} out of range: {value} (limit {limit})")]
    OutOfRange {
        op: &'static str,
        what: &'static str,
        value: usize,
        limit: usize,
    },
    #[error("{format} weights need {needs} (this backend: {have})")]
    WeightFormatUnavailable {
        format: &'static str,
        needs: &'static str,
        have: String,
    },
    #[error("cannot quantize weight row {row} to int8: {reason}")]
    Quantize { row: usize, reason: &'static str },
    #[error("could not build the CPU thread pool: {0}")]
    ThreadPool(String),
    #[error("no GPU adapter found{0}")]
    NoAdapter(String),
    #[error("GPU {what} failed: {detail}")]
    Gpu { what: &'static str, detail: String },
    #[error("shader {shader} is invalid: {detail}")]
    Shader {
        shader: &'static str,
        detail: String,
    },
}
