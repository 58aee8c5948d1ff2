//! Model configuration from `config.json`: LFM2-VL (`text_config` +
//! `vision_config`) or a plain LFM2 language model, in both the published
//! and the transformers-5 spellings (spec §2.5, §14). Derived sizes are
//! methods; [`TextConfig::validate`] names the offending field.

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ModelError, Result};

/// The LFM2 language model's hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TextConfig {
    pub hidden_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub vocab_size: usize,
    /// `block_ff_dim` (published) or `intermediate_size` (transformers 5),
    /// before the auto-adjust rule of [`TextConfig::ffn_dim`].
    pub ff_dim: usize,
    pub auto_adjust_ff_dim: bool,
    pub ffn_dim_multiplier: Option<f64>,
    pub multiple_of: usize,
    /// Short-conv kernel length (`conv_L_cache`).
    pub conv_kernel: usize,
    pub conv_bias: bool,
    pub norm_eps: f32,
    pub rope_theta: f32,
    pub max_position_embeddings: usize,
    pub tie_embeddings: bool,
    /// Per layer: true for attention, false for short conv.
    pub attention_layers: Vec<bool>,
    pub eos_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
}

/// Raw `text_config` (or a plain LFM2 `config.json`): every spelling we accept.
#[derive(Deserialize)]
struct RawText {
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    #[serde(alias = "num_heads")]
    num_attention_heads: Option<usize>,
    num_key_value_heads: Option<usize>,
    vocab_size: Option<usize>,
    block_ff_dim: Option<usize>,
    intermediate_size: Option<usize>,
    #[serde(default = "yes")]
    block_auto_adjust_ff_dim: bool,
    block_ffn_dim_multiplier: Option<f64>,
    #[serde(default = "two_fifty_six")]
    block_multiple_of: usize,
    #[serde(rename = "conv_L_cache", alias = "conv_l_cache")]
    conv_l_cache: Option<usize>,
    #[serde(default)]
    conv_bias: bool,
    #[serde(alias = "block_norm_eps")]
    norm_eps: Option<f64>,
    #[serde(alias = "theta")]
    rope_theta: Option<f64>,
    rope_parameters: Option<Value>,
    max_position_embeddings: Option<usize>,
    #[serde(alias = "tie_embedding")]
    tie_word_embeddings: Option<bool>,
    layer_types: Option<Vec<String>>,
    full_attn_idxs: Option<Vec<usize>>,
    eos_token_id: Option<Value>,
    bos_token_id: Option<Value>,
}

fn yes() -> bool {
    true
}
fn two_fifty_six() -> usize {
    256
}

fn need<T>(v: Option<T>, field: &str) -> Result<T> {
    v.ok_or_else(|| ModelError::config(field, "missing"))
}

/// A token id that may be given as a number or a list (first entry).
fn token_id(v: &Option<Value>) -> Option<u32> {
    match v {
        Some(Value::Number(n)) => n.as_u64().map(|x| x as u32),
        Some(Value::Array(a)) => a.first().and_then(|x| x.as_u64()).map(|x| x as u32),
        _ => None,
    }
}

impl TextConfig {
    /// Parses a `text_config` object or a plain LFM2 config.
    pub fn from_value(v: &Value, field_prefix: &str) -> Result<Self> {
        let raw: RawText = serde_json::from_value(v.clone())
            .map_err(|e| ModelError::config(field_prefix.trim_end_matches('.'), e.to_string()))?;
        let f = |name: &str| format!("{field_prefix}{name}");
        let num_layers = need(raw.num_hidden_layers, &f("num_hidden_layers"))?;
        let attention_layers = match (&raw.layer_types, &raw.full_attn_idxs) {
            (Some(types), _) => {
                if types.len() != num_layers {
                    return Err(ModelError::config(
                        f("layer_types"),
                        format!("{} entries for {num_layers} layers", types.len()),
                    ));
                }
                // Any value other than "conv" is attention (spec §2.5); but an
                // empty or unknown-looking name is almost surely a typo.
                types
                    .iter()
                    .enumerate()
                    .map(|(i, t)| match t.as_str() {
                        "conv" => Ok(false),
                        "full_attention" | "attention" | "sliding_attention" => Ok(true),
                        other => Err(ModelError::config(
                            format!("{}[{i}]", f("layer_types")),
                            format!("unknown layer type {other:?}"),
                        )),
                    })
                    .collect::<Result<Vec<_>>>()?
            }
            (None, Some(idx)) => {
                let mut a = vec![false; num_layers];
                for &i in idx {
                    *a.get_mut(i).ok_or_else(|| {
                        ModelError::config(
                            f("full_attn_idxs"),
                            format!("index {i} ≥ {num_layers} layers"),
                        )
                    })? = true;
                }
                a
            }
            (None, None) => {
                return Err(ModelError::config(
                    f("layer_types"),
                    "missing (and no full_attn_idxs)",
                ));
            }
        };
        let rope_theta = raw
            .rope_theta
            .or_else(|| raw.rope_parameters.as_ref()?.get("rope_theta")?.as_f64())
            .unwrap_or(1_000_000.0);
        let cfg = TextConfig {
            hidden_size: need(raw.hidden_size, &f("hidden_size"))?,
            num_layers,
            num_heads: need(raw.num_attention_heads, &f("num_attention_heads"))?,
            num_kv_heads: need(raw.num_key_value_heads, &f("num_key_value_heads"))?,
            vocab_size: need(raw.vocab_size, &f("vocab_size"))?,
            ff_dim: need(
                raw.block_ff_dim.or(raw.intermediate_size),
                &f("block_ff_dim"),
            )?,
            auto_adjust_ff_dim: raw.block_auto_adjust_ff_dim,
            ffn_dim_multiplier: raw.block_ffn_dim_multiplier,
            multiple_of: raw.block_multiple_of,
            conv_kernel: raw.conv_l_cache.unwrap_or(3),
            conv_bias: raw.conv_bias,
            norm_eps: raw.norm_eps.unwrap_or(1e-5) as f32,
            rope_theta: rope_theta as f32,
            max_position_embeddings: raw.max_position_embeddings.unwrap_or(128_000),
            tie_embeddings: raw.tie_word_embeddings.unwrap_or(true),
            attention_layers,
            eos_token_id: token_id(&raw.eos_token_id),
            bos_token_id: token_id(&raw.bos_token_id),
        };
        cfg.validate(field_prefix)?;
        Ok(cfg)
    }

