//! The LFM2 decoder on the CPU against the transformers float32 references
//! of every fixture case (issue 4): each decoder layer's output, the final
//! norm, the logits at every position, greedy generation through the caches
//! (ids and per-step logits), and chunked prefill equal to one-shot.
//!
//! Image cases feed the reference `inputs_embeds` (image features already
//! merged), so the decoder is checked independently of the vision tower.
//! Tolerance: max abs 1e-4 (issue 4); the measured worst is printed.

use anyhow::{Context, Result};
use model::text::TextModel;
use model::weights::{Checkpoint, Loader, Prefix, names};
use model::{ModelConfig, ModelError};
use tensor::cpu::{CpuBackend, Isa};
use tensor::{Backend, DType, HostData, Shape, Tensor};
use tests::{Case, Tolerance, compare};

const TOL: Tolerance = Tolerance::abs(1e-4);
/// Everything a text-model load does not consume.
const NOT_TEXT: [&str; 3] = [names::VISION_HF5, names::PROJECTOR, names::LM_HEAD];

struct Loaded {
    be: CpuBackend,
    cfg: ModelConfig,
    model: TextModel<CpuBackend>,
}

fn load(case: &Case, file: &str, isa: Isa, threads: usize) -> Result<Loaded> {
    let dir = case.model_dir()?;
    let be = CpuBackend::with(isa, threads)?;
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    let ckpt = Checkpoint::open_files(&[dir.join(file)])?;
    let model = TextModel::load(
        &Loader::new(&ckpt, &be),
        &Prefix::new(names::VL_TEXT),
        &cfg.text,
    )?;
    ckpt.finish(&NOT_TEXT)?;
    Ok(Loaded { be, cfg, model })
}

fn upload(be: &CpuBackend, v: &[f32], shape: &[usize]) -> Result<Tensor<CpuBackend>> {
    Ok(be.upload(HostData::f32(v), Shape::from(shape))?)
}

fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best
}

/// Worst max-abs error seen, for the note.
#[derive(Default)]
struct Worst(f32, String);

impl Worst {
    fn add(&mut self, r: &tests::Report) {
        if r.max_abs > self.0 {
            *self = Worst(r.max_abs, r.name.clone());
        }
    }
}

fn check_case(name: &str, isa: Isa, threads: usize, worst: &mut Worst) -> Result<()> {
    let case = Case::load(name)?;
    let Loaded { be, cfg, model } = load(&case, "model.safetensors", isa, threads)?;
    let (t, d, vocab) = (case.seq_len()?, cfg.text.hidden_size, cfg.text.vocab_size);
    let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let embeds = case.f32("inputs_embeds")?;

    // Our embedding equals the reference at every text position.
    let mut x = be.zeros(DType::F32, Shape::from([t, d]))?;
    model.embed(&be, &ids, &mut x)?;
    let ours = be.download_f32(&x)?;
    let image_id = cfg.image_token_id.context("image_token_id")?;
    for (r, &id) in ids.iter().enumerate() {
        if id != image_id {
            let row = r * d..(r + 1) * d;
            compare(
                &format!("{name} embed row {r}"),
                &ours[row.clone()],
                &embeds[row],
                Tolerance::exact(),
            )?;
        }
    }

    // Layer by layer, one-shot prefill of the reference embeddings.
    let mut st = model.new_state(&be, t + 32)?;
    let mut x = upload(&be, &embeds, &[t, d])?;
    let mut layer_errs = Vec::new();
    model.forward(&be, &mut x, &mut st.seq, &mut |i, h| {
        let want = case
            .f32(&format!("decoder.layer{i}"))
            .map_err(|e| ModelError::Config {
                field: format!("decoder.layer{i}"),
                detail: e.to_string(),
            })?;
        let got = be.download_f32(h)?;
        layer_errs.push(compare(
            &format!("{name} decoder.layer{i}"),
            &got,
            &want,
            TOL,
        ));
        Ok(())
    })?;
    for r in layer_errs {
        worst.add(&r?);
    }
    let mut normed = be.zeros(DType::F32, Shape::from([t, d]))?;
    model.final_norm(&be, &x, &mut normed)?;
    worst.add(&compare(
        &format!("{name} final_norm"),
        &be.download_f32(&normed)?,
        &case.f32("final_norm")?,
        TOL,
    )?);
    let mut logits = be.zeros(DType::F32, Shape::from([t, vocab]))?;
    model.head(&be, &normed, &mut logits)?;
    worst.add(&compare(
        &format!("{name} logits"),
        &be.download_f32(&logits)?,
        &case.f32("logits")?,
        TOL,
    )?);

    // Greedy generation through the caches, from a chunked prefill.
    let want_ids = case.generated_ids()?;
    let step_logits = case.f32("generate.step_logits")?;
    let mut st = model.new_state(&be, t + want_ids.len())?;
    let chunk = (t / 3).max(1);
    let mut last = Vec::new();
    for r0 in (0..t).step_by(chunk) {
        let r1 = (r0 + chunk).min(t);
        let mut x = upload(&be, &embeds[r0 * d..r1 * d], &[r1 - r0, d])?;
        last = model.prefill_embeds(&be, &mut x, &mut st)?;
    }
    let mut got_ids = Vec::new();
    for (step, &want) in want_ids.iter().enumerate() {
        let row = &step_logits[step * vocab..(step + 1) * vocab];
        worst.add(&compare(
            &format!("{name} generate step {step} logits"),
            &last,
            row,
            TOL,
        )?);
        let id = argmax(&last) as u32;
        got_ids.push(id as i64);
        anyhow::ensure!(
            id as i64 == want,
            "{name}: greedy step {step}: got id {id}, want {want} (ids so far {got_ids:?})"
        );
        last = model.decode(&be, id, &mut st)?;
    }
    Ok(())
}

