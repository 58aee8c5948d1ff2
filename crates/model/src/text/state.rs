//! Per-sequence state of the LFM2 decoder, allocated once per session
//! (llama2.c's `RunState`): a KV cache per attention layer, a conv state per
//! conv layer, the position, and scratch for single-token decoding. Prefill
//! chunks get scratch sized to the chunk.

use tensor::{Backend, DType, Shape, Tensor};

use crate::config::TextConfig;
use crate::error::Result;

/// The cache of one layer.
pub enum LayerCache<B: Backend> {
    /// The last `l − 1` rows of `B ⊙ X`: `[l − 1, d]`.
    Conv { state: Tensor<B> },
    /// Post-norm, post-RoPE keys and the values: `[max_len, h_kv, hd]` each.
    Attention { k: Tensor<B>, v: Tensor<B> },
}

/// Activation buffers for a chunk of `t` tokens (all f32).
pub struct Scratch<B: Backend> {
    pub t: usize,
    pub o: Tensor<B>,       // [t, d] block output
    pub bcx: Tensor<B>,     // [t, 3d]
    pub y: Tensor<B>,       // [t, d]
    pub qkv: Tensor<B>,     // [t, (h + 2·h_kv)·hd]: q | k | v
    pub qn: Tensor<B>,      // [t, h, hd] normed, rotated queries
    pub att: Tensor<B>,     // [t, h, hd]
    pub gate_up: Tensor<B>, // [t, 2f]: w1·x | w3·x
    pub gu: Tensor<B>,      // [t, f]
}

impl<B: Backend> Scratch<B> {
    pub fn new(be: &B, cfg: &TextConfig, t: usize) -> Result<Self> {
        let (d, h, h_kv, hd, f) = (
            cfg.hidden_size,
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim(),
            cfg.ffn_dim(),
        );
        let z = |s: &[usize]| be.zeros(DType::F32, Shape::from(s));
        Ok(Scratch {
            t,
            o: z(&[t, d])?,
            bcx: z(&[t, 3 * d])?,
            y: z(&[t, d])?,
            qkv: z(&[t, (h + 2 * h_kv) * hd])?,
            qn: z(&[t, h, hd])?,
            att: z(&[t, h, hd])?,
            gate_up: z(&[t, 2 * f])?,
            gu: z(&[t, f])?,
        })
    }
}

/// The caches and position of one sequence, plus single-token scratch.
pub struct Sequence<B: Backend> {
    /// Tokens already processed (the next token's position).
    pub pos: usize,
    /// Capacity of the KV caches.
    pub max_len: usize,
    pub caches: Vec<LayerCache<B>>,
    /// Scratch for `t = 1`, reused by every decode step.
    pub scratch: Scratch<B>,
    pub u: Tensor<B>, // [1, d] normed input
}

/// Host-facing buffers of a decode step, allocated once.
pub struct DecodeIo<B: Backend> {
    pub x: Tensor<B>,      // [1, d] residual stream
    pub last: Tensor<B>,   // [1, d] last row of a chunk
    pub normed: Tensor<B>, // [1, d]
    pub logits: Tensor<B>, // [1, vocab]
}

/// Everything one sequence carries between calls.
pub struct TextState<B: Backend> {
    pub seq: Sequence<B>,
    pub io: DecodeIo<B>,
}

impl<B: Backend> TextState<B> {
    /// Tokens already processed.
    pub fn pos(&self) -> usize {
        self.seq.pos
    }
}
