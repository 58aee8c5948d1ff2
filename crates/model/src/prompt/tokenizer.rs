//! The checkpoint's `tokenizer.json` through the `tokenizers` crate
//! (byte-level BPE with the LFM2 split regex; `fancy-regex` backend for its
//! lookahead). Prompts are encoded with `add_special_tokens = false`, as
//! `Lfm2VlProcessor` does: BOS comes from the chat template.

use std::path::Path;

use super::error::{PromptError, Result};

/// A loaded text tokenizer.
#[derive(Debug, Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
}

impl TextTokenizer {
    /// Loads `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<TextTokenizer> {
        let inner = tokenizers::Tokenizer::from_file(path).map_err(|source| {
            PromptError::TokenizerLoad {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(TextTokenizer { inner })
    }

    /// Wraps an already built tokenizer.
    pub fn from_tokenizer(inner: tokenizers::Tokenizer) -> TextTokenizer {
        TextTokenizer { inner }
    }

    /// Token ids of `text`, without adding special tokens (added tokens in
    /// the text, like `<image>` or `<|im_start|>`, are still matched).
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let enc = self
            .inner
            .encode(text, false)
            .map_err(|source| PromptError::Tokenize { source })?;
        Ok(enc.get_ids().to_vec())
    }

    /// Text of `ids`; `skip_special` drops special tokens.
    pub fn decode(&self, ids: &[u32], skip_special: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special)
            .map_err(|source| PromptError::Tokenize { source })
    }

    /// Id of a token string, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// The underlying `tokenizers` object.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
