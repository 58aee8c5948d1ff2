//! SigLIP2 vision tower and connector hyper-parameters, from `vision_config`
//! and the top level of an LFM2-VL `config.json` (spec §1.1, §4.6, §5).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ModelError, Result};

#[derive(Clone, Debug, PartialEq)]
pub struct VisionConfig {
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    /// Encoder layers actually run (the `vision_feature_layer` rule of §4.6).
    pub num_layers: usize,
    /// Position-embedding grid cells (a square: 256 = 16×16).
    pub num_patches: usize,
    pub patch_size: usize,
    pub num_channels: usize,
    pub layer_norm_eps: f32,
    /// Connector: pixel-unshuffle factor (2).
    pub downsample_factor: usize,
    pub projector_hidden_size: usize,
    pub projector_use_layernorm: bool,
    pub projector_bias: bool,
}

#[derive(Deserialize)]
struct RawVision {
    hidden_size: Option<usize>,
    intermediate_size: Option<usize>,
    num_attention_heads: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_patches: Option<usize>,
    #[serde(default = "sixteen")]
    patch_size: usize,
    #[serde(default = "three")]
    num_channels: usize,
    layer_norm_eps: Option<f64>,
    vision_feature_layer: Option<i64>,
    hidden_act: Option<String>,
    #[serde(default)]
    vision_use_head: bool,
}

fn sixteen() -> usize {
    16
}
fn three() -> usize {
    3
}

impl VisionConfig {
    /// `vision`: the `vision_config` object; `top`: the whole config.
    pub fn from_values(vision: &Value, top: &Value) -> Result<Self> {
        let raw: RawVision = serde_json::from_value(vision.clone())
            .map_err(|e| ModelError::config("vision_config", e.to_string()))?;
        let need = |v: Option<usize>, f: &str| {
            v.ok_or_else(|| ModelError::config(format!("vision_config.{f}"), "missing"))
        };
        let stored_layers = need(raw.num_hidden_layers, "num_hidden_layers")?;
        // HF ignores vision_feature_layer, the original code and llama.cpp cut
        // the encoder with it; both agree on the published checkpoints (§4.6).
        let vfl = raw
            .vision_feature_layer
            .or_else(|| top.get("vision_feature_layer").and_then(Value::as_i64));
        let num_layers = match vfl {
            Some(l) if l != -1 && l < 0 => {
                let n = stored_layers as i64 + l + 1;
                usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                    ModelError::config(
                        "vision_feature_layer",
                        format!("{l} leaves no layers of {stored_layers}"),
                    )
                })?
            }
            _ => stored_layers,
        };
        if let Some(act) = &raw.hidden_act
            && act != "gelu_pytorch_tanh"
        {
            return Err(ModelError::config(
                "vision_config.hidden_act",
                format!("{act:?} (only gelu_pytorch_tanh)"),
            ));
        }
        if raw.vision_use_head {
            return Err(ModelError::config(
                "vision_config.vision_use_head",
                "true is not used by LFM2-VL",
            ));
        }
        let top_usize = |k: &str| top.get(k).and_then(Value::as_u64).map(|v| v as usize);
        let top_bool = |k: &str| top.get(k).and_then(Value::as_bool);
        if let Some(act) = top.get("projector_hidden_act").and_then(Value::as_str)
            && act != "gelu"
        {
            return Err(ModelError::config(
                "projector_hidden_act",
                format!("{act:?} (only gelu)"),
            ));
        }
        let cfg = VisionConfig {
            hidden_size: need(raw.hidden_size, "hidden_size")?,
            intermediate_size: need(raw.intermediate_size, "intermediate_size")?,
            num_heads: need(raw.num_attention_heads, "num_attention_heads")?,
            num_layers,
            num_patches: raw.num_patches.unwrap_or(256),
            patch_size: raw.patch_size,
            num_channels: raw.num_channels,
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-6) as f32,
            downsample_factor: top_usize("downsample_factor").unwrap_or(2),
            projector_hidden_size: top_usize("projector_hidden_size").unwrap_or(2560),
            projector_use_layernorm: top_bool("projector_use_layernorm").unwrap_or(true),
            projector_bias: top_bool("projector_bias").unwrap_or(true),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<()> {
        let f = |n: &str| format!("vision_config.{n}");
        if self.hidden_size == 0
            || self.num_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_heads)
        {
            return Err(ModelError::config(
                f("num_attention_heads"),
                "must be > 0 and divide hidden_size",
            ));
        }
        if self.grid_side() * self.grid_side() != self.num_patches || self.num_patches == 0 {
            return Err(ModelError::config(
                f("num_patches"),
                format!("{} is not a square", self.num_patches),
            ));
        }
        if self.downsample_factor != 2 {
            return Err(ModelError::config(
                "downsample_factor",
                "only 2 is supported",
            ));
        }
        if self.patch_size == 0 || self.num_channels == 0 || self.intermediate_size == 0 {
            return Err(ModelError::config(
                f("patch_size"),
                "patch_size, num_channels, intermediate_size must be > 0",
            ));
        }
        if !self.projector_bias {
            return Err(ModelError::config(
                "projector_bias",
                "false is not supported",
            ));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// Side of the square position-embedding grid (16 for 256).
    pub fn grid_side(&self) -> usize {
        (self.num_patches as f64).sqrt().round() as usize
    }

    /// Inputs per patch: `patch² · channels` (768).
    pub fn patch_dim(&self) -> usize {
        self.patch_size * self.patch_size * self.num_channels
    }
}
