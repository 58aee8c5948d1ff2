//! Parity of image preprocessing and prompt building with transformers 5.24
//! (the committed fixtures, see tests/fixtures/README.md): crops (uint8),
//! `pixel_values` (bit-exact), masks, spatial shapes and prompt ids, for the
//! 29 preprocessing-only sizes under both real processor settings and for
//! every model case.

use anyhow::{Context, Result, bail, ensure};
use model::preprocess::{
    CropKind, DecodeLimits, ProcessorConfig, ProcessorOverrides, RgbImage, load_image, preprocess,
};
use model::prompt::{PromptBuilder, PromptOptions, messages_from_value};
use serde_json::Value;
use tests::{Case, Preprocess, fixture_path, fixtures_dir, json_str, json_usize, sha256_hex};

/// Pixel statistics of one crop compared with its reference.
#[derive(Debug, Default)]
struct PixelStats {
    compared: usize,
    mismatched: usize,
    max_diff: u8,
}

impl PixelStats {
    fn add(&mut self, got: &[u8], want: &[u8]) {
        for (g, w) in got.iter().zip(want) {
            self.compared += 1;
            if g != w {
                self.mismatched += 1;
                self.max_diff = self.max_diff.max(g.abs_diff(*w));
            }
        }
    }
}

fn load_png(rel: &str) -> Result<RgbImage> {
    load_image(&fixture_path(rel), &DecodeLimits::default()).with_context(|| rel.to_string())
}

fn kind_matches(kind: CropKind, meta: &Value) -> Result<bool> {
    let (row, col) = (json_usize(meta, "row")?, json_usize(meta, "col")?);
    Ok(match (kind, json_str(meta, "kind")?) {
        (CropKind::Single, "single") | (CropKind::Thumbnail, "thumbnail") => true,
        (CropKind::Tile { row: r, col: c }, "tile") => (r, c) == (row, col),
        _ => false,
    })
}

fn usize_pair(v: &Value, key: &str) -> Result<(usize, usize)> {
    let a = v
        .get(key)
        .and_then(Value::as_array)
        .context(key.to_string())?;
    ensure!(a.len() == 2, "{key} is not a pair");
    let f = |i: usize| a[i].as_u64().map(|x| x as usize).context("not an integer");
    Ok((f(0)?, f(1)?))
}

/// The processor config a preprocessing-only setting was generated with
/// (stored as `preprocess/<setting>.processor_config.json`; `from_dir`
/// reads a checkpoint folder, so it is copied into a temp one).
fn setting_config(setting: &str) -> Result<ProcessorConfig> {
    let src = fixtures_dir()
        .join("preprocess")
        .join(format!("{setting}.processor_config.json"));
    let text = std::fs::read_to_string(&src).with_context(|| src.display().to_string())?;
    let dir = temp_checkpoint(setting, &[("processor_config.json", &text)])?;
    Ok(ProcessorConfig::load(&dir, &ProcessorOverrides::default())?)
}

/// A temp folder removed on drop.
struct TempDir(std::path::PathBuf);

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh temp folder holding the given `(file name, contents)` pairs
/// (unique per call: tests run in parallel threads).
fn temp_checkpoint(tag: &str, files: &[(&str, &str)]) -> Result<TempDir> {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("lfm2vl-pp-{}-{n}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    for (name, text) in files {
        std::fs::write(dir.join(name), text)?;
    }
    Ok(TempDir(dir))
}

