//! Constrained decoding: a JSON schema, a regex or a Lark grammar decides,
//! token by token, which tokens may come next; the sampler draws only
//! among those (llguidance computes the masks from our tokenizer's trie).
//!
//! [`Grammars`] is built once per model (the trie and llguidance's token
//! slices), [`Grammars::compile`] turns a [`Constraint`] into a
//! [`Constrained`] for one generation, and the [`crate::sampling::Sampler`]
//! holding it masks the logits before each draw and advances the parser
//! with the token drawn. When the constraint is complete the only tokens
//! allowed are the stop ids, so generation ends with `stop`; a `length`
//! finish leaves the output cut short.

pub(crate) mod vocab;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use llguidance::api::TopLevelGrammar;
use llguidance::{Matcher, ParserFactory};
use model::prompt::{PromptBuilder, TextTokenizer};
use serde_json::{Value, json};

use crate::error::{Result, RuntimeError};

/// What the output must match.
#[derive(Clone, Debug, PartialEq)]
pub enum Constraint {
    /// Any JSON object (OpenAI's `response_format: {"type": "json_object"}`).
    JsonObject,
    /// JSON valid under `schema`. `strict`: a keyword the compiler does
    /// not support is an error; otherwise it is ignored (with a warning).
    JsonSchema { schema: Value, strict: bool },
    /// Text the regex matches whole (Rust `regex` syntax, no look-around).
    Regex(String),
    /// A Lark grammar in llguidance's dialect (`start` rule; may embed
    /// `%json{…}` schemas, regexes and special tokens as `<|…|>`).
    Lark(String),
}

impl Constraint {
    /// A short name for messages: `json_schema`, `regex`, …
    pub fn kind(&self) -> &'static str {
        match self {
            Constraint::JsonObject => "json_object",
            Constraint::JsonSchema { .. } => "json_schema",
            Constraint::Regex(_) => "regex",
            Constraint::Lark(_) => "grammar",
        }
    }

    /// The grammar llguidance compiles. JSON is written compactly with
    /// Python's `json.dumps` separators (`", "`, `": "`) and no other
    /// whitespace, unless the schema sets its own `x-guidance` options.
    fn grammar(&self) -> TopLevelGrammar {
        let schema = |mut s: Value, lenient: bool| {
            compact_json(&mut s, lenient);
            TopLevelGrammar::from_json_schema(s)
        };
        match self {
            Constraint::JsonObject => schema(json!({"type": "object"}), false),
            Constraint::JsonSchema { schema: s, strict } => schema(s.clone(), !strict),
            Constraint::Regex(r) => TopLevelGrammar::from_regex(r),
            Constraint::Lark(g) => TopLevelGrammar::from_lark(g.clone()),
        }
    }
}

/// Gives `schema` llguidance's options for compact JSON (Python's
/// separators, no other whitespace; `lenient`: unsupported keywords
/// ignored), unless it sets its own `x-guidance`.
pub(crate) fn compact_json(schema: &mut Value, lenient: bool) {
    if let Some(obj) = schema.as_object_mut()
        && !obj.contains_key("x-guidance")
    {
        obj.insert(
            "x-guidance".into(),
            json!({"whitespace_flexible": false, "item_separator": ", ",
                   "key_separator": ": ", "lenient": lenient}),
        );
    }
}

/// The constraint compiler of one model's tokenizer: build once, share.
pub struct Grammars {
    factory: ParserFactory,
}

impl std::fmt::Debug for Grammars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grammars").finish_non_exhaustive()
    }
}

impl Grammars {
    /// For `tok` over a model vocabulary of `n_vocab` ids; `stop_ids` are
    /// the tokens a complete output ends with.
    pub fn new(tok: &TextTokenizer, n_vocab: usize, stop_ids: &[u32]) -> Result<Grammars> {
        let vocab = vocab::Vocab::new(tok, n_vocab, stop_ids).ok_or_else(|| {
            RuntimeError::Constraint("the model has no stop token in its vocabulary".into())
        })?;
        let mut factory = ParserFactory::new_simple(&(Arc::new(vocab) as _))
            .map_err(|e| RuntimeError::Constraint(format!("tokenizer: {e}")))?;
        factory.quiet();
        Ok(Grammars { factory })
    }

