//! Internal consistency of the committed parity fixtures (tests/fixtures/):
//! every case (its tensors, token ids, image layout) and every preprocessing
//! reference. The manifest and the checkpoints: `fixtures_checkpoints.rs`.
//!
//! Pure Rust, reads committed files only: runs in CI without Python or torch.

mod fixture_model;

use std::collections::BTreeSet;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;
use tests::{
    Case, EOS_TOKEN_ID, IMAGE_END_ID, IMAGE_START_ID, IMAGE_TOKEN_ID, IMG_THUMBNAIL_ID, Preprocess,
    TensorFile, Tolerance, compare, fixture_path, img_row_col_id, json_str, json_usize, read_json,
};

use fixture_model::model_shape;

// ---------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------

#[test]
fn cases_are_consistent() -> Result<()> {
    let names = Case::names()?;
    for required in [
        "single_image",
        "wide_tiled_thumbnail",
        "grid_2x2",
        "two_images",
        "text_only",
        "multi_turn",
        "upscaled",
    ] {
        ensure!(
            names.iter().any(|n| n == required),
            "missing case {required}"
        );
    }
    for name in names {
        let case = Case::load(&name)?;
        check_case(&case).with_context(|| format!("case {name}"))?;
    }
    Ok(())
}

/// The ids in [396, 500] that the processor must have produced for these crops (spec §7.2).
fn expected_image_ids(images: &[Value], crops: &[tests::CropInfo]) -> Result<Vec<i64>> {
    let mut out = Vec::new();
    for (i, _img) in images.iter().enumerate() {
        out.push(IMAGE_START_ID);
        for c in crops.iter().filter(|c| c.image == i) {
            match c.kind.as_str() {
                "tile" => out.push(img_row_col_id(c.row + 1, c.col + 1)),
                "thumbnail" => out.push(IMG_THUMBNAIL_ID),
                "single" => {}
                other => bail!("unknown crop kind {other}"),
            }
            out.extend(std::iter::repeat_n(IMAGE_TOKEN_ID, c.num_tokens));
        }
        out.push(IMAGE_END_ID);
    }
    Ok(out)
}

