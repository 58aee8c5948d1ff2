//! A Rust stand-in for llama.cpp's `convert_hf_to_gguf.py` on the tiny
//! safetensors checkpoints, for tests that need GGUF files without Python:
//! the same tensor names (through `model::weights::gguf::names`, the
//! engine's own table), the same layout changes written forward from the
//! converter's code (conv weight squeezed to `[d, l]`; patch embedding
//! `view(D, p, p, 3).permute(0, 3, 1, 2)`), 1-D tensors widened to f32 as
//! the converter does, the `lfm2.*` / `clip.vision.*` metadata and the
//! `tokenizer.*` metadata of `_set_vocab_gpt2`. Matmul weights may be
//! quantized with `tensor::quant` to exercise the block formats.
//!
//! The files llama.cpp itself writes are the fixtures under
//! `tests/fixtures/gguf/`; this converter only lets the loader be tested
//! independently of them.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use model::weights::gguf::MetaValue;
use model::weights::gguf::names::{Layout, hf_to_gguf};
use model::weights::{Checkpoint, names};
use serde_json::Value;
use tensor::DType;

use crate::gguf::{GgufWriter, f32v, s, u32v};
use crate::read_json;

/// ggml type id of a dtype.
pub fn ggml_id(d: DType) -> u32 {
    match d {
        DType::F32 => 0,
        DType::F16 => 1,
        DType::Q4_0 => 2,
        DType::Q8_0 => 8,
        DType::Q4K => 12,
        DType::Q6K => 14,
        DType::BF16 => 30,
        other => panic!("no ggml type for {other}"),
    }
}

/// Picks the stored dtype of a 2-D tensor by GGUF name (`None`: keep bf16).
pub type QuantChoice<'a> = &'a dyn Fn(&str) -> Option<DType>;

fn uz(v: &Value, k: &str) -> Result<u32> {
    v.get(k)
        .and_then(Value::as_u64)
        .map(|x| x as u32)
        .ok_or_else(|| anyhow!("config: no {k}"))
}

fn tokenizer_kvs(w: &mut GgufWriter, dir: &Path, vocab_size: usize) -> Result<()> {
    let tok = read_json(&dir.join("tokenizer.json"))?;
    let vocab = tok["model"]["vocab"]
        .as_object()
        .context("tokenizer.json: model.vocab")?;
    let mut tokens = vec![None; vocab_size];
    for (t, id) in vocab {
        let id = id.as_u64().context("vocab id")? as usize;
        *tokens.get_mut(id).context("vocab id ≥ vocab_size")? = Some(t.clone());
    }
    let mut types = vec![1i32; vocab_size];
    for a in tok["added_tokens"].as_array().context("added_tokens")? {
        let id = a["id"].as_u64().context("added id")? as usize;
        tokens[id] = Some(a["content"].as_str().context("content")?.to_string());
        types[id] = if a["special"].as_bool() == Some(true) {
            3
        } else {
            4
        };
    }
    let tokens: Vec<MetaValue> = tokens
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            if t.is_none() {
                types[i] = 5;
            }
            s(&t.unwrap_or_else(|| format!("[PAD{i}]")))
        })
        .collect();
    let merges: Vec<MetaValue> = tok["model"]["merges"]
        .as_array()
        .context("merges")?
        .iter()
        .map(|m| match m {
            Value::String(x) => Ok(s(x)),
            Value::Array(p) => Ok(s(&format!(
                "{} {}",
                p[0].as_str().unwrap_or(""),
                p[1].as_str().unwrap_or("")
            ))),
            _ => bail!("merge {m}"),
        })
        .collect::<Result<_>>()?;
    let cfg = read_json(&dir.join("tokenizer_config.json"))?;
    let id_of = |key: &str| -> Option<u32> {
        let t = cfg.get(key)?.as_str()?;
        vocab.get(t).and_then(Value::as_u64).map(|x| x as u32)
    };
    w.kv("tokenizer.ggml.model", s("gpt2"))
        .kv("tokenizer.ggml.pre", s("lfm2"))
        .kv("tokenizer.ggml.tokens", MetaValue::Array(tokens))
        .kv(
            "tokenizer.ggml.token_type",
            MetaValue::Array(types.into_iter().map(MetaValue::I32).collect()),
        )
        .kv("tokenizer.ggml.merges", MetaValue::Array(merges));
    for (k, t) in [
        ("tokenizer.ggml.bos_token_id", "bos_token"),
        ("tokenizer.ggml.eos_token_id", "eos_token"),
        ("tokenizer.ggml.padding_token_id", "pad_token"),
    ] {
        if let Some(id) = id_of(t) {
            w.kv(k, u32v(id));
        }
    }
    w.kv("tokenizer.ggml.add_bos_token", MetaValue::Bool(true));
    let tmpl =
        std::fs::read_to_string(dir.join("chat_template.jinja")).context("chat_template.jinja")?;
    w.kv("tokenizer.chat_template", s(&tmpl));
    Ok(())
}

