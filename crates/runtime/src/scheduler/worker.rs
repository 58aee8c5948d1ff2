//! The scheduler's thread: slots of sessions over one model; each round
//! admits queued jobs into free slots, prefills one chunk of the oldest
//! prompt still prefilling, then samples every decoding slot and runs their
//! tokens through the model together.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};

use model::prompt::{PromptBuilder, TextTokenizer};
use model::text::{BatchState, MAX_VERIFY_ROWS};
use tensor::Backend;

use super::{JobEvent, JobSummary, Work};
use crate::constraint::overlapped;
use crate::engine::crop_views;
use crate::error::{Result, RuntimeError};
use crate::sampling::Sampler;
use crate::session::{Finish, Session, StopConfig};
use crate::speculative::{Ngram, Speculation, SpeculativeConfig, judge};
use crate::stream::TextStream;

pub(super) struct Context {
    pub prompt: Arc<PromptBuilder>,
    pub stop_ids: Vec<u32>,
    pub chunk: usize,
    pub stopping: Arc<AtomicBool>,
}

/// `n` sessions over `first`'s model: `first` and forks of it.
pub(super) fn slots<B: Backend + Clone>(first: Session<B>, n: usize) -> Result<Vec<Session<B>>> {
    let mut out = Vec::with_capacity(n);
    for _ in 1..n {
        out.push(first.fork(first.max_len())?);
    }
    out.insert(0, first);
    Ok(out)
}

/// A job in a slot.
struct Active {
    work: Box<Work>,
    /// Admission order: the oldest prompt prefills first.
    order: u64,
    sampler: Sampler,
    stream: TextStream,
    stop: StopConfig,
    ids: Vec<u32>,
    /// The next position's logits once prefilled.
    logits: Vec<f32>,
    decoding: bool,
    /// Whether it drafts ([`super::Job::speculative`]).
    speculative: bool,
    /// The token that replaced its last rejected draft, emitted next.
    forced: Option<u32>,
}

/// The batched steps' buffers, kept across steps: one state per batch
/// size seen, and the host logits `[b, vocab]`.
struct Batches<B: Backend> {
    states: HashMap<usize, BatchState<B>>,
    logits: Vec<f32>,
    /// Drafting scratch: a sequence's drafts.
    drafts: Vec<u32>,
}

struct Slot<B: Backend> {
    session: Session<B>,
    job: Option<Active>,
    /// Admission order of its latest job.
    last_used: u64,
}

pub(super) fn run<B: Backend>(sessions: Vec<Session<B>>, rx: Receiver<Box<Work>>, ctx: Context) {
    let mut slots: Vec<Slot<B>> = sessions
        .into_iter()
        .map(|session| Slot {
            session,
            job: None,
            last_used: 0,
        })
        .collect();
    let mut batches = Batches {
        states: HashMap::new(),
        logits: Vec::new(),
        drafts: Vec::new(),
    };
    let mut admitted = 0u64;
    let mut open = true;
    loop {
        if ctx.stopping.load(Ordering::Acquire) {
            for slot in &mut slots {
                finish(slot, Finish::Cancelled, &ctx);
            }
            while let Ok(mut w) = rx.try_recv() {
                (w.sink)(JobEvent::Failed("the server is shutting down".into()));
            }
            return;
        }
        // Admit: block for a job only when there is nothing to run.
        while open && slots.iter().any(|s| s.job.is_none()) {
            let busy = slots.iter().any(|s| s.job.is_some());
            let work = if busy {
                match rx.try_recv() {
                    Ok(w) => w,
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        open = false;
                        break;
                    }
                }
            } else {
                match rx.recv() {
                    Ok(w) => w,
                    Err(_) => {
                        open = false;
                        break;
                    }
                }
            };
            admit(&mut slots, work, admitted, &ctx);
            admitted += 1;
        }
        if !open && slots.iter().all(|s| s.job.is_none()) {
            return;
        }
        prefill_oldest(&mut slots, &ctx);
        decode_step(&mut slots, &mut batches, &ctx);
    }
}

