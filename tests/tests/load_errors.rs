//! Bad checkpoints give typed errors that name the tensor or field, never a
//! panic (issue 4): missing, misshapen, wrong-dtype and unused tensors,
//! truncated and corrupt files, bad JSON, unknown layer types, a tied head
//! that differs; and sharded checkpoints load like a single file. A
//! projector LayerNorm flag that disagrees with the tensors follows the
//! tensors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use model::{Lfm2Vl, ModelError};
use safetensors::tensor::{Dtype, TensorView};
use tensor::cpu::{CpuBackend, Isa};
use tests::Case;

mod gguf_common;

/// The tiny 450M-like checkpoint's tensors: name → (dtype, shape, bytes).
type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

fn model_dir() -> Result<PathBuf> {
    Case::load("text_only")?.model_dir()
}

fn read(dir: &Path) -> Result<Tensors> {
    let bytes = std::fs::read(dir.join("model.safetensors"))?;
    let st = safetensors::SafeTensors::deserialize(&bytes)?;
    Ok(st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, (v.dtype(), v.shape().to_vec(), v.data().to_vec())))
        .collect())
}

fn write(path: &Path, t: &Tensors) -> Result<()> {
    let views: Vec<(String, TensorView)> = t
        .iter()
        .map(|(n, (d, s, b))| Ok((n.clone(), TensorView::new(*d, s.clone(), b)?)))
        .collect::<Result<_>>()?;
    safetensors::serialize_to_file(views, None, path)?;
    Ok(())
}

