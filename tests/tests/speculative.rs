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
            s.verify(&toks[..=MAX_DRAFT], &mut rows)?;
            for (i, row) in rows.chunks_exact(vocab).enumerate() {
                ensure!(row == steps[i + 1], "{name}: verify row {i} differs");
            }
            s.keep(keep)?;
            ensure!(s.cached().len() == ids.len() + keep, "{name}: cache length");
            s.verify(&toks[keep..=keep + MAX_DRAFT], &mut rows)?;
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
    cases: &[String],
    ks: &[usize],
) -> Result<()>
where
    DraftModel<B>: Drafter,
{
    let greedy = SamplingConfig::default();
    let (mut drafted, mut accepted) = (0, 0);
    for name in cases {
        let case = Case::load(name)?;
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
        for &k in ks {
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
    let ks: Vec<usize> = (1..=MAX_DRAFT).collect();
    greedy_equals_plain(&cpu()?, "cpu", &Case::names()?, &ks)
}

/// On wgpu a text and an image case of each fixture model, two draft
/// lengths (a software adapter runs the whole grid in minutes; the CPU
/// test runs it all).
#[cfg(feature = "wgpu")]
#[test]
fn speculative_greedy_equals_plain_greedy_on_wgpu() -> Result<()> {
    let Some(be) = tensor::wgpu::gpu_or_skip() else {
        return Ok(());
    };
    let cases = ["text_only", "single_image", "two_images"].map(String::from);
    greedy_equals_plain(&be, "wgpu", &cases, &[2, MAX_DRAFT])
}

/// Probabilities of a top-`k` draw at temperature 1 from `logits`: what
/// the sampler draws from with those settings (ties at the k-th value
/// absent from these random logits).
fn top_k_probs(logits: &[f32], k: usize) -> Vec<(u32, f64)> {
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    idx.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
    idx.truncate(k);
    let m = logits[idx[0]] as f64;
    let e: Vec<f64> = idx.iter().map(|&i| (logits[i] as f64 - m).exp()).collect();
    let sum: f64 = e.iter().sum();
    idx.iter()
        .zip(e)
        .map(|(&i, e)| (i as u32, e / sum))
        .collect()
}

/// With sampling (top-k 3: a three-token vocabulary at every step), the
/// first three tokens of speculative generation follow the target's
/// joint distribution, computed exactly from the model: Pearson's χ² over
/// the 27 outcomes of 6000 seeded runs stays under the 0.1% critical
/// value, for drafts along the likeliest and the unlikeliest path and
/// prompt lookup's (outside the top 3 here: always rejected), as it does
/// for plain sampling.
#[test]
fn speculative_sampling_follows_the_target_distribution() -> Result<()> {
    const RUNS: u64 = 6000;
    let case = Case::load("text_only")?;
    let (ids, _) = prompt(&case)?;
    let model = Arc::new(Lfm2Vl::load(&case.model_dir()?, &cpu()?)?);
    let mut s = Session::shared(cpu()?, model, ids.len() + 8)?;
    let no_stop = stop(3);
    // The exact joint distribution, position by position.
    let logits_after = |s: &mut Session<CpuBackend>, extra: &[u32]| -> Result<Vec<f32>> {
        let mut p = ids.clone();
        p.extend_from_slice(extra);
        s.reset()?;
        s.start(&p, &[])?;
        let mut l = Vec::new();
        while s.prefill_step(512, &mut l)?.is_none() {}
        Ok(l)
    };
    let mut exact: Vec<([u32; 3], f64)> = Vec::new();
    for (a, pa) in top_k_probs(&logits_after(&mut s, &[])?, 3) {
        for (b, pb) in top_k_probs(&logits_after(&mut s, &[a])?, 3) {
            for (c, pc) in top_k_probs(&logits_after(&mut s, &[a, b])?, 3) {
                exact.push(([a, b, c], pa * pb * pc));
            }
        }
    }
    let path = |best: bool| -> Box<dyn Drafter> {
        let by = |x: &&([u32; 3], f64), y: &&([u32; 3], f64)| x.1.total_cmp(&y.1);
        let pick = if best {
            exact.iter().max_by(by)
        } else {
            exact.iter().min_by(by)
        };
        let mut tokens = ids.clone();
        tokens.extend(pick.map(|x| x.0).unwrap());
        Box::new(Replay { tokens })
    };
    let drafters: Vec<(&str, Option<Box<dyn Drafter>>)> = vec![
        ("plain", None),
        ("likeliest path", Some(path(true))),
        ("unlikeliest path", Some(path(false))),
        ("ngram", Some(Box::new(Ngram::default()))),
    ];
    // χ² 0.1% critical values by degrees of freedom (26 at most here).
    let crit = |df: usize| 54.05 * (df as f64 / 26.0).max(0.45);
    for (what, d) in drafters {
        s.speculation = d.map(|d| Speculation::new(d, 2)).transpose()?;
        let mut counts = vec![0usize; exact.len()];
        let mut accepted = 0;
        for seed in 0..RUNS {
            let cfg = SamplingConfig {
                greedy: false,
                top_k: 3,
                seed,
                ..SamplingConfig::default()
            };
            let g = s.generate(&ids, &[], &cfg, &no_stop, &mut |_| true)?;
            accepted += g.speculative.accepted;
            let Some(cell) = exact.iter().position(|(t, _)| t[..] == g.ids[..]) else {
                anyhow::bail!("{what}: {:?} is not a top-3 path", g.ids);
            };
            counts[cell] += 1;
        }
        let (mut stat, mut df, mut pool) = (0.0, 0usize, (0.0, 0.0));
        for (&c, &(_, p)) in counts.iter().zip(&exact) {
            let e = p * RUNS as f64;
            if e < 5.0 {
                pool = (pool.0 + c as f64, pool.1 + e);
            } else {
                stat += (c as f64 - e).powi(2) / e;
                df += 1;
            }
        }
        if pool.1 > 0.0 {
            stat += (pool.0 - pool.1).powi(2) / pool.1;
            df += 1;
        }
        df -= 1;
        eprintln!("{what}: χ² {stat:.1} with {df} df, {accepted} drafts accepted");
        ensure!(stat < crit(df), "{what}: χ² {stat:.1} ≥ {:.1}", crit(df));
        ensure!(
            what == "plain" || what == "ngram" || accepted > 0,
            "{what}: no draft accepted"
        );
    }
    Ok(())
}

/// Drafts verified inside a batched step: two sequences, one running its
/// token and drafts, the other a plain decode step (then both drafting),
/// give bit for bit each sequence's own decode steps on the CPU, and a
/// rewind in between changes nothing of that.
#[test]
fn drafts_verified_inside_a_batch_are_decode_steps_bit_for_bit() -> Result<()> {
    let be = cpu()?;
    let (a, b) = (Case::load("text_only")?, Case::load("single_image")?);
    let model = Arc::new(Lfm2Vl::load(&a.model_dir()?, &be)?);
    ensure!(b.model_dir()? == a.model_dir()?, "one model for both");
    let vocab = model.text.cfg.vocab_size;
    let len = |c: &Case| -> Result<usize> { Ok(c.seq_len()? + 2 * MAX_DRAFT + 4) };
    let mut sa = Session::shared(be.clone(), Arc::clone(&model), len(&a)?)?;
    let mut sb = Session::shared(be.clone(), Arc::clone(&model), len(&b)?)?;
    let (steps_a, toks_a) = plain_steps(&mut sa, &a)?;
    let (steps_b, toks_b) = plain_steps(&mut sb, &b)?;
    for (s, case) in [(&mut sa, &a), (&mut sb, &b)] {
        let (ids, pv) = prompt(case)?;
        let views = case.crop_patches(&pv)?;
        s.reset()?;
        s.start(&ids, &views)?;
        let mut l = Vec::new();
        while s.prefill_step(512, &mut l)?.is_none() {}
    }
    // (a's run, b's run, rows a keeps), with where each run starts in toks.
    let rounds = [
        ((0, 4), (0, 1), 2),
        ((2, 4), (1, 2), 4),
        ((6, 1), (3, 3), 1),
    ];
    for ((a0, at), (b0, bt), keep) in rounds {
        let runs = [&toks_a[a0..a0 + at], &toks_b[b0..b0 + bt]];
        let mut bs = model.text.new_batch(&be, at + bt)?;
        let mut rows = Vec::new();
        Session::step_batch(&mut [&mut sa, &mut sb], &runs, &mut bs, &mut rows)?;
        let mut got = rows.chunks_exact(vocab);
        for i in 0..at {
            ensure!(
                got.next() == Some(&steps_a[a0 + i + 1][..]),
                "a row {a0}+{i}"
            );
        }
        for i in 0..bt {
            ensure!(
                got.next() == Some(&steps_b[b0 + i + 1][..]),
                "b row {b0}+{i}"
            );
        }
        if at > 1 {
            sa.keep(keep)?;
        }
        if bt > 1 {
            sb.keep(bt)?;
        }
    }
    Ok(())
}

/// A draft model whose vocabulary differs from the target's is refused
/// with a typed error; a draft length out of range too.
#[test]
fn bad_drafts_are_clear_errors() -> Result<()> {
    let case = Case::load("text_only")?;
    let be = cpu()?;
    let model = Arc::new(Lfm2Vl::load(&case.model_dir()?, &be)?);
    let vocab = model.text.cfg.vocab_size;
    let e = DraftModel::new(be.clone(), Arc::clone(&model), vocab + 1, 64)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    ensure!(
        e.contains("a draft must share the target's tokenizer"),
        "{e:?}"
    );
    for k in [0, MAX_DRAFT + 1] {
        let e = Speculation::new(Box::new(Ngram::default()), k)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        ensure!(e.contains("draft-max must be 1 to 8"), "{e:?}");
    }
    Ok(())
}

/// A conversation over turns: the session's cache and the draft model's
/// own follow along (the draft rewinds into its last recording or starts
/// over), and each turn's greedy tokens equal a plain session's.
#[test]
fn speculative_turns_equal_plain_turns() -> Result<()> {
    let case = Case::load("text_only_1.6b")?;
    let be = cpu()?;
    let model = Arc::new(Lfm2Vl::load(&case.model_dir()?, &be)?);
    let draft = Arc::new(Lfm2Vl::load(&tests::fixture_path("models/tiny-450m"), &be)?);
    let (ids, _) = prompt(&case)?;
    let vocab = model.text.cfg.vocab_size;
    let mut plain = Session::shared(be.clone(), Arc::clone(&model), 1024)?;
    let mut spec = Session::shared(be.clone(), Arc::clone(&model), 1024)?;
    let d = DraftModel::new(be.clone(), draft, vocab, 1024)?;
    spec.speculation = Some(Speculation::new(Box::new(d), MAX_DRAFT)?);
    let greedy = SamplingConfig::default();
    let mut turn: Vec<u32> = ids[..ids.len() / 2].to_vec();
    for n in 0..3 {
        let a = plain.generate(&turn, &[], &greedy, &stop(12), &mut |_| true)?;
        let b = spec.generate(&turn, &[], &greedy, &stop(12), &mut |_| true)?;
        ensure!(a.ids == b.ids, "turn {n}: {:?} vs {:?}", b.ids, a.ids);
        ensure!(n == 0 || b.reused_tokens > 0, "turn {n} reused nothing");
        ensure!(b.speculative.drafted > 0, "turn {n}: nothing drafted");
        // The next turn: this one, its answer, and more of the prompt.
        turn.extend(&a.ids);
        turn.extend(&ids[..7]);
    }
    Ok(())
}