/// Starts `work` in a free slot: the one whose cache shares the longest
/// prefix with its prompt when that keeps at least half of the cache (a
/// conversation's next turn), else the one whose cache is worth least (an
/// empty one, then the least recently used), so that a new conversation
/// sharing only the template's first tokens doesn't evict another's cache.
fn admit<B: Backend>(slots: &mut [Slot<B>], mut work: Box<Work>, order: u64, ctx: &Context) {
    let common = |s: &Session<B>| {
        s.cached()
            .iter()
            .zip(&work.ids)
            .take_while(|(a, b)| a == b)
            .count()
    };
    let free = || slots.iter().enumerate().filter(|(_, s)| s.job.is_none());
    let best = free().max_by_key(|(_, s)| common(&s.session));
    let chosen = match best {
        Some((i, s))
            if common(&s.session) > 0 && 2 * common(&s.session) >= s.session.cached().len() =>
        {
            Some(i)
        }
        _ => free()
            .min_by_key(|(_, s)| (!s.session.cached().is_empty(), s.last_used))
            .map(|(i, _)| i),
    };
    let Some(slot) = chosen.map(|i| &mut slots[i]) else {
        return;
    };
    slot.last_used = order;
    let crops = work.pre.as_ref().map(crop_views).unwrap_or_default();
    let started = slot.session.start(&work.ids, &crops);
    drop(crops);
    if let Err(e) = started {
        (work.sink)(JobEvent::Failed(e.to_string()));
        return;
    }
    work.pre = None;
    let speculative = work
        .speculative
        .unwrap_or(slot.session.speculation.is_some());
    if speculative && slot.session.speculation.is_none() {
        // Asked for on a server without a drafter: prompt lookup.
        let ngram = Box::new(Ngram::default());
        slot.session.speculation =
            Speculation::new(ngram, SpeculativeConfig::DEFAULT_DRAFT_MAX).ok();
    }
    slot.job = Some(Active {
        order,
        sampler: Sampler::constrained(work.sampling.clone(), work.constrained.take()),
        stream: TextStream::new(&ctx.stop_ids, &work.stop_strings)
            .keeping_special(work.keep_special),
        stop: StopConfig {
            max_new_tokens: work.max_new_tokens,
            stop_ids: if work.ignore_eos {
                Vec::new()
            } else {
                ctx.stop_ids.clone()
            },
        },
        ids: Vec::new(),
        logits: Vec::new(),
        decoding: false,
        speculative,
        forced: None,
        work,
    });
}

/// One prefill chunk of the oldest job still prefilling.
fn prefill_oldest<B: Backend>(slots: &mut [Slot<B>], ctx: &Context) {
    let Some(slot) = slots
        .iter_mut()
        .filter(|s| s.job.as_ref().is_some_and(|j| !j.decoding))
        .min_by_key(|s| s.job.as_ref().map_or(u64::MAX, |j| j.order))
    else {
        return;
    };
    let Some(job) = slot.job.as_mut() else { return };
    match slot.session.prefill_step(ctx.chunk, &mut job.logits) {
        Ok(None) => {}
        Ok(Some(p)) => {
            job.decoding = true;
            let go_on = (job.work.sink)(JobEvent::Prefilled {
                prompt_tokens: job.work.ids.len(),
                reused_tokens: p.reused,
            });
            if !go_on {
                finish(slot, Finish::Cancelled, ctx);
            } else if job.work.max_new_tokens == 0 {
                finish(slot, Finish::Length, ctx);
            }
        }
        Err(e) => fail(slot, &e.to_string()),
    }
}

