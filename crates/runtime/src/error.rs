//! The runtime's error type.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    #[error(transparent)]
    Model(#[from] model::ModelError),
    #[error(transparent)]
    Tensor(#[from] tensor::TensorError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the cached prefix ends inside an image's tokens; reset the session")]
    PrefixSplitsImage,
    #[error("unknown synthetic model {0:?} (use 350m/450m or 1.2b/1.6b)")]
    UnknownSynthetic(String),
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
