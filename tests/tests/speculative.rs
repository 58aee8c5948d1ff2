//! Speculative decoding on the fixtures (issue 25): a verify chunk's rows
//! are the decode steps they stand for (bit for bit on the CPU), a rewind
//! leaves exactly the state of a run that stopped there, greedy output is
//! token for token plain decoding's for every draft length, drafter and
//! case (text and image, CPU and wgpu), and sampled output is distributed
//! as plain decoding's.

use std::sync::Arc;

use anyhow::{Result, ensure};
use model::Lfm2Vl;
use runtime::sampling::{SamplingConfig, argmax};
use runtime::session::{Session, StopConfig};
use runtime::speculative::{
    DraftModel, Drafter, MAX_DRAFT, Ngram, Replay, SpecCounts, Speculation,
};
use tensor::Backend;
use tensor::cpu::{CpuBackend, Isa};
use tests::Case;

/// Tokens each greedy comparison generates (past the fixtures' own
/// transformers reference, which `session.rs` checks).
const GEN: usize = 40;

fn cpu() -> Result<CpuBackend> {
    Ok(CpuBackend::with(Isa::best(), 2)?)
}

/// A case's prompt ids and pixel values (empty without images).
fn prompt(case: &Case) -> Result<(Vec<u32>, Vec<f32>)> {
    let ids = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let pv = if case.crops()?.is_empty() {
        Vec::new()
    } else {
        case.f32("pixel_values")?
    };
    Ok((ids, pv))
}

fn stop(n: usize) -> StopConfig {
    StopConfig {
        max_new_tokens: n,
        stop_ids: vec![],
    }
}

/// `n` tokens from `s` with `sampling` (and whatever speculation it has).
fn generate<B: Backend>(
    s: &mut Session<B>,
    case: &Case,
    sampling: &SamplingConfig,
    n: usize,
) -> Result<(Vec<u32>, SpecCounts)> {
    let (ids, pv) = prompt(case)?;
    let views = case.crop_patches(&pv)?;
    s.reset()?;
    let g = s.generate(&ids, &views, sampling, &stop(n), &mut |_| true)?;
    ensure!(g.ids.len() == n, "{} tokens, want {n}", g.ids.len());
    Ok((g.ids, g.speculative))
}

/// The prompt, then plain greedy decoding: the prompt's last logits and
/// every step's, and the tokens.
fn plain_steps<B: Backend>(s: &mut Session<B>, case: &Case) -> Result<(Vec<Vec<f32>>, Vec<u32>)> {
    let (ids, pv) = prompt(case)?;
    let views = case.crop_patches(&pv)?;
    s.reset()?;
    s.start(&ids, &views)?;
    let mut logits = Vec::new();
    while s.prefill_step(512, &mut logits)?.is_none() {}
    let (mut steps, mut toks) = (vec![logits.clone()], Vec::new());
    for _ in 0..2 * MAX_DRAFT + 2 {
        let t = argmax(&logits) as u32;
        s.push(t, &mut logits)?;
        toks.push(t);
        steps.push(logits.clone());
    }
    Ok((steps, toks))
}

/// On the CPU, each row of a verify chunk is bit for bit the decode step
/// it stands for, and after keeping `j` rows a second chunk from there is
/// again: the rewound conv states and KV caches are exactly those of a
/// plain run that stopped at `j`.
#[test]
fn verify_rows_and_rewinds_are_decode_steps_bit_for_bit() -> Result<()> {
    for name in Case::names()? {
        let case = Case::load(&name)?;
        let model = Arc::new(Lfm2Vl::load(&case.model_dir()?, &cpu()?)?);
        let max_len = case.seq_len()? + 2 * MAX_DRAFT + 4;
        let mut s = Session::shared(cpu()?, Arc::clone(&model), max_len)?;
        let (steps, toks) = plain_steps(&mut s, &case)?;
        let vocab = model.text.cfg.vocab_size;
        for keep in 1..=MAX_DRAFT + 1 {
            let (ids, pv) = prompt(&case)?;
            let views = case.crop_patches(&pv)?;
            s.reset()?;
            s.start(&ids, &views)?;
            let mut rows = Vec::new();
            while s.prefill_step(512, &mut rows)?.is_none() {}
            ensure!(rows == steps[0], "{name}: prefill logits differ");
            // toks[0] and MAX_DRAFT drafts; keep `keep` rows, then again from there.
            s.verify(toks[0], &toks[1..=MAX_DRAFT], &mut rows)?;
            for (i, row) in rows.chunks_exact(vocab).enumerate() {
                ensure!(row == steps[i + 1], "{name}: verify row {i} differs");
            }
            s.keep(keep)?;
            ensure!(s.cached().len() == ids.len() + keep, "{name}: cache length");
            s.verify(toks[keep], &toks[keep + 1..=keep + MAX_DRAFT], &mut rows)?;
            for (i, row) in rows.chunks_exact(vocab).enumerate() {
                ensure!(
                    row == steps[keep + i + 1],
                    "{name}: after keeping {keep}, row {i} differs"
                );
            }
        }
    }
    Ok(())
}