/// Samples every decoding slot's next token (or takes the one a rejected
/// draft left), ends the jobs that stop, drafts for the jobs that
/// speculate, and runs the others' tokens (with drafts) through the model:
/// alone on the session's own path, or together in one batched step.
fn decode_step<B: Backend>(slots: &mut [Slot<B>], batches: &mut Batches<B>, ctx: &Context) {
    let tok = ctx.prompt.tokenizer();
    let mut pushed: Vec<(usize, u32)> = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        let Some(job) = slot.job.as_mut().filter(|j| j.decoding) else {
            continue;
        };
        let id = match job.forced.take() {
            Some(y) => y,
            None => job.sampler.sample(&mut job.logits, slot.session.cached()),
        };
        let go_on = emit((&mut job.ids, &mut job.stream, &mut job.work), tok, id);
        match slot
            .session
            .after_sample(id, go_on, job.ids.len(), &job.stop)
        {
            Ok(Some(f)) => finish(slot, f, ctx),
            Ok(None) => pushed.push((i, id)),
            Err(e) => fail(slot, &e.to_string()),
        }
    }
    let runs = draft(slots, &pushed, batches);
    match (&pushed[..], &runs[..]) {
        ([], _) => {}
        ([(i, id)], [run]) if run.len() == 1 => {
            let slot = &mut slots[*i];
            let Some(job) = slot.job.as_mut() else { return };
            if let Err(e) = slot.session.push(*id, &mut job.logits) {
                fail(slot, &e.to_string());
            }
        }
        _ => {
            if let Err(e) = step(slots, &pushed, &runs, batches, ctx) {
                let msg = e.to_string();
                for &(i, _) in &pushed {
                    let _ = slots[i].session.reset();
                    fail(&mut slots[i], &msg);
                }
            }
        }
    }
}

/// Records a generated token: the job's ids, its text to the sink.
/// `false`: the client is gone or a stop string was seen.
fn emit(
    (ids, stream, work): (&mut Vec<u32>, &mut TextStream, &mut Work),
    tok: &TextTokenizer,
    id: u32,
) -> bool {
    ids.push(id);
    let piece = stream.push(tok, id);
    let go_on = piece.is_empty() || (work.sink)(JobEvent::Text(piece.to_string()));
    go_on && !stream.stopped()
}

/// Each pushed token's run: the token, then drafts for the jobs that
/// speculate, sharing the rows a batched step keeps exact.
fn draft<B: Backend>(
    slots: &mut [Slot<B>],
    pushed: &[(usize, u32)],
    batches: &mut Batches<B>,
) -> Vec<Vec<u32>> {
    let mut runs: Vec<Vec<u32>> = pushed.iter().map(|&(_, id)| vec![id]).collect();
    let drafting = pushed
        .iter()
        .filter(|&&(i, _)| slots[i].job.as_ref().is_some_and(|j| j.speculative))
        .count();
    let spare = MAX_VERIFY_ROWS.saturating_sub(pushed.len());
    let share = spare.checked_div(drafting).unwrap_or(0);
    if share == 0 {
        return runs;
    }
    for (run, &(i, id)) in runs.iter_mut().zip(pushed) {
        let slot = &mut slots[i];
        let Some(job) = slot.job.as_ref().filter(|j| j.speculative) else {
            continue;
        };
        let Some(mut spec) = slot.session.speculation.take() else {
            continue;
        };
        let left = job.stop.max_new_tokens.saturating_sub(job.ids.len());
        let drafts = &mut batches.drafts;
        let r = slot
            .session
            .draft_after(&mut spec, (id, left, share), drafts);
        slot.session.speculation = Some(spec);
        if let Some(job) = slot.job.as_mut() {
            job.sampler.cut_drafts(drafts);
        }
        match r {
            Ok(()) => run.extend_from_slice(drafts),
            // A drafter's failure costs the drafts, not the job.
            Err(e) => tracing::warn!(error = %e, "drafting failed; decoding without drafts"),
        }
    }
    runs
}

