//! `lfm2vl bench`: prefill and decode speed of the text model on a synthetic
//! checkpoint with the real shapes, loaded through the normal path, with a
//! per-op breakdown of where the time goes.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use model::ModelConfig;
use model::text::TextModel;
use model::weights::{Checkpoint, Loader, Prefix, names};
use tensor::cpu::profile::OpTime;
use tensor::cpu::{CpuBackend, Isa};

use crate::error::Result;
use crate::synthetic::Synthetic;

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub model: Synthetic,
    pub isa: Isa,
    pub threads: usize,
    /// Prompt tokens for the prefill measurement (llama-bench's pp).
    pub prompt: usize,
    /// Generated tokens for the decode measurement (llama-bench's tg).
    pub generate: usize,
    /// Timed repetitions of each measurement (the median is reported).
    pub reps: usize,
    /// Where the synthetic checkpoint is written (reused when present).
    pub dir: PathBuf,
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
    pub model: &'static str,
    pub backend: String,
    pub load: Duration,
    pub prefill: Rate,
    pub decode: Rate,
    /// Per-op time of one profiled prefill and one profiled decode run.
    pub prefill_ops: Vec<OpTime>,
    pub decode_ops: Vec<OpTime>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Deterministic token ids spread over the vocabulary.
fn tokens(n: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..n)
        .map(|i| ((i * 7919 + salt * 104_729 + 17) % vocab) as u32)
        .collect()
}

pub fn bench_text(o: &BenchOptions) -> Result<BenchReport> {
    let dir = o.dir.join(o.model.name());
    let reuse = std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|v| v == o.model.config())
        && dir.join("model.safetensors").is_file();
    if !reuse {
        tracing::info!(dir = %dir.display(), "writing synthetic checkpoint");
        o.model.write(&dir)?;
    }
    let be = CpuBackend::with(o.isa, o.threads)?;
    let t0 = Instant::now();
    let cfg = ModelConfig::from_file(&dir.join("config.json"))?;
    let ckpt = Checkpoint::open_dir(&dir)?;
    let m = TextModel::load(
        &Loader::new(&ckpt, &be),
        &Prefix::new(names::LM_TEXT),
        &cfg.text,
    )?;
    ckpt.finish(&[])?;
    let load = t0.elapsed();
    let vocab = cfg.text.vocab_size;
    let mut st = m.new_state(&be, o.prompt + o.generate + 1)?;

    let run_prefill = |be: &CpuBackend, st: &mut _, rep: usize| -> Result<Duration> {
        m.reset(be, st)?;
        let ids = tokens(o.prompt, vocab, rep);
        let t = Instant::now();
        m.prefill(be, &ids, st, o.prompt)?;
        Ok(t.elapsed())
    };
    let run_decode = |be: &CpuBackend, st: &mut _, rep: usize| -> Result<Duration> {
        m.reset(be, st)?;
        let ids = tokens(o.generate, vocab, rep + 1000);
        let t = Instant::now();
        for &id in &ids {
            m.decode(be, id, st)?;
        }
        Ok(t.elapsed())
    };

    // Warm-up, then the timed repetitions.
    run_prefill(&be, &mut st, 0)?;
    let mut pre = Vec::new();
    let mut dec = Vec::new();
    for rep in 0..o.reps.max(1) {
        pre.push(run_prefill(&be, &mut st, rep + 1)?);
        dec.push(run_decode(&be, &mut st, rep + 1)?);
    }
    // One profiled run of each (separately, so timing the ops does not
    // disturb the numbers above).
    let prof = be.clone().with_profiling();
    run_prefill(&prof, &mut st, 99)?;
    let prefill_ops = prof.profile();
    run_decode(&prof, &mut st, 99)?;
    let decode_ops = prof.profile();

    Ok(BenchReport {
        model: o.model.name(),
        backend: tensor::Backend::describe(&be),
        load,
        prefill: Rate {
            tokens: o.prompt,
            median: median(pre),
        },
        decode: Rate {
            tokens: o.generate,
            median: median(dec),
        },
        prefill_ops,
        decode_ops,
    })
}
