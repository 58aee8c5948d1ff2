//! The blocks of the LFM2 decoder (spec §3): one struct per block, each with
//! `load` and `forward`. The maths reads top to bottom; the kernels live in
//! `tensor`.

use tensor::{Backend, Tensor, op};

use super::state::{LayerCache, Scratch};
use crate::config::TextConfig;
use crate::error::{ModelError, Result};
use crate::weights::{Loader, Prefix};

/// `Lfm2ShortConv`: in_proj → (B, C, X) → C ⊙ conv(B ⊙ X) → out_proj.
pub struct ShortConv<B: Backend> {
    in_proj: Tensor<B>,  // [3d, d]
    conv: Tensor<B>,     // [d, l] f32
    out_proj: Tensor<B>, // [d, d]
}

impl<B: Backend> ShortConv<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, cfg: &TextConfig) -> Result<Self> {
        let (d, l) = (cfg.hidden_size, cfg.conv_kernel);
        Ok(ShortConv {
            in_proj: ld.linear(&p.join("in_proj"), 3 * d, d)?,
            conv: ld.f32_as(&p.join("conv").name("weight"), &[d, 1, l], &[d, l])?,
            out_proj: ld.linear(&p.join("out_proj"), d, d)?,
        })
    }

    /// `u`: normed input `[t, d]`; result in `s.o`.
    fn forward(
        &self,
        be: &B,
        u: &Tensor<B>,
        state: &mut Tensor<B>,
        s: &mut Scratch<B>,
    ) -> Result<()> {
        be.matmul_short_conv(op::MatmulShortConv {
            x: u,
            in_proj: &self.in_proj,
            w: &self.conv,
            bcx: &mut s.bcx,
            state,
            out: &mut s.y,
        })?;
        be.matmul(op::Matmul {
            x: &s.y,
            w: &self.out_proj,
            bias: None,
            out: &mut s.o,
        })?;
        Ok(())
    }
}

impl<B: Backend> ShortConv<B> {
    /// Runs the conv step over recorded `bcx` rows `[t, 3d]` only to move
    /// `state` past them (`out` `[t, d]` is scratch): the state a forward
    /// pass over those rows leaves, bit for bit (the state is the rows'
    /// `B ⊙ X`, whatever the outputs).
    fn replay(
        &self,
        be: &B,
        bcx: &Tensor<B>,
        state: &mut Tensor<B>,
        out: &mut Tensor<B>,
    ) -> Result<()> {
        Ok(be.short_conv(op::ShortConv {
            bcx,
            w: &self.conv,
            state,
            out,
        })?)
    }

