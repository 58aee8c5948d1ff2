//! Speculative decoding's model side (issue 25): run a short chunk of
//! tokens (the last sampled token and the drafts) so that every row is
//! exactly the decode step it stands for, record what the conv layers saw,
//! and rewind the sequence to any row boundary of what was recorded.
//!
//! A KV cache rewinds by its position alone: rows past it are never read
//! (attention stops at the position) and are overwritten by the next run.
//! A conv state is the last `l − 1` rows of `B ⊙ X`, so the recorder keeps
//! each conv layer's state from where recording began and the `B | C | X`
//! rows of every token run since; a rewind restores that state and replays
//! the kept rows through the conv step, the kernel that produced the state,
//! so the state is bit for bit the one a plain run up to there leaves.
//! Nothing but the conv step of at most [`MAX_VERIFY_ROWS`] rows is
//! recomputed.
//!
//! "Exactly the decode step": the matmuls of up to `MAX_VERIFY_ROWS` rows
//! run as one GEMV per row on the CPU (`tensor::cpu::matmul::GemvRows`,
//! bit-identical to `m = 1`), the attention runs one query row at a time,
//! and every other op is row-wise. On the CPU a recorded row's logits are
//! the decode step's, bit for bit; on wgpu they are within the matmul's
//! rounding of them (its kernels for a few rows and for one differ).

use tensor::{Backend, DType, Shape, Tensor, op};

use super::TextModel;
use super::batch::BatchState;
use super::layers::ConvRows;
use super::state::{LayerCache, TextState};
use crate::error::{ModelError, Result};

/// Rows a recording holds: the last sampled token and up to eight drafts.
/// Up to this many rows, the CPU's matmuls run as one GEMV per row.
pub const MAX_VERIFY_ROWS: usize = tensor::cpu::matmul::GEMV_ROWS;

/// A conv layer's record: its state where recording began and the
/// `B | C | X` rows of every token run since.
pub(super) struct ConvRecord<B: Backend> {
    state0: Tensor<B>, // [l − 1, d]
    bcx: Tensor<B>,    // [MAX_VERIFY_ROWS, 3d]
}

/// Records a sequence's runs so it can be rewound ([`TextModel::rewind`]);
/// made once per sequence ([`TextModel::new_recorder`]), reused across
/// recordings. Buffers for each run length are allocated on first use.
pub struct Recorder<B: Backend> {
    /// The position recording began at; `None` before [`TextModel::record_from`].
    start: Option<usize>,
    /// Rows recorded since `start`.
    rows: usize,
    conv: Vec<Option<ConvRecord<B>>>,
    /// Index `t − 1`: the buffers of a `t`-row run (a one-sequence batch).
    runs: Vec<Option<BatchState<B>>>,
    /// Index `t − 1`: a rewind's replay of `t` rows through a conv step.
    replay: Vec<ConvRows<B>>,
}

impl<B: Backend> Recorder<B> {
    /// Where the current recording began, if one is open.
    pub fn start(&self) -> Option<usize> {
        self.start
    }

    /// Forgets the recording (the sequence moved on without it).
    pub fn clear(&mut self) {
        self.start = None;
        self.rows = 0;
    }

    /// Whether `t` more rows of `st` can be recorded: a recording is open
    /// where `st` stands, with room for them.
    pub(super) fn check_run(
        &self,
        model: &TextModel<B>,
        st: &TextState<B>,
        t: usize,
    ) -> Result<()> {
        model.check_recorder(st, self)?;
        let Some(start) = self.start else {
            return Err(ModelError::Rewind(
                "a run recorded before record_from".into(),
            ));
        };
        if start + self.rows != st.seq.pos {
            return Err(ModelError::Rewind(format!(
                "the sequence is at {}, the recording at {}",
                st.seq.pos,
                start + self.rows
            )));
        }
        if self.rows + t > MAX_VERIFY_ROWS {
            return Err(ModelError::Rewind(format!(
                "{} rows recorded and {t} more: a recording holds {MAX_VERIFY_ROWS}",
                self.rows
            )));
        }
        Ok(())
    }

    /// Conv layer `layer`'s record of inputs and the row the next run's go
    /// to (`None` for an attention layer).
    pub(super) fn conv_record(&mut self, layer: usize) -> Option<(&mut Tensor<B>, usize)> {
        let at = self.rows;
        self.conv[layer].as_mut().map(|r| (&mut r.bcx, at))
    }

    /// `t` rows were recorded.
    pub(super) fn advance(&mut self, t: usize) {
        self.rows += t;
    }
}

