//! `lfm2vl bench`: speed of the whole model on a synthetic checkpoint with
//! the real LFM2-VL shapes, or on a real model ([`BenchOptions::source`]: a
//! folder or a GGUF with its mmproj), loaded through the normal path: prefill (ppN),
//! decode (tgN), one 512×512 image through the vision tower and connector
//! (image512), and time to first token for that image plus a short prompt
//! (ttft_image512), and a per-op breakdown of where the time goes (on wgpu,
//! per-shader GPU time).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use model::CropPatches;
use tensor::Backend;
use tensor::cpu::profile::OpTime;
use tensor::cpu::{CpuBackend, CpuOptions};

use crate::engine::BackendChoice;
use crate::error::Result;
use crate::files::ModelFiles;
use crate::sampling::{Sampler, SamplingConfig};
use crate::source::ModelSource;
use crate::synthetic::Synthetic;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// The synthetic model's shapes (when `source` is `None`).
    pub model: Synthetic,
    /// A real model to time instead of the synthetic one: a folder, or a
    /// GGUF (its blocks as stored; without an mmproj no image timings).
    pub source: Option<ModelSource>,
    pub backend: BackendChoice,
    /// The CPU backend's options (its weight format too: int8 and bf16dot
    /// run on the CPU only; the block formats on wgpu as well). Profiling is on for the per-op breakdown
    /// whatever `profiling` says.
    pub cpu: CpuOptions,
    /// The wgpu backend's options.
    #[cfg(feature = "wgpu")]
    pub wgpu: tensor::wgpu::WgpuOptions,
    /// Prompt tokens for the prefill measurement (llama-bench's pp).
    pub prompt: usize,
    /// Generated tokens for the decode measurement (llama-bench's tg).
    pub generate: usize,
    /// Timed repetitions of each measurement (the median is reported).
    pub reps: usize,
    /// Where the synthetic checkpoint is written (reused when present).
    pub dir: PathBuf,
    /// Also time image512 and ttft_image512.
    pub image: bool,
}

impl BenchOptions {
    /// The engine options these settings time a model with, `max_len`
    /// tokens of context.
    pub(crate) fn engine_options(&self, max_len: usize) -> crate::engine::EngineOptions {
        crate::engine::EngineOptions {
            backend: self.backend,
            cpu: self.cpu.clone(),
            #[cfg(feature = "wgpu")]
            wgpu: self.wgpu.clone(),
            max_len,
            ..Default::default()
        }
    }
}

/// Tokens per second of one phase.
#[derive(Clone, Debug)]
pub struct Rate {
    pub tokens: usize,
    pub median: Duration,
}

impl Rate {
    pub fn tok_s(&self) -> f64 {
        self.tokens as f64 / self.median.as_secs_f64()
    }
}

#[derive(Clone, Debug)]
pub struct BenchReport {
    /// The synthetic model's name, or the model's path.
    pub model: String,
    pub backend: String,
    pub load: Duration,
    pub prefill: Rate,
    pub decode: Rate,
    /// Bytes of weights one decode step reads (`TextModel::decode_weight_bytes`).
    pub decode_bytes: usize,
    /// Of the decode time, how long the host waited for the device (GPU
    /// backends only): the rest is host work (recording, submits, reading
    /// the logits back, sampling-free here).
    pub decode_waited: Option<Duration>,
    /// One 512×512 crop through the vision tower and the connector.
    pub image512: Option<Duration>,
    /// Of `image512`, how long the host waited for the device (zero on
    /// the CPU backend).
    pub image_waited: Option<Duration>,
    /// Image encode + prefill of the image's 256 tokens and a short prompt,
    /// to the first token's logits.
    pub ttft_image512: Option<Duration>,
    /// Host time per token of drawing from the decode's logits with the
    /// model card's sampling preset (repetition penalty, temperature,
    /// top-k, min-p), which the decode rate above leaves out (it feeds the
    /// benchmark's own ids).
    pub sampling: Duration,
    /// Per-op time of one profiled prefill and decode run (on wgpu: GPU
    /// time per shader from timestamp queries, where the adapter has them).
    pub prefill_ops: Vec<OpTime>,
    pub decode_ops: Vec<OpTime>,
    pub image_ops: Vec<OpTime>,
}

