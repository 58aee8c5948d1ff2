//! The model config from GGUF metadata, keyed as llama.cpp's converter
//! writes it: the text model from `lfm2.*` (`LFM2Model.set_gguf_parameters`),
//! the vision tower and connector from `clip.vision.*` plus the shapes of
//! the mmproj's tensors (`LFM2VLModel`), and the image-preprocessing knobs
//! the mmproj carries.
//!
//! Where a value comes from when the metadata lacks it:
//! - `lfm2.rope.freq_base`: 1e6 (LFM2's); `lfm2.context_length`: 128000;
//!   `lfm2.vocab_size`: the token list's length;
//! - `clip.vision.attention.layer_norm_epsilon`: 1e-6;
//!   `clip.vision.projector.scale_factor`: 2;
//! - the position grid (`num_patches`) and the projector width from the
//!   shapes of `v.position_embd` and `mm.1`; the projector LayerNorm exists
//!   iff `mm.input_norm.weight` does (llama.cpp's rule);
//! - `feed_forward_length` is already the effective FFN width (the
//!   converter applies the auto-adjust rule), so no rule is applied again;
//! - image preprocessing: [`ProcessorConfig::default`] (transformers'
//!   `Lfm2VlImageProcessor` defaults, which are also what llama.cpp's mtmd
//!   does for LFM2: 64–256 image tokens, 2–10 tiles of 512, a thumbnail,
//!   tolerance 2.0), with the mmproj's patch size, scale factor, mean and std
//!   (and tile counts or pixel limits if present) over them
//!   ([`processor_overrides`]).

use serde_json::{Value, json};

use super::GgufFile;
use super::error::GgufError;
use super::meta::Metadata;
use super::source::{GgufWeights, TEXT_ARCH};
use crate::config::{ModelConfig, TextConfig};
use crate::error::Result;
use crate::preprocess::{ChannelStats, ProcessorOverrides};
use crate::weights::{WeightSource, names};

fn bad(key: &str, detail: impl Into<String>) -> GgufError {
    GgufError::BadValue {
        key: key.into(),
        detail: detail.into(),
    }
}

/// The one value every layer that has one shares (0 = none).
fn common(key: &str, per_layer: &[usize]) -> std::result::Result<Option<usize>, GgufError> {
    let mut nonzero = per_layer.iter().copied().filter(|&v| v > 0);
    let first = nonzero.next();
    if let Some(f) = first
        && let Some(other) = nonzero.find(|&v| v != f)
    {
        return Err(bad(
            key,
            format!("layers differ ({f} and {other}); only one value is supported"),
        ));
    }
    Ok(first)
}

/// The id of `token` in `tokenizer.ggml.tokens`.
pub fn token_id(m: &Metadata, token: &str) -> Option<u32> {
    m.get("tokenizer.ggml.tokens")?
        .as_array()?
        .iter()
        .position(|t| t.as_str() == Some(token))
        .and_then(|i| u32::try_from(i).ok())
}

