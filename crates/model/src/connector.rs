//! The multimodal projector (spec §5): pixel unshuffle by 2, LayerNorm
//! (when the checkpoint has its tensors, whatever `projector_use_layernorm`
//! says), Linear → exact GELU → Linear.

use tensor::{Backend, DType, Gelu, Shape, Tensor, op};

use crate::error::Result;
use crate::vision::{Affine, Norm, VisionConfig};
use crate::weights::{Loader, Prefix, names};

pub struct Connector<B: Backend> {
    norm: Option<Norm<B>>,
    linear_1: Affine<B>, // [hidden, 4·D_v]
    linear_2: Affine<B>, // [D_t, hidden]
    d_in: usize,
    hidden: usize,
    d_out: usize,
}

impl<B: Backend> Connector<B> {
    pub fn load(ld: &Loader<B>, cfg: &VisionConfig, d_text: usize) -> Result<Self> {
        let p = Prefix::new(names::PROJECTOR);
        let f = cfg.downsample_factor;
        let d_in = cfg.hidden_size * f * f;
        let hidden = cfg.projector_hidden_size;
        // Published conversions disagree with their own flag (both ways):
        // the tensors decide, as in llama.cpp.
        let ln = p.join("layer_norm");
        let present = ld.src.contains(&ln.name("weight"));
        if present != cfg.projector_use_layernorm {
            tracing::warn!(
                flag = cfg.projector_use_layernorm,
                tensors = present,
                "projector_use_layernorm disagrees with the checkpoint: {} the LayerNorm",
                if present { "applying" } else { "skipping" }
            );
        }
        Ok(Connector {
            // nn.LayerNorm's default eps (spec §5), not the vision tower's.
            norm: present
                .then(|| Norm::load(ld, &ln, d_in, 1e-5))
                .transpose()?,
            linear_1: Affine::load(ld, &p.join("linear_1"), hidden, d_in)?,
            linear_2: Affine::load(ld, &p.join("linear_2"), d_text, hidden)?,
            d_in,
            hidden,
            d_out: d_text,
        })
    }

    /// One crop's `last_hidden_state` `[h·w, D_v]` → `[(h/2)·(w/2), D_t]`.
    pub fn forward_crop(&self, be: &B, feat: &Tensor<B>, h: usize, w: usize) -> Result<Tensor<B>> {
        let n = h * w / 4;
        let z = |c: usize| be.zeros(DType::F32, Shape::from([n, c]));
        let mut un = z(self.d_in)?;
        be.pixel_unshuffle(op::PixelUnshuffle {
            x: feat,
            h,
            w,
            out: &mut un,
        })?;
        let un = match &self.norm {
            Some(norm) => {
                let mut normed = z(self.d_in)?;
                norm.forward(be, &un, &mut normed)?;
                normed
            }
            None => un,
        };
        let (mut a, mut g, mut out) = (z(self.hidden)?, z(self.hidden)?, z(self.d_out)?);
        self.linear_1.forward(be, &un, &mut a)?;
        be.gelu(op::Gelu {
            x: &a,
            kind: Gelu::Erf,
            out: &mut g,
        })?;
        self.linear_2.forward(be, &g, &mut out)?;
        Ok(out)
    }
}
