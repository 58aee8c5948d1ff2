//! The model crate's top-level error: loading, config, shapes, and the
//! errors of the tensor engine, preprocessing and prompt building.

use std::path::PathBuf;

use tensor::{DType, Shape, TensorError};

pub type Result<T, E = ModelError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: invalid JSON: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}: not a valid safetensors file: {detail}")]
    Safetensors { path: PathBuf, detail: String },
    /// (`kind` is in the message, not the source chain: printed as a cause
    /// chain it would show twice.)
    #[error("{path}: {kind}")]
    Gguf {
        path: PathBuf,
        kind: crate::weights::gguf::GgufError,
    },
    #[error("config field `{field}`: {detail}")]
    Config { field: String, detail: String },
    #[error("tensor `{name}` is missing from {files}")]
    MissingTensor { name: String, files: String },
    #[error("tensor `{name}` has shape {got}, expected {expected}")]
    TensorShape {
        name: String,
        expected: Shape,
        got: Shape,
    },
    #[error("tensor `{name}` has unsupported dtype {dtype}")]
    TensorDType { name: String, dtype: String },
    #[error("tensor `{name}` appears in both {first} and {second}")]
    DuplicateTensor {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{count} tensor(s) in the checkpoint were not used by the model: {names}")]
    UnusedTensors { count: usize, names: String },
    #[error("tied weights differ: `{name}` is stored but not equal to `{tied_to}`")]
    TiedMismatch { name: String, tied_to: String },
    #[error(
        "the prompt has {slots} <image> token(s) but the images give {features} feature row(s)"
    )]
    ImageTokenCount { slots: usize, features: usize },
    #[error("the prompt is empty")]
    EmptyPrompt,
    #[error("sequence of {needed} tokens exceeds the context of {limit}")]
    ContextOverflow { needed: usize, limit: usize },
    #[error("weight `{name}` has dtype {dtype}, which this op cannot use")]
    WeightDType { name: String, dtype: DType },
    /// A batched decode step was given sequences that don't fit it (their
    /// count, or caches of another model).
    #[error("batched decode: {0}")]
    Batch(String),
    /// A recorded run ([`crate::text::Recorder`]) asked for more rows than
    /// it holds, or a rewind outside what it recorded.
    #[error("speculative decoding: {0}")]
    Rewind(String),
    #[error(transparent)]
    Tensor(#[from] TensorError),
    #[error(transparent)]
    Preprocess(#[from] crate::preprocess::PreprocessError),
    #[error(transparent)]
    Prompt(#[from] crate::prompt::PromptError),
}

impl ModelError {
    pub(crate) fn config(field: impl Into<String>, detail: impl Into<String>) -> Self {
        ModelError::Config {
            field: field.into(),
            detail: detail.into(),
        }
    }
}
