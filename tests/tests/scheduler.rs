//! The scheduler on the fixtures: batched decode against each sequence
//! decoded alone, concurrent jobs against transformers' greedy ids, the
//! bounded queue, cancellation and shutdown.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use model::Lfm2Vl;
use model::preprocess::{DecodeLimits, RgbImage, load_image};
use model::prompt::{ChatMessage, messages_from_value};
use runtime::engine::{BackendChoice, Engine, EngineOptions};
use runtime::sampling::argmax;
use runtime::scheduler::{Job, JobEvent, JobInput, JobSummary, Scheduler, SchedulerOptions};
use runtime::session::{Finish, Session};
use tensor::cpu::{CpuBackend, Isa};
use tests::Case;

/// The cases grouped by their checkpoint, each group at least four
/// sequences long (a checkpoint with fewer cases repeats them: the same
/// prompt twice is still two sequences with caches of their own).
fn models() -> Result<Vec<Vec<Case>>> {
    let mut groups: Vec<Vec<Case>> = Vec::new();
    for name in Case::names()? {
        let case = Case::load(&name)?;
        let dir = case.model_dir()?;
        match groups
            .iter_mut()
            .find(|g| g[0].model_dir().ok() == Some(dir.clone()))
        {
            Some(g) => g.push(case),
            None => groups.push(vec![case]),
        }
    }
    for g in &mut groups {
        let n = g.len();
        for k in n..4 {
            g.push(g[k % n].clone());
        }
    }
    Ok(groups)
}

fn prefill<B: tensor::Backend>(s: &mut Session<B>, case: &Case) -> Result<Vec<f32>> {
    let ids: Vec<u32> = case.input_ids()?.iter().map(|&i| i as u32).collect();
    let pv = if case.crops()?.is_empty() {
        Vec::new()
    } else {
        case.f32("pixel_values")?
    };
    let views = case.crop_patches(&pv)?;
    s.start(&ids, &views)?;
    let mut logits = Vec::new();
    while s.prefill_step(64, &mut logits)?.is_none() {}
    Ok(logits)
}

/// Every case's sequence decoded in one batch (each at its own position,
/// conv and attention caches its own) gives, row by row, the logits of
/// that sequence decoded alone, within the measured bound; both runs are
/// fed the solo run's greedy tokens.
#[test]
fn batched_decode_matches_each_sequence_alone() -> Result<()> {
    let be = CpuBackend::with(Isa::best(), 2)?;
    for cases in models()? {
        let worst = batched_vs_alone(&be, &cases)?;
        // The CPU runs a batch of up to `matmul::GEMV_ROWS` rows with each
        // row's sums in its one-row GEMV's order (`cpu_matmul_rows.rs`), and
        // every other op row by row: batching changes no bit of any
        // sequence's logits (a blocked GEMM here measured 2.4e-6 / 2.9e-6).
        ensure!(
            worst == 0.0,
            "batched decode differs from decoding alone: {worst:.2e}"
        );
    }
    Ok(())
}

/// The same on wgpu, where a batch's matmuls are GEMMs and one sequence's
/// a GEMV (different summation orders): within f32 rounding, and the same
/// greedy tokens.
#[test]
fn wgpu_batched_decode_matches_each_sequence_alone() -> Result<()> {
    let Some(be) = tensor::wgpu::gpu_or_skip() else {
        return Ok(());
    };
    for cases in models()? {
        let worst = batched_vs_alone(&be, &cases)?;
        // Measured 2.5e-6 (tiny-450m) and 2.4e-6 (tiny-1.6b) on lavapipe
        // (Mesa 22, llvmpipe): f32 rounding of two summation orders.
        ensure!(worst <= 1e-5, "batched decode drifted: {worst:.2e}");
    }
    Ok(())
}