fn check_case(case: &Case) -> Result<()> {
    let meta = &case.meta;
    let model_dir = case.model_dir()?;
    ensure!(
        model_dir.is_dir(),
        "model folder {} is missing",
        model_dir.display()
    );
    let m = model_shape(&model_dir)?;
    let proc_cfg = read_json(&model_dir.join("processor_config.json"))?;
    let max_patches = proc_cfg
        .pointer("/image_processor/max_num_patches")
        .and_then(Value::as_u64)
        .ok_or_else(|| anyhow!("processor_config.json lacks image_processor.max_num_patches"))?
        as usize;

    // Every tensor the JSON lists is in the file with that dtype and shape, and vice versa.
    let listed = meta
        .get("tensors")
        .and_then(Value::as_object)
        .ok_or_else(|| anyhow!("no tensors in JSON"))?;
    for (name, info) in listed {
        let t = case.tensors.get(name)?;
        ensure!(
            json_str(info, "dtype")? == t.dtype.name(),
            "{name}: dtype differs from JSON"
        );
        let shape: Vec<usize> = info
            .get("shape")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{name}: no shape"))?
            .iter()
            .map(|v| {
                v.as_u64()
                    .map(|x| x as usize)
                    .ok_or_else(|| anyhow!("bad shape"))
            })
            .collect::<Result<_>>()?;
        ensure!(
            shape == t.shape,
            "{name}: shape {:?} differs from JSON {shape:?}",
            t.shape
        );
    }
    for name in case.tensors.names() {
        ensure!(
            listed.contains_key(name),
            "{name} is not described in the JSON"
        );
    }

    let ids = case.input_ids()?;
    let t = case.seq_len()?;
    ensure!(
        ids.len() == t,
        "input_ids has {} ids, seq_len {t}",
        ids.len()
    );
    ensure!(
        ids.iter().all(|&i| i >= 0 && (i as usize) < m.vocab),
        "prompt id outside the vocab"
    );
    ensure!(case.i64("attention_mask")?.iter().all(|&v| v == 1));

    // Images and crops.
    let images = meta
        .get("images")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no images"))?
        .clone();
    for img in &images {
        let f = fixture_path(json_str(img, "file")?);
        ensure!(f.is_file(), "image {} is missing", f.display());
    }
    let crops = case.crops()?;
    ensure!(crops.len() == json_usize(meta, "num_crops")?);
    let n_img_tokens = ids.iter().filter(|&&i| i == IMAGE_TOKEN_ID).count();
    ensure!(n_img_tokens == json_usize(meta, "num_image_tokens")?);
    let image_ids: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|i| (396..=500).contains(i))
        .collect();
    ensure!(
        image_ids == expected_image_ids(&images, &crops)?,
        "image placeholder layout differs from spec §7.2"
    );

    let (dt, dv) = (m.hidden, m.v_hidden);
    let emb = case.f32("inputs_embeds")?;
    ensure!(case.tensors.shape("inputs_embeds")? == [t, dt]);
    if crops.is_empty() {
        ensure!(n_img_tokens == 0 && images.is_empty());
        ensure!(!case.tensors.tensors.contains_key("pixel_values"));
    } else {
        let ss = case.i64("spatial_shapes")?;
        ensure!(case.tensors.shape("spatial_shapes")? == [crops.len(), 2]);
        ensure!(case.tensors.shape("pixel_values")? == [crops.len(), max_patches, 768]);
        ensure!(case.tensors.shape("pixel_attention_mask")? == [crops.len(), max_patches]);
        let pv = case.f32("pixel_values")?;
        let mask = case.i64("pixel_attention_mask")?;
        let mut feature_rows = 0;
        for (k, c) in crops.iter().enumerate() {
            let (h, w) = c.spatial_shape;
            ensure!(
                (ss[2 * k] as usize, ss[2 * k + 1] as usize) == (h, w),
                "crop {k}: spatial_shapes differs from JSON"
            );
            ensure!(
                h % 2 == 0 && w % 2 == 0 && h * w <= max_patches,
                "crop {k}: bad spatial shape {h}x{w}"
            );
            ensure!(c.num_tokens == (h / 2) * (w / 2));
            let n = h * w;
            // Mask: ones for the first h*w rows.
            let row_mask = &mask[k * max_patches..(k + 1) * max_patches];
            ensure!(
                row_mask
                    .iter()
                    .enumerate()
                    .all(|(i, &v)| v == i64::from(i < n)),
                "crop {k}: pixel_attention_mask"
            );
            // pixel_values == patchify((u8 - 127.5) / 127.5), zero padded, bit for bit.
            let crop = case.tensors.get(&format!("crop{k}.pixels"))?;
            ensure!(
                crop.shape == [16 * h, 16 * w, 3],
                "crop {k}: pixels shape {:?}",
                crop.shape
            );
            let px = crop.as_u8()?;
            let width = 16 * w;
            let base = k * max_patches * 768;
            for p in 0..max_patches {
                for q in 0..768 {
                    let v = pv[base + p * 768 + q];
                    let want = if p < n {
                        let (pr, pc) = (p / w, p % w);
                        let (py, rest) = (q / 48, q % 48);
                        let (pxx, ch) = (rest / 3, rest % 3);
                        let u = px[((16 * pr + py) * width + 16 * pc + pxx) * 3 + ch];
                        (u as f32 - 127.5) / 127.5
                    } else {
                        0.0
                    };
                    ensure!(
                        v.to_bits() == want.to_bits(),
                        "crop {k}: pixel_values[{p}][{q}] = {v}, want {want}"
                    );
                }
            }
            for name in ["pos_embed", "embeddings", "last_hidden_state"] {
                ensure!(
                    case.tensors.shape(&format!("vision.crop{k}.{name}"))? == [n, dv],
                    "vision.crop{k}.{name} shape"
                );
            }
            for j in 0..m.v_layers {
                ensure!(
                    case.tensors.shape(&format!("vision.crop{k}.layer{j}"))? == [n, dv],
                    "vision.crop{k}.layer{j} shape"
                );
            }
            ensure!(
                !case
                    .tensors
                    .tensors
                    .contains_key(&format!("vision.crop{k}.layer{}", m.v_layers))
            );
            ensure!(case.tensors.shape(&format!("projector.crop{k}"))? == [c.num_tokens, dt]);
            feature_rows += c.num_tokens;
        }
        ensure!(
            !case
                .tensors
                .tensors
                .contains_key(&format!("crop{}.pixels", crops.len())),
            "more crop tensors than crops"
        );
        ensure!(case.tensors.shape("image_features")? == [feature_rows, dt]);
        ensure!(
            feature_rows == n_img_tokens,
            "{n_img_tokens} <image> positions but {feature_rows} image-feature rows"
        );

        // image_features is the concatenation of the per-crop projector outputs...
        let feats = case.f32("image_features")?;
        let mut concat = Vec::with_capacity(feats.len());
        for k in 0..crops.len() {
            concat.extend(case.f32(&format!("projector.crop{k}"))?);
        }
        ensure!(concat == feats, "image_features != concat(projector.crop*)");
        // ...scattered, in order, into the <image> rows of inputs_embeds.
        let mut next = 0;
        for (pos, &id) in ids.iter().enumerate() {
            if id == IMAGE_TOKEN_ID {
                ensure!(
                    emb[pos * dt..(pos + 1) * dt] == feats[next * dt..(next + 1) * dt],
                    "inputs_embeds row {pos}"
                );
                next += 1;
            }
        }
    }

    // Text rows of inputs_embeds are the (bf16) embedding rows of model.safetensors.
    let weights = TensorFile::load(&model_dir.join("model.safetensors"))?;
    let table = weights.f32("model.language_model.embed_tokens.weight")?;
    for (pos, &id) in ids.iter().enumerate() {
        if id != IMAGE_TOKEN_ID {
            let id = id as usize;
            ensure!(
                emb[pos * dt..(pos + 1) * dt] == table[id * dt..(id + 1) * dt],
                "inputs_embeds row {pos} is not embed_tokens[{id}]"
            );
        }
    }

    // Decoder stack.
    for i in 0..m.layers {
        ensure!(
            case.tensors.shape(&format!("decoder.layer{i}"))? == [t, dt],
            "decoder.layer{i} shape"
        );
    }
    ensure!(
        !case
            .tensors
            .tensors
            .contains_key(&format!("decoder.layer{}", m.layers))
    );
    ensure!(case.tensors.shape("final_norm")? == [t, dt]);
    ensure!(case.tensors.shape("logits")? == [t, m.vocab]);
    // logits = final_norm · lm_headᵀ (embed_tokens when the head is tied).
    let head = if weights.tensors.contains_key("lm_head.weight") {
        weights.f32("lm_head.weight")?
    } else {
        table.clone()
    };
    let norm = case.f32("final_norm")?;
    let logits = case.f32("logits")?;
    let mut recomputed = vec![0f32; t * m.vocab];
    for p in 0..t {
        let x = &norm[p * dt..(p + 1) * dt];
        for v in 0..m.vocab {
            let e = &head[v * dt..(v + 1) * dt];
            recomputed[p * m.vocab + v] = x
                .iter()
                .zip(e)
                .map(|(a, b)| (*a as f64) * (*b as f64))
                .sum::<f64>() as f32;
        }
    }
    compare(
        "logits vs final_norm·lm_headᵀ",
        &recomputed,
        &logits,
        Tolerance::new(1e-4, 1e-5),
    )?;

    // Greedy generation.
    let generation = meta
        .get("generation")
        .ok_or_else(|| anyhow!("no generation"))?;
    let n_new = json_usize(generation, "max_new_tokens")?;
    ensure!(n_new >= 16, "fewer than 16 generated tokens");
    let new_ids = case.generated_ids()?;
    ensure!(new_ids.len() == n_new);
    ensure!(
        new_ids.iter().all(|&i| i >= 0 && (i as usize) < m.vocab),
        "generated id outside the vocab"
    );
    ensure!(case.tensors.shape("generate.step_logits")? == [n_new, m.vocab]);
    let steps = case.f32("generate.step_logits")?;
    let masked: Vec<usize> = generation
        .get("steps_where_raw_argmax_was_eos")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("no steps_where_raw_argmax_was_eos"))?
        .iter()
        .filter_map(Value::as_u64)
        .map(|v| v as usize)
        .collect();
    for s in 0..n_new {
        let row = &steps[s * m.vocab..(s + 1) * m.vocab];
        let argmax = row
            .iter()
            .enumerate()
            .fold((0usize, f32::NEG_INFINITY), |best, (i, &v)| {
                if v > best.1 { (i, v) } else { best }
            })
            .0 as i64;
        if masked.contains(&s) {
            ensure!(argmax == EOS_TOKEN_ID && new_ids[s] != EOS_TOKEN_ID);
        } else {
            ensure!(
                argmax == new_ids[s],
                "step {s}: generated {} but argmax of step_logits is {argmax}",
                new_ids[s]
            );
        }
    }
    compare(
        "step_logits[0] vs logits[T-1]",
        &steps[..m.vocab],
        &logits[(t - 1) * m.vocab..],
        Tolerance::new(1e-4, 1e-4),
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Preprocessing-only references
// ---------------------------------------------------------------------------

#[test]
fn preprocess_refs_are_consistent() -> Result<()> {
    for setting in Preprocess::SETTINGS {
        let p = Preprocess::load(setting)?;
        check_preprocess(&p).with_context(|| format!("preprocess {setting}"))?;
    }
    Ok(())
}

fn check_preprocess(p: &Preprocess) -> Result<()> {
    let knobs = p
        .meta
        .get("processor")
        .ok_or_else(|| anyhow!("no processor knobs"))?;
    ensure!(
        json_usize(knobs, "tile_size")? == 512 && json_usize(knobs, "max_image_tokens")? == 256
    );
    let cfg = fixture_path(json_str(&p.meta, "processor_config")?);
    ensure!(cfg.is_file(), "{} is missing", cfg.display());
    let images = p.images()?;
    ensure!(images.len() >= 25, "only {} image sizes", images.len());
    let mut sizes = BTreeSet::new();
    for img in images {
        let name = json_str(img, "name")?;
        let (h, w) = (json_usize(img, "height")?, json_usize(img, "width")?);
        sizes.insert((h, w));
        ensure!(
            fixture_path(json_str(img, "file")?).is_file(),
            "{name}: image file missing"
        );
        let ids = p.tensors.i64(&format!("{name}.input_ids"))?;
        ensure!(ids.len() == json_usize(img, "seq_len")?);
        let ss = p.tensors.i64(&format!("{name}.spatial_shapes"))?;
        let crops_json = img
            .get("crops")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{name}: no crops"))?;
        ensure!(
            ss.len() == 2 * crops_json.len(),
            "{name}: spatial_shapes vs crops"
        );
        let mut crops = Vec::new();
        for (k, c) in crops_json.iter().enumerate() {
            let (sh, sw) = (ss[2 * k] as usize, ss[2 * k + 1] as usize);
            let (ch, cw) = (json_usize(c, "height")?, json_usize(c, "width")?);
            ensure!(
                (ch, cw) == (16 * sh, 16 * sw),
                "{name} crop {k}: size vs spatial shape"
            );
            let kind = json_str(c, "kind")?.to_string();
            if kind == "tile" {
                ensure!((sh, sw) == (32, 32), "{name} crop {k}: tiles are 512x512");
            }
            let sha = json_str(c, "sha256")?;
            ensure!(
                sha.len() == 64 && sha.chars().all(|x| x.is_ascii_hexdigit()),
                "{name} crop {k}: bad sha256"
            );
            let rows: Vec<usize> = c
                .get("rows_stored")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("no rows_stored"))?
                .iter()
                .filter_map(Value::as_u64)
                .map(|v| v as usize)
                .collect();
            ensure!(rows.iter().all(|&r| r < ch));
            let stored = p.tensors.get(&format!("{name}.crop{k}.rows"))?;
            ensure!(
                stored.shape == [rows.len(), cw, 3],
                "{name} crop {k}: rows shape"
            );
            let sums = c
                .get("channel_sums")
                .and_then(Value::as_array)
                .ok_or_else(|| anyhow!("no channel_sums"))?;
            ensure!(sums.len() == 3);
            crops.push(tests::CropInfo {
                image: 0,
                kind,
                row: json_usize(c, "row")?,
                col: json_usize(c, "col")?,
                spatial_shape: (sh, sw),
                num_tokens: json_usize(c, "num_tokens")?,
            });
            ensure!(crops[k].num_tokens == (sh / 2) * (sw / 2));
        }
        let n_img = ids.iter().filter(|&&i| i == IMAGE_TOKEN_ID).count();
        ensure!(n_img == json_usize(img, "num_image_tokens")?);
        ensure!(
            n_img == crops.iter().map(|c| c.num_tokens).sum::<usize>(),
            "{name}: <image> count vs crops"
        );
        let image_ids: Vec<i64> = ids
            .iter()
            .copied()
            .filter(|i| (396..=500).contains(i))
            .collect();
        let want = expected_image_ids(std::slice::from_ref(img), &crops)?;
        ensure!(
            image_ids == want,
            "{name}: image placeholder layout differs from spec §7.2"
        );
        ensure!(image_ids.len() == json_usize(img, "image_span_tokens")?);
    }
    for required in [
        (1, 1),
        (15, 4000),
        (4000, 15),
        (31, 31),
        (100, 100),
        (256, 384),
        (384, 256),
        (512, 512),
        (513, 512),
        (600, 800),
        (1000, 3000),
        (1024, 1024),
        (1080, 1920),
    ] {
        ensure!(sizes.contains(&required), "missing image size {required:?}");
    }
    Ok(())
}
