//! Our tokenizer as llguidance sees it: each token's bytes in a trie
//! (`TokTrie`) and a way to tokenize text (`TokenizerEnv`).
//!
//! A token's bytes come from its vocabulary string by the decoder's rule:
//! byte-level BPE maps GPT-2's printable stand-ins back to bytes,
//! SentencePiece byte fallback reads `<0xNN>` and turns `▁` into a space,
//! anything else (word-level) is the string's UTF-8. Special added tokens
//! (`<|im_end|>`, `<|tool_call_start|>`, …) carry llguidance's
//! `SPECIAL_TOKEN_MARKER` first, so no text ever matches them and a
//! grammar names them as `<|…|>`. Ids past the tokenizer (a model's padded
//! vocabulary) have no bytes: no constraint ever allows them.

use std::collections::HashMap;

use llguidance::toktrie::{TokRxInfo, TokTrie, TokenId, TokenizerEnv};
use model::prompt::TextTokenizer;
use serde_json::Value;

/// How vocabulary strings spell bytes (from the tokenizer's decoder).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Spelling {
    /// GPT-2 byte-level BPE (LFM2's tokenizer).
    ByteLevel,
    /// SentencePiece: `<0xNN>` byte tokens, `space` stands for ' '.
    ByteFallback { space: char },
    /// The string is the text (word-level tokenizers).
    Plain,
}

/// The spelling a decoder (as `tokenizer.json` writes it) implies.
fn spelling(decoder: &Value) -> Spelling {
    let mut found = Spelling::Plain;
    let mut space = None;
    let mut visit = |d: &Value| match d["type"].as_str() {
        Some("ByteLevel") => found = Spelling::ByteLevel,
        Some("ByteFallback") if found == Spelling::Plain => {
            found = Spelling::ByteFallback { space: '▁' }
        }
        Some("Metaspace") => {
            let c = d["replacement"].as_str().and_then(|s| s.chars().next());
            space = c.or(Some('▁'));
        }
        Some("Replace") if d["content"].as_str() == Some(" ") => {
            let s = d["pattern"]["String"].as_str().unwrap_or_default();
            let mut chars = s.chars();
            if let (Some(c), None) = (chars.next(), chars.next()) {
                space = Some(c);
            }
        }
        _ => {}
    };
    match decoder["decoders"].as_array() {
        Some(all) => all.iter().for_each(&mut visit),
        None => visit(decoder),
    }
    match (found, space) {
        (Spelling::ByteFallback { .. }, Some(c)) => Spelling::ByteFallback { space: c },
        (f, _) => f,
    }
}

/// GPT-2's byte-level table: the printable character each byte is written
/// as in a byte-level vocabulary (`Ġ` for the space, `Ċ` for the newline).
pub(crate) fn byte_level_char(b: u8) -> char {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    if printable(b) {
        return b as char;
    }
    // The others take 256, 257, … in byte order.
    let before = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + before).unwrap_or('\u{FFFD}')
}

/// [`byte_level_char`] inverted: character → byte.
fn byte_level_chars() -> HashMap<char, u8> {
    (0..=255u8).map(|b| (byte_level_char(b), b)).collect()
}

/// Every token's bytes, for ids `0..n_vocab` (empty: never allowed).
pub(crate) fn token_bytes(tok: &TextTokenizer, n_vocab: usize) -> Vec<Vec<u8>> {
    let hf = tok.inner();
    let decoder = hf
        .get_decoder()
        .and_then(|d| serde_json::to_value(d).ok())
        .unwrap_or(Value::Null);
    let spelling = spelling(&decoder);
    let chars = byte_level_chars();
    let added = hf.get_added_tokens_decoder();
    (0..n_vocab as u32)
        .map(|id| {
            if let Some(a) = added.get(&id) {
                let mut b = a.content.as_bytes().to_vec();
                if a.special {
                    b.insert(0, TokTrie::SPECIAL_TOKEN_MARKER);
                }
                return b;
            }
            let Some(s) = hf.id_to_token(id) else {
                return Vec::new();
            };
            match spelling {
                // A character outside the table: not a byte-level token
                // after all; leave it unreachable rather than guess.
                Spelling::ByteLevel => s
                    .chars()
                    .map(|c| chars.get(&c).copied())
                    .collect::<Option<Vec<u8>>>()
                    .unwrap_or_default(),
                Spelling::ByteFallback { space } => {
                    let hex = s.strip_prefix("<0x").and_then(|h| h.strip_suffix('>'));
                    match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) if s.len() == 6 => vec![b],
                        _ => s.replace(space, " ").into_bytes(),
                    }
                }
                Spelling::Plain => s.into_bytes(),
            }
        })
        .collect()
}

/// The tokenizer llguidance drives: the trie plus our tokenizer for text
/// it forces.
pub(crate) struct Vocab {
    trie: TokTrie,
    tok: TextTokenizer,
}

impl Vocab {
    /// `n_vocab`: the model's vocabulary (the logits' length); `eos`: the
    /// ids that end a generation, the ones a finished constraint allows.
    /// `None` when no `eos` id is in the vocabulary.
    pub(crate) fn new(tok: &TextTokenizer, n_vocab: usize, eos: &[u32]) -> Option<Vocab> {
        let eos: Vec<u32> = eos
            .iter()
            .copied()
            .filter(|&e| (e as usize) < n_vocab)
            .collect();
        let first = *eos.first()?;
        let words = token_bytes(tok, n_vocab);
        let info = TokRxInfo::new(n_vocab as u32, first);
        let trie = TokTrie::from(&info, &words).with_eos_tokens(&eos);
        Some(Vocab {
            trie,
            tok: tok.clone(),
        })
    }
}

impl TokenizerEnv for Vocab {
    fn tok_trie(&self) -> &TokTrie {
        &self.trie
    }

    /// Our tokenizer's ids for text; bytes that are not UTF-8 (or text it
    /// cannot encode) fall back to the trie's longest-match tokenization.
    fn tokenize_bytes(&self, s: &[u8]) -> Vec<TokenId> {
        std::str::from_utf8(s)
            .ok()
            .and_then(|t| self.tok.encode(t).ok())
            .unwrap_or_else(|| self.trie.greedy_tokenize(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decoders_give_their_spelling() {
        assert_eq!(spelling(&json!({"type": "ByteLevel"})), Spelling::ByteLevel);
        assert_eq!(spelling(&Value::Null), Spelling::Plain);
        let sp = json!({"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"}]});
        assert_eq!(spelling(&sp), Spelling::ByteFallback { space: '▁' });
    }

    #[test]
    fn the_byte_level_table_is_a_bijection() {
        let t = byte_level_chars();
        assert_eq!(t.len(), 256);
        let mut bytes: Vec<u8> = t.values().copied().collect();
        bytes.sort_unstable();
        bytes.dedup();
        assert_eq!(bytes.len(), 256);
        // GPT-2's well-known stand-ins: 'Ġ' is the space, 'Ċ' the newline.
        assert_eq!(t[&'Ġ'], b' ');
        assert_eq!(t[&'Ċ'], b'\n');
        assert_eq!(t[&'a'], b'a');
    }
}