/// Every case of one checkpoint decoded in one batch (each sequence at its
/// own position, its conv and attention caches its own) against each
/// decoded alone, both fed the solo run's greedy tokens for 12 steps: the
/// argmax must agree; returns the worst |batched − alone| / max|alone|.
fn batched_vs_alone<B: tensor::Backend + Clone>(be: &B, cases: &[Case]) -> Result<f32> {
    let model = std::sync::Arc::new(Lfm2Vl::load(&cases[0].model_dir()?, be)?);
    let new = || Session::shared(be.clone(), model.clone(), 1024);
    let (mut solo, mut batch) = (Vec::new(), Vec::new());
    let mut solo_logits = Vec::new();
    for case in cases {
        let mut s = new()?;
        solo_logits.push(prefill(&mut s, case)?);
        solo.push(s);
        let mut s = new()?;
        prefill(&mut s, case)?;
        batch.push(s);
    }
    let b = cases.len();
    ensure!(b >= 4, "want at least 4 sequences, have {b}");
    let mut bs = model.text.new_batch(be, b)?;
    let mut flat = Vec::new();
    let mut worst = 0f32;
    for step in 0..12 {
        let ids: Vec<u32> = solo_logits.iter().map(|l| argmax(l) as u32).collect();
        for ((s, l), &id) in solo.iter_mut().zip(&mut solo_logits).zip(&ids) {
            s.push(id, l)?;
        }
        let mut refs: Vec<&mut Session<B>> = batch.iter_mut().collect();
        Session::push_batch(&mut refs, &ids, &mut bs, &mut flat)?;
        let v = flat.len() / b;
        for (i, want) in solo_logits.iter().enumerate() {
            let got = &flat[i * v..(i + 1) * v];
            let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
            let diff = got
                .iter()
                .zip(want)
                .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            worst = worst.max(diff / scale.max(1e-6));
            ensure!(
                argmax(got) == argmax(want),
                "step {step}, sequence {i}: batched argmax {} vs alone {}",
                argmax(got),
                argmax(want)
            );
        }
    }
    eprintln!(
        "BATCHED_DECODE {} on {}: worst |batched - alone| / max|alone| = {worst:.2e} over {b} sequences",
        cases[0].meta["model"],
        be.describe()
    );
    // The positions advanced together.
    for (s, t) in solo.iter().zip(&batch) {
        ensure!(s.cached() == t.cached(), "token records differ");
    }
    Ok(worst)
}

fn engine(case: &Case) -> Result<Engine> {
    let opts = EngineOptions {
        backend: BackendChoice::Cpu,
        cpu: tensor::cpu::CpuOptions {
            threads: Some(2),
            ..Default::default()
        },
        max_len: 1024,
        ..Default::default()
    };
    let dir = case.model_dir()?;
    Ok(Engine::load(dir.to_str().context("path")?, &opts)?)
}

/// The case's messages and its images, in the order the messages name them.
fn chat(case: &Case) -> Result<(Vec<ChatMessage>, Vec<RgbImage>)> {
    let msgs = messages_from_value(&case.meta["messages"])?;
    let mut images = Vec::new();
    for m in case.meta["messages"].as_array().context("messages")? {
        for p in m["content"].as_array().into_iter().flatten() {
            if p["type"] != "image" {
                continue;
            }
            let name = p["image"].as_str().context("image name")?;
            let entry = case.meta["images"]
                .as_array()
                .context("images")?
                .iter()
                .find(|i| i["name"] == name)
                .context("image entry")?;
            let file = tests::fixture_path(entry["file"].as_str().context("file")?);
            images.push(load_image(&file, &DecodeLimits::default())?);
        }
    }
    Ok((msgs, images))
}

type Events = mpsc::Receiver<JobEvent>;

fn submit(sched: &Scheduler, input: JobInput, max_new_tokens: usize) -> Result<Events> {
    let job = Job {
        max_new_tokens,
        ..Job::new(input)
    };
    submit_job(sched, job)
}

fn submit_job(sched: &Scheduler, job: Job) -> Result<Events> {
    let (tx, rx) = mpsc::channel();
    sched.submit(job, Box::new(move |e| tx.send(e).is_ok()))?;
    Ok(rx)
}

/// Four slots, prompts prefilled 32 tokens at a time.
fn four_slots(engine: Engine) -> Result<Scheduler> {
    Ok(Scheduler::start(
        engine,
        SchedulerOptions {
            parallel: 4,
            prefill_chunk: 32,
            ..Default::default()
        },
    )?)
}