impl<B: Backend> TextModel<B> {
    /// A recorder for sequences of this model.
    pub fn new_recorder(&self, be: &B) -> Result<Recorder<B>> {
        let c = &self.cfg;
        let (d, l) = (c.hidden_size, c.conv_kernel);
        let conv = self
            .layers
            .iter()
            .map(|layer| {
                Ok(if layer.is_attention() {
                    None
                } else {
                    Some(ConvRecord {
                        state0: be.zeros(DType::F32, Shape::from([l - 1, d]))?,
                        bcx: be.zeros(DType::F32, Shape::from([MAX_VERIFY_ROWS, 3 * d]))?,
                    })
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let replay = (1..=MAX_VERIFY_ROWS)
            .map(|t| {
                Ok(ConvRows {
                    bcx: be.zeros(DType::F32, Shape::from([t, 3 * d]))?,
                    y: be.zeros(DType::F32, Shape::from([t, d]))?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Recorder {
            start: None,
            rows: 0,
            conv,
            runs: (0..MAX_VERIFY_ROWS).map(|_| None).collect(),
            replay,
        })
    }

    /// Begins a recording at `st`'s position: [`TextModel::rewind`] can
    /// then cut the sequence back to any position from here to its end.
    pub fn record_from(&self, be: &B, st: &TextState<B>, rec: &mut Recorder<B>) -> Result<()> {
        self.check_recorder(st, rec)?;
        for (cache, r) in st.seq.caches.iter().zip(&mut rec.conv) {
            if let (LayerCache::Conv { state }, Some(r)) = (cache, r) {
                be.copy_rows(op::CopyRows {
                    src: state,
                    dst: &mut r.state0,
                    row0: 0,
                })?;
            }
        }
        rec.start = Some(st.seq.pos);
        rec.rows = 0;
        Ok(())
    }

    /// Runs `ids` at `st`'s next positions as one chunk in which every row
    /// is exactly the decode step it stands for (module docs), recording
    /// it; `out` receives every row's logits (`[t, vocab]`, host f32: row
    /// `i` predicts the token after `ids[i]`). At most
    /// [`MAX_VERIFY_ROWS`] rows per recording.
    pub fn run_recorded(
        &self,
        be: &B,
        ids: &[u32],
        st: &mut TextState<B>,
        rec: &mut Recorder<B>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let t = ids.len();
        if t == 0 {
            return Err(ModelError::EmptyPrompt);
        }
        rec.check_run(self, st, t)?;
        // A batch of one sequence: the batched step's rows are decode steps.
        let mut bs = match rec.runs[t - 1].take() {
            Some(bs) => bs,
            None => self.new_batch(be, t)?,
        };
        let r = self.step_batch(be, &[ids], &mut [st], &mut [Some(&mut *rec)], &mut bs, out);
        rec.runs[t - 1] = Some(bs);
        r
    }

    /// Cuts `st` back to `len` tokens, a position inside the open
    /// recording (from where it began to `st`'s end): the KV caches by
    /// position, the conv states by replaying the kept rows (module docs).
    /// The recording stays open, so runs may follow and be rewound again.
    pub fn rewind(
        &self,
        be: &B,
        st: &mut TextState<B>,
        rec: &mut Recorder<B>,
        len: usize,
    ) -> Result<()> {
        self.check_recorder(st, rec)?;
        let start = rec.start.filter(|&s| s <= len && len <= st.seq.pos);
        let Some(start) = start.filter(|&s| s + rec.rows == st.seq.pos) else {
            return Err(ModelError::Rewind(format!(
                "cannot rewind to {len}: recorded {:?} + {} rows, the sequence is at {}",
                rec.start, rec.rows, st.seq.pos
            )));
        };
        if len == st.seq.pos {
            return Ok(());
        }
        let keep = len - start;
        be.enter(|| -> Result<()> {
            let layers = self.layers.iter().zip(st.seq.caches.iter_mut());
            for ((layer, cache), r) in layers.zip(&rec.conv) {
                let (LayerCache::Conv { state }, Some(r)) = (cache, r) else {
                    continue;
                };
                be.copy_rows(op::CopyRows {
                    src: &r.state0,
                    dst: state,
                    row0: 0,
                })?;
                if keep > 0 {
                    let b = &mut rec.replay[keep - 1];
                    be.slice_rows(op::SliceRows {
                        src: &r.bcx,
                        row0: 0,
                        out: &mut b.bcx,
                    })?;
                    layer.replay_conv(be, &b.bcx, state, &mut b.y)?;
                }
            }
            Ok(())
        })?;
        st.seq.pos = len;
        rec.rows = keep;
        Ok(())
    }

    fn check_recorder(&self, st: &TextState<B>, rec: &Recorder<B>) -> Result<()> {
        if rec.conv.len() != self.layers.len() || st.seq.caches.len() != self.layers.len() {
            return Err(ModelError::Rewind(
                "a recorder or sequence of another model".into(),
            ));
        }
        Ok(())
    }
}
