//! The approximate CPU weight formats on the fixture cases, against the
//! transformers float32 references: int8 weights (`--weights int8`,
//! `cpu/matmul/quant.rs`) and the bf16 dot product (`--weights bf16dot`,
//! `cpu/matmul/bf16dot.rs`: x rounded to bf16; only where the CPU has
//! AVX512-BF16), the text model with every matmul in that format.
//!
//! Neither is exact by design, so this is not a parity test. It bounds the
//! damage, per format:
//! - logits at every prompt position and every teacher-forced decode step
//!   have a normalised error `Σ(got − want)² / Σ want²` below `nmse_max`;
//! - the greedy id agrees with the reference wherever the reference's top
//!   two logits are further apart than `margin` (a near-tie may flip), and
//!   at most `flips_max` of all the cases' steps flip.
//!
//! The fixture models are tiny and random, and far more sensitive than a
//! trained model: each matmul weight is off by 0.56–0.63% RMS after int8
//! quantization (measured), yet the logits' NMSE reaches 3.4e-2 (median
//! 3e-3), and the reference's top two logits are often closer than 0.4
//! (median 0.35 against a logit std of ~2). The bounds are the measured
//! worst plus a little: every ISA quantizes identically (scalar code) and
//! differs only in f32 accumulation order, which moves the NMSE by ~1e-6.

use anyhow::{Context, Result};
use model::text::TextModel;
use model::weights::{Checkpoint, Loader, Prefix, names};
use model::{ModelConfig, ModelError};
use tensor::cpu::{CpuBackend, Isa, WeightFormat};
use tensor::testing::expect_avx512bf16;
use tensor::{Backend, DType, HostData, Shape};
use tests::Case;

struct Bounds {
    nmse_max: f64,
    margin: f32,
    /// Most greedy steps (of all the cases') allowed to flip.
    flips_max: usize,
}

/// Int8. Measured worst NMSE 3.436e-2 (single_image_1.6b, decode step 6;
/// avx512 and scalar alike); 11 of 144 steps flip, at reference margins
/// 0.008–0.380. A mutant that truncates instead of rounding fails the
/// margin (text_only step 7, margin 0.54).
const INT8: Bounds = Bounds {
    nmse_max: 4e-2,
    margin: 0.45,
    flips_max: 13,
};

/// bf16 dot product (prompt and image x rounded to bf16, at most 2^-8
/// relative, their attention on bf16 q, k, p, v; decode exact f32).
/// Measured worst NMSE 3.245e-4 (text_only_1.6b, step 0; 1 and 2 threads
/// alike); 2 of 144 steps flip, the smallest at a reference margin of
/// 0.0003. With decode rounding x too, NMSE read 9.044e-4 and 4 steps
/// flipped: this bound fails that.
const BF16DOT: Bounds = Bounds {
    nmse_max: 4e-4,
    margin: 0.06,
    flips_max: 3,
};

const NOT_TEXT: [&str; 3] = [names::VISION_HF5, names::PROJECTOR, names::LM_HEAD];

fn nmse(got: &[f32], want: &[f32]) -> f64 {
    let (mut e, mut s) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        e += (g as f64 - w as f64).powi(2);
        s += (w as f64).powi(2);
    }
    e / s.max(f64::MIN_POSITIVE)
}

/// (argmax, top-1 minus top-2).
fn top2(v: &[f32]) -> (usize, f32) {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    let second = (v.iter().enumerate())
        .filter(|&(i, _)| i != best)
        .map(|(_, &x)| x)
        .fold(f32::NEG_INFINITY, f32::max);
    (best, v[best] - second)
}

#[derive(Default, Debug)]
struct Stats {
    worst_nmse: f64,
    worst_at: String,
    steps: usize,
    agree: usize,
    /// Smallest reference margin among the steps whose id flipped.
    flipped_margin: Option<f32>,
}