fn all_cases(isa: Isa, threads: usize) -> Result<()> {
    let mut worst = Worst::default();
    let names = Case::names()?;
    anyhow::ensure!(
        names.len() >= 7,
        "expected the fixture cases, found {names:?}"
    );
    for name in &names {
        check_case(name, isa, threads, &mut worst)
            .with_context(|| format!("case {name} on {isa}"))?;
    }
    println!(
        "text parity {isa} ({threads} threads): {} cases, worst max abs {:.3e} ({})",
        names.len(),
        worst.0,
        worst.1
    );
    Ok(())
}

#[test]
fn text_parity_every_case_best_isa_two_threads() -> Result<()> {
    all_cases(Isa::best(), 2)
}

#[test]
fn text_parity_every_case_scalar() -> Result<()> {
    all_cases(Isa::Scalar, 1)
}

/// The published and the transformers-5 tensor layouts load to the same
/// model (same logits), and a text load leaves only vision tensors unused.
#[test]
fn text_layouts_agree() -> Result<()> {
    let case = Case::load("text_only")?;
    let t = case.seq_len()?;
    let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let mut outs = Vec::new();
    for file in [
        "model.safetensors",
        "model.transformers5.safetensors",
        "model.f32.safetensors",
    ] {
        let l = load(&case, file, Isa::best(), 1)?;
        let mut st = l.model.new_state(&l.be, t)?;
        outs.push(l.model.prefill(&l.be, &ids, &mut st, 7)?);
    }
    compare(
        "layouts: published vs transformers5",
        &outs[0],
        &outs[1],
        Tolerance::exact(),
    )?;
    compare(
        "layouts: bf16 vs f32 copy",
        &outs[0],
        &outs[2],
        Tolerance::abs(1e-5),
    )?;
    Ok(())
}

/// A prompt past the state's capacity is a typed error, not a panic.
#[test]
fn text_context_overflow_is_an_error() -> Result<()> {
    let case = Case::load("text_only")?;
    let l = load(&case, "model.safetensors", Isa::best(), 1)?;
    let mut st = l.model.new_state(&l.be, 4)?;
    let err = l
        .model
        .prefill(&l.be, &[1, 2, 3, 4, 5], &mut st, 8)
        .unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::ContextOverflow {
                needed: 5,
                limit: 4
            }
        ),
        "{err}"
    );
    let err = l.model.prefill(&l.be, &[], &mut st, 8).unwrap_err();
    assert!(matches!(err, ModelError::EmptyPrompt), "{err}");
    let err = l.model.prefill(&l.be, &[5000], &mut st, 8).unwrap_err();
    assert!(err.to_string().contains("token id"), "{err}");
    Ok(())
}
