//! Errors of prompt building: loading the template and tokenizer, rendering,
//! image/placeholder count checks and the context limit.

use std::path::PathBuf;

/// Boxed error of the `tokenizers` crate.
pub type TokenizerError = Box<dyn std::error::Error + Send + Sync>;

/// Everything that can go wrong between chat messages and prompt ids.
#[derive(Debug, thiserror::Error)]
pub enum PromptError {
    /// A checkpoint file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A JSON file of the checkpoint is malformed.
    #[error("parsing {path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Chat messages given as JSON do not have the transformers shape.
    #[error("chat messages: {source}")]
    Messages {
        #[source]
        source: serde_json::Error,
    },
    /// The checkpoint has no chat template (`chat_template.jinja`,
    /// `chat_template.json`, or a `chat_template` field).
    #[error("no chat template in {dir}")]
    TemplateMissing { dir: PathBuf },
    /// The chat template does not compile or fails to render.
    #[error("chat template: {source}")]
    Template {
        #[source]
        source: minijinja::Error,
    },
    /// `tokenizer.json` could not be loaded.
    #[error("loading tokenizer {path}: {source}")]
    TokenizerLoad {
        path: PathBuf,
        #[source]
        source: TokenizerError,
    },
    /// A GGUF file's `tokenizer.*` metadata cannot be turned into a tokenizer.
    #[error("GGUF tokenizer metadata `{key}`: {detail}")]
    GgufVocab { key: String, detail: String },
    /// Tokenization failed.
    #[error("tokenizing the prompt: {source}")]
    Tokenize {
        #[source]
        source: TokenizerError,
    },
    /// A token the processor needs is not in the vocabulary.
    #[error("token {token:?} is not in the tokenizer's vocabulary")]
    MissingToken { token: String },
    /// The rendered prompt has a different number of `<image>` placeholders
    /// than images were given.
    #[error(
        "the prompt has {placeholders} <image> placeholder(s) but {images} image(s) were given"
    )]
    ImageCountMismatch { placeholders: usize, images: usize },
    /// After tokenization, the `<image>` ids do not number what the images need.
    #[error("the prompt ids hold {found} <image> tokens, the images need {expected}")]
    ImageTokenCountMismatch { expected: usize, found: usize },
    /// The prompt does not fit the context.
    #[error("the prompt is {tokens} tokens, longer than the context of {max}")]
    PromptTooLong { tokens: usize, max: usize },
}

/// Result alias of the prompt module.
pub type Result<T, E = PromptError> = std::result::Result<T, E>;
