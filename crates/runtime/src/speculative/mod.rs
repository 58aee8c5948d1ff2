//! Exact speculative decoding (issue 25). A drafter proposes the next few
//! tokens; the target runs its last sampled token and the drafts as one
//! chunk whose every row is exactly a decode step
//! ([`model::text::TextModel::run_recorded`]), keeps the drafts it agrees
//! with ([`crate::sampling::Sampler::judge`]: greedy, the argmax; sampling,
//! the rejection rule, so the output is distributed as the target's), and
//! rewinds its KV cache and conv states to the accepted position
//! ([`model::text::TextModel::rewind`]). On a memory-bound decode, the
//! chunk costs about one step while it can yield up to `draft_max + 1`
//! tokens.
//!
//! Drafters: [`Ngram`] (prompt lookup: what followed the latest earlier
//! occurrence of the last few tokens; no second model), [`DraftModel`] (a
//! smaller model sharing the tokenizer, run greedily; it sees an image's
//! `<image>` placeholder tokens as text, never the image) and [`Replay`]
//! (tokens known in advance: benchmarks and tests).

mod decode;
mod draft;

use std::str::FromStr;

pub use self::decode::SpecCounts;
pub(crate) use self::decode::judge;
pub use self::draft::DraftModel;
use crate::error::{Result, RuntimeError};

/// Drafted tokens per step at most: the verify chunk (the last token and
/// the drafts) fits [`model::text::MAX_VERIFY_ROWS`].
pub const MAX_DRAFT: usize = model::text::MAX_VERIFY_ROWS - 1;

/// Where drafts come from (`--speculative ngram|draft:PATH`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DraftSource {
    /// Prompt lookup ([`Ngram`]).
    Ngram,
    /// A draft model (folder, `.gguf` file or hub id) sharing the
    /// target's tokenizer ([`DraftModel`]).
    Model(String),
}

impl FromStr for DraftSource {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "ngram" => Ok(DraftSource::Ngram),
            _ => match s.strip_prefix("draft:") {
                Some(path) if !path.is_empty() => Ok(DraftSource::Model(path.into())),
                _ => Err(RuntimeError::Speculative(format!(
                    "unknown draft source {s:?} (use ngram or draft:PATH)"
                ))),
            },
        }
    }
}

/// Speculative decoding settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpeculativeConfig {
    pub source: DraftSource,
    /// Tokens drafted per step at most, 1 to [`MAX_DRAFT`].
    pub draft_max: usize,
}

impl SpeculativeConfig {
    /// Default draft length: the verify chunk stays well inside what one
    /// decode step's weight read pays for on a memory-bound CPU.
    pub const DEFAULT_DRAFT_MAX: usize = 4;

    pub fn new(source: DraftSource) -> Self {
        SpeculativeConfig {
            source,
            draft_max: Self::DEFAULT_DRAFT_MAX,
        }
    }

    /// Rejects a draft length outside 1..=[`MAX_DRAFT`].
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_DRAFT).contains(&self.draft_max) {
            return Err(RuntimeError::Speculative(format!(
                "draft-max must be 1 to {MAX_DRAFT}, got {}",
                self.draft_max
            )));
        }
        Ok(())
    }
}

/// Proposes the tokens that may follow a sequence.
pub trait Drafter: Send {
    /// Appends to `out` up to `max` tokens that may follow `history` (the
    /// prompt and every generated token; the target has run all but the
    /// last). Proposing none is allowed: the step decodes one token.
    fn draft(&mut self, history: &[u32], max: usize, out: &mut Vec<u32>) -> Result<()>;

    /// A drafter for another conversation over the same resources (a
    /// draft model's weights are shared; its caches are not).
    fn fork(&self) -> Result<Box<dyn Drafter>>;
}

/// A session's speculative decoding: the drafter and how far it drafts.
///
/// The draft length adapts: one more than the last step accepted, doubled
/// after a step that accepted everything, between 1 and `draft_max`. Drafts
/// that keep failing then cost a one-token verify (about a decode step)
/// instead of a long one, and drafts that keep landing grow to the full
/// length within a few steps.
pub struct Speculation {
    pub drafter: Box<dyn Drafter>,
    pub draft_max: usize,
    /// Tokens to draft next step.
    len: usize,
}

impl Speculation {
    /// `draft_max` checked as [`SpeculativeConfig::validate`] does.
    pub fn new(drafter: Box<dyn Drafter>, draft_max: usize) -> Result<Self> {
        SpeculativeConfig {
            source: DraftSource::Ngram,
            draft_max,
        }
        .validate()?;
        Ok(Speculation {
            drafter,
            draft_max,
            len: draft_max,
        })
    }

    /// The same settings with a forked drafter.
    pub fn fork(&self) -> Result<Self> {
        Self::new(self.drafter.fork()?, self.draft_max)
    }

    /// Tokens to draft next ([`Speculation`]'s rule).
    pub fn draft_len(&self) -> usize {
        self.len
    }

    /// Updates the draft length after a step that kept `accepted` of
    /// `drafted` tokens.
    pub fn adapt(&mut self, drafted: usize, accepted: usize) {
        let next = if accepted == drafted {
            2 * drafted
        } else {
            accepted + 1
        };
        self.len = next.clamp(1, self.draft_max);
    }
}

/// Prompt lookup decoding: the longest suffix of the history (`max_n`
/// tokens down to `min_n`) that occurred earlier in it proposes the tokens
/// that followed its latest earlier occurrence. Free to run, and strong
/// wherever the answer copies the prompt (extraction, code edits, quotes).
#[derive(Clone, Copy, Debug)]
pub struct Ngram {
    pub max_n: usize,
    pub min_n: usize,
}

