//! The tokenizer and chat template of a GGUF file, rebuilt from its
//! `tokenizer.*` metadata as the `tokenizer.json` llama.cpp's converter read
//! (`TextModel._set_vocab_gpt2`): byte-level BPE over `tokenizer.ggml.tokens`
//! (ids = positions; `UNUSED` padding entries left out) and
//! `tokenizer.ggml.merges`, the LFM2 split regex for `tokenizer.ggml.pre =
//! "lfm2"` (llama.cpp maps it to its LLAMA3 pre-tokenizer; the regex below
//! is the original one from LFM2's `tokenizer.json`, which llama.cpp's
//! adapted form is equivalent to), `CONTROL` and `USER_DEFINED` entries as
//! added tokens (`CONTROL` = special), BOS prepended when
//! `tokenizer.ggml.add_bos_token` (prompts are encoded without special
//! tokens either way, as the processor does).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::error::{PromptError, Result};
use super::{ChatTemplate, PromptBuilder, TextTokenizer};
use crate::weights::gguf::{GgufFile, Metadata};

/// LFM2's pre-tokenizer split regex (`tokenizer.json`, `Split` / `Isolated`).
pub const LFM2_SPLIT_REGEX: &str = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// `tokenizer.ggml.pre` values that use [`LFM2_SPLIT_REGEX`] (llama.cpp's
/// LLAMA3 group; LFM2's is "lfm2").
const PRE_LFM2: &[&str] = &["lfm2", "llama3", "llama-v3", "llama-bpe"];

/// llama.cpp token types (`llama_token_type`).
const TOKEN_CONTROL: i64 = 3;
const TOKEN_USER_DEFINED: i64 = 4;
const TOKEN_UNUSED: i64 = 5;

fn bad(key: &str, detail: impl Into<String>) -> PromptError {
    PromptError::GgufVocab {
        key: key.into(),
        detail: detail.into(),
    }
}

fn strings<'a>(m: &'a Metadata, key: &str) -> Result<Vec<&'a str>> {
    let a = m.array(key).map_err(|e| bad(key, e.to_string()))?;
    a.iter()
        .enumerate()
        .map(|(i, v)| {
            v.as_str()
                .ok_or_else(|| bad(key, format!("entry {i} is not a string")))
        })
        .collect()
}

/// A token id from `key`, checked against the vocabulary.
fn id(m: &Metadata, key: &str, n: usize) -> Result<Option<usize>> {
    let Some(v) = m.get(key) else { return Ok(None) };
    let i = v
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
        .ok_or_else(|| bad(key, "not a token id"))?;
    if i >= n {
        return Err(bad(key, format!("id {i} is outside the vocabulary of {n}")));
    }
    Ok(Some(i))
}

