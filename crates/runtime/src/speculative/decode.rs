//! The session's speculative decode loop and its verify / rewind steps.

use tensor::Backend;

use super::{MAX_DRAFT, Speculation};
use crate::constraint::overlapped;
use crate::error::Result;
use crate::sampling::Sampler;
use crate::session::{Event, Finish, Session, StopConfig};

/// Drafted and accepted token counts of a generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpecCounts {
    /// Verify steps run (each one target pass over the last token and its drafts).
    pub steps: usize,
    pub drafted: usize,
    pub accepted: usize,
}

impl<B: Backend> Session<B> {
    /// Runs `chunk` (the sampled token, not yet run, then its drafts) as
    /// one recorded chunk at the next positions; `rows` receives its
    /// logits `[chunk.len(), vocab]` (row `i` predicts the token after
    /// `chunk[i]`). The cache then holds the whole chunk until
    /// [`Session::keep`].
    pub fn verify(&mut self, chunk: &[u32], rows: &mut Vec<f32>) -> Result<()> {
        self.begin_record()?;
        let Some(rec) = self.recorder.as_mut() else {
            return Err(model::ModelError::Rewind("no recorder".into()).into());
        };
        let text = &self.model.text;
        text.run_recorded(&self.be, chunk, &mut self.state, rec, rows)?;
        self.cached.extend_from_slice(chunk);
        Ok(())
    }

    /// Opens a recording where the session stands (its recorder made on
    /// first use), so that [`Session::keep`] can cut back what runs next.
    pub(crate) fn begin_record(&mut self) -> Result<()> {
        let text = &self.model.text;
        let rec = match &mut self.recorder {
            Some(r) => r,
            empty => empty.insert(text.new_recorder(&self.be)?),
        };
        text.record_from(&self.be, &self.state, rec)?;
        Ok(())
    }

    /// Keeps the first `keep` tokens of the last [`Session::verify`] chunk
    /// and forgets the rest: the KV caches and conv states are exactly
    /// those of a run that stopped there.
    pub fn keep(&mut self, keep: usize) -> Result<()> {
        let Some(rec) = self.recorder.as_mut() else {
            return Err(model::ModelError::Rewind("keep without a verify".into()).into());
        };
        let Some(start) = rec.start() else {
            return Err(model::ModelError::Rewind("keep without a verify".into()).into());
        };
        let len = start + keep;
        self.model
            .text
            .rewind(&self.be, &mut self.state, rec, len)?;
        self.cached.truncate(len);
        Ok(())
    }

    /// Drafts from `spec` to follow `id` (sampled, not yet run) into
    /// `drafts` (cleared first): at most `cap` tokens, its draft length,
    /// what the context holds after `id`, and `left` more (the tokens
    /// generation may still produce after `id`).
    pub(crate) fn draft_after(
        &mut self,
        spec: &mut Speculation,
        (id, left, cap): (u32, usize, usize),
        drafts: &mut Vec<u32>,
    ) -> Result<()> {
        drafts.clear();
        let room = self
            .max_len()
            .saturating_sub(self.cached.len() + 1)
            .min(left)
            .min(cap)
            .min(spec.draft_len());
        if room > 0 {
            // The history with `id` on it, for the drafter's eyes only.
            self.cached.push(id);
            let r = spec.drafter.draft(&self.cached, room, drafts);
            self.cached.pop();
            r?;
            drafts.truncate(room);
        }
        Ok(())
    }