fn text_config(w: &GgufWeights) -> std::result::Result<TextConfig, GgufError> {
    let m = w.text().metadata();
    let key = |k: &str| format!("{TEXT_ARCH}.{k}");
    let n = m.usize(&key("block_count"))?;
    let heads_key = key("attention.head_count");
    let heads = common(&heads_key, &m.per_layer(&heads_key, n)?)?
        .ok_or_else(|| bad(&heads_key, "0 heads"))?;
    let kv_key = key("attention.head_count_kv");
    if m.get(&kv_key).and_then(|v| v.as_array()).is_none() {
        return Err(bad(
            &kv_key,
            "expected a per-layer array (0 = short-conv layer)",
        ));
    }
    let kv = m.per_layer(&kv_key, n)?;
    let ff_key = key("feed_forward_length");
    let ff = common(&ff_key, &m.per_layer(&ff_key, n)?)?.ok_or_else(|| bad(&ff_key, "0"))?;
    if let Some(swa) = m.usize_opt(&key("attention.sliding_window"))?
        && swa > 0
    {
        return Err(bad(
            &key("attention.sliding_window"),
            "sliding-window attention is not supported",
        ));
    }
    let vocab = match m.usize_opt(&key("vocab_size"))? {
        Some(v) => v,
        None => m.array("tokenizer.ggml.tokens")?.len(),
    };
    let id = |k: &str| -> std::result::Result<Option<u32>, GgufError> {
        m.usize_opt(k)?
            .map(|v| u32::try_from(v).map_err(|_| bad(k, "does not fit u32")))
            .transpose()
    };
    Ok(TextConfig {
        hidden_size: m.usize(&key("embedding_length"))?,
        num_layers: n,
        num_heads: heads,
        // No attention layer at all: any divisor of the heads will do.
        num_kv_heads: common(&kv_key, &kv)?.unwrap_or(heads),
        vocab_size: vocab,
        ff_dim: ff,
        auto_adjust_ff_dim: false,
        ffn_dim_multiplier: None,
        multiple_of: 1,
        conv_kernel: m.usize(&key("shortconv.l_cache"))?,
        conv_bias: false,
        norm_eps: m
            .f64_opt(&key("attention.layer_norm_rms_epsilon"))?
            .unwrap_or(1e-5) as f32,
        rope_theta: m.f64_opt(&key("rope.freq_base"))?.unwrap_or(1e6) as f32,
        max_position_embeddings: m.usize_opt(&key("context_length"))?.unwrap_or(128_000),
        tie_embeddings: !w.contains(names::LM_HEAD),
        attention_layers: kv.iter().map(|&k| k > 0).collect(),
        eos_token_id: id("tokenizer.ggml.eos_token_id")?,
        bos_token_id: id("tokenizer.ggml.bos_token_id")?,
    })
}

/// `vision_config` and the top-level connector keys, in the shape
/// `VisionConfig::from_values` reads.
fn vision_values(
    w: &GgufWeights,
    mm: &GgufFile,
    d_text: usize,
) -> std::result::Result<(Value, Value), GgufError> {
    let m = mm.metadata();
    let proj = match m.str_opt("clip.projector_type")? {
        Some(p) => Some(p),
        None => m.str_opt("clip.vision.projector_type")?,
    };
    if proj != Some("lfm2") {
        return Err(bad(
            "clip.projector_type",
            format!("{proj:?}: only the LFM2-VL projector (\"lfm2\") is supported"),
        ));
    }
    if m.bool_opt("clip.has_vision_encoder")? == Some(false) {
        return Err(bad(
            "clip.has_vision_encoder",
            "false: this mmproj has no vision tower",
        ));
    }
    if let Some(p) = m.usize_opt("clip.vision.projection_dim")?
        && p != d_text
    {
        return Err(bad(
            "clip.vision.projection_dim",
            format!("{p}: this mmproj is for a text model of width {p}, the model's is {d_text}"),
        ));
    }
    let rows = |hf: &str| w.gguf_tensor(hf).map(|(_, t)| t.shape()[0]);
    let vp = names::VISION_PUBLISHED;
    let pp = names::PROJECTOR;
    let num_patches = rows(&format!("{vp}.embeddings.position_embedding.weight")).unwrap_or(256);
    let proj_hidden = rows(&format!("{pp}.linear_1.weight")).unwrap_or(2560);
    let vision = json!({
        "model_type": "siglip2_vision_model",
        "hidden_size": m.usize("clip.vision.embedding_length")?,
        "intermediate_size": m.usize("clip.vision.feed_forward_length")?,
        "num_attention_heads": m.usize("clip.vision.attention.head_count")?,
        // The converter already dropped the layers past vision_feature_layer.
        "num_hidden_layers": m.usize("clip.vision.block_count")?,
        "num_patches": num_patches,
        "patch_size": m.usize("clip.vision.patch_size")?,
        "num_channels": 3,
        "layer_norm_eps": m.f64_opt("clip.vision.attention.layer_norm_epsilon")?.unwrap_or(1e-6),
        "vision_feature_layer": -1,
        "hidden_act": "gelu_pytorch_tanh",
        "vision_use_head": false,
    });
    let top = json!({
        "downsample_factor": m.usize_opt("clip.vision.projector.scale_factor")?.unwrap_or(2),
        "projector_hidden_size": proj_hidden,
        "projector_use_layernorm": w.contains(&format!("{pp}.layer_norm.weight")),
        "projector_bias": true,
        "projector_hidden_act": "gelu",
    });
    Ok((vision, top))
}

