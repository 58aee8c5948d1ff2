//! Batched steps: several sequences at once, each with its own caches and
//! position, every matmul run once on all of their rows (a server's
//! concurrent conversations read the weights once per step, not once per
//! conversation). A sequence brings one row (a decode step) or several
//! (its last sampled token and drafts: a speculative verify inside the
//! batch, recorded so it can be rewound). The conv step runs per sequence,
//! the attention per row.

use tensor::{Backend, DType, Shape, Tensor, op};

use super::TextModel;
use super::layers::{ConvRows, SeqRows};
use super::state::{Scratch, TextState};
use super::verify::{MAX_VERIFY_ROWS, Recorder};
use crate::error::{ModelError, Result};

/// The activations of a batched step of `r` rows in all, allocated once
/// per row count ([`TextModel::new_batch`]).
pub struct BatchState<B: Backend> {
    r: usize,
    /// `t = r` scratch: the matmuls' operands and results.
    s: Scratch<B>,
    /// `t = 1` scratch: one row's attention.
    row: Scratch<B>,
    /// Index `t − 1`: one sequence's conv step over `t` rows.
    conv: Vec<ConvRows<B>>,
    x: Tensor<B>,      // [r, d] residual stream
    u: Tensor<B>,      // [r, d] normed input
    normed: Tensor<B>, // [r, d]
    logits: Tensor<B>, // [r, vocab]
}

impl<B: Backend> BatchState<B> {
    /// Rows per step (sequences, for decode steps alone).
    pub fn len(&self) -> usize {
        self.r
    }

    pub fn is_empty(&self) -> bool {
        self.r == 0
    }
}

impl<B: Backend> TextModel<B> {
    /// Buffers for batched steps of `r` rows in all.
    pub fn new_batch(&self, be: &B, r: usize) -> Result<BatchState<B>> {
        let (d, v) = (self.cfg.hidden_size, self.cfg.vocab_size);
        let z = |s: [usize; 2]| be.zeros(DType::F32, Shape::from(s));
        let conv = (1..=MAX_VERIFY_ROWS.min(r.max(1)))
            .map(|t| {
                Ok(ConvRows {
                    bcx: z([t, 3 * d])?,
                    y: z([t, d])?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(BatchState {
            r,
            s: Scratch::new(be, &self.cfg, r)?,
            row: Scratch::new(be, &self.cfg, 1)?,
            conv,
            x: z([r, d])?,
            u: z([r, d])?,
            normed: z([r, d])?,
            logits: z([r, v])?,
        })
    }

    /// One batched step: sequence `i` runs `ids[i]` (one token or more) at
    /// its next positions, all `bs.len()` rows at once; with `recs[i]`, a
    /// recording begun by [`TextModel::record_from`], its rows are
    /// recorded so [`TextModel::rewind`] can cut them back. `out` receives
    /// the logits `[rows, vocab]`, the sequences' rows in order. Every row
    /// is the decode step it stands for (bit for bit on the CPU), as in
    /// [`TextModel::run_recorded`]: with one token per sequence, what
    /// [`TextModel::decode_into`] gives each sequence alone.
    pub fn step_batch(
        &self,
        be: &B,
        ids: &[&[u32]],
        states: &mut [&mut TextState<B>],
        recs: &mut [Option<&mut Recorder<B>>],
        bs: &mut BatchState<B>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let rows: usize = ids.iter().map(|r| r.len()).sum();
        if ids.len() != states.len() || recs.len() != states.len() || rows != bs.r {
            return Err(ModelError::Batch(format!(
                "{} runs of {rows} tokens, {} sequences and {} recorders for a batch of {} rows",
                ids.len(),
                states.len(),
                recs.len(),
                bs.r
            )));
        }
        for ((run, st), rec) in ids.iter().zip(states.iter()).zip(recs.iter()) {
            let t = run.len();
            if t == 0 || t > MAX_VERIFY_ROWS {
                return Err(ModelError::Batch(format!(
                    "a sequence runs {t} tokens (1 to {MAX_VERIFY_ROWS})"
                )));
            }
            if st.seq.pos + t > st.seq.max_len {
                return Err(ModelError::ContextOverflow {
                    needed: st.seq.pos + t,
                    limit: st.seq.max_len,
                });
            }
            if st.seq.caches.len() != self.layers.len() {
                return Err(ModelError::Batch(
                    "a sequence's caches belong to another model".into(),
                ));
            }
            if let Some(rec) = rec {
                rec.check_run(self, st, t)?;
            }
        }
        let flat: Vec<u32> = ids.iter().flat_map(|r| r.iter().copied()).collect();
        be.enter(|| -> Result<()> {
            let BatchState {
                s,
                row,
                conv,
                x,
                u,
                normed,
                logits,
                ..
            } = bs;
            self.embed(be, &flat, x)?;
            for (i, layer) in self.layers.iter().enumerate() {
                let mut seqs: Vec<SeqRows<'_, B>> = states
                    .iter_mut()
                    .zip(recs.iter_mut())
                    .zip(ids)
                    .map(|((st, rec), run)| SeqRows {
                        pos: st.seq.pos,
                        t: run.len(),
                        cache: &mut st.seq.caches[i],
                        record: rec.as_mut().and_then(|r| r.conv_record(i)),
                    })
                    .collect();
                let scratch = (&mut *s, &mut *row, &mut conv[..]);
                layer.forward_batch(be, (&mut *x, &mut *u), &mut seqs, scratch, i > 0)?;
            }
            if !self.layers.is_empty() {
                be.add_assign(op::AddAssign { x, y: &s.o })?;
            }
            self.final_norm(be, x, normed)?;
            self.head(be, normed, logits)?;
            Ok(be.download_f32_into(logits, out)?)
        })?;
        for ((st, rec), run) in states.iter_mut().zip(recs.iter_mut()).zip(ids) {
            st.seq.pos += run.len();
            if let Some(rec) = rec {
                rec.advance(run.len());
            }
        }
        Ok(())
    }
}