/// Median host time of one [`Sampler::sample`] with the model card's
/// preset, over real logits of the model (one decode step) and a 300-token
/// history, each draw from a fresh copy of the logits.
fn time_sampling<B: Backend>(
    text: &model::text::TextModel<B>,
    be: &B,
    st: &mut model::text::TextState<B>,
    vocab: usize,
) -> Result<Duration> {
    text.reset(be, st)?;
    let mut logits = Vec::new();
    text.decode_into(be, tokens(1, vocab, 7)[0], st, &mut logits)?;
    let history = tokens(300, vocab, 8);
    let mut sampler = Sampler::new(SamplingConfig::model_card());
    let mut scratch = logits.clone();
    let times = (0..64)
        .map(|_| {
            scratch.copy_from_slice(&logits);
            let t = Instant::now();
            std::hint::black_box(sampler.sample(&mut scratch, &history));
            t.elapsed()
        })
        .collect();
    Ok(median(times))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Deterministic token ids spread over the upper half of the vocabulary
/// (at most its first 1024 ids skipped: never a special token such as
/// `<image>`).
pub(crate) fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    let lo = 1024.min(vocab / 2);
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729 + 1017) % (vocab - lo) + lo) as u32)
        .collect()
}

/// The model `o` names and its name: `o.source`, or the synthetic
/// checkpoint written to (or reused from) `o.dir`.
pub(crate) fn model_source(o: &BenchOptions) -> Result<(ModelSource, String)> {
    if let Some(src) = &o.source {
        return Ok((src.clone(), src.path().display().to_string()));
    }
    let dir = o.dir.join(o.model.name());
    let reuse = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v == o.model.config())
        && dir.join("model.safetensors").is_file()
        && dir.join("processor_config.json").is_file();
    if !reuse {
        tracing::info!(dir = %dir.display(), "writing synthetic checkpoint");
        o.model.write(&dir)?;
    } else {
        // The prompt files are cheap: always this version's (a folder
        // written before may hold an older tokenizer).
        let vocab = o.model.config()["text_config"]["vocab_size"]
            .as_u64()
            .unwrap_or(65_536) as usize;
        crate::synthetic::write_prompt_files(&dir, vocab)?;
    }
    Ok((ModelSource::Dir(dir), o.model.name().to_string()))
}

/// Times the model `o` names (the synthetic one written to, or reused
/// from, `o.dir`, or `o.source`).
pub fn bench(o: &BenchOptions) -> Result<BenchReport> {
    let (source, name) = model_source(o)?;
    let files = ModelFiles::open(&source)?;
    let dir = &files;
    match o.backend {
        BackendChoice::Cpu | BackendChoice::Auto => {
            let be = CpuBackend::new(CpuOptions {
                profiling: false,
                ..o.cpu.clone()
            })?;
            let prof = be.clone().with_profiling();
            let mut r = run(
                o,
                dir,
                &be,
                Some((&prof, &|| prof.profile())),
                &Duration::default,
            )?;
            r.decode_waited = None;
            Ok(r)
        }
        #[cfg(feature = "wgpu")]
        BackendChoice::Wgpu => {
            let wgpu = crate::engine::wgpu_options(o.cpu.weights, &o.wgpu)?;
            let be = tensor::wgpu::WgpuBackend::new(wgpu)?;
            let prof = be.clone().with_profiling();
            run(o, dir, &be, Some((&prof, &|| prof.profile())), &|| {
                be.waited()
            })
        }
        #[cfg(not(feature = "wgpu"))]
        BackendChoice::Wgpu => Err(crate::error::RuntimeError::Backend(
            "wgpu".into(),
            "this build has no wgpu feature".into(),
        )),
    }
    .map(|r| BenchReport { model: name, ..r })
}

type Profiled<'a, B> = Option<(&'a B, &'a dyn Fn() -> Vec<OpTime>)>;