/// Waits for the job's end; its streamed text and summary.
fn wait(rx: &Events) -> Result<(String, JobSummary)> {
    let mut text = String::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120))? {
            JobEvent::Text(t) => text.push_str(&t),
            JobEvent::Done(s) => return Ok((text, s)),
            JobEvent::Failed(e) => bail!("job failed: {e}"),
            JobEvent::Prefilled { .. } => {}
        }
    }
}

/// Two jobs per case (text and image prompts mixed), all submitted at once
/// to four slots: each gives transformers' greedy ids, and its streamed text
/// is its final text.
#[test]
fn concurrent_jobs_give_transformers_greedy_ids() -> Result<()> {
    for cases in models()? {
        concurrent_jobs(&cases)?;
    }
    Ok(())
}

fn concurrent_jobs(cases: &[Case]) -> Result<()> {
    let sched = four_slots(engine(&cases[0])?)?;
    let mut pending = Vec::new();
    for round in 0..2 {
        for case in cases {
            let (messages, images) = chat(case)?;
            let want: Vec<u32> = case.generated_ids()?.iter().map(|&i| i as u32).collect();
            let rx = submit(&sched, JobInput::Chat { messages, images }, want.len())?;
            pending.push((format!("{} #{round}", case.name), want, rx));
        }
    }
    ensure!(pending.len() >= 8);
    for (name, want, rx) in pending {
        let (streamed, s) = wait(&rx)?;
        ensure!(s.ids == want, "{name}: got {:?}, want {want:?}", s.ids);
        ensure!(
            streamed == s.text,
            "{name}: streamed {streamed:?} vs {:?}",
            s.text
        );
        ensure!(s.finish == Finish::Length && s.completion_tokens == want.len());
    }
    sched.shutdown();
    Ok(())
}

/// A full queue answers Busy; a cancelled job ends and its slot serves the
/// next job; after shutdown, submit answers Stopped.
#[test]
fn queue_limit_cancellation_and_shutdown() -> Result<()> {
    use runtime::scheduler::SubmitError;
    let case = Case::load("text_only")?;
    let sched = Scheduler::start(
        engine(&case)?,
        SchedulerOptions {
            parallel: 1,
            queue: 1,
            ..Default::default()
        },
    )?;
    let text = || JobInput::Text("<|startoftext|><|im_start|>user\nHello<|im_end|>\n".into());
    // Cancelled at its first text: the sink returns false.
    let (tx, rx) = mpsc::channel();
    let job = Job {
        max_new_tokens: 500,
        ..Job::new(text())
    };
    sched.submit(
        job.clone(),
        Box::new(move |e| {
            let text = matches!(e, JobEvent::Text(_));
            tx.send(e).is_ok() && !text
        }),
    )?;
    let (_, s) = wait(&rx)?;
    ensure!(s.finish == Finish::Cancelled, "finish {:?}", s.finish);

    // One slot, a queue of one: a burst of long jobs meets Busy.
    let mut busy = 0;
    let mut accepted = Vec::new();
    for _ in 0..8 {
        let (tx, rx) = mpsc::channel();
        match sched.submit(job.clone(), Box::new(move |e| tx.send(e).is_ok())) {
            Ok(()) => accepted.push(rx),
            Err(SubmitError::Busy) => busy += 1,
            Err(e) => bail!("unexpected {e}"),
        }
    }
    ensure!(
        busy > 0 && !accepted.is_empty(),
        "busy {busy}, accepted {}",
        accepted.len()
    );
    for rx in &accepted {
        let (_, s) = wait(rx)?;
        ensure!(s.finish == Finish::Length || s.finish == Finish::Stop);
    }
    // Past the context: the request's error, at submit.
    let long = "hello ".repeat(2000);
    match submit(&sched, JobInput::Text(long), 4) {
        Err(e) => ensure!(e.to_string().contains("context"), "{e}"),
        Ok(_) => bail!("a prompt past the context was accepted"),
    }
    sched.shutdown();
    match sched.submit(job, Box::new(|_| true)) {
        Err(SubmitError::Stopped) => Ok(()),
        other => bail!("after shutdown: {:?}", other.err()),
    }
}

