//! Batched decode: one step of several sequences at once, each with its own
//! caches and position, every matmul run once on all of them (a server's
//! concurrent conversations read the weights once per step, not once per
//! conversation). The conv step and attention stay per sequence.

use tensor::{Backend, DType, Shape, Tensor, op};

use super::TextModel;
use super::state::{Scratch, TextState};
use crate::error::{ModelError, Result};

/// The activations of a batched decode step of `b` sequences, allocated
/// once per batch size ([`TextModel::new_batch`]).
pub struct BatchState<B: Backend> {
    b: usize,
    /// `t = b` scratch: the matmuls' operands and results.
    s: Scratch<B>,
    /// `t = 1` scratch: one sequence's conv step and attention.
    row: Scratch<B>,
    x: Tensor<B>,      // [b, d] residual stream
    u: Tensor<B>,      // [b, d] normed input
    normed: Tensor<B>, // [b, d]
    logits: Tensor<B>, // [b, vocab]
}

impl<B: Backend> BatchState<B> {
    /// Sequences per step.
    pub fn len(&self) -> usize {
        self.b
    }

    pub fn is_empty(&self) -> bool {
        self.b == 0
    }
}

impl<B: Backend> TextModel<B> {
    /// Buffers for decode steps of `b` sequences.
    pub fn new_batch(&self, be: &B, b: usize) -> Result<BatchState<B>> {
        let (d, v) = (self.cfg.hidden_size, self.cfg.vocab_size);
        let z = |s: [usize; 2]| be.zeros(DType::F32, Shape::from(s));
        Ok(BatchState {
            b,
            s: Scratch::new(be, &self.cfg, b)?,
            row: Scratch::new(be, &self.cfg, 1)?,
            x: z([b, d])?,
            u: z([b, d])?,
            normed: z([b, d])?,
            logits: z([b, v])?,
        })
    }

    /// One decode step of `ids[i]` for sequence `states[i]` at its next
    /// position, for all `b = bs.len()` sequences at once; `out` receives
    /// the logits `[b, vocab]` (host f32, row `i` for sequence `i`). Each
    /// row is what [`TextModel::decode_into`] gives that sequence alone, up
    /// to the matmul's summation order over `b` rows instead of one.
    pub fn decode_batch(
        &self,
        be: &B,
        ids: &[u32],
        states: &mut [&mut TextState<B>],
        bs: &mut BatchState<B>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let b = bs.b;
        if ids.len() != b || states.len() != b {
            return Err(ModelError::Batch(format!(
                "{} ids and {} sequences for a batch of {b}",
                ids.len(),
                states.len()
            )));
        }
        if let Some(st) = states.iter().find(|st| st.seq.pos >= st.seq.max_len) {
            return Err(ModelError::ContextOverflow {
                needed: st.seq.pos + 1,
                limit: st.seq.max_len,
            });
        }
        if states
            .iter()
            .any(|st| st.seq.caches.len() != self.layers.len())
        {
            return Err(ModelError::Batch(
                "a sequence's caches belong to another model".into(),
            ));
        }
        let pos: Vec<usize> = states.iter().map(|st| st.seq.pos).collect();
        be.enter(|| -> Result<()> {
            let BatchState {
                s,
                row,
                x,
                u,
                normed,
                logits,
                ..
            } = bs;
            self.embed(be, ids, x)?;
            for (i, layer) in self.layers.iter().enumerate() {
                let mut caches: Vec<_> =
                    states.iter_mut().map(|st| &mut st.seq.caches[i]).collect();
                layer.forward_batch(be, (&mut *x, &mut *u), &pos, &mut caches, (s, row), i > 0)?;
            }
            if !self.layers.is_empty() {
                be.add_assign(op::AddAssign { x, y: &s.o })?;
            }
            self.final_norm(be, x, normed)?;
            self.head(be, normed, logits)?;
            Ok(be.download_f32_into(logits, out)?)
        })?;
        for st in states.iter_mut() {
            st.seq.pos += 1;
        }
        Ok(())
    }
}