fn check_case(
    name: &str,
    isa: Isa,
    threads: usize,
    (format, bounds): (WeightFormat, &Bounds),
    st: &mut Stats,
) -> Result<()> {
    let case = Case::load(name)?;
    let dir = case.model_dir()?;
    let be = CpuBackend::with(isa, threads)?.with_weight_format(format)?;
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    let ckpt = Checkpoint::open_files(&[dir.join("model.safetensors")])?;
    let model = TextModel::load(
        &Loader::new(&ckpt, &be),
        &Prefix::new(names::VL_TEXT),
        &cfg.text,
    )?;
    ckpt.finish(&NOT_TEXT)?;
    let (t, d, vocab) = (case.seq_len()?, cfg.text.hidden_size, cfg.text.vocab_size);
    let embeds = case.f32("inputs_embeds")?;
    let mut note = |what: String, got: &[f32], want: &[f32]| {
        let e = nmse(got, want);
        if e > st.worst_nmse {
            st.worst_nmse = e;
            st.worst_at = what;
        }
    };

    // Every prompt position.
    let mut state = model.new_state(&be, t + 1)?;
    let mut x = be.upload(HostData::f32(&embeds), Shape::from([t, d]))?;
    model.forward(&be, &mut x, &mut state.seq, &mut |_, _| {
        Ok::<(), ModelError>(())
    })?;
    let mut normed = be.zeros(DType::F32, Shape::from([t, d]))?;
    model.final_norm(&be, &x, &mut normed)?;
    let mut logits = be.zeros(DType::F32, Shape::from([t, vocab]))?;
    model.head(&be, &normed, &mut logits)?;
    note(
        format!("{name} prompt logits"),
        &be.download_f32(&logits)?,
        &case.f32("logits")?,
    );

    // Teacher-forced decode: feed the reference ids, compare each step.
    let want_ids = case.generated_ids()?;
    let step_logits = case.f32("generate.step_logits")?;
    let mut state = model.new_state(&be, t + want_ids.len())?;
    let mut x = be.upload(HostData::f32(&embeds), Shape::from([t, d]))?;
    let mut last = model.prefill_embeds(&be, &mut x, &mut state)?;
    for (step, &want) in want_ids.iter().enumerate() {
        let row = &step_logits[step * vocab..(step + 1) * vocab];
        note(format!("{name} step {step}"), &last, row);
        let (want_top, margin) = top2(row);
        anyhow::ensure!(want_top as i64 == want, "fixture's greedy id is its argmax");
        let (got_top, _) = top2(&last);
        st.steps += 1;
        if got_top == want_top {
            st.agree += 1;
        } else {
            st.flipped_margin = Some(st.flipped_margin.map_or(margin, |m| m.min(margin)));
            anyhow::ensure!(
                margin <= bounds.margin,
                "{name} step {step}: {format:?} picked {got_top}, the reference {want_top} \
                 with a margin of {margin} (> {})",
                bounds.margin
            );
        }
        last = model.decode(&be, want as u32, &mut state)?;
    }
    Ok(())
}

/// The cases the bounds were measured on: those of the 450M- and 1.6B-like
/// checkpoints (nine cases, 144 greedy steps). The newer checkpoints'
/// fixtures prove exact weights (the parity tests); approximate formats'
/// flip counts are measured per case set, so they stay out of these bounds.
fn measured_cases() -> Result<Vec<String>> {
    let mut names = Vec::new();
    for name in Case::names()? {
        let dir = Case::load(&name)?.model_dir()?;
        if dir.ends_with("tiny-450m") || dir.ends_with("tiny-1.6b") {
            names.push(name);
        }
    }
    anyhow::ensure!(names.len() == 9, "the measured cases: {names:?}");
    Ok(names)
}

fn all_cases(isa: Isa, threads: usize, format: WeightFormat, bounds: &Bounds) -> Result<()> {
    let mut st = Stats::default();
    let names = measured_cases()?;
    for name in &names {
        check_case(name, isa, threads, (format, bounds), &mut st)
            .with_context(|| format!("case {name} on {isa}, {format:?}"))?;
    }
    println!(
        "{format:?} weights {isa} ({threads} threads): {} cases, worst logits NMSE {:.3e} ({}), \
         greedy agrees on {}/{} steps, smallest flipped margin {:?}",
        names.len(),
        st.worst_nmse,
        st.worst_at,
        st.agree,
        st.steps,
        st.flipped_margin
    );
    anyhow::ensure!(
        st.steps - st.agree <= bounds.flips_max,
        "{format:?}: {} of {} greedy steps flipped (at most {})",
        st.steps - st.agree,
        st.steps,
        bounds.flips_max
    );
    anyhow::ensure!(
        st.worst_nmse <= bounds.nmse_max,
        "{format:?} logits NMSE {:.3e} at {} is above {:e}",
        st.worst_nmse,
        st.worst_at,
        bounds.nmse_max
    );
    Ok(())
}