/// Converts the checkpoint `dir/file` into `text` and (with a vision part)
/// `mmproj` GGUF files; `quant` picks block formats for 2-D weights whose
/// rows are whole blocks (others stay bf16). With `decoded`, a quantized
/// weight is stored as the f32 values its blocks decode to instead (the
/// exact reference of the block kernels).
pub fn convert(
    dir: &Path,
    file: &str,
    text: &Path,
    mmproj: &Path,
    quant: QuantChoice<'_>,
    decoded: bool,
) -> Result<()> {
    let cfg = read_json(&dir.join("config.json"))?;
    let tc = &cfg["text_config"];
    let vc = &cfg["vision_config"];
    let ckpt = Checkpoint::open_files(&[dir.join(file)])?;
    let mut tw = GgufWriter::new();
    let mut vw = GgufWriter::new();
    let layers = uz(tc, "num_hidden_layers")?;
    let kv_heads = uz(tc, "num_key_value_heads")?;
    let kinds = tc["layer_types"].as_array().context("layer_types")?;
    let mc = model::ModelConfig::from_file(&dir.join("config.json"))?;
    tw.kv("general.architecture", s("lfm2"))
        .kv("lfm2.block_count", u32v(layers))
        .kv(
            "lfm2.context_length",
            u32v(uz(tc, "max_position_embeddings")?),
        )
        .kv("lfm2.embedding_length", u32v(uz(tc, "hidden_size")?))
        .kv("lfm2.feed_forward_length", u32v(mc.text.ffn_dim() as u32))
        .kv(
            "lfm2.attention.head_count",
            u32v(uz(tc, "num_attention_heads")?),
        )
        .kv(
            "lfm2.attention.head_count_kv",
            MetaValue::Array(
                kinds
                    .iter()
                    .map(|k| u32v(if k == "conv" { 0 } else { kv_heads }))
                    .collect(),
            ),
        )
        .kv("lfm2.rope.freq_base", f32v(mc.text.rope_theta))
        .kv(
            "lfm2.attention.layer_norm_rms_epsilon",
            f32v(mc.text.norm_eps),
        )
        .kv("lfm2.vocab_size", u32v(mc.text.vocab_size as u32))
        .kv("lfm2.shortconv.l_cache", u32v(mc.text.conv_kernel as u32));
    tokenizer_kvs(&mut tw, dir, mc.text.vocab_size)?;
    let (p, d_v) = (uz(vc, "patch_size")? as usize, uz(vc, "hidden_size")?);
    let proc = read_json(&dir.join("processor_config.json"))?;
    let ip = proc.get("image_processor").unwrap_or(&proc);
    let stats = |k: &str| -> MetaValue {
        let v = ip
            .get(k)
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        MetaValue::Array(
            v.iter()
                .map(|x| f32v(x.as_f64().unwrap_or(0.5) as f32))
                .collect(),
        )
    };
    vw.kv("general.architecture", s("clip"))
        .kv("clip.has_vision_encoder", MetaValue::Bool(true))
        .kv("clip.projector_type", s("lfm2"))
        .kv(
            "clip.vision.projection_dim",
            u32v(mc.text.hidden_size as u32),
        )
        .kv("clip.vision.image_size", u32v(256))
        .kv("clip.vision.patch_size", u32v(p as u32))
        .kv("clip.vision.embedding_length", u32v(d_v))
        .kv(
            "clip.vision.feed_forward_length",
            u32v(uz(vc, "intermediate_size")?),
        )
        .kv(
            "clip.vision.block_count",
            u32v(uz(vc, "num_hidden_layers")?),
        )
        .kv(
            "clip.vision.attention.head_count",
            u32v(uz(vc, "num_attention_heads")?),
        )
        .kv("clip.vision.image_mean", stats("image_mean"))
        .kv("clip.vision.image_std", stats("image_std"))
        .kv(
            "clip.vision.attention.layer_norm_epsilon",
            f32v(
                vc.get("layer_norm_eps")
                    .and_then(Value::as_f64)
                    .unwrap_or(1e-6) as f32,
            ),
        )
        .kv(
            "clip.vision.projector.scale_factor",
            u32v(uz(&cfg, "downsample_factor").unwrap_or(2)),
        )
        .kv("clip.use_gelu", MetaValue::Bool(true));
    for name in ckpt.names() {
        let (gname, is_mm, layout) = hf_to_gguf(name, names::VL_TEXT)
            .or_else(|| {
                hf_to_gguf(
                    &name.replace(names::VISION_HF5, names::VISION_PUBLISHED),
                    names::VL_TEXT,
                )
            })
            .with_context(|| format!("no GGUF name for {name}"))?;
        let t = ckpt.get(name)?;
        let shape = t.shape.to_vec();
        let (mut ne, mut dtype, mut bytes): (Vec<u64>, DType, Vec<u8>) = (
            shape.iter().rev().map(|&d| d as u64).collect(),
            t.dtype,
            t.bytes.to_vec(),
        );
        match layout {
            Layout::Same => {}
            Layout::ConvSqueezed => ne = vec![shape[2] as u64, shape[0] as u64],
            Layout::PatchConv => {
                let (dd, es) = (shape[0], dtype.block_bytes());
                let row = p * p * 3;
                let mut out = vec![0u8; bytes.len()];
                for o in 0..dd {
                    for py in 0..p {
                        for px in 0..p {
                            for c in 0..3 {
                                let from = (o * row + (py * p + px) * 3 + c) * es;
                                let to = (o * row + (c * p + py) * p + px) * es;
                                out[to..to + es].copy_from_slice(&bytes[from..from + es]);
                            }
                        }
                    }
                }
                bytes = out;
                ne = vec![p as u64, p as u64, 3, dd as u64];
            }
        }
        if ne.len() == 1 {
            dtype = DType::F32;
            bytes = t.to_f32()?.iter().flat_map(|x| x.to_le_bytes()).collect();
        } else if ne.len() == 2
            && let Some(q) = quant(&gname)
            && ne[0] % q.block_elems() as u64 == 0
        {
            bytes = tensor::quant::quantize(q, &t.to_f32()?)?;
            dtype = q;
            if decoded {
                let v = tensor::quant::dequantize_vec(q, &bytes)?;
                bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                dtype = DType::F32;
            }
        }
        let w = if is_mm { &mut vw } else { &mut tw };
        w.tensor(&gname, &ne, ggml_id(dtype), bytes);
    }
    tw.write(text)?;
    vw.write(mmproj)?;
    Ok(())
}