/// The `tokenizer.json` equivalent of the metadata.
pub fn tokenizer_json(m: &Metadata) -> Result<Value> {
    let model = m
        .str("tokenizer.ggml.model")
        .map_err(|e| bad("tokenizer.ggml.model", e.to_string()))?;
    if model != "gpt2" {
        return Err(bad(
            "tokenizer.ggml.model",
            format!("{model:?}: only byte-level BPE (\"gpt2\") is supported"),
        ));
    }
    let pre = m
        .str_opt("tokenizer.ggml.pre")
        .map_err(|e| bad("tokenizer.ggml.pre", e.to_string()))?
        .unwrap_or("default");
    if !PRE_LFM2.contains(&pre) {
        return Err(bad(
            "tokenizer.ggml.pre",
            format!("{pre:?}: only the LFM2 pre-tokenizer (\"lfm2\") is supported"),
        ));
    }
    let tokens = strings(m, "tokenizer.ggml.tokens")?;
    let n = tokens.len();
    let types: Vec<i64> = match m.get("tokenizer.ggml.token_type") {
        None => vec![1; n],
        Some(v) => {
            let key = "tokenizer.ggml.token_type";
            let a = v.as_array().ok_or_else(|| bad(key, "not an array"))?;
            if a.len() != n {
                return Err(bad(key, format!("{} entries for {n} tokens", a.len())));
            }
            a.iter()
                .map(|t| t.as_i64().ok_or_else(|| bad(key, "not an integer")))
                .collect::<Result<_>>()?
        }
    };
    let merges = strings(m, "tokenizer.ggml.merges")?;
    let mut vocab = serde_json::Map::new();
    let mut added = Vec::new();
    for (i, (&tok, &ty)) in tokens.iter().zip(&types).enumerate() {
        if ty == TOKEN_UNUSED || vocab.contains_key(tok) {
            continue;
        }
        vocab.insert(tok.to_string(), json!(i));
        if ty == TOKEN_CONTROL || ty == TOKEN_USER_DEFINED {
            added.push(json!({
                "id": i, "content": tok, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": ty == TOKEN_CONTROL,
            }));
        }
    }
    let bos = id(m, "tokenizer.ggml.bos_token_id", n)?;
    let add_bos = m
        .bool_opt("tokenizer.ggml.add_bos_token")
        .map_err(|e| bad("tokenizer.ggml.add_bos_token", e.to_string()))?
        .unwrap_or(false);
    let post = match (add_bos, bos) {
        (true, Some(b)) => {
            let t = tokens[b];
            json!({
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                         {"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}}],
                "special_tokens": {t: {"id": t, "ids": [b], "tokens": [t]}},
            })
        }
        _ => Value::Null,
    };
    Ok(json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": LFM2_SPLIT_REGEX}, "behavior": "Isolated", "invert": false},
            {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false},
        ]},
        "post_processor": post,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
            "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
            "ignore_merges": false, "vocab": vocab, "merges": merges,
        },
    }))
}

impl TextTokenizer {
    /// The tokenizer described by a GGUF file's metadata (module doc).
    pub fn from_gguf(m: &Metadata) -> Result<TextTokenizer> {
        let json = tokenizer_json(m)?.to_string();
        let inner: tokenizers::Tokenizer = json
            .parse()
            .map_err(|source| PromptError::Tokenize { source })?;
        Ok(TextTokenizer::from_tokenizer(inner))
    }
}

/// The `*_token` strings of the metadata's special ids, as the chat
/// template sees them (`bos_token`, `eos_token`, …).
pub fn special_tokens(m: &Metadata) -> Result<BTreeMap<String, String>> {
    let tokens = strings(m, "tokenizer.ggml.tokens")?;
    let mut out = BTreeMap::new();
    for (var, key) in [
        ("bos_token", "tokenizer.ggml.bos_token_id"),
        ("eos_token", "tokenizer.ggml.eos_token_id"),
        ("pad_token", "tokenizer.ggml.padding_token_id"),
        ("unk_token", "tokenizer.ggml.unknown_token_id"),
    ] {
        if let Some(i) = id(m, key, tokens.len())? {
            out.insert(var.to_string(), tokens[i].to_string());
        }
    }
    Ok(out)
}

impl PromptBuilder {
    /// Tokenizer and chat template (`tokenizer.chat_template`) of a GGUF
    /// file; without one, LFM2-VL's ([`super::LFM2_CHAT_TEMPLATE`], with a
    /// warning).
    pub fn from_gguf(f: &GgufFile) -> Result<PromptBuilder> {
        let m = f.metadata();
        let source = m
            .str_opt("tokenizer.chat_template")
            .map_err(|e| bad("tokenizer.chat_template", e.to_string()))?
            .unwrap_or_else(|| {
                tracing::warn!(
                    file = %f.path().display(),
                    "no tokenizer.chat_template in the GGUF: using LFM2-VL's"
                );
                super::LFM2_CHAT_TEMPLATE
            });
        let template = ChatTemplate::new(source, special_tokens(m)?)?;
        Ok(PromptBuilder::new(template, TextTokenizer::from_gguf(m)?))
    }
}
