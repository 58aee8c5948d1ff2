//! The vision tower and connector on the CPU against the transformers
//! float32 references (issue 5): per crop, the resized position embeddings,
//! the patch + position embeddings, every encoder layer, `last_hidden_state`
//! and the projector output; then the merged `inputs_embeds` and greedy
//! generation from the reference `pixel_values` through our whole model.
//! Tolerance: max abs 1e-4; the measured worst is printed.

use anyhow::{Context, Result, ensure};
use model::connector::Connector;
use model::text::TextModel;
use model::vision::{VisionConfig, VisionTower};
use model::weights::{Checkpoint, Loader, Prefix, names};
use model::{ModelConfig, ModelError};
use tensor::cpu::{CpuBackend, Isa};
use tensor::{Backend, DType, HostData, Shape, op};
use tests::{Case, Tolerance, compare};

const TOL: Tolerance = Tolerance::abs(1e-4);

struct Vlm {
    be: CpuBackend,
    cfg: ModelConfig,
    tower: VisionTower<CpuBackend>,
    connector: Connector<CpuBackend>,
    text: TextModel<CpuBackend>,
}

fn load(case: &Case, file: &str) -> Result<Vlm> {
    let dir = case.model_dir()?;
    let be = CpuBackend::with(Isa::best(), 2)?;
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    let vcfg = VisionConfig::from_values(cfg.vision.as_ref().context("vision_config")?, &cfg.raw)?;
    let ckpt = Checkpoint::open_files(&[dir.join(file)])?;
    let ld = Loader::new(&ckpt, &be);
    let tower = VisionTower::load(&ld, &vcfg)?;
    let connector = Connector::load(&ld, &vcfg, cfg.text.hidden_size)?;
    let text = TextModel::load(&ld, &Prefix::new(names::VL_TEXT), &cfg.text)?;
    ckpt.finish(&[names::LM_HEAD])?;
    Ok(Vlm {
        be,
        cfg,
        tower,
        connector,
        text,
    })
}

fn err(e: anyhow::Error) -> ModelError {
    ModelError::Config {
        field: "fixture".into(),
        detail: e.to_string(),
    }
}

#[derive(Default)]
struct Worst(f32, String);

impl Worst {
    fn add(&mut self, r: &tests::Report) {
        if r.max_abs > self.0 {
            *self = Worst(r.max_abs, r.name.clone());
        }
    }
}