#[test]
fn preprocess_parity_real_settings_crops_and_shapes() -> Result<()> {
    let mut total = PixelStats::default();
    let mut hash_mismatch = Vec::new();
    let mut n_crops = 0;
    for setting in Preprocess::SETTINGS {
        let pp = Preprocess::load(setting)?;
        let cfg = setting_config(setting)?;
        for entry in pp.images()? {
            let name = json_str(entry, "name")?;
            let img = load_png(json_str(entry, "file")?)?;
            let out = preprocess(std::slice::from_ref(&img), &cfg)?;
            let layout = &out.images[0];
            let ctx = format!("{setting} {name}");
            ensure!(
                layout.tiled == entry["tiled"].as_bool().context("tiled")?,
                "{ctx}: tiled"
            );
            ensure!(
                (layout.grid_rows, layout.grid_cols)
                    == (
                        json_usize(entry, "grid_rows")?,
                        json_usize(entry, "grid_cols")?
                    ),
                "{ctx}: grid {}x{}",
                layout.grid_rows,
                layout.grid_cols
            );
            ensure!(
                layout.resized == usize_pair(entry, "resized_size")?,
                "{ctx}: resized"
            );
            ensure!(
                layout.num_image_tokens() == json_usize(entry, "num_image_tokens")?,
                "{ctx}: image tokens {}",
                layout.num_image_tokens()
            );
            // Spatial shapes.
            let ss = pp.tensors.i64(&format!("{name}.spatial_shapes"))?;
            let got: Vec<i64> = out
                .spatial_shapes
                .iter()
                .flat_map(|s| [s[0] as i64, s[1] as i64])
                .collect();
            ensure!(got == ss, "{ctx}: spatial_shapes {got:?} vs {ss:?}");
            // Crops.
            let crops = entry["crops"].as_array().context("crops")?;
            ensure!(crops.len() == out.crops.len(), "{ctx}: crop count");
            for (k, (meta, crop)) in crops.iter().zip(&out.crops).enumerate() {
                n_crops += 1;
                ensure!(
                    kind_matches(crop.kind, meta)?,
                    "{ctx}: crop {k} kind {:?}",
                    crop.kind
                );
                let (h, w) = (json_usize(meta, "height")?, json_usize(meta, "width")?);
                ensure!(
                    (crop.pixels.height() as usize, crop.pixels.width() as usize) == (h, w),
                    "{ctx}: crop {k} size"
                );
                let raw = crop.pixels.as_raw();
                if sha256_hex(raw) != json_str(meta, "sha256")? {
                    hash_mismatch.push(format!("{ctx} crop{k}"));
                }
                let rows: Vec<usize> = meta["rows_stored"]
                    .as_array()
                    .context("rows_stored")?
                    .iter()
                    .map(|v| v.as_u64().unwrap_or(0) as usize)
                    .collect();
                let want = pp
                    .tensors
                    .get(&format!("{name}.crop{k}.rows"))?
                    .as_u8()?
                    .to_vec();
                let got: Vec<u8> = rows
                    .iter()
                    .flat_map(|&r| raw[r * w * 3..(r + 1) * w * 3].to_vec())
                    .collect();
                total.add(&got, &want);
                let sums: Vec<u64> = meta["channel_sums"]
                    .as_array()
                    .context("channel_sums")?
                    .iter()
                    .map(|v| v.as_u64().unwrap_or(u64::MAX))
                    .collect();
                let got: Vec<u64> = (0..3)
                    .map(|c| raw.iter().skip(c).step_by(3).map(|&v| v as u64).sum())
                    .collect();
                ensure!(
                    got == sums,
                    "{ctx}: crop {k} channel sums {got:?} vs {sums:?}"
                );
            }
        }
    }
    // 29 sizes per setting, 3 settings: 87 images, 183 crops in all.
    ensure!(n_crops == 183, "{n_crops} crops checked");
    println!(
        "preprocess parity: {n_crops} crops, {} hash mismatches, stored rows: {} bytes, {} differ, max |diff| {}",
        hash_mismatch.len(),
        total.compared,
        total.mismatched,
        total.max_diff
    );
    if !hash_mismatch.is_empty() || total.mismatched > 0 {
        bail!("crop mismatches: {hash_mismatch:?}; rows {total:?}");
    }
    Ok(())
}