    /// `c` compiled for one generation. An invalid or unsupported schema,
    /// regex or grammar, or one no text satisfies, is an error here,
    /// before anything runs.
    pub fn compile(&self, c: &Constraint) -> Result<Constrained> {
        let bad = |e: String| RuntimeError::Constraint(format!("{}: {e}", c.kind()));
        let parser = self
            .factory
            .create_parser(c.grammar())
            .map_err(|e| bad(e.to_string()))?;
        let mut matcher = Matcher::new(Ok(parser));
        for w in matcher.grammar_warnings() {
            tracing::warn!(constraint = c.kind(), "{w}");
        }
        // The first mask: none (the parser stops at once, its message a
        // dump of its state) or an empty one means no output satisfies it.
        let empty = || bad("no output satisfies it".into());
        let first = matcher.compute_mask().map_err(|_| empty())?;
        if first.is_zero() {
            return Err(empty());
        }
        let stops = self.factory.tok_env().tok_trie().eos_token_set();
        Ok(Constrained {
            matcher,
            stops,
            pending: Some(first),
            stats: ConstraintStats::default(),
            error: None,
        })
    }
}

/// Time spent computing masks, for reports and benches.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConstraintStats {
    pub masks: usize,
    /// Computing and applying the masks.
    pub mask_time: Duration,
    /// Advancing the parser by the tokens drawn.
    pub advance_time: Duration,
}

/// One generation's constraint state (see [`Grammars::compile`]).
pub struct Constrained {
    matcher: Matcher,
    /// The stop ids (all a failed parser allows).
    stops: llguidance::toktrie::SimpleVob,
    /// A mask computed ahead (the first one, at compile time).
    pending: Option<llguidance::toktrie::SimpleVob>,
    pub stats: ConstraintStats,
    /// What went wrong inside the parser, if anything did: from then on
    /// only the stop ids are allowed and the caller reports it.
    error: Option<String>,
}

impl std::fmt::Debug for Constrained {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constrained")
            .field("stats", &self.stats)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl Constrained {
    /// Sets the logit of every token the constraint forbids next to −inf
    /// (after a complete output: every token but the stop ids).
    pub fn mask(&mut self, logits: &mut [f32]) {
        // Computing it, if not done ahead, counts its own time.
        self.prepare();
        let t0 = Instant::now();
        match self.pending.take() {
            Some(m) => apply_mask(m.as_slice(), logits),
            // The parser failed: only the stop ids.
            None => apply_mask(self.stops.as_slice(), logits),
        }
        self.stats.masks += 1;
        self.stats.mask_time += t0.elapsed();
    }

    /// Computes the next mask now (see [`overlapped`]); [`Constrained::mask`]
    /// then only applies it.
    pub fn prepare(&mut self) {
        if self.pending.is_some() || self.error.is_some() {
            return;
        }
        let t0 = Instant::now();
        match self.matcher.compute_mask_or_eos() {
            Ok(m) => self.pending = Some(m),
            Err(e) => self.error = Some(e.to_string()),
        }
        self.stats.mask_time += t0.elapsed();
    }

    /// Advances the parser by the token drawn. After a complete output
    /// (the parser stopped) the only token drawn is a stop id, which ends
    /// generation: nothing to advance.
    pub fn accept(&mut self, id: u32) {
        let t0 = Instant::now();
        if self.error.is_none()
            && !self.matcher.is_stopped()
            && let Err(e) = self.matcher.consume_token(id)
        {
            self.error = Some(e.to_string());
        }
        self.stats.advance_time += t0.elapsed();
    }

    /// How many of `drafts` the constraint allows in a row from here
    /// (the parser does not move).
    pub fn valid_prefix(&mut self, drafts: &[u32]) -> usize {
        if self.error.is_some() {
            return 0;
        }
        self.matcher.validate_tokens(drafts).unwrap_or(0)
    }

    /// Whether the output so far is a complete match.
    pub fn is_complete(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }

    /// The parser's error, if one happened.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// Sets `logits[i]` to −inf where bit `i` of `words` (32 ids a word, low
/// bit first) is clear; ids past the words are forbidden.
fn apply_mask(words: &[u32], logits: &mut [f32]) {
    for (w, chunk) in logits.chunks_mut(32).enumerate() {
        match words.get(w).copied().unwrap_or(0) {
            u32::MAX => {}
            // Most words under a constraint: nothing allowed.
            0 => chunk.fill(f32::NEG_INFINITY),
            bits => {
                for (b, z) in chunk.iter_mut().enumerate() {
                    if bits & (1 << b) == 0 {
                        *z = f32::NEG_INFINITY;
                    }
                }
            }
        }
    }
}

/// Runs `forward` (a forward pass) on this thread while the next masks of
/// `cs` are computed on another: the mask of the position whose logits the
/// pass computes depends only on tokens already drawn, so on a GPU it
/// costs no time at all, and on the CPU it takes a core's share.
pub fn overlapped<T>(cs: &mut [&mut Constrained], forward: impl FnOnce() -> T) -> T {
    if cs.is_empty() {
        return forward();
    }
    std::thread::scope(|sc| {
        // No thread to be had: the masks are computed inline, later.
        let masks = std::thread::Builder::new()
            .name("lfm2vl-mask".into())
            .spawn_scoped(sc, || cs.iter_mut().for_each(|c| c.prepare()));
        let out = forward();
        // A panic inside the parser: its mask is computed again, inline.
        if let Ok(m) = masks {
            let _ = m.join();
        }
        out
    })
}

/// [`Grammars`] built on first use (building the trie and token slices
/// takes a while for a large vocabulary) and shared by every clone: an
/// engine, its forks and their prompters hold one.
#[derive(Clone)]
pub struct GrammarCache {
    inner: Arc<CacheInner>,
}

struct CacheInner {
    prompt: Arc<PromptBuilder>,
    n_vocab: usize,
    stop_ids: Vec<u32>,
    built: OnceLock<std::result::Result<Grammars, String>>,
}

impl std::fmt::Debug for GrammarCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrammarCache")
            .field("n_vocab", &self.inner.n_vocab)
            .field("built", &self.inner.built.get().is_some())
            .finish()
    }
}