/// A follow-up turn goes to the slot holding its conversation and reuses
/// the cached prefix (the scheduler picks the free slot with the longest
/// common prefix), while another conversation ran in between; its tokens
/// equal a fresh scheduler's.
#[test]
fn follow_up_turn_reuses_its_slots_cache() -> Result<()> {
    let case = Case::load("single_image")?;
    let (turn1, images) = chat(&case)?;
    let other = Case::load("text_only")?;
    let (other_msgs, _) = chat(&other)?;
    let opts = SchedulerOptions {
        parallel: 2,
        ..Default::default()
    };
    let sched = Scheduler::start(engine(&case)?, opts.clone())?;
    let input = |messages: Vec<ChatMessage>| JobInput::Chat {
        messages,
        images: images.clone(),
    };
    let (_, first) = wait(&submit(&sched, input(turn1.clone()), 6)?)?;
    // Another conversation takes the other slot meanwhile.
    let (_, _) = wait(&submit(
        &sched,
        JobInput::Chat {
            messages: other_msgs,
            images: Vec::new(),
        },
        6,
    )?)?;
    let mut turn2 = turn1;
    turn2.push(ChatMessage::text("assistant", first.text.clone()));
    turn2.push(ChatMessage::text("user", "And the colours?"));
    let rx = submit(&sched, input(turn2.clone()), 6)?;
    let reused = match rx.recv_timeout(Duration::from_secs(120))? {
        JobEvent::Prefilled { reused_tokens, .. } => reused_tokens,
        other => bail!("expected Prefilled first, got {other:?}"),
    };
    let (_, second) = wait(&rx)?;
    ensure!(
        reused >= first.prompt_tokens,
        "turn 2 reused {reused} tokens; turn 1's prompt had {}",
        first.prompt_tokens
    );
    sched.shutdown();
    let fresh = Scheduler::start(engine(&case)?, opts)?;
    let (_, once) = wait(&submit(&fresh, input(turn2), 6)?)?;
    ensure!(once.ids == second.ids, "{:?} vs {:?}", once.ids, second.ids);
    fresh.shutdown();
    Ok(())
}

/// Speculative decoding inside the scheduler's batches: per case, one job
/// with drafts from a draft model (the other fixture checkpoint), one with
/// speculation off and one with prompt lookup asked per request, all at
/// once on four slots: each gives transformers' greedy ids.
#[test]
fn speculative_jobs_in_batches_give_transformers_greedy_ids() -> Result<()> {
    use runtime::speculative::{DraftSource, SpeculativeConfig};
    for cases in models()? {
        let mut opts = EngineOptions {
            backend: BackendChoice::Cpu,
            max_len: 1024,
            ..Default::default()
        };
        let dir = cases[0].model_dir()?;
        let other = if dir.ends_with("tiny-450m") {
            "models/tiny-1.6b"
        } else {
            "models/tiny-450m"
        };
        let draft = tests::fixture_path(other).display().to_string();
        opts.speculative = Some(SpeculativeConfig {
            source: DraftSource::Model(draft),
            draft_max: 8,
        });
        let sched = four_slots(Engine::load(dir.to_str().context("path")?, &opts)?)?;
        let mut pending = Vec::new();
        for case in &cases {
            let want: Vec<u32> = case.generated_ids()?.iter().map(|&i| i as u32).collect();
            for speculative in [None, Some(false), Some(true)] {
                let (messages, images) = chat(case)?;
                let job = Job {
                    max_new_tokens: want.len(),
                    speculative,
                    ..Job::new(JobInput::Chat { messages, images })
                };
                let rx = submit_job(&sched, job)?;
                pending.push((format!("{} {speculative:?}", case.name), want.clone(), rx));
            }
        }
        for (name, want, rx) in pending {
            let (streamed, s) = wait(&rx)?;
            ensure!(s.ids == want, "{name}: got {:?}, want {want:?}", s.ids);
            ensure!(streamed == s.text, "{name}: streamed {streamed:?}");
        }
        sched.shutdown();
    }
    Ok(())
}
