//! A draft model: a smaller checkpoint with the target's tokenizer (say
//! LFM2-VL-450M drafting for LFM2-VL-1.6B, or a plain LFM2 text model),
//! run greedily on the target's backend. It keeps its own caches in step
//! with the conversation: each call cuts them back to what the target
//! accepted (a rewind inside its last recording, else a fresh prefill)
//! and drafts from there.
//!
//! Images: the draft sees the prompt's `<image>` placeholder tokens as
//! plain tokens (their embedding rows), never the image; the target
//! checks every draft, so this costs acceptance, never correctness.

use std::sync::Arc;

use model::Lfm2Vl;
use model::text::{MAX_VERIFY_ROWS, Recorder, TextState};
use tensor::Backend;

use super::Drafter;
use crate::error::{Result, RuntimeError};
use crate::sampling::argmax;

/// Prompt tokens the draft prefills per chunk when it starts over.
const PREFILL_CHUNK: usize = 512;

/// A greedy draft model in step with one conversation.
pub struct DraftModel<B: Backend> {
    be: B,
    model: Arc<Lfm2Vl<B>>,
    state: TextState<B>,
    rec: Recorder<B>,
    /// Tokens in `state`.
    cached: Vec<u32>,
    max_len: usize,
    rows: Vec<f32>,
}

impl<B: Backend + Clone> DraftModel<B> {
    /// A draft over `model` for a target whose vocabulary has
    /// `target_vocab` entries, with room for `max_len` tokens (the
    /// target's context). A draft with another vocabulary size is refused:
    /// its ids would mean other tokens.
    pub fn new(be: B, model: Arc<Lfm2Vl<B>>, target_vocab: usize, max_len: usize) -> Result<Self> {
        let vocab = model.text.cfg.vocab_size;
        if vocab != target_vocab {
            return Err(RuntimeError::Speculative(format!(
                "the draft model's vocabulary has {vocab} tokens, the target's {target_vocab}: \
                 a draft must share the target's tokenizer"
            )));
        }
        let state = model.text.new_state(&be, max_len)?;
        let rec = model.text.new_recorder(&be)?;
        Ok(DraftModel {
            be,
            model,
            state,
            rec,
            cached: Vec::new(),
            max_len,
            rows: Vec::new(),
        })
    }

    /// Brings the caches to `history` but its last token, which is left
    /// for the caller to run (it yields the first draft's logits); returns
    /// that remainder's start.
    fn sync(&mut self, history: &[u32]) -> Result<usize> {
        let text = &self.model.text;
        let lcp = self
            .cached
            .iter()
            .zip(history)
            .take_while(|(a, b)| a == b)
            .count()
            .min(history.len() - 1);
        if lcp < self.cached.len() {
            match self.rec.start() {
                Some(s) if s <= lcp => {
                    text.rewind(&self.be, &mut self.state, &mut self.rec, lcp)?
                }
                _ => {
                    text.reset(&self.be, &mut self.state)?;
                    self.rec.clear();
                    self.cached.clear();
                }
            }
            self.cached.truncate(lcp);
        }
        // All but the last few tokens go through plain prefill: a recording
        // holds the rest and the drafts.
        let n = self.cached.len();
        let tail = history.len() - n;
        if tail > 2 {
            let upto = history.len() - 1;
            text.prefill(&self.be, &history[n..upto], &mut self.state, PREFILL_CHUNK)?;
            self.cached.extend_from_slice(&history[n..upto]);
        }
        Ok(self.cached.len())
    }
}

impl<B: Backend + Clone + Send + Sync + 'static> Drafter for DraftModel<B>
where
    Lfm2Vl<B>: Send + Sync,
    TextState<B>: Send,
    Recorder<B>: Send,
{
    fn draft(&mut self, history: &[u32], max: usize, out: &mut Vec<u32>) -> Result<()> {
        if history.is_empty() || max == 0 {
            return Ok(());
        }
        let r = self.draft_inner(history, max, out);
        if r.is_err() {
            // Start over next time rather than trust half-moved caches.
            let _ = self.model.text.reset(&self.be, &mut self.state);
            self.rec.clear();
            self.cached.clear();
        }
        r
    }

    fn fork(&self) -> Result<Box<dyn Drafter>> {
        let vocab = self.model.text.cfg.vocab_size;
        let d = DraftModel::new(
            self.be.clone(),
            Arc::clone(&self.model),
            vocab,
            self.max_len,
        )?;
        Ok(Box::new(d))
    }
}

impl<B: Backend + Clone> DraftModel<B> {
    fn draft_inner(&mut self, history: &[u32], max: usize, out: &mut Vec<u32>) -> Result<()> {
        let from = self.sync(history)?;
        let text = &self.model.text;
        let vocab = text.cfg.vocab_size;
        // The rest of the history (one or two tokens), then each draft but
        // the last, recorded: rows the next call may cut back into.
        let rest = &history[from..];
        let max = max
            .min(MAX_VERIFY_ROWS + 1 - rest.len())
            .min(self.max_len.saturating_sub(history.len()) + 1);
        if max == 0 {
            return Ok(());
        }
        text.record_from(&self.be, &self.state, &mut self.rec)?;
        text.run_recorded(
            &self.be,
            rest,
            &mut self.state,
            &mut self.rec,
            &mut self.rows,
        )?;
        self.cached.extend_from_slice(rest);
        let last = |rows: &[f32]| argmax(&rows[rows.len() - vocab..]) as u32;
        let mut next = last(&self.rows);
        out.push(next);
        for _ in 1..max {
            text.run_recorded(
                &self.be,
                &[next],
                &mut self.state,
                &mut self.rec,
                &mut self.rows,
            )?;
            self.cached.push(next);
            next = last(&self.rows);
            out.push(next);
        }
        Ok(())
    }
}