#[test]
fn int8_weights_every_case_best_isa_two_threads() -> Result<()> {
    all_cases(Isa::best(), 2, WeightFormat::Int8, &INT8)
}

#[test]
fn int8_weights_every_case_scalar() -> Result<()> {
    all_cases(Isa::Scalar, 1, WeightFormat::Int8, &INT8)
}

#[test]
fn bf16dot_weights_every_case() -> Result<()> {
    if expect_avx512bf16().is_none() {
        println!("bf16dot: this CPU has no AVX512-BF16; skipped");
        return Ok(());
    }
    for threads in [1, 2] {
        all_cases(Isa::Avx512, threads, WeightFormat::Bf16Dot, &BF16DOT)?;
    }
    Ok(())
}

/// `EngineOptions::cpu.weights` reaches the CPU backend through the whole model
/// (vision tower, connector, text), `auto` runs the approximate formats on
/// the CPU, and asking wgpu for them is a typed error; a block format
/// (`q4_0`) runs on wgpu.
#[test]
fn engine_runs_the_weight_formats() -> Result<()> {
    use model::preprocess::{DecodeLimits, load_image};
    use model::prompt::{ChatMessage, ContentPart};
    use runtime::engine::{BackendChoice, Engine, EngineOptions, Request};
    use tensor::cpu::CpuOptions;

    let case = Case::load("single_image")?;
    let dir = case.model_dir()?;
    let dir = dir.to_str().unwrap_or_default();
    let img = load_image(
        &tests::fixture_path("cases/images/small_100x150.png"),
        &DecodeLimits::default(),
    )?;
    let messages = [ChatMessage::parts(
        "user",
        vec![ContentPart::image(), ContentPart::text("What is this?")],
    )];
    let images = [img];
    let mut req = Request::new(&messages);
    req.images = &images;
    req.max_new_tokens = 4;
    let mut formats = vec![(WeightFormat::Int8, "int8 weights")];
    if expect_avx512bf16().is_some() {
        formats.push((WeightFormat::Bf16Dot, "bf16 dot-product weights"));
    }
    for (weights, described) in formats {
        let opts = EngineOptions {
            backend: BackendChoice::Auto,
            cpu: CpuOptions {
                threads: Some(2),
                weights,
                ..Default::default()
            },
            max_len: 1024,
            ..Default::default()
        };
        let mut engine = Engine::load(dir, &opts)?;
        let desc = engine.backend_description.clone();
        anyhow::ensure!(desc.contains(described), "{weights:?}: backend {desc}");
        let out = engine.generate(&req, |_| true)?;
        anyhow::ensure!(!out.generation.ids.is_empty(), "{weights:?}: no tokens");
        #[cfg(feature = "wgpu")]
        {
            let gpu = EngineOptions {
                backend: BackendChoice::Wgpu,
                ..opts
            };
            let err = Engine::load(dir, &gpu).err().context("wgpu must refuse")?;
            anyhow::ensure!(err.to_string().contains("CPU backend only"), "{err}");
        }
    }
    // The block formats quantize at upload on wgpu too (its shaders read
    // the blocks): the whole model runs and generates.
    #[cfg(feature = "wgpu")]
    if tensor::wgpu::gpu_or_skip().is_some() {
        let opts = EngineOptions {
            backend: BackendChoice::Wgpu,
            cpu: CpuOptions {
                weights: WeightFormat::Q4_0,
                ..Default::default()
            },
            max_len: 1024,
            ..Default::default()
        };
        let mut engine = Engine::load(dir, &opts)?;
        let out = engine.generate(&req, |_| true)?;
        anyhow::ensure!(!out.generation.ids.is_empty(), "wgpu q4_0: no tokens");
    }
    Ok(())
}
