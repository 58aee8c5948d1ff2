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
    #[error("invalid sampling settings: {0}")]
    Sampling(String),
    #[error("model {spec:?} not found: {detail}")]
    ModelNotFound { spec: String, detail: String },
    /// A backend that is unknown or can't be used here.
    #[error("backend {0:?}: {1}")]
    Backend(String, String),
    #[error("{count} image(s) given but the messages have {slots} image item(s)")]
    ImageCount { count: usize, slots: usize },
    #[error("{model} cannot take images: {hint}")]
    NoVisionTower { model: String, hint: String },
    #[error("the cached prefix ends inside an image's tokens; reset the session")]
    PrefixSplitsImage,
    #[error("benchmark: {0}")]
    Bench(String),
    #[error("no prompt to prefill (Session::start takes one)")]
    NothingToPrefill,
    #[error("unknown synthetic model {0:?} (use 350m/450m, 1.2b/1.6b or 2.6b/3b)")]
    UnknownSynthetic(String),
    /// Speculative decoding settings or a draft model that can't serve.
    #[error("speculative decoding: {0}")]
    Speculative(String),
    /// A structured-output constraint that can't be compiled, or a parser
    /// failure while generating under one.
    #[error("constraint: {0}")]
    Constraint(String),
    /// The reply holds a tool call that does not parse.
    #[error("the model wrote a tool call that does not parse: {0}")]
    ToolCall(#[from] crate::tools::CallSyntaxError),
    /// `tools` or `tool_choice` that can't be used.
    #[error(transparent)]
    Tools(#[from] crate::tools::ToolsError),
    #[error("draft model {spec}")]
    DraftModel {
        spec: String,
        #[source]
        source: Box<RuntimeError>,
    },
}

pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;

/// An error and its causes on one line, `: `-separated (a cause the message
/// already quotes is not repeated): for C callers and Python exceptions.
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