impl Default for Ngram {
    fn default() -> Self {
        Ngram { max_n: 3, min_n: 1 }
    }
}

impl Ngram {
    /// Where the tokens after the latest earlier occurrence of the last
    /// `n` tokens of `h` start (`None`: no earlier occurrence).
    fn follow(h: &[u32], n: usize) -> Option<usize> {
        let len = h.len();
        if n == 0 || len <= n {
            return None;
        }
        let pat = &h[len - n..];
        // Occurrences ending before the last token (the suffix itself excluded).
        (0..len - n)
            .rev()
            .find(|&j| &h[j..j + n] == pat)
            .map(|j| j + n)
    }
}

impl Drafter for Ngram {
    fn draft(&mut self, history: &[u32], max: usize, out: &mut Vec<u32>) -> Result<()> {
        for n in (self.min_n.max(1)..=self.max_n).rev() {
            if let Some(at) = Self::follow(history, n) {
                let end = (at + max).min(history.len());
                out.extend_from_slice(&history[at..end]);
                return Ok(());
            }
        }
        Ok(())
    }

    fn fork(&self) -> Result<Box<dyn Drafter>> {
        Ok(Box::new(*self))
    }
}

/// Drafts from a sequence known in advance (an earlier run's prompt and
/// output): the tokens at the history's next positions, whatever the
/// history holds. Benchmarks replay a greedy run to measure steps whose
/// drafts are all accepted; tests replay one with errors put in.
#[derive(Clone, Debug)]
pub struct Replay {
    pub tokens: Vec<u32>,
}

impl Drafter for Replay {
    fn draft(&mut self, history: &[u32], max: usize, out: &mut Vec<u32>) -> Result<()> {
        let h = history.len().min(self.tokens.len());
        out.extend_from_slice(&self.tokens[h..(h + max).min(self.tokens.len())]);
        Ok(())
    }

    fn fork(&self) -> Result<Box<dyn Drafter>> {
        Ok(Box::new(self.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drafts(d: &mut dyn Drafter, h: &[u32], max: usize) -> Vec<u32> {
        let mut out = Vec::new();
        d.draft(h, max, &mut out).unwrap();
        out
    }

    #[test]
    fn ngram_follows_the_latest_longest_match() {
        let mut d = Ngram::default();
        // "5 6 7" occurs at 0 and 5; the latest (5) is followed by 1 2.
        let h = [5, 6, 7, 9, 9, 5, 6, 7, 1, 2, 3, 5, 6, 7];
        assert_eq!(drafts(&mut d, &h, 2), [1, 2]);
        assert_eq!(drafts(&mut d, &h, 8), [1, 2, 3, 5, 6, 7]);
        // Only a 1-gram matches: 4 appeared once before, followed by 8.
        assert_eq!(drafts(&mut d, &[4, 8, 1, 4], 3), [8, 1, 4]);
        // Nothing earlier, too short, or no room.
        assert!(drafts(&mut d, &[1, 2, 3], 4).is_empty());
        assert!(drafts(&mut d, &[], 4).is_empty());
        assert!(drafts(&mut d, &[7], 4).is_empty());
        assert!(drafts(&mut d, &h, 0).is_empty());
        // A run of one token drafts more of it.
        assert_eq!(drafts(&mut d, &[3, 3, 3, 3], 2), [3]);
    }

    #[test]
    fn replay_drafts_by_position() {
        let mut d = Replay {
            tokens: vec![1, 2, 3, 4, 5],
        };
        assert_eq!(drafts(&mut d, &[1, 2], 2), [3, 4]);
        assert_eq!(drafts(&mut d, &[1, 2], 9), [3, 4, 5]);
        assert_eq!(drafts(&mut d, &[1, 9], 2), [3, 4]);
        assert!(drafts(&mut d, &[1, 2, 3, 4, 5], 2).is_empty());
        assert!(drafts(&mut d, &[0; 7], 2).is_empty());
    }

    #[test]
    fn the_draft_length_follows_acceptance() {
        let mut s = Speculation::new(Box::new(Ngram::default()), 8).unwrap();
        assert_eq!(s.draft_len(), 8);
        s.adapt(8, 2);
        assert_eq!(s.draft_len(), 3);
        s.adapt(3, 0);
        assert_eq!(s.draft_len(), 1);
        s.adapt(1, 1);
        assert_eq!(s.draft_len(), 2);
        s.adapt(2, 2);
        s.adapt(4, 4);
        assert_eq!(s.draft_len(), 8);
        // A short draft (the drafter had no more) that landed whole.
        s.adapt(1, 1);
        assert_eq!(s.draft_len(), 2);
        assert_eq!(s.fork().unwrap().draft_len(), 8);
    }

    #[test]
    fn settings_are_parsed_and_checked() {
        assert_eq!("ngram".parse::<DraftSource>().unwrap(), DraftSource::Ngram);
        assert_eq!(
            "draft:/m/small".parse::<DraftSource>().unwrap(),
            DraftSource::Model("/m/small".into())
        );
        for bad in ["", "draft:", "eagle", "Ngram"] {
            let e = bad.parse::<DraftSource>().unwrap_err().to_string();
            assert!(e.contains("ngram or draft:PATH"), "{bad}: {e}");
        }
        let mut c = SpeculativeConfig::new(DraftSource::Ngram);
        assert!(c.validate().is_ok());
        for k in [0, MAX_DRAFT + 1, usize::MAX] {
            c.draft_max = k;
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains("draft-max must be 1 to 8"), "{e}");
        }
    }
}
