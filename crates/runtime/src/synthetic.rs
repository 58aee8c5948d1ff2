//! Synthetic checkpoints with the real LFM2-VL shapes and random bf16
//! weights (text tower, SigLIP2 tower, projector), written as a Hugging Face
//! folder (`config.json` + `model.safetensors`, and a byte-level BPE
//! tokenizer with LFM2-VL's special tokens at their ids plus its chat
//! template) so
//! that benchmarks load them through the same code as a real model, the
//! engine and the server included.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use half::bf16;
use serde_json::{Value, json};

use crate::constraint::vocab::byte_level_char;
use crate::error::{Result, RuntimeError};

/// A published model shape to imitate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Synthetic {
    /// LFM2-350M (the text tower of LFM2-VL-450M).
    Lfm2_350m,
    /// LFM2-1.2B (the text tower of LFM2-VL-1.6B).
    Lfm2_1_2b,
    /// LFM2-2.6B (the text tower of LFM2-VL-3B and LFM2.5-VL-3B).
    Lfm2_2_6b,
}

impl Synthetic {
    /// Accepts `350m`/`450m`, `1.2b`/`1.6b` and `2.6b`/`3b` (the VL names
    /// map to their text towers).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "350m" | "450m" | "lfm2-350m" | "lfm2-vl-450m" => Ok(Synthetic::Lfm2_350m),
            "1.2b" | "1.6b" | "lfm2-1.2b" | "lfm2-vl-1.6b" => Ok(Synthetic::Lfm2_1_2b),
            "2.6b" | "3b" | "lfm2-2.6b" | "lfm2-vl-3b" => Ok(Synthetic::Lfm2_2_6b),
            other => Err(RuntimeError::UnknownSynthetic(other.to_string())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Synthetic::Lfm2_350m => "lfm2-vl-450m",
            Synthetic::Lfm2_1_2b => "lfm2-vl-1.6b",
            Synthetic::Lfm2_2_6b => "lfm2-vl-3b",
        }
    }

    /// An LFM2-VL `config.json` with the published values (spec §1.1).
    /// The 3B: LFM2-2.6B's 30 layers (22 conv, 8 attention) with a
    /// 10752-wide FFN (its model card's 2,569,272,320 parameters), the
    /// so400m tower as in the 1.6B. Where its 8 attention layers sit is
    /// not published here: spread as the smaller models' are.
    pub fn config(self) -> Value {
        // SigLIP2 base (450M) or so400m with 26 layers (1.6B, 3B).
        let (vd, vf, vh, vl) = match self {
            Synthetic::Lfm2_350m => (768, 3072, 12, 12),
            Synthetic::Lfm2_1_2b | Synthetic::Lfm2_2_6b => (1152, 4304, 16, 26),
        };
        json!({
            "model_type": "lfm2_vl", "image_token_id": 396, "downsample_factor": 2,
            "projector_hidden_size": 2560, "projector_bias": true, "projector_hidden_act": "gelu",
            "text_config": self.text_config(),
            "vision_config": {
                "model_type": "siglip2_vision_model", "hidden_size": vd, "intermediate_size": vf,
                "num_attention_heads": vh, "num_hidden_layers": vl, "num_patches": 256,
                "patch_size": 16, "num_channels": 3, "layer_norm_eps": 1e-6,
                "hidden_act": "gelu_pytorch_tanh", "vision_use_head": false
            }
        })
    }

    fn text_config(self) -> Value {
        // (width, layers, heads, block_ff_dim, auto-adjusted to 2/3 of it,
        // attention layers).
        let (d, layers, heads, ff, adjust, attention): (
            usize,
            usize,
            usize,
            usize,
            bool,
            &[usize],
        ) = match self {
            Synthetic::Lfm2_350m => (1024, 16, 16, 6656, true, &[2, 5, 8, 10, 12, 14]),
            Synthetic::Lfm2_1_2b => (2048, 16, 32, 12288, true, &[2, 5, 8, 10, 12, 14]),
            Synthetic::Lfm2_2_6b => (2048, 30, 32, 10752, false, &[2, 6, 10, 14, 18, 21, 24, 27]),
        };
        json!({
            "model_type": "lfm2", "hidden_size": d, "num_hidden_layers": layers,
            "num_attention_heads": heads, "num_key_value_heads": 8, "vocab_size": 65536,
            "block_ff_dim": ff, "block_multiple_of": 256, "block_ffn_dim_multiplier": 1.0,
            "block_auto_adjust_ff_dim": adjust, "conv_L_cache": 3, "conv_bias": false,
            "norm_eps": 1e-5, "rope_theta": 1000000.0, "max_position_embeddings": 128000,
            "full_attn_idxs": attention, "tie_embedding": true,
            "bos_token_id": 1, "eos_token_id": 7
        })
    }

    /// Writes the folder under `dir` (created) and returns its path.
    pub fn write(self, dir: &Path) -> Result<PathBuf> {
        let cfg_v = self.config();
        let full = model::ModelConfig::from_value(cfg_v.clone())?;
        let cfg = full.text.clone();
        let vcfg = model::vision::VisionConfig::from_values(
            full.vision.as_ref().unwrap_or(&Value::Null),
            &full.raw,
        )?;
        std::fs::create_dir_all(dir).map_err(|source| RuntimeError::Io {
            path: dir.into(),
            source,
        })?;
        let cfg_path = dir.join("config.json");
        std::fs::write(
            &cfg_path,
            serde_json::to_vec_pretty(&cfg_v).unwrap_or_default(),
        )
        .map_err(|source| RuntimeError::Io {
            path: cfg_path,
            source,
        })?;

        let (d, h, h_kv, hd, f, l, v) = (
            cfg.hidden_size,
            cfg.num_heads,
            cfg.num_kv_heads,
            cfg.head_dim(),
            cfg.ffn_dim(),
            cfg.conv_kernel,
            cfg.vocab_size,
        );
        // (name, shape, scale): matrices N-ish(0, 1/fan_in), norms ~1.
        let t = "model.language_model";
        let mut tensors: Vec<(String, Vec<usize>, f32)> = vec![
            (format!("{t}.embed_tokens.weight"), vec![v, d], 0.5),
            (format!("{t}.embedding_norm.weight"), vec![d], -1.0),
        ];
        for i in 0..cfg.num_layers {
            let p = format!("{t}.layers.{i}");
            tensors.push((format!("{p}.operator_norm.weight"), vec![d], -1.0));
            tensors.push((format!("{p}.ffn_norm.weight"), vec![d], -1.0));
            if cfg.is_attention(i) {
                let a = format!("{p}.self_attn");
                tensors.push((format!("{a}.q_proj.weight"), vec![h * hd, d], 0.0));
                tensors.push((format!("{a}.k_proj.weight"), vec![h_kv * hd, d], 0.0));
                tensors.push((format!("{a}.v_proj.weight"), vec![h_kv * hd, d], 0.0));
                tensors.push((format!("{a}.out_proj.weight"), vec![d, h * hd], 0.0));
                tensors.push((format!("{a}.q_layernorm.weight"), vec![hd], -1.0));
                tensors.push((format!("{a}.k_layernorm.weight"), vec![hd], -1.0));
            } else {
                let c = format!("{p}.conv");
                tensors.push((format!("{c}.in_proj.weight"), vec![3 * d, d], 0.0));
                tensors.push((format!("{c}.conv.weight"), vec![d, 1, l], 0.5));
                tensors.push((format!("{c}.out_proj.weight"), vec![d, d], 0.0));
            }
            let m = format!("{p}.feed_forward");
            tensors.push((format!("{m}.w1.weight"), vec![f, d], 0.0));
            tensors.push((format!("{m}.w3.weight"), vec![f, d], 0.0));
            tensors.push((format!("{m}.w2.weight"), vec![d, f], 0.0));
        }
        // Vision tower (published layout) and projector; biases small.
        let (vd, vf) = (vcfg.hidden_size, vcfg.intermediate_size);
        let vp = "model.vision_tower.vision_model";
        let mut affine = |name: String, n: usize, k: usize| {
            tensors.push((format!("{name}.weight"), vec![n, k], 0.0));
            tensors.push((format!("{name}.bias"), vec![n], 0.02));
        };
        affine(
            format!("{vp}.embeddings.patch_embedding"),
            vd,
            vcfg.patch_dim(),
        );
        for j in 0..vcfg.num_layers {
            let p = format!("{vp}.encoder.layers.{j}");
            for a in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                affine(format!("{p}.self_attn.{a}"), vd, vd);
            }
            affine(format!("{p}.mlp.fc1"), vf, vd);
            affine(format!("{p}.mlp.fc2"), vd, vf);
        }
        let pj = "model.multi_modal_projector";
        let din = 4 * vd;
        affine(format!("{pj}.linear_1"), vcfg.projector_hidden_size, din);
        affine(format!("{pj}.linear_2"), d, vcfg.projector_hidden_size);
        tensors.push((
            format!("{vp}.embeddings.position_embedding.weight"),
            vec![vcfg.num_patches, vd],
            0.5,
        ));
        for j in 0..vcfg.num_layers {
            for n in ["layer_norm1", "layer_norm2"] {
                tensors.push((
                    format!("{vp}.encoder.layers.{j}.{n}.weight"),
                    vec![vd],
                    -1.0,
                ));
                tensors.push((format!("{vp}.encoder.layers.{j}.{n}.bias"), vec![vd], 0.02));
            }
        }
        for (n, width) in [
            (format!("{vp}.post_layernorm"), vd),
            (format!("{pj}.layer_norm"), din),
        ] {
            tensors.push((format!("{n}.weight"), vec![width], -1.0));
            tensors.push((format!("{n}.bias"), vec![width], 0.02));
        }
        let path = dir.join("model.safetensors");
        write_safetensors(&path, &tensors).map_err(|source| RuntimeError::Io {
            path: path.clone(),
            source,
        })?;
        write_prompt_files(dir, v)?;
        Ok(dir.to_path_buf())
    }
}

