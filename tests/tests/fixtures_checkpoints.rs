//! Internal consistency of the committed parity fixtures (tests/fixtures/):
//! the manifest and the tiny checkpoints (config, tensors, tokenizer). The
//! cases and preprocessing references: `fixtures_cases.rs`.
//!
//! Pure Rust, reads committed files only: runs in CI without Python or torch.
//! The parity tests themselves (engine vs. these references) live with the
//! model crates; this only proves the fixtures agree with themselves.

mod fixture_model;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result, anyhow, ensure};
use serde_json::Value;
use tests::{
    EOS_TOKEN_ID, IMAGE_END_ID, IMAGE_START_ID, IMAGE_TOKEN_ID, IMG_THUMBNAIL_ID, TensorFile,
    fixture_path, fixtures_dir, img_row_col_id, json_usize, read_json, sha256_hex,
};

use fixture_model::{ModelShape, model_shape};

/// Files in tests/fixtures that the generator does not write.
const HAND_WRITTEN: &[&str] = &["README.md", ".gitattributes", "MANIFEST.json"];

fn list_files(dir: &Path, base: &Path, acc: &mut BTreeSet<String>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            list_files(&path, base, acc)?;
        } else {
            let rel = path.strip_prefix(base)?;
            acc.insert(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}

#[test]
fn manifest_matches_files() -> Result<()> {
    let manifest = read_json(&fixtures_dir().join("MANIFEST.json"))?;
    let files = manifest
        .get("files")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("MANIFEST.json has no files"))?;
    ensure!(!files.is_empty(), "MANIFEST.json lists no files");
    let mut total = 0u64;
    for (rel, info) in files {
        let path = fixture_path(rel);
        let bytes = std::fs::read(&path)
            .with_context(|| format!("MANIFEST.json lists {rel}, which cannot be read"))?;
        let want_len = info
            .get("bytes")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("{rel}: no bytes"))?;
        ensure!(
            bytes.len() as u64 == want_len,
            "{rel}: {} bytes, MANIFEST.json says {want_len}",
            bytes.len()
        );
        let want_sha = info
            .get("sha256")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{rel}: no sha256"))?;
        ensure!(
            sha256_hex(&bytes) == want_sha,
            "{rel}: sha256 differs from MANIFEST.json"
        );
        total += want_len;
    }
    ensure!(
        manifest.get("total_bytes").and_then(Value::as_u64) == Some(total),
        "total_bytes is not the sum"
    );
    // 15 MB for the 450M- and 1.6B-like models, 3 MB more for the 3B- and
    // LFM2.5-like ones and their cases.
    ensure!(
        total < 18_000_000,
        "fixtures total {total} bytes, the budget is 18 MB"
    );

    let mut on_disk = BTreeSet::new();
    list_files(&fixtures_dir(), &fixtures_dir(), &mut on_disk)?;
    for rel in &on_disk {
        if !HAND_WRITTEN.contains(&rel.as_str()) {
            ensure!(
                files.contains_key(rel),
                "{rel} is in tests/fixtures but not in MANIFEST.json"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Checkpoints
// ---------------------------------------------------------------------------

/// Expected (published-layout name, shape) of every stored tensor.
fn expected_tensors(m: &ModelShape) -> BTreeMap<String, Vec<usize>> {
    let mut e = BTreeMap::new();
    let (h, hd) = (m.hidden, m.hidden / m.heads);
    let lm = "model.language_model.";
    e.insert(format!("{lm}embed_tokens.weight"), vec![m.vocab, h]);
    e.insert(format!("{lm}embedding_norm.weight"), vec![h]);
    if !m.tied_head {
        e.insert("lm_head.weight".into(), vec![m.vocab, h]);
    }
    for (i, ty) in m.layer_types.iter().enumerate() {
        let p = format!("{lm}layers.{i}.");
        e.insert(format!("{p}operator_norm.weight"), vec![h]);
        e.insert(format!("{p}ffn_norm.weight"), vec![h]);
        e.insert(format!("{p}feed_forward.w1.weight"), vec![m.ffn, h]);
        e.insert(format!("{p}feed_forward.w3.weight"), vec![m.ffn, h]);
        e.insert(format!("{p}feed_forward.w2.weight"), vec![h, m.ffn]);
        if ty == "conv" {
            e.insert(format!("{p}conv.in_proj.weight"), vec![3 * h, h]);
            e.insert(format!("{p}conv.conv.weight"), vec![h, 1, 3]);
            e.insert(format!("{p}conv.out_proj.weight"), vec![h, h]);
        } else {
            e.insert(format!("{p}self_attn.q_proj.weight"), vec![m.heads * hd, h]);
            e.insert(
                format!("{p}self_attn.k_proj.weight"),
                vec![m.kv_heads * hd, h],
            );
            e.insert(
                format!("{p}self_attn.v_proj.weight"),
                vec![m.kv_heads * hd, h],
            );
            e.insert(
                format!("{p}self_attn.out_proj.weight"),
                vec![h, m.heads * hd],
            );
            e.insert(format!("{p}self_attn.q_layernorm.weight"), vec![hd]);
            e.insert(format!("{p}self_attn.k_layernorm.weight"), vec![hd]);
        }
    }
    let (d, f) = (m.v_hidden, m.v_mlp);
    let vp = "model.vision_tower.vision_model.";
    e.insert(
        format!("{vp}embeddings.patch_embedding.weight"),
        vec![d, 768],
    );
    e.insert(format!("{vp}embeddings.patch_embedding.bias"), vec![d]);
    e.insert(
        format!("{vp}embeddings.position_embedding.weight"),
        vec![m.num_patches, d],
    );
    for j in 0..m.v_layers {
        let p = format!("{vp}encoder.layers.{j}.");
        for ln in ["layer_norm1", "layer_norm2"] {
            e.insert(format!("{p}{ln}.weight"), vec![d]);
            e.insert(format!("{p}{ln}.bias"), vec![d]);
        }
        for proj in ["q_proj", "k_proj", "v_proj", "out_proj"] {
            e.insert(format!("{p}self_attn.{proj}.weight"), vec![d, d]);
            e.insert(format!("{p}self_attn.{proj}.bias"), vec![d]);
        }
        e.insert(format!("{p}mlp.fc1.weight"), vec![f, d]);
        e.insert(format!("{p}mlp.fc1.bias"), vec![f]);
        e.insert(format!("{p}mlp.fc2.weight"), vec![d, f]);
        e.insert(format!("{p}mlp.fc2.bias"), vec![d]);
    }
    e.insert(format!("{vp}post_layernorm.weight"), vec![d]);
    e.insert(format!("{vp}post_layernorm.bias"), vec![d]);
    let pin = d * m.downsample * m.downsample;
    let pp = "model.multi_modal_projector.";
    e.insert(format!("{pp}layer_norm.weight"), vec![pin]);
    e.insert(format!("{pp}layer_norm.bias"), vec![pin]);
    e.insert(format!("{pp}linear_1.weight"), vec![m.proj_hidden, pin]);
    e.insert(format!("{pp}linear_1.bias"), vec![m.proj_hidden]);
    e.insert(format!("{pp}linear_2.weight"), vec![h, m.proj_hidden]);
    e.insert(format!("{pp}linear_2.bias"), vec![h]);
    e
}

fn model_dirs() -> Result<Vec<std::path::PathBuf>> {
    let dir = fixtures_dir().join("models");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let p = entry?.path();
        if p.is_dir() {
            out.push(p);
        }
    }
    out.sort();
    ensure!(
        out.len() >= 2,
        "expected the two tiny checkpoints under {}",
        dir.display()
    );
    Ok(out)
}

#[test]
fn checkpoints_are_consistent() -> Result<()> {
    for dir in model_dirs()? {
        let name = dir
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        check_checkpoint(&dir).with_context(|| format!("checkpoint {name}"))?;
    }
    Ok(())
}

fn check_checkpoint(dir: &Path) -> Result<()> {
    for f in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "processor_config.json",
        "generation_config.json",
    ] {
        ensure!(dir.join(f).is_file(), "missing {f}");
    }
    let tmpl = std::fs::read(dir.join("chat_template.jinja"))?;
    ensure!(
        tmpl.len() == 434,
        "chat_template.jinja is {} bytes, the published one is 434",
        tmpl.len()
    );
    let gen_cfg = read_json(&dir.join("generation_config.json"))?;
    ensure!(json_usize(&gen_cfg, "eos_token_id")? == EOS_TOKEN_ID as usize);

    let m = model_shape(dir)?;
    ensure!(m.layer_types.len() == m.layers, "layer_types length");
    let n_attn = m.layer_types.iter().filter(|t| *t != "conv").count();
    ensure!(
        n_attn >= 2 && m.layers - n_attn >= 2,
        "want several conv and attention layers"
    );
    ensure!(
        m.kv_heads < m.heads && m.heads % m.kv_heads == 0,
        "want GQA"
    );
    let g = (m.num_patches as f64).sqrt() as usize;
    ensure!(
        g * g == m.num_patches && g != 16,
        "position grid must be square and not 16x16"
    );
    ensure!(m.v_hidden % m.v_heads == 0);

    // Published layout: exact names and shapes, bf16, lm_head only when untied.
    let published = TensorFile::load(&dir.join("model.safetensors"))?;
    let want = expected_tensors(&m);
    let got: BTreeMap<String, Vec<usize>> = published
        .tensors
        .iter()
        .map(|(k, t)| (k.clone(), t.shape.clone()))
        .collect();
    for (k, shape) in &want {
        let g = got
            .get(k)
            .ok_or_else(|| anyhow!("model.safetensors lacks {k}"))?;
        ensure!(g == shape, "{k}: shape {g:?}, config says {shape:?}");
    }
    for k in got.keys() {
        ensure!(
            want.contains_key(k),
            "model.safetensors has unexpected tensor {k}"
        );
    }
    for (k, t) in &published.tensors {
        ensure!(
            t.dtype == tests::FixtureDType::Tensor(tensor::DType::BF16),
            "{k} is {}, want BF16",
            t.dtype
        );
    }

    // transformers-5 layout (the 450M- and 1.6B-like models): same bytes,
    // `vision_model.` dropped from the vision names.
    let hf5_path = dir.join("model.transformers5.safetensors");
    let hf5_wanted = dir.ends_with("tiny-450m") || dir.ends_with("tiny-1.6b");
    ensure!(
        hf5_path.exists() == hf5_wanted,
        "model.transformers5.safetensors"
    );
    if hf5_wanted {
        let hf5 = TensorFile::load(&hf5_path)?;
        ensure!(
            hf5.tensors.len() == published.tensors.len(),
            "layouts hold different tensor counts"
        );
        for (k, t) in &published.tensors {
            let k5 = k.replacen("model.vision_tower.vision_model.", "model.vision_tower.", 1);
            let t5 = hf5.get(&k5)?;
            ensure!(t5 == t, "{k5} differs from {k}");
        }
    }

    // Optional f32 copy: exactly the bf16 values widened.
    let f32_path = dir.join("model.f32.safetensors");
    if f32_path.exists() {
        let f = TensorFile::load(&f32_path)?;
        ensure!(f.tensors.len() == published.tensors.len());
        for (k, t) in &published.tensors {
            ensure!(f.get(k)?.shape == t.shape, "{k}: f32 shape");
            ensure!(
                f.f32(k)? == t.to_f32()?,
                "{k}: f32 copy is not the bf16 value"
            );
        }
    }

    // Tokenizer: the spec §7.1 special tokens at their ids.
    let tok = read_json(&dir.join("tokenizer.json"))?;
    let added = tok
        .get("added_tokens")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no added_tokens"))?;
    let by_content: BTreeMap<&str, i64> = added
        .iter()
        .filter_map(|t| Some((t.get("content")?.as_str()?, t.get("id")?.as_i64()?)))
        .collect();
    let mut want_ids: Vec<(String, i64)> = vec![
        ("<|pad|>".into(), 0),
        ("<|startoftext|>".into(), 1),
        ("<|endoftext|>".into(), 2),
        ("<|im_start|>".into(), 6),
        ("<|im_end|>".into(), 7),
        ("<image>".into(), IMAGE_TOKEN_ID),
        ("<|img_thumbnail|>".into(), IMG_THUMBNAIL_ID),
        ("<|image_start|>".into(), IMAGE_START_ID),
        ("<|image_end|>".into(), IMAGE_END_ID),
        ("<|image_split|>".into(), 500),
    ];
    for r in 1..=10 {
        for c in 1..=10 {
            want_ids.push((format!("<|img_row_{r}_col_{c}|>"), img_row_col_id(r, c)));
        }
    }
    for (content, id) in want_ids {
        ensure!(
            by_content.get(content.as_str()) == Some(&id),
            "tokenizer.json: {content} is not id {id}"
        );
    }
    let vocab = tok
        .pointer("/model/vocab")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no model.vocab"))?;
    ensure!(
        vocab.len() <= m.vocab,
        "tokenizer vocab {} > model vocab {}",
        vocab.len(),
        m.vocab
    );
    let pre = serde_json::to_string(tok.get("pre_tokenizer").unwrap_or(&Value::Null))?;
    ensure!(
        pre.contains("\\\\p{N}{1,3}") && pre.contains("ByteLevel"),
        "pre_tokenizer is not the LFM2 split + ByteLevel"
    );
    Ok(())
}

/// The built-in LFM2-VL template (a GGUF without one, synthetic
/// checkpoints) renders every case's messages exactly as the fixture
/// checkpoint's `chat_template.jinja` (transformers' template) does.
#[test]
fn builtin_chat_template_renders_as_the_checkpoints() -> Result<()> {
    use model::prompt::{ChatTemplate, LFM2_CHAT_TEMPLATE, messages_from_value};
    for name in tests::Case::names()? {
        let case = tests::Case::load(&name)?;
        let dir = case.model_dir()?;
        let theirs = ChatTemplate::from_dir(&dir)?;
        let special = BTreeMap::from([("bos_token".to_string(), "<|startoftext|>".to_string())]);
        let ours = ChatTemplate::new(LFM2_CHAT_TEMPLATE, special)?;
        let msgs = messages_from_value(&case.meta["messages"])?;
        for gen_prompt in [false, true] {
            let (a, b) = (
                theirs.render(&msgs, gen_prompt)?,
                ours.render(&msgs, gen_prompt)?,
            );
            ensure!(a == b, "{name}: {a:?} vs {b:?}");
        }
    }
    Ok(())
}
