//! The LFM2 hybrid language model (spec §3): embedding, decoder layers of
//! short conv or GQA attention, final RMSNorm, tied head.

mod batch;
mod layers;
mod state;
mod verify;

use tensor::{Backend, DType, Shape, Tensor, op};

pub use self::batch::BatchState;
pub use self::layers::DecoderLayer;
pub use self::state::{DecodeIo, LayerCache, Scratch, Sequence, TextState};
pub use self::verify::{MAX_VERIFY_ROWS, Recorder};
use crate::config::TextConfig;
use crate::error::{ModelError, Result};
use crate::weights::{Loader, Prefix, names};

pub struct TextModel<B: Backend> {
    pub cfg: TextConfig,
    embed: Tensor<B>,        // [vocab, d]; also the head when tied
    head: Option<Tensor<B>>, // [vocab, d] when untied
    layers: Vec<DecoderLayer<B>>,
    final_norm: Tensor<B>, // [d]
}

/// Sees the residual stream after each layer (`TextModel::forward`).
pub type LayerHook<'a, B> = dyn FnMut(usize, &Tensor<B>) -> Result<()> + 'a;

impl<B: Backend> TextModel<B> {
    /// Loads the language model under `prefix` (`model.language_model` for
    /// LFM2-VL, `model` for a plain LFM2).
    pub fn load(ld: &Loader<B>, prefix: &Prefix, cfg: &TextConfig) -> Result<Self> {
        let (v, d) = (cfg.vocab_size, cfg.hidden_size);
        let embed_name = prefix.join("embed_tokens").name("weight");
        let embed = ld.linear(&prefix.join("embed_tokens"), v, d)?;
        let head = if cfg.tie_embeddings {
            // A stored copy of the tied head must be identical.
            if ld.src.contains(names::LM_HEAD) {
                let (a, b) = (ld.src.get(names::LM_HEAD)?, ld.src.get(&embed_name)?);
                if a.shape != b.shape || a.dtype != b.dtype || a.bytes != b.bytes {
                    return Err(ModelError::TiedMismatch {
                        name: names::LM_HEAD.into(),
                        tied_to: embed_name,
                    });
                }
            }
            None
        } else {
            Some(ld.linear(&Prefix::new("lm_head"), v, d)?)
        };
        let layers = (0..cfg.num_layers)
            .map(|i| DecoderLayer::load(ld, &prefix.join("layers").join(i), cfg, i))
            .collect::<Result<Vec<_>>>()?;
        let final_norm = ld.vector(&prefix.join("embedding_norm").name("weight"), d)?;
        Ok(TextModel {
            cfg: cfg.clone(),
            embed,
            head,
            layers,
            final_norm,
        })
    }

    /// Bytes of matmul weights one decode step reads: every layer's and the
    /// head (one embedding row aside). Divided by the step's time, the
    /// bandwidth decode reaches.
    pub fn decode_weight_bytes(&self) -> usize {
        let head = layers::stored_bytes(self.head.as_ref().unwrap_or(&self.embed));
        head + self
            .layers
            .iter()
            .map(DecoderLayer::weight_bytes)
            .sum::<usize>()
    }

    pub fn layers(&self) -> &[DecoderLayer<B>] {
        &self.layers
    }