/// A byte-level BPE tokenizer over `vocab` ids, shaped like LFM2's: its
/// special tokens at their ids (spec §6.6), the 256 byte tokens (GPT-2's
/// printable stand-ins) from id 1024, and every other id a distinct
/// 2–6-byte piece (letters, digits, JSON punctuation, a leading space on
/// some) drawn from a fixed generator, so token masks of structured output
/// cost what they cost on a real vocabulary. No merges: text encodes to
/// byte tokens, and every id decodes. Plus `tokenizer_config.json`, the
/// chat template and the image processor's settings.
pub(crate) fn write_prompt_files(dir: &Path, vocab: usize) -> Result<()> {
    let mut special: Vec<(u32, String)> = vec![
        (0, "<|pad|>".into()),
        (1, "<|startoftext|>".into()),
        (2, "<|endoftext|>".into()),
        (6, "<|im_start|>".into()),
        (7, "<|im_end|>".into()),
        (396, "<image>".into()),
        (497, "<|img_thumbnail|>".into()),
        (498, "<|image_start|>".into()),
        (499, "<|image_end|>".into()),
    ];
    for r in 1..=10u32 {
        for c in 1..=10u32 {
            special.push((
                397 + 10 * (r - 1) + (c - 1),
                format!("<|img_row_{r}_col_{c}|>"),
            ));
        }
    }
    let byte_char: Vec<char> = (0..=255u8).map(byte_level_char).collect();
    const PIECES: &[u8] = b"etaoinshrdlucmfwypvbgkqjxz0123456789{}[]\":,._-ETAOINS";
    let mut seen = std::collections::HashSet::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut piece = || loop {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let r = state >> 16;
        let len = 2 + (r % 5) as usize;
        let mut s = String::new();
        if (r >> 3).is_multiple_of(3) {
            s.push(byte_char[b' ' as usize]);
        }
        for k in 0..len {
            s.push(PIECES[((r >> (8 + 5 * k)) % PIECES.len() as u64) as usize] as char);
        }
        if seen.insert(s.clone()) {
            return s;
        }
    };
    let mut words = serde_json::Map::new();
    for id in 0..vocab as u32 {
        let word = match special.iter().find(|(i, _)| *i == id) {
            Some((_, s)) => s.clone(),
            None if (1024..1280).contains(&id) => byte_char[(id - 1024) as usize].to_string(),
            None => piece(),
        };
        words.insert(word, json!(id));
    }
    let added: Vec<Value> = special
        .iter()
        .map(|(id, s)| {
            json!({"id": id, "content": s, "single_word": false, "lstrip": false,
                   "rstrip": false, "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false,
                            "trim_offsets": true, "use_regex": true});
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": null, "pre_tokenizer": byte_level, "post_processor": null,
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null,
                  "continuing_subword_prefix": null, "end_of_word_suffix": null,
                  "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": words, "merges": []},
    });
    let config = json!({
        "bos_token": "<|startoftext|>", "eos_token": "<|im_end|>",
        "pad_token": "<|pad|>", "image_token": "<image>",
    });
    // LFM2-VL's published image processor settings (the defaults).
    let processor = json!({"processor_class": "Lfm2VlProcessor", "image_processor": {
        "do_image_splitting": true, "min_tiles": 2, "max_tiles": 10, "use_thumbnail": true,
        "min_image_tokens": 64, "max_image_tokens": 256, "encoder_patch_size": 16,
        "tile_size": 512, "max_pixels_tolerance": 2.0, "downsample_factor": 2,
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5],
        "rescale_factor": 1.0 / 255.0, "do_rescale": true, "do_normalize": true, "resample": 2,
    }});
    for (name, bytes) in [
        (
            "tokenizer.json",
            serde_json::to_vec(&tokenizer).unwrap_or_default(),
        ),
        (
            "tokenizer_config.json",
            serde_json::to_vec_pretty(&config).unwrap_or_default(),
        ),
        (
            "chat_template.jinja",
            model::prompt::LFM2_CHAT_TEMPLATE.as_bytes().to_vec(),
        ),
        (
            "processor_config.json",
            serde_json::to_vec_pretty(&processor).unwrap_or_default(),
        ),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|source| RuntimeError::Io { path, source })?;
    }
    Ok(())
}