    /// Checks the invariants the model relies on.
    pub fn validate(&self, field_prefix: &str) -> Result<()> {
        let f = |name: &str| format!("{field_prefix}{name}");
        let positive = [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("vocab_size", self.vocab_size),
            ("conv_L_cache", self.conv_kernel),
            ("block_multiple_of", self.multiple_of),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(ModelError::config(f(name), "must be > 0"));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_heads) {
            return Err(ModelError::config(
                f("num_attention_heads"),
                format!(
                    "{} does not divide hidden_size {}",
                    self.num_heads, self.hidden_size
                ),
            ));
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(ModelError::config(
                f("num_key_value_heads"),
                format!(
                    "{} does not divide num_attention_heads {}",
                    self.num_kv_heads, self.num_heads
                ),
            ));
        }
        if !self.head_dim().is_multiple_of(2) {
            return Err(ModelError::config(
                f("hidden_size"),
                "head_dim must be even for RoPE",
            ));
        }
        if self.conv_bias {
            return Err(ModelError::config(
                f("conv_bias"),
                "true is not supported (LFM2 has none)",
            ));
        }
        if self.ffn_dim() == 0 {
            return Err(ModelError::config(
                f("block_ff_dim"),
                "effective FFN width is 0",
            ));
        }
        // Written so that NaN fails too.
        if self.rope_theta.is_nan()
            || self.rope_theta <= 0.0
            || self.norm_eps.is_nan()
            || self.norm_eps < 0.0
        {
            return Err(ModelError::config(
                f("rope_theta"),
                "rope_theta must be > 0 and norm_eps ≥ 0",
            ));
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads
    }

    /// The effective FFN width (spec §3.6): `int(2·I/3)`, then the multiplier
    /// and the round-up to `block_multiple_of` (6656 → 4608, 12288 → 8192).
    pub fn ffn_dim(&self) -> usize {
        let mut i = self.ff_dim;
        if self.auto_adjust_ff_dim {
            i = 2 * i / 3;
            if let Some(mult) = self.ffn_dim_multiplier {
                i = (mult * i as f64) as usize;
                i = self.multiple_of * i.div_ceil(self.multiple_of);
            }
        }
        i
    }

    pub fn is_attention(&self, layer: usize) -> bool {
        self.attention_layers[layer]
    }
}

/// What `config.json` describes.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelConfig {
    /// `"lfm2_vl"`/`"lfm2-vl"` or `"lfm2"`.
    pub model_type: String,
    pub text: TextConfig,
    /// The raw vision part (`vision_config`), parsed by the vision model.
    pub vision: Option<Value>,
    /// The raw top level, for the connector and processor knobs.
    pub raw: Value,
    pub image_token_id: Option<u32>,
}

