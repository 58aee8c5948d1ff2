//! One SigLIP2 encoder layer (pre-LN, spec §4.3):
//! `x += attn(ln1(x))`, `x += fc2(gelu_tanh(fc1(ln2(x))))`.

use tensor::{Backend, DType, Gelu, Shape, Tensor, op};

use super::config::VisionConfig;
use crate::error::Result;
use crate::weights::{Loader, Prefix};

/// A Linear with bias.
pub(crate) struct Affine<B: Backend> {
    pub w: Tensor<B>, // [n, k]
    pub b: Tensor<B>, // [n]
}

impl<B: Backend> Affine<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, n: usize, k: usize) -> Result<Self> {
        Ok(Affine {
            w: ld.linear(p, n, k)?,
            b: ld.vector(&p.name("bias"), n)?,
        })
    }

    pub fn forward(&self, be: &B, x: &Tensor<B>, out: &mut Tensor<B>) -> Result<()> {
        Ok(be.matmul(op::Matmul {
            x,
            w: &self.w,
            bias: Some(&self.b),
            out,
        })?)
    }
}

/// LayerNorm weight and bias.
pub(crate) struct Norm<B: Backend> {
    pub w: Tensor<B>,
    pub b: Tensor<B>,
    pub eps: f32,
}

impl<B: Backend> Norm<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, d: usize, eps: f32) -> Result<Self> {
        Ok(Norm {
            w: ld.vector(&p.name("weight"), d)?,
            b: ld.vector(&p.name("bias"), d)?,
            eps,
        })
    }

    pub fn forward(&self, be: &B, x: &Tensor<B>, out: &mut Tensor<B>) -> Result<()> {
        Ok(be.layer_norm(op::LayerNorm {
            x,
            w: &self.w,
            b: &self.b,
            eps: self.eps,
            out,
        })?)
    }
}

pub(crate) struct EncoderLayer<B: Backend> {
    ln1: Norm<B>,
    /// q_proj | k_proj | v_proj stacked: `[3D, D]` and `[3D]`, one matmul
    /// (better filled on a GPU than three `[D, D]` ones) split by columns.
    qkv: Affine<B>,
    out: Affine<B>,
    ln2: Norm<B>,
    fc1: Affine<B>,
    fc2: Affine<B>,
    heads: usize,
    hd: usize,
}

/// Activations of one crop of `n` patches.
pub(crate) struct Scratch<B: Backend> {
    pub u: Tensor<B>,   // [n, D]
    pub qkv: Tensor<B>, // [n, 3D]
    pub q: Tensor<B>,   // [n, D]
    pub k: Tensor<B>,   // [n, D]
    pub v: Tensor<B>,   // [n, D]
    pub att: Tensor<B>, // [n, D]
    pub o: Tensor<B>,   // [n, D]
    pub f: Tensor<B>,   // [n, F]
    pub g: Tensor<B>,   // [n, F]
}

impl<B: Backend> Scratch<B> {
    pub fn new(be: &B, cfg: &VisionConfig, n: usize) -> Result<Self> {
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        let z = |c: usize| be.zeros(DType::F32, Shape::from([n, c]));
        Ok(Scratch {
            u: z(d)?,
            qkv: z(3 * d)?,
            q: z(d)?,
            k: z(d)?,
            v: z(d)?,
            att: z(d)?,
            o: z(d)?,
            f: z(f)?,
            g: z(f)?,
        })
    }
}

impl<B: Backend> EncoderLayer<B> {
    pub fn load(ld: &Loader<B>, p: &Prefix, cfg: &VisionConfig) -> Result<Self> {
        let (d, f, eps) = (cfg.hidden_size, cfg.intermediate_size, cfg.layer_norm_eps);
        let a = p.join("self_attn");
        Ok(EncoderLayer {
            ln1: Norm::load(ld, &p.join("layer_norm1"), d, eps)?,
            qkv: {
                let (q, k, v) = (a.join("q_proj"), a.join("k_proj"), a.join("v_proj"));
                Affine {
                    w: ld.linear_stacked(&[(&q, d), (&k, d), (&v, d)], d)?,
                    b: ld.vector_stacked(&[
                        (&q.name("bias"), d),
                        (&k.name("bias"), d),
                        (&v.name("bias"), d),
                    ])?,
                }
            },
            out: Affine::load(ld, &a.join("out_proj"), d, d)?,
            ln2: Norm::load(ld, &p.join("layer_norm2"), d, eps)?,
            fc1: Affine::load(ld, &p.join("mlp").join("fc1"), f, d)?,
            fc2: Affine::load(ld, &p.join("mlp").join("fc2"), d, f)?,
            heads: cfg.num_heads,
            hd: cfg.head_dim(),
        })
    }

    /// `x`: one crop's hidden states `[n, D]`, updated in place.
    pub fn forward(&self, be: &B, x: &mut Tensor<B>, s: &mut Scratch<B>) -> Result<()> {
        let n = x.shape().rows();
        let (h, hd) = (self.heads, self.hd);
        self.ln1.forward(be, x, &mut s.u)?;
        self.qkv.forward(be, &s.u, &mut s.qkv)?;
        let d = h * hd;
        be.copy_cols(op::CopyCols {
            src: &s.qkv,
            col0: 0,
            out: &mut s.q,
        })?;
        be.copy_cols(op::CopyCols {
            src: &s.qkv,
            col0: d,
            out: &mut s.k,
        })?;
        be.copy_cols(op::CopyCols {
            src: &s.qkv,
            col0: 2 * d,
            out: &mut s.v,
        })?;
        for t in [&mut s.q, &mut s.k, &mut s.v, &mut s.att] {
            t.set_shape([n, h, hd])?;
        }
        // Bidirectional over the crop's true length: no padding, no mask.
        be.attention(op::Attention {
            q: &s.q,
            k: &s.k,
            v: &s.v,
            kv_len: n,
            causal: false,
            scale: 1.0 / (hd as f32).sqrt(),
            out: &mut s.att,
        })?;
        for t in [&mut s.q, &mut s.k, &mut s.v, &mut s.att] {
            t.set_shape([n, h * hd])?;
        }
        self.out.forward(be, &s.att, &mut s.o)?;
        be.add_assign(op::AddAssign { x, y: &s.o })?;
        self.ln2.forward(be, x, &mut s.u)?;
        self.fc1.forward(be, &s.u, &mut s.f)?;
        be.gelu(op::Gelu {
            x: &s.f,
            kind: Gelu::Tanh,
            out: &mut s.g,
        })?;
        self.fc2.forward(be, &s.g, &mut s.o)?;
        be.add_assign(op::AddAssign { x, y: &s.o })?;
        Ok(())
    }
}