    /// One batched step: `u` `[r, d]` holds the sequences' rows in
    /// order, `seqs` says whose they are. The projections run once for all
    /// rows; the conv step per sequence over its rows (through `conv[t − 1]`,
    /// `t`-row buffers), its inputs recorded where asked. Result in `s.o`.
    fn forward_batch(
        &self,
        be: &B,
        u: &Tensor<B>,
        seqs: &mut [SeqRows<'_, B>],
        s: &mut Scratch<B>,
        conv: &mut [ConvRows<B>],
    ) -> Result<()> {
        be.matmul(op::Matmul {
            x: u,
            w: &self.in_proj,
            bias: None,
            out: &mut s.bcx,
        })?;
        let mut r0 = 0;
        for q in seqs.iter_mut() {
            let LayerCache::Conv { state } = &mut *q.cache else {
                return Err(wrong_cache());
            };
            let c = &mut conv[q.t - 1];
            be.slice_rows(op::SliceRows {
                src: &s.bcx,
                row0: r0,
                out: &mut c.bcx,
            })?;
            be.short_conv(op::ShortConv {
                bcx: &c.bcx,
                w: &self.conv,
                state,
                out: &mut c.y,
            })?;
            be.copy_rows(op::CopyRows {
                src: &c.y,
                dst: &mut s.y,
                row0: r0,
            })?;
            if let Some((rec, at)) = q.record.as_mut() {
                be.copy_rows(op::CopyRows {
                    src: &c.bcx,
                    dst: rec,
                    row0: *at,
                })?;
            }
            r0 += q.t;
        }
        be.matmul(op::Matmul {
            x: &s.y,
            w: &self.out_proj,
            bias: None,
            out: &mut s.o,
        })?;
        Ok(())
    }
}

fn wrong_cache() -> ModelError {
    ModelError::Batch("a sequence's caches belong to another model".into())
}

/// One sequence's rows in a batched step through one layer: `t`
/// consecutive positions from `pos`, its cache of this layer, and for a
/// recorded sequence ([`super::Recorder`]) where this conv layer's inputs
/// go (the record's `bcx` and the row to write at).
pub struct SeqRows<'a, B: Backend> {
    pub pos: usize,
    pub t: usize,
    pub cache: &'a mut LayerCache<B>,
    pub record: Option<(&'a mut Tensor<B>, usize)>,
}

/// `t`-row buffers of one sequence's conv step in a batch.
pub struct ConvRows<B: Backend> {
    pub bcx: Tensor<B>, // [t, 3d]
    pub y: Tensor<B>,   // [t, d]
}

/// `Lfm2Attention`: GQA with per-head q/k RMSNorm before NeoX RoPE.
pub struct Attention<B: Backend> {
    /// q_proj | k_proj | v_proj stacked: `[(h + 2·h_kv)·hd, d]`, one matmul.
    qkv_proj: Tensor<B>,
    out_proj: Tensor<B>, // [d, h·hd]
    q_norm: Tensor<B>,   // [hd]
    k_norm: Tensor<B>,   // [hd]
    h: usize,
    hd: usize,
    eps: f32,
    theta: f32,
}

impl<B: Backend> Attention<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, cfg: &TextConfig) -> Result<Self> {
        let (d, h, h_kv, hd) = (
            cfg.hidden_size,
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim(),
        );
        Ok(Attention {
            qkv_proj: ld.linear_stacked(
                &[
                    (&p.join("q_proj"), h * hd),
                    (&p.join("k_proj"), h_kv * hd),
                    (&p.join("v_proj"), h_kv * hd),
                ],
                d,
            )?,
            out_proj: ld.linear(&p.join("out_proj"), d, h * hd)?,
            q_norm: ld.vector(&p.join("q_layernorm").name("weight"), hd)?,
            k_norm: ld.vector(&p.join("k_layernorm").name("weight"), hd)?,
            h,
            hd,
            eps: cfg.norm_eps,
            theta: cfg.rope_theta,
        })
    }

    /// `u`: normed input `[t, d]` at positions `pos0..pos0 + t`; the new
    /// keys and values are appended to the cache; result in `s.o`.
    fn forward(
        &self,
        be: &B,
        u: &Tensor<B>,
        pos0: usize,
        k_cache: &mut Tensor<B>, // [max_len, h_kv, hd]
        v_cache: &mut Tensor<B>, // [max_len, h_kv, hd]
        s: &mut Scratch<B>,
    ) -> Result<()> {
        let (t, h, hd) = (s.t, self.h, self.hd);
        be.matmul(op::Matmul {
            x: u,
            w: &self.qkv_proj,
            bias: None,
            out: &mut s.qkv,
        })?;
        // Per-head RMSNorm over hd, then RoPE; k and v appended to the
        // caches; then attend over all cached keys.
        be.qkv_norm_rope(op::QkvNormRope {
            qkv: &s.qkv,
            q_w: &self.q_norm,
            k_w: &self.k_norm,
            eps: self.eps,
            pos0,
            theta: self.theta,
            q_out: &mut s.qn,
            k_cache,
            v_cache,
        })?;
        let scale = 1.0 / (hd as f32).sqrt();
        be.attention(op::Attention {
            q: &s.qn,
            k: k_cache,
            v: v_cache,
            kv_len: pos0 + t,
            causal: true,
            scale,
            out: &mut s.att,
        })?;
        s.att.set_shape([t, h * hd])?;
        be.matmul(op::Matmul {
            x: &s.att,
            w: &self.out_proj,
            bias: None,
            out: &mut s.o,
        })?;
        // Restore the attention-facing shape for the next call.
        s.att.set_shape([t, h, hd])?;
        Ok(())
    }
}