/// Drafts from an earlier greedy run with every `every`-th generated token
/// changed: rejections at every offset of a chunk, and full acceptance
/// in between.
fn corrupted(prompt: &[u32], out: &[u32], every: usize, vocab: u32) -> Replay {
    let mut tokens = prompt.to_vec();
    tokens.extend(out.iter().enumerate().map(|(i, &t)| {
        if every > 0 && i % every == every - 1 {
            (t + 1) % vocab
        } else {
            t
        }
    }));
    Replay { tokens }
}

/// Greedy output with speculation equals plain greedy output on `be`, for
/// every case, every draft length and each drafter: replayed exact drafts
/// (all accepted), replayed drafts with errors (rejections at every
/// offset), prompt lookup, and a draft model (the other fixture model:
/// same tokenizer, other weights).
fn greedy_equals_plain<B: Backend + Clone + Send + Sync + 'static>(
    be: &B,
    backend: &str,
) -> Result<()>
where
    DraftModel<B>: Drafter,
{
    let greedy = SamplingConfig::default();
    let (mut drafted, mut accepted) = (0, 0);
    for name in Case::names()? {
        let case = Case::load(&name)?;
        let model = Arc::new(Lfm2Vl::load(&case.model_dir()?, be)?);
        let max_len = case.seq_len()? + GEN + 1;
        let mut s = Session::shared(be.clone(), Arc::clone(&model), max_len)?;
        let (want, _) = generate(&mut s, &case, &greedy, GEN)?;
        let (ids, _) = prompt(&case)?;
        let vocab = model.text.cfg.vocab_size as u32;
        let other = if case.model_dir()?.ends_with("tiny-450m") {
            "tiny-1.6b"
        } else {
            "tiny-450m"
        };
        let draft_dir = tests::fixture_path(&format!("models/{other}"));
        let draft = Arc::new(Lfm2Vl::load(&draft_dir, be)?);
        for k in 1..=MAX_DRAFT {
            let drafters: Vec<(&str, Box<dyn Drafter>)> = vec![
                ("replay", Box::new(corrupted(&ids, &want, 0, vocab))),
                ("replay-3", Box::new(corrupted(&ids, &want, 3, vocab))),
                ("replay-7", Box::new(corrupted(&ids, &want, 7, vocab))),
                ("ngram", Box::new(Ngram::default())),
                (
                    "draft",
                    Box::new(DraftModel::new(
                        be.clone(),
                        Arc::clone(&draft),
                        vocab as usize,
                        max_len,
                    )?),
                ),
            ];
            for (what, d) in drafters {
                s.speculation = Some(Speculation::new(d, k)?);
                let (got, counts) = generate(&mut s, &case, &greedy, GEN)?;
                ensure!(
                    got == want,
                    "{backend} {name} k={k} {what}: {got:?}\n want {want:?}"
                );
                if what == "replay" {
                    // All accepted: a chunk of k + 1 tokens per step.
                    ensure!(
                        counts.accepted == counts.drafted && counts.steps <= GEN.div_ceil(k + 1),
                        "{backend} {name} k={k}: {counts:?}"
                    );
                }
                if what.starts_with("replay-") {
                    ensure!(
                        counts.accepted < counts.drafted,
                        "{backend} {name} k={k} {what}: nothing rejected {counts:?}"
                    );
                }
                drafted += counts.drafted;
                accepted += counts.accepted;
            }
            s.speculation = None;
        }
    }
    eprintln!("{backend}: {accepted} of {drafted} drafted tokens accepted");
    Ok(())
}

#[test]
fn speculative_greedy_equals_plain_greedy_on_the_cpu() -> Result<()> {
    greedy_equals_plain(&cpu()?, "cpu")
}

#[cfg(feature = "wgpu")]
#[test]
fn speculative_greedy_equals_plain_greedy_on_wgpu() -> Result<()> {
    let Some(be) = tensor::wgpu::gpu_or_skip() else {
        return Ok(());
    };
    greedy_equals_plain(&be, "wgpu")
}
