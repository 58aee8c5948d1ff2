//! What the fixture consistency tests (`fixtures_checkpoints.rs`,
//! `fixtures_cases.rs`) read from a tiny checkpoint's config.json.
// Each test binary reads different fields.
#![allow(dead_code)]

use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use tests::{IMAGE_TOKEN_ID, json_str, json_usize, read_json};

/// What the consistency checks need from a config.json.
#[derive(Debug, Clone)]
pub struct ModelShape {
    pub vocab: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub layer_types: Vec<String>,
    pub ffn: usize,
    pub v_hidden: usize,
    pub v_mlp: usize,
    pub v_layers: usize,
    pub v_heads: usize,
    pub num_patches: usize,
    pub proj_hidden: usize,
    pub downsample: usize,
    /// `lm_head` is `embed_tokens` (not stored).
    pub tied_head: bool,
}

pub fn u(v: &Value, key: &str) -> Result<usize> {
    json_usize(v, key).with_context(|| format!("config field {key}"))
}

pub fn model_shape(dir: &Path) -> Result<ModelShape> {
    let cfg = read_json(&dir.join("config.json"))?;
    ensure!(json_str(&cfg, "model_type")? == "lfm2_vl");
    ensure!(u(&cfg, "image_token_id")? == IMAGE_TOKEN_ID as usize);
    let t = cfg
        .get("text_config")
        .ok_or_else(|| anyhow!("no text_config"))?;
    let v = cfg
        .get("vision_config")
        .ok_or_else(|| anyhow!("no vision_config"))?;
    let layer_types: Vec<String> = t
        .get("layer_types")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no layer_types"))?
        .iter()
        .map(|x| {
            x.as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow!("bad layer type"))
        })
        .collect::<Result<_>>()?;
    // FFN width rule (spec §3.6).
    let mut ffn = u(t, "intermediate_size")?;
    if t.get("block_auto_adjust_ff_dim").and_then(Value::as_bool) == Some(true) {
        ffn = 2 * ffn / 3;
        if let Some(mult) = t.get("block_ffn_dim_multiplier").and_then(Value::as_f64) {
            ffn = (mult * ffn as f64) as usize;
            let m = u(t, "block_multiple_of")?;
            ffn = m * ffn.div_ceil(m);
        }
    }
    ensure!(
        v.get("vision_use_head").and_then(Value::as_bool) == Some(false),
        "vision_use_head must be false"
    );
    ensure!(u(v, "patch_size")? == 16);
    Ok(ModelShape {
        vocab: u(t, "vocab_size")?,
        hidden: u(t, "hidden_size")?,
        layers: u(t, "num_hidden_layers")?,
        heads: u(t, "num_attention_heads")?,
        kv_heads: u(t, "num_key_value_heads")?,
        layer_types,
        ffn,
        v_hidden: u(v, "hidden_size")?,
        v_mlp: u(v, "intermediate_size")?,
        v_layers: u(v, "num_hidden_layers")?,
        v_heads: u(v, "num_attention_heads")?,
        num_patches: u(v, "num_patches")?,
        proj_hidden: u(&cfg, "projector_hidden_size")?,
        downsample: u(&cfg, "downsample_factor")?,
        tied_head: cfg.get("tie_word_embeddings").and_then(Value::as_bool) != Some(false),
    })
}