impl<B: Backend> Attention<B> {
    /// One batched step: `u` `[r, d]` holds the sequences' rows in order
    /// (`seqs`). The projections run once for all rows; norm, RoPE and
    /// attention one row at a time through `row` (`t = 1` scratch), each
    /// row at its position against its sequence's cache, as a decode step
    /// runs it. Result in `s.o` `[r, d]`.
    fn forward_batch(
        &self,
        be: &B,
        u: &Tensor<B>,
        seqs: &mut [SeqRows<'_, B>],
        s: &mut Scratch<B>,
        row: &mut Scratch<B>,
    ) -> Result<()> {
        let (r, h, hd) = (s.t, self.h, self.hd);
        be.matmul(op::Matmul {
            x: u,
            w: &self.qkv_proj,
            bias: None,
            out: &mut s.qkv,
        })?;
        let scale = 1.0 / (hd as f32).sqrt();
        let mut i = 0;
        for q in seqs.iter_mut() {
            let LayerCache::Attention { k, v } = &mut *q.cache else {
                return Err(wrong_cache());
            };
            for j in 0..q.t {
                be.slice_rows(op::SliceRows {
                    src: &s.qkv,
                    row0: i,
                    out: &mut row.qkv,
                })?;
                be.qkv_norm_rope(op::QkvNormRope {
                    qkv: &row.qkv,
                    q_w: &self.q_norm,
                    k_w: &self.k_norm,
                    eps: self.eps,
                    pos0: q.pos + j,
                    theta: self.theta,
                    q_out: &mut row.qn,
                    k_cache: &mut *k,
                    v_cache: &mut *v,
                })?;
                be.attention(op::Attention {
                    q: &row.qn,
                    k: &*k,
                    v: &*v,
                    kv_len: q.pos + j + 1,
                    causal: true,
                    scale,
                    out: &mut row.att,
                })?;
                // `[1, h, hd]` into rows `i·h..(i + 1)·h` of `[r, h, hd]`.
                be.copy_rows(op::CopyRows {
                    src: &row.att,
                    dst: &mut s.att,
                    row0: i * h,
                })?;
                i += 1;
            }
        }
        s.att.set_shape([r, h * hd])?;
        be.matmul(op::Matmul {
            x: &s.att,
            w: &self.out_proj,
            bias: None,
            out: &mut s.o,
        })?;
        s.att.set_shape([r, h, hd])?;
        Ok(())
    }
}

/// `Lfm2MLP`: `w2 · (silu(w1·x) ⊙ w3·x)`, with w1 | w3 stacked into one
/// matmul whose halves [`Backend::swiglu`] combines.
pub struct Mlp<B: Backend> {
    w13: Tensor<B>, // [2f, d]: gate rows, then up rows
    w2: Tensor<B>,  // [d, f] down
}

impl<B: Backend> Mlp<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, cfg: &TextConfig) -> Result<Self> {
        let (d, f) = (cfg.hidden_size, cfg.ffn_dim());
        Ok(Mlp {
            w13: ld.linear_stacked(&[(&p.join("w1"), f), (&p.join("w3"), f)], d)?,
            w2: ld.linear(&p.join("w2"), d, f)?,
        })
    }

    /// `u`: normed input `[t, d]`; result in `s.o`.
    fn forward(&self, be: &B, u: &Tensor<B>, s: &mut Scratch<B>) -> Result<()> {
        be.matmul_swiglu(op::MatmulSwiglu {
            x: u,
            w13: &self.w13,
            gu: &mut s.gate_up,
            out: &mut s.gu,
        })?;
        be.matmul(op::Matmul {
            x: &s.gu,
            w: &self.w2,
            bias: None,
            out: &mut s.o,
        })?;
        Ok(())
    }
}

/// What a decoder layer mixes tokens with.
pub enum Operator<B: Backend> {
    Conv(ShortConv<B>),
    Attention(Attention<B>),
}

/// One pre-norm decoder layer with two residuals (spec §3.2).
pub struct DecoderLayer<B: Backend> {
    operator_norm: Tensor<B>, // [d]
    ffn_norm: Tensor<B>,      // [d]
    operator: Operator<B>,
    mlp: Mlp<B>,
    eps: f32,
}