/// The [`ModelConfig`] of a GGUF model: `lfm2-vl` with an mmproj, else `lfm2`.
pub fn model_config(w: &GgufWeights) -> Result<ModelConfig> {
    let text = text_config(w).map_err(|k| w.text().error(k))?;
    text.validate(&format!("{TEXT_ARCH}."))?;
    let tm = w.text().metadata();
    let (model_type, vision, mut raw) = match w.mmproj() {
        Some(mm) => {
            let (vision, top) = vision_values(w, mm, text.hidden_size).map_err(|k| mm.error(k))?;
            let mut raw = top;
            raw["vision_config"] = vision.clone();
            ("lfm2-vl", Some(vision), raw)
        }
        None => ("lfm2", None, json!({})),
    };
    let image_token_id = vision.as_ref().and_then(|_| token_id(tm, "<image>"));
    raw["model_type"] = json!(model_type);
    raw["image_token_index"] = json!(image_token_id);
    raw["gguf"] = json!({
        "text": w.text().path().display().to_string(),
        "mmproj": w.mmproj().map(|m| m.path().display().to_string()),
    });
    Ok(ModelConfig {
        model_type: model_type.into(),
        text,
        vision,
        raw,
        image_token_id,
    })
}

/// The preprocessing knobs an mmproj carries, to apply over
/// [`ProcessorConfig::default`](crate::preprocess::ProcessorConfig::default).
pub fn processor_overrides(mm: &GgufFile) -> Result<ProcessorOverrides> {
    let m = mm.metadata();
    let err = |k| mm.error(k);
    let stats = |key: &str| -> Result<Option<ChannelStats>> {
        match m.f64_array_opt(key).map_err(err)? {
            None => Ok(None),
            Some(v) => match v[..] {
                [a, b, c] => Ok(Some(ChannelStats::PerChannel([
                    a as f32, b as f32, c as f32,
                ]))),
                [a] => Ok(Some(ChannelStats::Scalar(a as f32))),
                _ => Err(err(bad(key, format!("{} values (expected 3)", v.len())))),
            },
        }
    };
    let patch = m.usize_opt("clip.vision.patch_size").map_err(err)?;
    let factor = m
        .usize_opt("clip.vision.projector.scale_factor")
        .map_err(err)?;
    // Pixel limits become image-token limits: one token per (p·f)² pixels.
    let tokens = |key: &str| -> Result<Option<usize>> {
        let side = patch.unwrap_or(16) * factor.unwrap_or(2);
        Ok(m.usize_opt(key)
            .map_err(err)?
            .map(|px| px / (side * side).max(1)))
    };
    Ok(ProcessorOverrides {
        encoder_patch_size: patch,
        downsample_factor: factor,
        image_mean: stats("clip.vision.image_mean")?,
        image_std: stats("clip.vision.image_std")?,
        min_tiles: m.usize_opt("clip.vision.preproc_min_tiles").map_err(err)?,
        max_tiles: m.usize_opt("clip.vision.preproc_max_tiles").map_err(err)?,
        min_image_tokens: tokens("clip.vision.image_min_pixels")?,
        max_image_tokens: tokens("clip.vision.image_max_pixels")?,
        ..ProcessorOverrides::default()
    })
}