/// A scratch copy of the model folder (config, tokenizer, …) with `t` as weights.
fn folder(tag: &str, t: Option<&Tensors>) -> Result<PathBuf> {
    let src = model_dir()?;
    let dst = std::env::temp_dir().join(format!("lfm2vl-load-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dst);
    std::fs::create_dir_all(&dst)?;
    for f in [
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "processor_config.json",
    ] {
        std::fs::copy(src.join(f), dst.join(f))?;
    }
    if let Some(t) = t {
        write(&dst.join("model.safetensors"), t)?;
    }
    Ok(dst)
}

fn load(dir: &Path) -> Result<Lfm2Vl<CpuBackend>, ModelError> {
    let be = CpuBackend::with(Isa::best(), 1).map_err(ModelError::from)?;
    Lfm2Vl::load(dir, &be)
}

const EMBED: &str = "model.language_model.embed_tokens.weight";
const CONV_W: &str = "model.language_model.layers.0.conv.conv.weight";

#[test]
fn load_errors_name_the_tensor() -> Result<()> {
    let good = read(&model_dir()?)?;

    let mut t = good.clone();
    t.remove(CONV_W);
    let e = load(&folder("missing", Some(&t))?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(e.contains(CONV_W) && e.contains("missing"), "missing: {e}");

    let mut t = good.clone();
    let (d, s, b) = t[EMBED].clone();
    t.insert(EMBED.into(), (d, vec![s[1], s[0]], b));
    let e = load(&folder("shape", Some(&t))?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(e.contains(EMBED) && e.contains("shape"), "shape: {e}");

    let mut t = good.clone();
    let (_, s, b) = t[EMBED].clone();
    t.insert(EMBED.into(), (Dtype::I16, s, b));
    let e = load(&folder("dtype", Some(&t))?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(e.contains(EMBED) && e.contains("dtype"), "dtype: {e}");

    let mut t = good.clone();
    t.insert(
        "model.language_model.extra.weight".into(),
        (Dtype::F32, vec![2], vec![0; 8]),
    );
    let e = load(&folder("unused", Some(&t))?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(
        e.contains("model.language_model.extra.weight") && e.contains("not used"),
        "unused: {e}"
    );

    // A stored tied head must equal the embedding.
    let mut t = good.clone();
    let (d, s, mut b) = t[EMBED].clone();
    b[0] ^= 0x40;
    t.insert("lm_head.weight".into(), (d, s, b));
    let e = load(&folder("tied", Some(&t))?)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(e.contains("lm_head.weight"), "tied: {e}");
    let mut t = good.clone();
    t.insert("lm_head.weight".into(), t[EMBED].clone());
    ensure!(
        load(&folder("tied-ok", Some(&t))?).is_ok(),
        "an identical stored head loads"
    );
    Ok(())
}

/// The vision q/k/v projections are stacked into one matmul at load: parts
/// of different dtypes are an error naming them, not a silent conversion.
/// A stack (q | k | v) whose parts differ in dtype loads as f32 (a GGUF
/// mixes Q8_0 and Q4_K in one stack; here bf16 and f32 parts of the same
/// values), and the model computes what the all-bf16 one does.
#[test]
fn stacked_weights_of_mixed_dtypes_load_as_f32() -> Result<()> {
    const K: &str = "model.vision_tower.vision_model.encoder.layers.0.self_attn.k_proj.weight";
    let mut t = read(&model_dir()?)?;
    let (d, s, b) = t[K].clone();
    ensure!(d == Dtype::BF16, "fixture dtype {d:?}");
    // The same values as f32: a valid tensor on its own.
    let wide: Vec<u8> = b
        .chunks_exact(2)
        .flat_map(|h| (u32::from(u16::from_le_bytes([h[0], h[1]])) << 16).to_le_bytes())
        .collect();
    t.insert(K.into(), (Dtype::F32, s, wide));
    let case = Case::load("single_image")?;
    ensure!(case.model_dir()? == model_dir()?, "the image case's model");
    let (mixed, _) = gguf_common::run(load(&folder("mixed", Some(&t))?)?, &case, 1)?;
    let (base, _) = gguf_common::run(load(&model_dir()?)?, &case, 1)?;
    let m = gguf_common::measure(&mixed, &base, mixed.len() / case.input_ids()?.len());
    // Measured: 0 (the f32 GEMM over bf16-exact values sums in the same order).
    ensure!(m.max_abs <= 1e-6, "mixed stack vs bf16: {m:?}");
    Ok(())
}

#[test]
fn load_errors_for_broken_files() -> Result<()> {
    let src = model_dir()?.join("model.safetensors");
    let bytes = std::fs::read(&src)?;

    let dir = folder("truncated", None)?;
    std::fs::write(dir.join("model.safetensors"), &bytes[..bytes.len() - 1000])?;
    let e = load(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        e.contains("model.safetensors") && e.contains("safetensors"),
        "truncated: {e}"
    );

    let dir = folder("corrupt", None)?;
    let mut b = bytes.clone();
    b[8..16].copy_from_slice(b"{garbage");
    std::fs::write(dir.join("model.safetensors"), &b)?;
    let e = load(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(e.contains("not a valid safetensors file"), "corrupt: {e}");

    let dir = folder("tiny", None)?;
    std::fs::write(dir.join("model.safetensors"), b"abc")?;
    ensure!(load(&dir).is_err());

    let dir = folder("badjson", None)?;
    std::fs::copy(&src, dir.join("model.safetensors"))?;
    std::fs::write(dir.join("config.json"), b"{\"model_type\": \"lfm2_vl\", ")?;
    let e = load(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        e.contains("config.json") && e.contains("invalid JSON"),
        "bad json: {e}"
    );

    let dir = folder("layertype", None)?;
    std::fs::copy(&src, dir.join("model.safetensors"))?;
    let cfg = std::fs::read_to_string(dir.join("config.json"))?.replacen(
        "\"full_attention\"",
        "\"mamba\"",
        1,
    );
    std::fs::write(dir.join("config.json"), cfg)?;
    let e = load(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(
        e.contains("layer_types") && e.contains("mamba"),
        "layer type: {e}"
    );

    let dir = folder("nofile", None)?;
    let e = load(&dir).err().map(|e| e.to_string()).unwrap_or_default();
    ensure!(e.contains("model.safetensors"), "no weights: {e}");
    Ok(())
}

/// Two shards plus `model.safetensors.index.json` load to the same model.
#[test]
fn sharded_checkpoint_loads_like_one_file() -> Result<()> {
    let good = read(&model_dir()?)?;
    let dir = folder("sharded", None)?;
    let (a, b): (Tensors, Tensors) = good
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .partition(|(k, _)| k.contains("vision"));
    write(&dir.join("model-00001-of-00002.safetensors"), &a)?;
    write(&dir.join("model-00002-of-00002.safetensors"), &b)?;
    let map: serde_json::Map<String, serde_json::Value> = a
        .keys()
        .map(|k| (k.clone(), "model-00001-of-00002.safetensors".into()))
        .chain(
            b.keys()
                .map(|k| (k.clone(), "model-00002-of-00002.safetensors".into())),
        )
        .collect();
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({"weight_map": map}))?,
    )?;
    let sharded = load(&dir)?;
    let single = load(&model_dir()?)?;
    let be = CpuBackend::with(Isa::best(), 1)?;
    let ids = [1u32, 6, 510, 600, 700, 2];
    let mut s1 = sharded.text.new_state(&be, 8)?;
    let mut s2 = single.text.new_state(&be, 8)?;
    ensure!(
        sharded.text.prefill(&be, &ids, &mut s1, 4)?
            == single.text.prefill(&be, &ids, &mut s2, 4)?
    );
    Ok(())
}

const PROJECTOR_LN: [&str; 2] = [
    "model.multi_modal_projector.layer_norm.weight",
    "model.multi_modal_projector.layer_norm.bias",
];

/// Image features of the `two_images` case through the model in `dir`.
fn features(dir: &Path) -> Result<Vec<f32>> {
    use tensor::Backend;
    let case = Case::load("two_images")?;
    let be = CpuBackend::with(Isa::best(), 1)?;
    let m = Lfm2Vl::load(dir, &be)?;
    let pv = case.f32("pixel_values")?;
    let feats = m.encode_images(&be, &case.crop_patches(&pv)?)?;
    Ok(be.download_f32(&feats)?)
}

/// Sets `projector_use_layernorm` in `dir`'s config.json.
fn set_projector_flag(dir: &Path, on: bool) -> Result<()> {
    let path = dir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    cfg["projector_use_layernorm"] = on.into();
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    Ok(())
}

/// Published conversions whose `projector_use_layernorm` disagrees with
/// their tensors (mlx-vlm #1000, llama.cpp #18594): the tensors decide.
#[test]
fn projector_layernorm_follows_the_tensors() -> Result<()> {
    let good = read(&model_dir()?)?;
    let want = features(&model_dir()?)?;
    // The flag says no, the tensors are there: the norm is applied.
    let dir = folder("ln-flag-off", Some(&good))?;
    set_projector_flag(&dir, false)?;
    ensure!(features(&dir)? == want, "flag off, tensors present");
    // The flag says yes, the tensors are not there: loads, without it.
    let mut t = good.clone();
    for name in PROJECTOR_LN {
        ensure!(t.remove(name).is_some(), "{name} not in the fixture");
    }
    let dir = folder("ln-missing", Some(&t))?;
    set_projector_flag(&dir, true)?;
    let got = features(&dir)?;
    ensure!(got.len() == want.len() && got.iter().all(|v| v.is_finite()));
    ensure!(
        got != want,
        "without the tensors the norm must not be applied"
    );
    Ok(())
}