#[test]
fn preprocess_parity_cases_pixel_values() -> Result<()> {
    let mut n = 0;
    for name in Case::names()? {
        let case = Case::load(&name)?;
        let images = case.meta["images"].as_array().context("images")?;
        if images.is_empty() {
            continue;
        }
        let cfg = ProcessorConfig::load(&case.model_dir()?, &ProcessorOverrides::default())?;
        let imgs: Vec<RgbImage> = images
            .iter()
            .map(|i| load_png(json_str(i, "file")?))
            .collect::<Result<_>>()?;
        let out = preprocess(&imgs, &cfg)?;
        // Crops.
        let crops = case.crops()?;
        ensure!(crops.len() == out.crops.len(), "{name}: crop count");
        let mut stats = PixelStats::default();
        for (k, crop) in out.crops.iter().enumerate() {
            let want = case.tensors.get(&format!("crop{k}.pixels"))?;
            ensure!(
                want.shape
                    == [
                        crop.pixels.height() as usize,
                        crop.pixels.width() as usize,
                        3
                    ],
                "{name}: crop{k} shape"
            );
            stats.add(crop.pixels.as_raw(), want.as_u8()?);
        }
        ensure!(stats.mismatched == 0, "{name}: crop pixels {stats:?}");
        // pixel_values bit-exact.
        let pv = case.tensors.get("pixel_values")?;
        ensure!(
            pv.shape == [out.num_crops(), out.max_num_patches, out.patch_dim],
            "{name}: pixel_values shape {:?}",
            pv.shape
        );
        let want = pv.to_f32()?;
        let bad = want
            .iter()
            .zip(&out.pixel_values)
            .filter(|(a, b)| a.to_bits() != b.to_bits())
            .count();
        ensure!(bad == 0, "{name}: {bad} pixel_values differ");
        let mask = case.i64("pixel_attention_mask")?;
        let got: Vec<i64> = out.pixel_attention_mask.iter().map(|&v| v as i64).collect();
        ensure!(got == mask, "{name}: pixel_attention_mask");
        let ss = case.i64("spatial_shapes")?;
        let got: Vec<i64> = out
            .spatial_shapes
            .iter()
            .flat_map(|s| [s[0] as i64, s[1] as i64])
            .collect();
        ensure!(got == ss, "{name}: spatial_shapes");
        n += 1;
    }
    ensure!(n >= 7, "only {n} image cases");
    Ok(())
}

fn ids_i64(ids: &[u32]) -> Vec<i64> {
    ids.iter().map(|&v| v as i64).collect()
}

/// Every case: the case's messages through the tiny checkpoint's template
/// and tokenizer, with the images' layouts, give the reference ids.
#[test]
fn prompt_parity_cases_input_ids() -> Result<()> {
    let names = Case::names()?;
    for name in &names {
        let case = Case::load(name)?;
        let dir = case.model_dir()?;
        let builder = PromptBuilder::from_dir(&dir)?;
        let cfg = ProcessorConfig::load(&dir, &ProcessorOverrides::default())?;
        let messages = messages_from_value(&case.meta["messages"])?;
        let images = case.meta["images"].as_array().context("images")?;
        let imgs: Vec<RgbImage> = images
            .iter()
            .map(|i| load_png(json_str(i, "file")?))
            .collect::<Result<_>>()?;
        let layouts = if imgs.is_empty() {
            Vec::new()
        } else {
            preprocess(&imgs, &cfg)?.images
        };
        let opts = PromptOptions {
            use_image_special_tokens: cfg.use_image_special_tokens,
            ..PromptOptions::default()
        };
        let prompt = builder.build(&messages, &layouts, &opts)?;
        ensure!(
            prompt.text == json_str(&case.meta, "prompt_text")?,
            "{name}: rendered text {:?}",
            prompt.text
        );
        let want = case.input_ids()?;
        ensure!(
            ids_i64(&prompt.input_ids) == want,
            "{name}: input_ids differ"
        );
        ensure!(
            prompt.num_image_tokens == json_usize(&case.meta, "num_image_tokens")?,
            "{name}: image tokens"
        );
        ensure!(builder.image_token_id()? == 396, "{name}: <image> id");
    }
    ensure!(names.len() >= 9, "only {} cases", names.len());
    Ok(())
}