fn check_case(name: &str, file: &str, worst: &mut Worst) -> Result<()> {
    let case = Case::load(name)?;
    let crops = case.crops()?;
    if crops.is_empty() {
        return Ok(());
    }
    let m = load(&case, file)?;
    let be = &m.be;
    let pv = case.f32("pixel_values")?;
    let pv_shape = case.tensors.shape("pixel_values")?.to_vec();
    let (max_patches, pd) = (pv_shape[1], pv_shape[2]);
    let d_text = m.cfg.text.hidden_size;
    let mut features = Vec::new();
    for (k, crop) in crops.iter().enumerate() {
        let (h, w) = crop.spatial_shape;
        let n = h * w;
        ensure!(n <= max_patches);
        let tag = format!("{name} crop{k}");
        worst.add(&compare(
            &format!("{tag} pos_embed"),
            &m.tower.position_embeddings(h, w),
            &case.f32(&format!("vision.crop{k}.pos_embed"))?,
            TOL,
        )?);
        let rows = &pv[k * max_patches * pd..(k * max_patches + n) * pd];
        let patches = be.upload(HostData::f32(rows), Shape::from([n, pd]))?;
        let mut reports = Vec::new();
        let last = m.tower.forward_crop(be, &patches, h, w, &mut |j, x| {
            let key = match j {
                None => format!("vision.crop{k}.embeddings"),
                Some(j) => format!("vision.crop{k}.layer{j}"),
            };
            let want = case.f32(&key).map_err(err)?;
            reports.push(compare(
                &format!("{name} {key}"),
                &be.download_f32(x)?,
                &want,
                TOL,
            ));
            Ok(())
        })?;
        for r in reports {
            worst.add(&r?);
        }
        let want = case.f32(&format!("vision.crop{k}.last_hidden_state"))?;
        worst.add(&compare(
            &format!("{tag} last_hidden_state"),
            &be.download_f32(&last)?,
            &want,
            TOL,
        )?);
        let proj = m.connector.forward_crop(be, &last, h, w)?;
        let got = be.download_f32(&proj)?;
        worst.add(&compare(
            &format!("{tag} projector"),
            &got,
            &case.f32(&format!("projector.crop{k}"))?,
            TOL,
        )?);
        features.extend(got);
    }
    worst.add(&compare(
        &format!("{name} image_features"),
        &features,
        &case.f32("image_features")?,
        TOL,
    )?);

    // Merge: embeddings of the ids, image rows scattered into the <image> slots.
    let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let t = ids.len();
    let image_id = m.cfg.image_token_id.context("image_token_id")?;
    let mut x = be.zeros(DType::F32, Shape::from([t, d_text]))?;
    m.text.embed(be, &ids, &mut x)?;
    let feats = be.upload(
        HostData::f32(&features),
        Shape::from([features.len() / d_text, d_text]),
    )?;
    let slots: Vec<usize> = (0..t).filter(|&i| ids[i] == image_id).collect();
    ensure!(
        slots.len() == feats.shape().rows(),
        "{name}: {} <image> slots, {} feature rows",
        slots.len(),
        feats.shape().rows()
    );
    let mut row = be.zeros(DType::F32, Shape::from([1, d_text]))?;
    for (r, &slot) in slots.iter().enumerate() {
        be.slice_rows(op::SliceRows {
            src: &feats,
            row0: r,
            out: &mut row,
        })?;
        be.copy_rows(op::CopyRows {
            src: &row,
            dst: &mut x,
            row0: slot,
        })?;
    }
    worst.add(&compare(
        &format!("{name} inputs_embeds"),
        &be.download_f32(&x)?,
        &case.f32("inputs_embeds")?,
        TOL,
    )?);

    // Greedy generation from our own merged embeddings.
    let want_ids = case.generated_ids()?;
    let mut st = m.text.new_state(be, t + want_ids.len())?;
    let mut logits = m.text.prefill_embeds(be, &mut x, &mut st)?;
    for (step, &want) in want_ids.iter().enumerate() {
        let id = (0..logits.len()).fold(0, |b, i| if logits[i] > logits[b] { i } else { b });
        ensure!(
            id as i64 == want,
            "{name}: greedy step {step}: got {id}, want {want}"
        );
        logits = m.text.decode(be, id as u32, &mut st)?;
    }
    Ok(())
}

#[test]
fn vision_parity_every_image_case() -> Result<()> {
    let mut worst = Worst::default();
    let mut n = 0;
    for name in Case::names()? {
        if !Case::load(&name)?.crops()?.is_empty() {
            check_case(&name, "model.safetensors", &mut worst)
                .with_context(|| format!("case {name}"))?;
            n += 1;
        }
    }
    ensure!(n >= 6, "expected the image cases, ran {n}");
    println!(
        "vision parity: {n} cases, worst max abs {:.3e} ({})",
        worst.0, worst.1
    );
    Ok(())
}

/// The transformers-5 tensor layout (`model.vision_tower.*`) loads the same tower.
#[test]
fn vision_hf5_layout_matches() -> Result<()> {
    let mut worst = Worst::default();
    check_case("grid_2x2", "model.transformers5.safetensors", &mut worst)
}

/// `Lfm2Vl::load` on a checkpoint folder (every tensor used), image
/// encoding and the merge reproduce `inputs_embeds`; a count mismatch
/// between `<image>` slots and features is a typed error.
#[test]
fn lfm2vl_load_encode_merge() -> Result<()> {
    use model::Lfm2Vl;
    let case = Case::load("two_images")?;
    let be = CpuBackend::with(Isa::best(), 2)?;
    let m = Lfm2Vl::load(&case.model_dir()?, &be)?;
    let pv = case.f32("pixel_values")?;
    let views = case.crop_patches(&pv)?;
    let feats = m.encode_images(&be, &views)?;
    let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let x = m.embed_with_images(&be, &ids, Some(&feats))?;
    let r = compare(
        "two_images inputs_embeds",
        &be.download_f32(&x)?,
        &case.f32("inputs_embeds")?,
        TOL,
    )?;
    println!("{r}");
    let err = m
        .embed_with_images(&be, &ids[1..ids.len() / 2], Some(&feats))
        .unwrap_err();
    assert!(matches!(err, ModelError::ImageTokenCount { .. }), "{err}");
    Ok(())
}