impl GrammarCache {
    /// For the tokenizer of `prompt`, a model vocabulary of `n_vocab`
    /// ids and the `stop_ids` a complete output ends with.
    pub fn new(prompt: Arc<PromptBuilder>, n_vocab: usize, stop_ids: Vec<u32>) -> Self {
        GrammarCache {
            inner: Arc::new(CacheInner {
                prompt,
                n_vocab,
                stop_ids,
                built: OnceLock::new(),
            }),
        }
    }

    /// The compiler, built now if it was not yet.
    pub fn grammars(&self) -> Result<&Grammars> {
        let i = &*self.inner;
        let built = i.built.get_or_init(|| {
            let t0 = Instant::now();
            let g = Grammars::new(i.prompt.tokenizer(), i.n_vocab, &i.stop_ids);
            tracing::debug!(elapsed = ?t0.elapsed(), "constraint compiler built");
            g.map_err(|e| e.to_string())
        });
        built
            .as_ref()
            .map_err(|e| RuntimeError::Constraint(e.clone()))
    }

    /// [`Grammars::compile`] on the shared compiler.
    pub fn compile(&self, c: &Constraint) -> Result<Constrained> {
        self.grammars()?.compile(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_forbid_exactly_the_clear_bits() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 32) as u32
        };
        for n in [0usize, 1, 31, 32, 33, 64, 65, 100] {
            for fill in [0u32, u32::MAX, 1] {
                let words: Vec<u32> = (0..n.div_ceil(32).saturating_sub(usize::from(n > 64)))
                    .map(|k| match (fill, k % 3) {
                        (1, _) => next(),
                        (f, 0) => f,
                        (_, 1) => !0,
                        _ => 0,
                    })
                    .collect();
                let mut got: Vec<f32> = (0..n).map(|i| i as f32).collect();
                apply_mask(&words, &mut got);
                for (i, z) in got.iter().enumerate() {
                    let allowed = words.get(i / 32).is_some_and(|w| w >> (i % 32) & 1 == 1);
                    let want = if allowed { i as f32 } else { f32::NEG_INFINITY };
                    assert_eq!(z.to_bits(), want.to_bits(), "n {n} fill {fill} id {i}");
                }
            }
        }
    }
}