/// The 29 sizes x 2 real settings: prompt ids (tiny tokenizer, real knobs).
#[test]
fn prompt_parity_real_settings_input_ids() -> Result<()> {
    let builder = PromptBuilder::from_dir(&fixtures_dir().join("models").join("tiny-450m"))?;
    let mut n = 0;
    for setting in Preprocess::SETTINGS {
        let pp = Preprocess::load(setting)?;
        let cfg = setting_config(setting)?;
        let messages = messages_from_value(&pp.meta["messages"])?;
        let text = builder.render(&messages, true)?;
        ensure!(
            text == json_str(&pp.meta, "prompt_text")?,
            "{setting}: rendered text"
        );
        for entry in pp.images()? {
            let name = json_str(entry, "name")?;
            let (h, w) = (json_usize(entry, "height")?, json_usize(entry, "width")?);
            // The layout comes from the size alone (no pixels needed).
            let layout = model::preprocess::ImageLayout::plan(h, w, &cfg);
            let prompt =
                builder.build_from_text(text.clone(), &[layout], &PromptOptions::default())?;
            let want = pp.tensors.i64(&format!("{name}.input_ids"))?;
            ensure!(
                ids_i64(&prompt.input_ids) == want,
                "{setting} {name}: input_ids differ"
            );
            ensure!(
                prompt.input_ids.len() == json_usize(entry, "seq_len")?,
                "{setting} {name}: seq_len"
            );
            let start = prompt
                .input_ids
                .iter()
                .position(|&t| t == 498)
                .context("no <|image_start|>")?;
            let end = prompt
                .input_ids
                .iter()
                .position(|&t| t == 499)
                .context("no <|image_end|>")?;
            ensure!(
                end - start + 1 == json_usize(entry, "image_span_tokens")?,
                "{setting} {name}: span"
            );
            n += 1;
        }
    }
    ensure!(n == 3 * 29, "{n} prompts checked");
    Ok(())
}

// ---------------------------------------------------------------------------
// Config loading, validation and error paths
// ---------------------------------------------------------------------------

use model::preprocess::{ChannelStats, PreprocessError, ResampleFilter};
use model::prompt::{ChatMessage, ContentPart, PromptError};