    /// A fresh sequence state with room for `max_len` tokens.
    pub fn new_state(&self, be: &B, max_len: usize) -> Result<TextState<B>> {
        let c = &self.cfg;
        let (d, h_kv, hd, l) = (c.hidden_size, c.num_kv_heads, c.head_dim(), c.conv_kernel);
        let caches = self
            .layers
            .iter()
            .map(|layer| {
                Ok(if layer.is_attention() {
                    LayerCache::Attention {
                        k: be.zeros(DType::F32, Shape::from([max_len, h_kv, hd]))?,
                        v: be.zeros(DType::F32, Shape::from([max_len, h_kv, hd]))?,
                    }
                } else {
                    LayerCache::Conv {
                        state: be.zeros(DType::F32, Shape::from([l - 1, d]))?,
                    }
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let row = || be.zeros(DType::F32, Shape::from([1, d]));
        Ok(TextState {
            seq: Sequence {
                pos: 0,
                max_len,
                caches,
                scratch: Scratch::new(be, c, 1)?,
                u: row()?,
            },
            io: DecodeIo {
                x: row()?,
                last: row()?,
                normed: row()?,
                logits: be.zeros(DType::F32, Shape::from([1, c.vocab_size]))?,
            },
        })
    }

    /// Resets a state to an empty sequence (caches are overwritten as the
    /// sequence grows; the conv states must start at zero).
    pub fn reset(&self, be: &B, st: &mut TextState<B>) -> Result<()> {
        st.seq.pos = 0;
        let (l, d) = (self.cfg.conv_kernel, self.cfg.hidden_size);
        for c in &mut st.seq.caches {
            if let LayerCache::Conv { state } = c {
                *state = be.zeros(DType::F32, Shape::from([l - 1, d]))?;
            }
        }
        Ok(())
    }

    /// Embedding rows for `ids` into `out` `[ids.len(), d]`.
    pub fn embed(&self, be: &B, ids: &[u32], out: &mut Tensor<B>) -> Result<()> {
        Ok(be.gather_rows(op::GatherRows {
            table: &self.embed,
            ids,
            out,
        })?)
    }

    /// Runs every layer over the residual stream `x` `[t, d]` (in place) at
    /// positions `seq.pos..seq.pos + t`, then advances `seq.pos`. `hook(i, x)`
    /// sees the stream after layer `i` (for parity checks).
    pub fn forward(
        &self,
        be: &B,
        x: &mut Tensor<B>,
        st: &mut Sequence<B>,
        hook: &mut LayerHook<'_, B>,
    ) -> Result<()> {
        self.run_layers(be, x, st, Some(hook))
    }

    /// [`TextModel::forward`] without a hook: each layer's last residual add
    /// is fused into the next layer's first RMSNorm
    /// ([`DecoderLayer::forward_deferred`]), the same arithmetic in fewer
    /// dispatches. What prefill and decode run.
    pub fn forward_fused(&self, be: &B, x: &mut Tensor<B>, st: &mut Sequence<B>) -> Result<()> {
        self.run_layers(be, x, st, None)
    }

    fn run_layers(
        &self,
        be: &B,
        x: &mut Tensor<B>,
        st: &mut Sequence<B>,
        mut hook: Option<&mut LayerHook<'_, B>>,
    ) -> Result<()> {
        let t = x.shape().rows();
        let d = self.cfg.hidden_size;
        if x.shape().dims() != [t, d] {
            return Err(tensor::TensorError::ShapeMismatch {
                op: "TextModel::forward",
                what: "x",
                expected: Shape::from([t, d]),
                got: x.shape().clone(),
            }
            .into());
        }
        if st.pos + t > st.max_len {
            return Err(ModelError::ContextOverflow {
                needed: st.pos + t,
                limit: st.max_len,
            });
        }
        // Decode: the session's preallocated scratch; prefill: its own.
        let (mut own_s, mut own_u);
        let (s, u) = if t == 1 {
            (&mut st.scratch, &mut st.u)
        } else {
            own_s = Scratch::new(be, &self.cfg, t)?;
            own_u = be.zeros(DType::F32, Shape::from([t, d]))?;
            (&mut own_s, &mut own_u)
        };
        let pos = st.pos;
        for (i, (layer, cache)) in self.layers.iter().zip(st.caches.iter_mut()).enumerate() {
            match hook.as_mut() {
                Some(hook) => {
                    layer.forward(be, x, u, pos, cache, s)?;
                    hook(i, x)?;
                }
                None => layer.forward_deferred(be, (&mut *x, &mut *u), pos, cache, s, i > 0)?,
            }
        }
        if hook.is_none() && !self.layers.is_empty() {
            // The last layer's MLP output.
            be.add_assign(op::AddAssign { x, y: &s.o })?;
        }
        st.pos += t;
        Ok(())
    }

    /// The final RMSNorm (`embedding_norm`): `out = norm(x)`, both `[t, d]`.
    pub fn final_norm(&self, be: &B, x: &Tensor<B>, out: &mut Tensor<B>) -> Result<()> {
        Ok(be.rms_norm(op::RmsNorm {
            x,
            w: &self.final_norm,
            eps: self.cfg.norm_eps,
            out,
        })?)
    }

    /// Logits of normed rows: `out[r, :] = normed[r, :] · headᵀ`, `[r, vocab]`.
    pub fn head(&self, be: &B, normed: &Tensor<B>, out: &mut Tensor<B>) -> Result<()> {
        Ok(be.matmul(op::Matmul {
            x: normed,
            w: self.head.as_ref().unwrap_or(&self.embed),
            bias: None,
            out,
        })?)
    }

    /// Prefills `ids` (chunks of at most `chunk` tokens) and returns the
    /// logits of the last position (host f32, `[vocab]`).
    pub fn prefill(
        &self,
        be: &B,
        ids: &[u32],
        st: &mut TextState<B>,
        chunk: usize,
    ) -> Result<Vec<f32>> {
        let d = self.cfg.hidden_size;
        if ids.is_empty() {
            return Err(ModelError::EmptyPrompt);
        }
        be.enter(|| {
            for part in ids.chunks(chunk.max(1)) {
                let t = part.len();
                let mut x = be.zeros(DType::F32, Shape::from([t, d]))?;
                self.embed(be, part, &mut x)?;
                self.forward_fused(be, &mut x, &mut st.seq)?;
                be.slice_rows(op::SliceRows {
                    src: &x,
                    row0: t - 1,
                    out: &mut st.io.last,
                })?;
            }
            let mut out = Vec::new();
            self.logits_of_last(be, st, &mut out)?;
            Ok(out)
        })
    }

    /// Prefills one chunk given as embeddings `x` `[t, d]` (e.g. with image
    /// features merged in; `x` is overwritten) and returns the logits of its
    /// last position (host f32, `[vocab]`).
    pub fn prefill_embeds(
        &self,
        be: &B,
        x: &mut Tensor<B>,
        st: &mut TextState<B>,
    ) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.prefill_embeds_into(be, x, st, &mut out)?;
        Ok(out)
    }

    /// [`TextModel::prefill_embeds`] writing the logits into `out` (reused).
    pub fn prefill_embeds_into(
        &self,
        be: &B,
        x: &mut Tensor<B>,
        st: &mut TextState<B>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        let t = x.shape().rows();
        if t == 0 {
            return Err(ModelError::EmptyPrompt);
        }
        be.enter(|| {
            self.forward_fused(be, x, &mut st.seq)?;
            be.slice_rows(op::SliceRows {
                src: x,
                row0: t - 1,
                out: &mut st.io.last,
            })?;
            self.logits_of_last(be, st, out)
        })
    }

    /// One decode step for `id` at the next position; returns the logits
    /// (host f32, `[vocab]`).
    pub fn decode(&self, be: &B, id: u32, st: &mut TextState<B>) -> Result<Vec<f32>> {
        let mut out = Vec::new();
        self.decode_into(be, id, st, &mut out)?;
        Ok(out)
    }

    /// One decode step writing the logits into `out`: with `out` reused, a
    /// step allocates nothing (device buffers come from the state).
    pub fn decode_into(
        &self,
        be: &B,
        id: u32,
        st: &mut TextState<B>,
        out: &mut Vec<f32>,
    ) -> Result<()> {
        be.enter(|| {
            let TextState { seq, io } = st;
            self.embed(be, &[id], &mut io.x)?;
            self.forward_fused(be, &mut io.x, seq)?;
            be.slice_rows(op::SliceRows {
                src: &io.x,
                row0: 0,
                out: &mut io.last,
            })?;
            self.logits_of_last(be, st, out)
        })
    }

    fn logits_of_last(&self, be: &B, st: &mut TextState<B>, out: &mut Vec<f32>) -> Result<()> {
        let io = &mut st.io;
        self.final_norm(be, &io.last, &mut io.normed)?;
        self.head(be, &io.normed, &mut io.logits)?;
        Ok(be.download_f32_into(&io.logits, out)?)
    }
}