    /// The decode loop with drafts: from `logits` (the prompt's last
    /// position), tokens into `out` until a stop condition, every one
    /// reported to `on_event` as plain decoding reports it. With greedy
    /// settings the tokens are exactly plain decoding's; with sampling
    /// they are distributed as plain decoding's.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decode_speculative(
        &mut self,
        spec: &mut Speculation,
        sampler: &mut Sampler,
        logits: &mut Vec<f32>,
        out: &mut Vec<u32>,
        stop: &StopConfig,
        on_event: &mut dyn FnMut(&Event) -> bool,
        counts: &mut SpecCounts,
    ) -> Result<Finish> {
        let vocab = self.model.text.cfg.vocab_size;
        let (mut drafts, mut chunk, mut rows) = (Vec::new(), Vec::new(), Vec::new());
        // A token chosen by a rejected draft's replacement, to emit next.
        let mut forced = None;
        loop {
            if out.len() >= stop.max_new_tokens {
                return Ok(Finish::Length);
            }
            let id = match forced.take() {
                Some(y) => y,
                None => sampler.sample(logits, &self.cached),
            };
            out.push(id);
            let go_on = on_event(&Event::Token { id });
            if let Some(finish) = self.after_sample(id, go_on, out.len(), stop)? {
                return Ok(finish);
            }
            let left = stop.max_new_tokens - out.len();
            self.draft_after(spec, (id, left, MAX_DRAFT), &mut drafts)?;
            sampler.cut_drafts(&mut drafts);
            if drafts.is_empty() {
                let mut cs = sampler.constraint.as_mut();
                overlapped(cs.as_mut_slice(), || self.push(id, logits))?;
                continue;
            }
            chunk.clear();
            chunk.push(id);
            chunk.extend_from_slice(&drafts);
            let mut cs = sampler.constraint.as_mut();
            overlapped(cs.as_mut_slice(), || self.verify(&chunk, &mut rows))?;
            let k = drafts.len();
            let judged = judge(
                sampler,
                (&mut rows, vocab),
                &self.cached,
                out.len(),
                stop,
                &mut |d| {
                    out.push(d);
                    on_event(&Event::Token { id: d })
                },
            );
            let Judged {
                kept,
                forced: f,
                finish,
            } = judged;
            forced = f;
            counts.steps += 1;
            counts.drafted += k;
            counts.accepted += kept - 1;
            spec.adapt(k, kept - 1);
            self.keep(kept)?;
            if let Some(finish) = finish {
                return Ok(finish);
            }
            if forced.is_none() {
                // Every draft kept: the last row predicts the next token.
                logits.clear();
                logits.extend_from_slice(&rows[k * vocab..(k + 1) * vocab]);
            }
        }
    }
}

/// What judging a verify chunk's drafts decided.
pub(crate) struct Judged {
    /// Rows of the chunk to keep: the last sampled token and the drafts
    /// accepted (a stopping draft included).
    pub kept: usize,
    /// The token that replaces the first rejected draft, to emit next.
    pub forced: Option<u32>,
    /// Generation ends at the last kept draft.
    pub finish: Option<Finish>,
}

/// Judges the drafts of a verify chunk in order: `cached` ends with the
/// chunk (the last sampled token and the `k` drafts), `rows` holds its
/// logits (`[1 + k, vocab]`; modified). Each kept draft goes to `emit`
/// (`false`: the caller cancels) and through the stop checks of
/// `Session::after_sample`, `generated` tokens having come before.
pub(crate) fn judge(
    sampler: &mut Sampler,
    (rows, vocab): (&mut [f32], usize),
    cached: &[u32],
    generated: usize,
    stop: &StopConfig,
    emit: &mut dyn FnMut(u32) -> bool,
) -> Judged {
    let k = rows.len() / vocab - 1;
    let (base, drafts) = cached.split_at(cached.len() - k);
    let mut kept = 1;
    for (i, &d) in drafts.iter().enumerate() {
        let row = &mut rows[i * vocab..(i + 1) * vocab];
        // Row i's history: the cache up to the chunk's token i.
        if let Some(y) = sampler.judge(row, &cached[..base.len() + i], d) {
            return Judged {
                kept,
                forced: Some(y),
                finish: None,
            };
        }
        kept += 1;
        let go_on = emit(d);
        // As `after_sample`, with the token already in the cache.
        let finish = if stop.stop_ids.contains(&d) {
            Some(Finish::Stop)
        } else if !go_on {
            Some(Finish::Cancelled)
        } else if generated + kept > stop.max_new_tokens {
            Some(Finish::Length)
        } else {
            None
        };
        if finish.is_some() {
            return Judged {
                kept,
                forced: None,
                finish,
            };
        }
    }
    Judged {
        kept,
        forced: None,
        finish: None,
    }
}