/// Runs `pushed`'s runs (a slot's token, and its drafts) through the model
/// in one batched step; each slot takes its next logits, or judges its
/// drafts and keeps what the model agrees with.
fn step<B: Backend>(
    slots: &mut [Slot<B>],
    pushed: &[(usize, u32)],
    runs: &[Vec<u32>],
    batches: &mut Batches<B>,
    ctx: &Context,
) -> Result<()> {
    let rows: usize = runs.iter().map(Vec::len).sum();
    let Batches { states, logits, .. } = batches;
    let bs = match states.entry(rows) {
        std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
        std::collections::hash_map::Entry::Vacant(e) => {
            let s = &slots[pushed[0].0].session;
            e.insert(s.model.text.new_batch(&s.be, rows)?)
        }
    };
    {
        let runs: Vec<&[u32]> = runs.iter().map(Vec::as_slice).collect();
        let (mut sessions, mut constraints) = (Vec::new(), Vec::new());
        for (i, s) in slots.iter_mut().enumerate() {
            if pushed.iter().any(|&(j, _)| j == i) {
                sessions.push(&mut s.session);
                let job = s.job.as_mut();
                constraints.extend(job.and_then(|j| j.sampler.constraint.as_mut()));
            }
        }
        // The next masks of the constrained jobs while the step runs.
        overlapped(&mut constraints, || {
            Session::step_batch(&mut sessions, &runs, bs, logits)
        })?;
    }
    let vocab = logits.len() / rows;
    let tok = ctx.prompt.tokenizer();
    let mut r0 = 0;
    for (&(i, _), run) in pushed.iter().zip(runs) {
        let t = run.len();
        let chunk = &mut logits[r0 * vocab..(r0 + t) * vocab];
        r0 += t;
        let slot = &mut slots[i];
        let Some(job) = slot.job.as_mut() else {
            continue;
        };
        if t == 1 {
            job.logits.clear();
            job.logits.extend_from_slice(chunk);
            continue;
        }
        let Active {
            sampler,
            stop,
            ids,
            stream,
            work,
            ..
        } = job;
        let (cached, generated) = (slot.session.cached(), ids.len());
        let emit = &mut |d| emit((&mut *ids, &mut *stream, &mut *work), tok, d);
        let judged = judge(sampler, (chunk, vocab), cached, generated, stop, emit);
        job.forced = judged.forced;
        if let Some(spec) = slot.session.speculation.as_mut() {
            spec.adapt(t - 1, judged.kept - 1);
        }
        if let Err(e) = slot.session.keep(judged.kept) {
            fail(slot, &e.to_string());
            continue;
        }
        if let Some(f) = judged.finish {
            finish(slot, f, ctx);
        } else if judged.forced.is_none() {
            job.logits.clear();
            job.logits.extend_from_slice(&chunk[(t - 1) * vocab..]);
        }
    }
    Ok(())
}

/// Ends the slot's job: the held-back text, then `Done`.
fn finish<B: Backend>(slot: &mut Slot<B>, finish: Finish, ctx: &Context) {
    let Some(mut job) = slot.job.take() else {
        return;
    };
    if let Some(e) = job.sampler.constraint.as_ref().and_then(|c| c.error()) {
        let msg = RuntimeError::Constraint(e.into()).to_string();
        (job.work.sink)(JobEvent::Failed(msg));
        return;
    }
    let (text, rest) = job.stream.finish(ctx.prompt.tokenizer());
    if !rest.is_empty() && finish != Finish::Cancelled {
        (job.work.sink)(JobEvent::Text(rest));
    }
    let shown = job.ids.iter().filter(|i| !ctx.stop_ids.contains(i)).count();
    (job.work.sink)(JobEvent::Done(JobSummary {
        prompt_tokens: job.work.ids.len(),
        completion_tokens: shown,
        finish,
        text,
        ids: job.ids,
    }));
}

fn fail<B: Backend>(slot: &mut Slot<B>, msg: &str) {
    if let Some(mut job) = slot.job.take() {
        (job.work.sink)(JobEvent::Failed(msg.into()));
    }
}