#[test]
fn config_sources_and_precedence() -> Result<()> {
    // transformers 5 layout: nested under image_processor.
    let cfg = ProcessorConfig::load(
        &fixtures_dir().join("models/tiny-1.6b"),
        &ProcessorOverrides::default(),
    )?;
    ensure!((cfg.tile_size, cfg.use_thumbnail, cfg.max_pixels_tolerance) == (128, true, 1.5));
    ensure!(
        (
            cfg.min_image_tokens,
            cfg.max_image_tokens,
            cfg.max_num_patches()
        ) == (4, 16, 64)
    );

    // HF-native preprocessor_config.json only; nulls take defaults; scalar mean.
    let dir = temp_checkpoint(
        "pp",
        &[(
            "preprocessor_config.json",
            r#"{"tile_size": 256, "use_thumbnail": false, "resample": 3, "image_mean": 0.25, "min_tiles": null}"#,
        )],
    )?;
    let cfg = ProcessorConfig::load(&dir, &ProcessorOverrides::default())?;
    ensure!(
        (cfg.tile_size, cfg.use_thumbnail, cfg.filter()) == (256, false, ResampleFilter::Bicubic)
    );
    ensure!(cfg.image_mean == [0.25; 3] && cfg.min_tiles == 2);

    // Original hub layout: knobs at the top level of processor_config.json;
    // a max_num_patches in the file is ignored (transformers recomputes it).
    let dir = temp_checkpoint(
        "legacy",
        &[(
            "processor_config.json",
            r#"{"max_pixels_tolerance": 2.0, "use_thumbnail": false, "use_image_special_tokens": false,
                "max_num_patches": 7, "processor_class": "Lfm2VlProcessor"}"#,
        )],
    )?;
    let cfg = ProcessorConfig::load(&dir, &ProcessorOverrides::default())?;
    ensure!(!cfg.use_thumbnail && !cfg.use_image_special_tokens && cfg.max_num_patches() == 1024);

    // Nested image_processor wins over preprocessor_config.json (whole object,
    // no key-by-key merge); use_image_special_tokens from the top level.
    let dir = temp_checkpoint(
        "both",
        &[
            (
                "processor_config.json",
                r#"{"image_processor": {"tile_size": 64}, "use_image_special_tokens": false}"#,
            ),
            (
                "preprocessor_config.json",
                r#"{"tile_size": 256, "use_thumbnail": false}"#,
            ),
        ],
    )?;
    let cfg = ProcessorConfig::load(&dir, &ProcessorOverrides::default())?;
    ensure!(
        (
            cfg.tile_size,
            cfg.use_thumbnail,
            cfg.use_image_special_tokens
        ) == (64, true, false)
    );

    // Caller overrides beat every file.
    let o = ProcessorOverrides {
        tile_size: Some(256),
        max_num_patches: Some(2000),
        do_image_splitting: Some(false),
        image_std: Some(ChannelStats::PerChannel([0.5, 0.25, 0.125])),
        ..ProcessorOverrides::default()
    };
    let cfg = ProcessorConfig::load(&dir, &o)?;
    ensure!((cfg.tile_size, cfg.max_num_patches(), cfg.splitting()) == (256, 2000, false));
    ensure!(cfg.image_std == [0.5, 0.25, 0.125]);
    Ok(())
}