/// Writes bf16 tensors with values from a seeded generator: `scale > 0` is
/// uniform(±scale), `0` is uniform(±√(3/fan_in)), `< 0` is 1 ± 0.1 (norms).
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, f32)]) -> std::io::Result<()> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape, _) in tensors {
        let bytes = 2 * shape.iter().product::<usize>();
        header.insert(
            name.clone(),
            json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut h = serde_json::to_vec(&Value::Object(header)).map_err(std::io::Error::other)?;
    while h.len() % 8 != 0 {
        h.push(b' ');
    }
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    w.write_all(&(h.len() as u64).to_le_bytes())?;
    w.write_all(&h)?;
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut buf = Vec::with_capacity(1 << 20);
    for (_, shape, scale) in tensors {
        let n: usize = shape.iter().product();
        let fan_in = *shape.last().unwrap_or(&1) as f32;
        let (center, half_width) = if *scale > 0.0 {
            (0.0, *scale)
        } else if *scale == 0.0 {
            (0.0, (3.0 / fan_in).sqrt())
        } else {
            (1.0, 0.1)
        };
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
            buf.extend_from_slice(
                &bf16::from_f32(center + half_width * u)
                    .to_bits()
                    .to_le_bytes(),
            );
            if buf.len() >= 1 << 20 {
                w.write_all(&buf)?;
                buf.clear();
            }
        }
    }
    w.write_all(&buf)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The text towers' parameter counts equal their model cards'
    /// (LFM2-350M 354,483,968; LFM2-1.2B 1,170,340,608; LFM2-2.6B
    /// 2,569,272,320): the shapes are the published ones.
    #[test]
    fn text_towers_have_the_published_parameter_counts() {
        for (s, want) in [
            (Synthetic::Lfm2_350m, 354_483_968),
            (Synthetic::Lfm2_1_2b, 1_170_340_608),
            (Synthetic::Lfm2_2_6b, 2_569_272_320),
        ] {
            let t = model::ModelConfig::from_value(s.config()).unwrap().text;
            let (d, hd, f) = (t.hidden_size, t.head_dim(), t.ffn_dim());
            let layers: usize = (0..t.num_layers)
                .map(|i| {
                    let mixer = if t.is_attention(i) {
                        2 * t.num_heads * hd * d + 2 * t.num_kv_heads * hd * d + 2 * hd
                    } else {
                        3 * d * d + d * t.conv_kernel + d * d
                    };
                    mixer + 3 * d * f + 2 * d
                })
                .sum();
            let total = t.vocab_size * d + layers + d;
            assert_eq!(total, want, "{}", s.name());
        }
    }
}