/// `waited`: the backend's total time spent waiting for the device so far
/// (zero where the host does the work).
fn run<B: Backend>(
    o: &BenchOptions,
    files: &ModelFiles,
    be: &B,
    prof: Profiled<'_, B>,
    waited: &dyn Fn() -> Duration,
) -> Result<BenchReport> {
    let t0 = Instant::now();
    let m = files.load(be)?;
    let load = t0.elapsed();
    let vocab = m.text.cfg.vocab_size;
    // Image timings need a vision tower (a GGUF without its mmproj has none).
    let image = o.image && m.vision.is_some();
    let image_id = m.image_token_id().unwrap_or(0);
    let mut st = m.text.new_state(be, (o.prompt + o.generate).max(300) + 1)?;

    let run_prefill = |be: &B, st: &mut _, rep: usize| -> Result<Duration> {
        m.text.reset(be, st)?;
        let ids = tokens(o.prompt, vocab, rep);
        let t = Instant::now();
        m.text.prefill(be, &ids, st, o.prompt)?;
        Ok(t.elapsed())
    };
    // (wall time, time spent waiting for the device) of the decode loop.
    let run_decode = |be: &B, st: &mut _, rep: usize| -> Result<(Duration, Duration)> {
        m.text.reset(be, st)?;
        let ids = tokens(o.generate, vocab, rep + 1000);
        let mut logits = Vec::new();
        let w0 = waited();
        let t = Instant::now();
        for &id in &ids {
            m.text.decode_into(be, id, st, &mut logits)?;
        }
        Ok((t.elapsed(), waited().saturating_sub(w0)))
    };
    // One 512×512 tile: 32×32 patches of normalised pixels.
    let patch_dim = m.vision.as_ref().map_or(0, |v| v.cfg.patch_dim());
    let (h, w) = (32, 32);
    let patches: Vec<f32> = (0..h * w * patch_dim)
        .map(|i| ((i * 37 % 255) as f32 - 127.5) / 127.5)
        .collect();
    let crop = [CropPatches {
        patches: &patches,
        h,
        w,
    }];
    // (wall time, time spent waiting for the device) of one image.
    let run_image = |be: &B| -> Result<(Duration, Duration)> {
        let w0 = waited();
        let t = Instant::now();
        let f = m.encode_images(be, &crop)?;
        be.download_f32(&f)?; // waits for the device
        Ok((t.elapsed(), waited().saturating_sub(w0)))
    };
    let run_ttft = |be: &B, st: &mut _| -> Result<Duration> {
        m.text.reset(be, st)?;
        let text = |ids: &[u32]| ids.iter().map(|&i| i % vocab as u32).collect::<Vec<_>>();
        let mut ids = text(&[1, 6, 1024, 498]);
        ids.extend(std::iter::repeat_n(image_id, h * w / 4));
        ids.extend(text(&[499, 2000, 3000, 4000, 7, 6, 1024]));
        let t = Instant::now();
        let f = m.encode_images(be, &crop)?;
        let mut x = m.embed_with_images(be, &ids, Some(&f))?;
        m.text.prefill_embeds(be, &mut x, st)?;
        Ok(t.elapsed())
    };

    // Warm-up (pipelines, caches), then the timed repetitions.
    run_prefill(be, &mut st, 0)?;
    if image {
        run_image(be)?;
    }
    let (mut pre, mut dec, mut img, mut ttft) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for rep in 0..o.reps.max(1) {
        pre.push(run_prefill(be, &mut st, rep + 1)?);
        dec.push(run_decode(be, &mut st, rep + 1)?);
        if image {
            img.push(run_image(be)?);
            ttft.push(run_ttft(be, &mut st)?);
        }
    }
    let sampling = time_sampling(&m.text, be, &mut st, vocab)?;
    // One profiled run of each phase, separately from the timed ones.
    let (mut prefill_ops, mut decode_ops, mut image_ops) = (Vec::new(), Vec::new(), Vec::new());
    if let Some((pbe, take)) = prof {
        run_prefill(pbe, &mut st, 99)?;
        prefill_ops = take();
        run_decode(pbe, &mut st, 99)?;
        decode_ops = take();
        if image {
            run_image(pbe)?;
            image_ops = take();
        }
    }
    // The repetition of median wall time, with its waiting.
    dec.sort();
    let dec_median = dec[dec.len() / 2];
    img.sort();
    let img_median = img.get(img.len() / 2).copied();
    Ok(BenchReport {
        model: o.model.name().to_string(),
        backend: be.describe(),
        load,
        prefill: Rate {
            tokens: o.prompt,
            median: median(pre),
        },
        decode: Rate {
            tokens: o.generate,
            median: dec_median.0,
        },
        decode_bytes: m.text.decode_weight_bytes(),
        decode_waited: Some(dec_median.1),
        image512: img_median.map(|d| d.0),
        image_waited: img_median.map(|d| d.1),
        ttft_image512: (!ttft.is_empty()).then(|| median(ttft)),
        sampling,
        prefill_ops,
        decode_ops,
        image_ops,
    })
}