#[test]
fn config_validation_names_the_field() -> Result<()> {
    let cases: [(ProcessorOverrides, &str); 8] = [
        (
            ProcessorOverrides {
                tile_size: Some(100),
                ..Default::default()
            },
            "tile_size",
        ),
        (
            ProcessorOverrides {
                min_tiles: Some(5),
                max_tiles: Some(4),
                ..Default::default()
            },
            "max_tiles",
        ),
        (
            ProcessorOverrides {
                max_tiles: Some(101),
                ..Default::default()
            },
            "max_tiles",
        ),
        (
            ProcessorOverrides {
                encoder_patch_size: Some(0),
                ..Default::default()
            },
            "encoder_patch_size",
        ),
        (
            ProcessorOverrides {
                min_image_tokens: Some(300),
                ..Default::default()
            },
            "max_image_tokens",
        ),
        (
            ProcessorOverrides {
                max_pixels_tolerance: Some(f64::NAN),
                ..Default::default()
            },
            "max_pixels_tolerance",
        ),
        (
            ProcessorOverrides {
                image_std: Some(ChannelStats::Scalar(0.0)),
                ..Default::default()
            },
            "image_std",
        ),
        (
            ProcessorOverrides {
                max_num_patches: Some(0),
                ..Default::default()
            },
            "max_num_patches",
        ),
    ];
    for (o, field) in cases {
        match o.apply(ProcessorConfig::default()).validate() {
            Err(PreprocessError::InvalidConfig { field: f, .. }) if f == field => {}
            other => bail!("{field}: got {other:?}"),
        }
    }
    // min_tiles > max_tiles is fine when splitting is off (transformers sets both to 1).
    let o = ProcessorOverrides {
        min_tiles: Some(5),
        max_tiles: Some(4),
        do_image_splitting: Some(false),
        ..Default::default()
    };
    o.apply(ProcessorConfig::default()).validate()?;
    let o = ProcessorOverrides {
        resample: Some(1),
        ..Default::default()
    };
    ensure!(matches!(
        o.apply(ProcessorConfig::default()).validate(),
        Err(PreprocessError::UnsupportedResample { code: 1 })
    ));
    let empty = temp_checkpoint("empty", &[])?;
    ensure!(matches!(
        ProcessorConfig::from_dir(&empty),
        Err(PreprocessError::ConfigMissing { .. })
    ));
    // Only config.json: its processor knobs, if it has any.
    let plain = temp_checkpoint(
        "config-only",
        &[(
            "config.json",
            r#"{"model_type": "lfm2_vl", "downsample_factor": 2}"#,
        )],
    )?;
    ensure!(matches!(
        ProcessorConfig::from_dir(&plain),
        Err(PreprocessError::ConfigMissing { .. })
    ));
    let knobs = temp_checkpoint(
        "config-knobs",
        &[(
            "config.json",
            r#"{"model_type": "lfm2_vl", "min_image_tokens": 32, "use_thumbnail": true}"#,
        )],
    )?;
    let cfg = ProcessorConfig::from_dir(&knobs)?;
    ensure!(cfg.min_image_tokens == 32 && cfg.use_thumbnail);
    ensure!(cfg.max_image_tokens == ProcessorConfig::default().max_image_tokens);
    let bad = temp_checkpoint("badjson", &[("preprocessor_config.json", "{not json")])?;
    ensure!(matches!(
        ProcessorConfig::from_dir(&bad),
        Err(PreprocessError::ConfigParse { .. })
    ));
    let bad = temp_checkpoint(
        "badtype",
        &[("preprocessor_config.json", r#"{"min_tiles": "two"}"#)],
    )?;
    ensure!(matches!(
        ProcessorConfig::from_dir(&bad),
        Err(PreprocessError::ConfigParse { .. })
    ));
    Ok(())
}

#[test]
fn preprocess_error_paths() -> Result<()> {
    let cfg = ProcessorConfig::default();
    let ok = RgbImage::new(40, 30);
    match preprocess(&[ok.clone(), RgbImage::new(0, 5)], &cfg) {
        Err(PreprocessError::EmptyImage {
            image,
            width: 0,
            height: 5,
        }) if image == "#1" => {}
        other => bail!("empty image: {other:?}"),
    }
    let small = ProcessorOverrides {
        max_num_patches: Some(10),
        ..Default::default()
    }
    .apply(cfg.clone());
    ensure!(matches!(
        preprocess(std::slice::from_ref(&ok), &small),
        Err(PreprocessError::TooManyPatches { .. })
    ));
    let invalid = ProcessorOverrides {
        tile_size: Some(7),
        ..Default::default()
    }
    .apply(cfg.clone());
    ensure!(matches!(
        preprocess(std::slice::from_ref(&ok), &invalid),
        Err(PreprocessError::InvalidConfig { .. })
    ));
    // No images is fine: an empty batch.
    let out = preprocess(&[], &cfg)?;
    ensure!(out.num_crops() == 0 && out.pixel_values.is_empty());
    Ok(())
}

#[test]
fn prompt_error_paths_and_variants() -> Result<()> {
    let dir = fixtures_dir().join("models/tiny-450m");
    let builder = PromptBuilder::from_dir(&dir)?;
    let cfg = ProcessorConfig::load(&dir, &ProcessorOverrides::default())?;
    let layout = model::preprocess::ImageLayout::plan(100, 150, &cfg);
    let one = std::slice::from_ref(&layout);
    let opts = PromptOptions::default();
    let user = |parts| vec![ChatMessage::parts("user", parts)];

    let two = user(vec![ContentPart::image(), ContentPart::image()]);
    ensure!(matches!(
        builder.build(&two, one, &opts),
        Err(PromptError::ImageCountMismatch {
            placeholders: 2,
            images: 1
        })
    ));
    let none = user(vec![ContentPart::text("hi")]);
    ensure!(matches!(
        builder.build(&none, one, &opts),
        Err(PromptError::ImageCountMismatch {
            placeholders: 0,
            images: 1
        })
    ));
    ensure!(matches!(
        builder.build(&user(vec![ContentPart::image()]), &[], &opts),
        Err(PromptError::ImageCountMismatch {
            placeholders: 1,
            images: 0
        })
    ));
    // A literal <image> typed in text counts, as in transformers.
    let typed = user(vec![ContentPart::image(), ContentPart::text("see <image>")]);
    ensure!(matches!(
        builder.build(&typed, one, &opts),
        Err(PromptError::ImageCountMismatch { .. })
    ));

    // Context limit.
    let msgs = user(vec![
        ContentPart::image(),
        ContentPart::text("What is in this image?"),
    ]);
    let full = builder.build(&msgs, one, &opts)?;
    let tight = PromptOptions {
        max_tokens: Some(full.input_ids.len() - 1),
        ..opts
    };
    match builder.build(&msgs, one, &tight) {
        Err(PromptError::PromptTooLong { tokens, max })
            if tokens == full.input_ids.len() && max + 1 == tokens => {}
        other => bail!("context: {other:?}"),
    }
    let exact = PromptOptions {
        max_tokens: Some(full.input_ids.len()),
        ..opts
    };
    builder.build(&msgs, one, &exact)?;

    // use_image_special_tokens = false: only the <image> run remains.
    let plain = PromptOptions {
        use_image_special_tokens: false,
        ..opts
    };
    let p = builder.build(&msgs, one, &plain)?;
    ensure!(p.input_ids.len() + 2 == full.input_ids.len());
    ensure!(!p.input_ids.iter().any(|&t| (397..=500).contains(&t)));
    ensure!(p.num_image_tokens == layout.num_image_tokens());

    // A checkpoint folder without template or tokenizer.
    let empty = temp_checkpoint("noprompt", &[])?;
    ensure!(PromptBuilder::from_dir(&empty).is_err());
    let only_template = temp_checkpoint("notok", &[("chat_template.jinja", "{{ bos_token }}")])?;
    ensure!(matches!(
        PromptBuilder::from_dir(&only_template),
        Err(PromptError::TokenizerLoad { .. })
    ));
    Ok(())
}

#[test]
fn template_sources_fall_back_in_order() -> Result<()> {
    use model::prompt::ChatTemplate;
    let msgs = [ChatMessage::text("user", "x")];
    // tokenizer_config.json: list form, "default" picked; special tokens as objects.
    let dir = temp_checkpoint(
        "tplcfg",
        &[(
            "tokenizer_config.json",
            r#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                "chat_template": [{"name": "tool_use", "template": "T"},
                                  {"name": "default", "template": "{{ bos_token }}{{ messages[0]['content'] }}{{ eos_token }}"}]}"#,
        )],
    )?;
    ensure!(ChatTemplate::from_dir(&dir)?.render(&msgs, false)? == "<s>x</s>");
    // chat_template.json beats tokenizer_config.json; chat_template.jinja beats both.
    std::fs::write(
        dir.join("chat_template.json"),
        r#"{"chat_template": "J{{ bos_token }}"}"#,
    )?;
    ensure!(ChatTemplate::from_dir(&dir)?.render(&msgs, false)? == "J<s>");
    std::fs::write(dir.join("chat_template.jinja"), "F{{ eos_token }}\n")?;
    ensure!(ChatTemplate::from_dir(&dir)?.render(&msgs, false)? == "F</s>");
    let none = temp_checkpoint("tplnone", &[("tokenizer_config.json", "{}")])?;
    ensure!(matches!(
        ChatTemplate::from_dir(&none),
        Err(PromptError::TemplateMissing { .. })
    ));
    Ok(())
}