impl<B: Backend> DecoderLayer<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, cfg: &TextConfig, index: usize) -> Result<Self> {
        let d = cfg.hidden_size;
        let operator = if cfg.is_attention(index) {
            Operator::Attention(Attention::load(ld, &p.join("self_attn"), cfg)?)
        } else {
            Operator::Conv(ShortConv::load(ld, &p.join("conv"), cfg)?)
        };
        Ok(DecoderLayer {
            operator_norm: ld.vector(&p.join("operator_norm").name("weight"), d)?,
            ffn_norm: ld.vector(&p.join("ffn_norm").name("weight"), d)?,
            operator,
            mlp: Mlp::load(ld, &p.join("feed_forward"), cfg)?,
            eps: cfg.norm_eps,
        })
    }

    /// Bytes of this layer's matmul weights as stored: what one decode
    /// step reads of it (the norms and conv taps aside).
    pub fn weight_bytes(&self) -> usize {
        let w = match &self.operator {
            Operator::Conv(c) => [&c.in_proj, &c.out_proj],
            Operator::Attention(a) => [&a.qkv_proj, &a.out_proj],
        };
        w.into_iter()
            .chain([&self.mlp.w13, &self.mlp.w2])
            .map(stored_bytes)
            .sum()
    }

    pub fn is_attention(&self) -> bool {
        matches!(self.operator, Operator::Attention(_))
    }

    /// `x`: the residual stream `[t, d]`, updated in place; `u`: scratch
    /// `[t, d]` for the normed input.
    pub fn forward(
        &self,
        be: &B,
        x: &mut Tensor<B>,
        u: &mut Tensor<B>,
        pos0: usize,
        cache: &mut LayerCache<B>,
        s: &mut Scratch<B>,
    ) -> Result<()> {
        self.forward_deferred(be, (&mut *x, &mut *u), pos0, cache, s, false)?;
        be.add_assign(op::AddAssign { x, y: &s.o })?;
        Ok(())
    }

    /// The layer with its residual adds deferred and fused into the next
    /// RMSNorm: with `pending`, `x` still lacks the previous layer's MLP
    /// output (in `s.o`), added here together with the operator norm; on
    /// return `x` lacks this layer's MLP output, left in `s.o` for the next
    /// layer (or the caller) to add. Same arithmetic as [`Self::forward`]
    /// layer after layer, two dispatches fewer per layer on a GPU. `x`: the
    /// residual stream, `u`: the normalised input scratch (as in
    /// [`Self::forward`]).
    pub fn forward_deferred(
        &self,
        be: &B,
        xu: (&mut Tensor<B>, &mut Tensor<B>),
        pos0: usize,
        cache: &mut LayerCache<B>,
        s: &mut Scratch<B>,
        pending: bool,
    ) -> Result<()> {
        self.around(be, xu, s, pending, |u, s| match (&self.operator, cache) {
            (Operator::Conv(c), LayerCache::Conv { state }) => c.forward(be, u, state, s),
            (Operator::Attention(a), LayerCache::Attention { k, v }) => {
                a.forward(be, u, pos0, k, v, s)
            }
            _ => unreachable!("caches are built from the same layer list"),
        })
    }

    /// A conv layer moves `state` past recorded `bcx` rows
    /// ([`ShortConv::replay`]; `out` `[t, d]` scratch); other layers: nothing.
    pub fn replay_conv(
        &self,
        be: &B,
        bcx: &Tensor<B>,
        state: &mut Tensor<B>,
        out: &mut Tensor<B>,
    ) -> Result<()> {
        match &self.operator {
            Operator::Conv(c) => c.replay(be, bcx, state, out),
            Operator::Attention(_) => Ok(()),
        }
    }

    /// [`Self::forward_deferred`] for one batched step of several
    /// sequences: `x`, `u` and `s` hold their rows in order, sequence `q`
    /// `seqs[q].t` of them (one for a decode step; the last token and its
    /// drafts for a verify). Every matmul runs once on all rows (the
    /// weights read once for the batch); the conv step runs per sequence
    /// (through `conv`, by row count), the attention per row (through
    /// `row`, `t = 1` scratch).
    pub fn forward_batch(
        &self,
        be: &B,
        xu: (&mut Tensor<B>, &mut Tensor<B>),
        seqs: &mut [SeqRows<'_, B>],
        (s, row, conv): (&mut Scratch<B>, &mut Scratch<B>, &mut [ConvRows<B>]),
        pending: bool,
    ) -> Result<()> {
        self.around(be, xu, s, pending, |u, s| match &self.operator {
            Operator::Conv(c) => c.forward_batch(be, u, seqs, s, conv),
            Operator::Attention(a) => a.forward_batch(be, u, seqs, s, row),
        })
    }

    /// The layer around its token mixer `mix(u, s)`: the operator norm
    /// (with the previous layer's pending MLP output added when `pending`),
    /// the mixer's residual add fused into the FFN norm, the MLP (its
    /// output left in `s.o`).
    fn around(
        &self,
        be: &B,
        (x, u): (&mut Tensor<B>, &mut Tensor<B>),
        s: &mut Scratch<B>,
        pending: bool,
        mix: impl FnOnce(&Tensor<B>, &mut Scratch<B>) -> Result<()>,
    ) -> Result<()> {
        if pending {
            be.add_rms_norm(op::AddRmsNorm {
                x,
                y: &s.o,
                w: &self.operator_norm,
                eps: self.eps,
                out: u,
            })?;
        } else {
            be.rms_norm(op::RmsNorm {
                x,
                w: &self.operator_norm,
                eps: self.eps,
                out: u,
            })?;
        }
        mix(u, s)?;
        be.add_rms_norm(op::AddRmsNorm {
            x,
            y: &s.o,
            w: &self.ffn_norm,
            eps: self.eps,
            out: u,
        })?;
        self.mlp.forward(be, u, s)?;
        Ok(())
    }
}

/// Bytes of a weight as stored (block formats: whole blocks).
pub(super) fn stored_bytes<B: Backend>(t: &Tensor<B>) -> usize {
    t.dtype().bytes_for(t.elem_count())
}