impl ModelConfig {
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.into(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|source| ModelError::Json {
            path: path.into(),
            source,
        })?;
        Self::from_value(v)
    }

    pub fn from_value(v: Value) -> Result<Self> {
        let model_type = v
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| ModelError::config("model_type", "missing"))?
            .to_string();
        let (text, vision) = match model_type.as_str() {
            "lfm2_vl" | "lfm2-vl" => {
                let t = v
                    .get("text_config")
                    .ok_or_else(|| ModelError::config("text_config", "missing"))?;
                (
                    TextConfig::from_value(t, "text_config.")?,
                    v.get("vision_config").cloned(),
                )
            }
            "lfm2" => (TextConfig::from_value(&v, "")?, None),
            other => {
                return Err(ModelError::config(
                    "model_type",
                    format!("{other:?} is not an LFM2 or LFM2-VL model"),
                ));
            }
        };
        let image_token_id = v
            .get("image_token_id")
            .or_else(|| v.get("image_token_index"))
            .and_then(Value::as_u64)
            .map(|x| x as u32);
        Ok(ModelConfig {
            model_type,
            text,
            vision,
            raw: v,
            image_token_id,
        })
    }

    pub fn is_vision_language(&self) -> bool {
        self.vision.is_some()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn text_350m() -> Value {
        json!({
            "model_type": "lfm2", "hidden_size": 1024, "num_hidden_layers": 16,
            "num_attention_heads": 16, "num_key_value_heads": 8, "vocab_size": 65536,
            "block_ff_dim": 6656, "intermediate_size": 6656, "block_multiple_of": 256,
            "block_ffn_dim_multiplier": 1.0, "block_auto_adjust_ff_dim": true,
            "conv_L_cache": 3, "norm_eps": 1e-5, "theta": 1000000.0,
            "full_attn_idxs": [2, 5, 8, 10, 12, 14], "tie_embedding": true
        })
    }

    #[test]
    fn ffn_width_rule_matches_the_published_models() {
        let c = ModelConfig::from_value(text_350m()).unwrap();
        assert_eq!(c.text.ffn_dim(), 4608);
        assert_eq!(c.text.head_dim(), 64);
        assert_eq!(c.text.attention_layers.iter().filter(|a| **a).count(), 6);
        let mut v = text_350m();
        v["block_ff_dim"] = json!(12288);
        v["hidden_size"] = json!(2048);
        v["num_attention_heads"] = json!(32);
        assert_eq!(ModelConfig::from_value(v).unwrap().text.ffn_dim(), 8192);
        // transformers-5 tiny config: 128 → 85 → 85 → 96 (multiple of 16).
        let mut v = text_350m();
        v["block_ff_dim"] = Value::Null;
        v["intermediate_size"] = json!(128);
        v["block_multiple_of"] = json!(16);
        assert_eq!(ModelConfig::from_value(v).unwrap().text.ffn_dim(), 96);
    }

    #[test]
    fn errors_name_the_field() {
        let mut v = text_350m();
        v.as_object_mut().unwrap().remove("num_key_value_heads");
        let e = ModelConfig::from_value(v).unwrap_err().to_string();
        assert!(
            e.contains("num_key_value_heads") && e.contains("missing"),
            "{e}"
        );

        let mut v = text_350m();
        v["num_key_value_heads"] = json!(5);
        let e = ModelConfig::from_value(v).unwrap_err().to_string();
        assert!(e.contains("num_key_value_heads"), "{e}");

        let mut v = text_350m();
        v.as_object_mut().unwrap().remove("full_attn_idxs");
        v["layer_types"] = json!(
            ["conv"; 15]
                .iter()
                .chain(["mamba"].iter())
                .collect::<Vec<_>>()
        );
        let e = ModelConfig::from_value(v).unwrap_err().to_string();
        assert!(e.contains("layer_types[15]") && e.contains("mamba"), "{e}");

        let e = ModelConfig::from_value(json!({"model_type": "llama"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("model_type"), "{e}");
    }

    #[test]
    fn vl_config_spellings() {
        let hf5 = json!({
            "model_type": "lfm2_vl", "image_token_id": 396,
            "text_config": {
                "hidden_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "vocab_size": 1024, "intermediate_size": 128,
                "block_multiple_of": 16, "block_ffn_dim_multiplier": 1.0,
                "layer_types": ["conv", "full_attention"],
                "rope_parameters": {"rope_theta": 10000.0, "rope_type": "default"}
            },
            "vision_config": {"hidden_size": 32}
        });
        let c = ModelConfig::from_value(hf5).unwrap();
        assert_eq!(c.image_token_id, Some(396));
        assert_eq!(c.text.rope_theta, 10000.0);
        assert!(c.is_vision_language());
        let published = json!({
            "model_type": "lfm2-vl", "image_token_index": 396,
            "text_config": {
                "hidden_size": 48, "num_hidden_layers": 2, "num_heads": 4,
                "num_key_value_heads": 2, "vocab_size": 1024, "block_ff_dim": 128,
                "full_attn_idxs": [1], "rope_theta": 1000000.0
            }
        });
        let c = ModelConfig::from_value(published).unwrap();
        assert_eq!(c.image_token_id, Some(396));
        assert_eq!(c.text.attention_layers, vec![false, true]);
    }
}
