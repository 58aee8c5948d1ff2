//! A generation session over one sequence: the model's caches allocated
//! once, prefill, the decode loop with sampling and stop conditions, and
//! reuse of the cached prefix across turns (issue 6).
//!
//! Prefix reuse: the KV caches can be cut back to any length, but a conv
//! state is only the last `l − 1` rows of `B⊙X`, so it can only be restored
//! where it was snapshotted. The session snapshots the conv states at the
//! end of every prefill (a turn boundary); a new prompt that extends the
//! cached tokens continues from the cache, one that diverges after a
//! snapshot rolls back to it, anything else starts over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use model::text::{BatchState, LayerCache, Recorder, TextState};
use model::{CropPatches, Lfm2Vl};
use tensor::{Backend, DType, HostData, Shape, Tensor, op};

use crate::constraint::{ConstraintStats, overlapped};
use crate::error::{Result, RuntimeError};
use crate::sampling::{Sampler, SamplingConfig};
use crate::speculative::{SpecCounts, Speculation};

/// What a caller sees while a generation runs.
#[derive(Clone, Debug)]
pub enum Event {
    /// Images encoded (crops, time).
    ImagesEncoded { crops: usize, elapsed: Duration },
    /// The prompt was processed: `reused` tokens came from the cache,
    /// `computed` were run now.
    Prefilled {
        reused: usize,
        computed: usize,
        elapsed: Duration,
    },
    /// One generated token.
    Token { id: u32 },
}

/// When to stop generating.
#[derive(Clone, Debug)]
pub struct StopConfig {
    pub max_new_tokens: usize,
    /// Token ids that end generation (EOS); the stop token is returned.
    pub stop_ids: Vec<u32>,
}

/// Why generation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    Stop,
    Length,
    /// The context is full.
    Context,
    /// The callback asked to stop.
    Cancelled,
}

#[derive(Clone, Debug)]
pub struct Generation {
    pub prompt_tokens: usize,
    pub reused_tokens: usize,
    pub ids: Vec<u32>,
    pub finish: Finish,
    pub image_time: Duration,
    pub prefill_time: Duration,
    pub decode_time: Duration,
    /// Speculative decoding's steps, drafted and accepted tokens (zero
    /// without it).
    pub speculative: SpecCounts,
    /// Structured output's masks and their time (zero without a constraint).
    pub constraint: ConstraintStats,
}

/// `g` with its sampler's constraint figures; a parser failure on the
/// way is an error (the output may not match).
fn finish_constrained(mut g: Generation, sampler: &Sampler) -> Result<Generation> {
    if let Some(c) = &sampler.constraint {
        if let Some(e) = c.error() {
            return Err(RuntimeError::Constraint(e.to_string()));
        }
        g.constraint = c.stats;
    }
    Ok(g)
}

/// A 64-bit FNV-1a fingerprint of a crop's shape and patch values.
fn fingerprint(c: &CropPatches<'_>) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |v: u64| h = (h ^ v).wrapping_mul(0x0100_0000_01b3);
    mix(c.h as u64);
    mix(c.w as u64);
    for v in c.patches {
        mix(v.to_bits() as u64);
    }
    h
}

/// Conv states at a known position.
struct Snapshot {
    pos: usize,
    conv: Vec<Option<Vec<f32>>>,
}

/// One conversation over a model that any number of sessions may share
/// (`Arc`; the model is read-only, `Send + Sync`): each session owns its
/// caches, scratch and snapshots. Sessions on one CPU backend share its
/// thread pool, so their calls run one after another on it.
pub struct Session<B: Backend> {
    pub be: B,
    pub model: Arc<Lfm2Vl<B>>,
    pub(crate) state: TextState<B>,
    /// Tokens whose keys/values/conv states are in `state`.
    pub(crate) cached: Vec<u32>,
    /// Fingerprints of the crops behind the cached `<image>` runs, in order:
    /// the same placeholder ids with a different image must not reuse the cache.
    crop_prints: Vec<u64>,
    snapshots: Vec<Snapshot>,
    /// Prefill chunk length (bounds activation memory).
    pub chunk: usize,
    /// A prompt taken by [`Session::start`] not yet fully prefilled.
    pending: Option<Pending<B>>,
    /// Speculative decoding for [`Session::generate`] (`None`: plain).
    pub speculation: Option<Speculation>,
    /// Rewinds a speculative verify (made on first use).
    pub(crate) recorder: Option<Recorder<B>>,
}

/// The part of a prompt still to prefill: its embeddings (image features
/// merged in) and token ids past the reused prefix.
struct Pending<B: Backend> {
    x: Tensor<B>,
    suffix: Vec<u32>,
    /// Rows of `suffix` already prefilled.
    done: usize,
    reused: usize,
    elapsed: Duration,
}

/// What [`Session::start`] did.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    /// Prompt tokens kept from the cache.
    pub reused: usize,
    /// Image crops run through the vision tower.
    pub crops_encoded: usize,
    pub image_time: Duration,
}

/// A prompt fully prefilled ([`Session::prefill_step`]).
#[derive(Clone, Copy, Debug)]
pub struct Prefilled {
    pub reused: usize,
    pub computed: usize,
    /// Prefill time summed over the steps (the snapshot included).
    pub elapsed: Duration,
}

impl<B: Backend> Session<B> {
    /// A session with room for `max_len` tokens.
    pub fn new(be: B, model: Lfm2Vl<B>, max_len: usize) -> Result<Self> {
        Self::shared(be, Arc::new(model), max_len)
    }

    /// A session with room for `max_len` tokens over a shared model.
    pub fn shared(be: B, model: Arc<Lfm2Vl<B>>, max_len: usize) -> Result<Self> {
        let state = model.text.new_state(&be, max_len)?;
        Ok(Session {
            be,
            model,
            state,
            cached: Vec::new(),
            crop_prints: Vec::new(),
            snapshots: Vec::new(),
            chunk: 512,
            pending: None,
            speculation: None,
            recorder: None,
        })
    }

    /// A new, empty session over the same model and backend (no weights
    /// copied: only the new session's caches are allocated).
    pub fn fork(&self, max_len: usize) -> Result<Self>
    where
        B: Clone,
    {
        let mut s = Self::shared(self.be.clone(), Arc::clone(&self.model), max_len)?;
        s.chunk = self.chunk;
        s.speculation = self
            .speculation
            .as_ref()
            .map(Speculation::fork)
            .transpose()?;
        Ok(s)
    }

    pub fn max_len(&self) -> usize {
        self.state.seq.max_len
    }

    /// Forgets the conversation.
    pub fn reset(&mut self) -> Result<()> {
        self.pending = None;
        if let Some(r) = self.recorder.as_mut() {
            r.clear();
        }
        self.model.text.reset(&self.be, &mut self.state)?;
        self.cached.clear();
        self.crop_prints.clear();
        self.snapshots.clear();
        Ok(())
    }

    /// The cached tokens (prompt and generated so far).
    pub fn cached(&self) -> &[u32] {
        &self.cached
    }

    fn snapshot(&self) -> Result<Snapshot> {
        let conv = self
            .state
            .seq
            .caches
            .iter()
            .map(|c| match c {
                LayerCache::Conv { state } => self.be.download_f32(state).map(Some),
                LayerCache::Attention { .. } => Ok(None),
            })
            .collect::<tensor::Result<Vec<_>>>()?;
        Ok(Snapshot {
            pos: self.state.seq.pos,
            conv,
        })
    }

    fn restore(&mut self, snap_index: usize) -> Result<()> {
        let snap = &self.snapshots[snap_index];
        for (c, s) in self.state.seq.caches.iter_mut().zip(&snap.conv) {
            if let (LayerCache::Conv { state }, Some(v)) = (c, s) {
                *state = self.be.upload(HostData::f32(v), state.shape().clone())?;
            }
        }
        self.state.seq.pos = snap.pos;
        self.cached.truncate(snap.pos);
        self.snapshots.truncate(snap_index + 1);
        Ok(())
    }

    /// How many leading tokens of `ids` (at most `limit`) can be kept from the
    /// cache, after rolling the state back if needed. Image-token runs are
    /// never split.
    fn reuse(&mut self, ids: &[u32], limit: usize) -> Result<usize> {
        let image = self.model.image_token_id();
        let mut lcp = self
            .cached
            .iter()
            .zip(ids)
            .take_while(|(a, b)| a == b)
            .count();
        // Keep at least one token to run, so there are logits to sample from.
        lcp = lcp.min(ids.len().saturating_sub(1)).min(limit);
        while lcp > 0 && Some(ids[lcp - 1]) == image && ids.get(lcp) == image.as_ref() {
            lcp -= 1;
        }
        if lcp == self.cached.len() {
            return Ok(lcp);
        }
        // Roll back to the latest snapshot inside the common prefix.
        match self
            .snapshots
            .iter()
            .rposition(|s| s.pos <= lcp && s.pos > 0)
        {
            Some(i) => {
                self.restore(i)?;
                Ok(self.state.seq.pos)
            }
            None => {
                self.reset()?;
                Ok(0)
            }
        }
    }

    /// Generates from a whole prompt (`ids` already expanded with `<image>`
    /// tokens; `crops` for every image in it, in order). Reuses the cached
    /// prefix; images whose tokens lie entirely in it are not re-encoded
    /// (their crops are skipped by counting feature rows).
    /// `on_event` returning `false` cancels.
    pub fn generate(
        &mut self,
        ids: &[u32],
        crops: &[CropPatches<'_>],
        sampling: &SamplingConfig,
        stop: &StopConfig,
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<Generation> {
        let sampler = Sampler::new(sampling.clone());
        self.generate_with(ids, crops, sampler, stop, on_event)
    }

    /// [`Session::generate`] drawing with `sampler` (e.g. one holding a
    /// structured-output constraint, [`Sampler::constrained`]).
    pub fn generate_with(
        &mut self,
        ids: &[u32],
        crops: &[CropPatches<'_>],
        sampler: Sampler,
        stop: &StopConfig,
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<Generation> {
        // An error part-way (a backend failure) may leave the caches ahead of
        // the token record: forget the conversation rather than reuse it.
        let r = self.generate_inner(ids, crops, sampler, stop, on_event);
        if r.is_err() {
            let _ = self.reset();
        }
        r
    }

    fn generate_inner(
        &mut self,
        ids: &[u32],
        crops: &[CropPatches<'_>],
        mut sampler: Sampler,
        stop: &StopConfig,
        on_event: &mut dyn FnMut(&Event) -> bool,
    ) -> Result<Generation> {
        sampler.cfg.validate().map_err(RuntimeError::Sampling)?;
        let started = self.start(ids, crops)?;
        if started.crops_encoded > 0 {
            on_event(&Event::ImagesEncoded {
                crops: started.crops_encoded,
                elapsed: started.image_time,
            });
        }
        // One logits buffer for the whole call: decode steps reuse it.
        let mut logits = Vec::new();
        let prefilled = loop {
            if let Some(p) = self.prefill_step(self.chunk, &mut logits)? {
                break p;
            }
        };
        let mut generation = Generation {
            prompt_tokens: ids.len(),
            reused_tokens: prefilled.reused,
            ids: Vec::new(),
            finish: Finish::Cancelled,
            image_time: started.image_time,
            prefill_time: prefilled.elapsed,
            decode_time: Duration::ZERO,
            speculative: SpecCounts::default(),
            constraint: ConstraintStats::default(),
        };
        if !on_event(&Event::Prefilled {
            reused: prefilled.reused,
            computed: prefilled.computed,
            elapsed: prefilled.elapsed,
        }) {
            return Ok(generation);
        }

        // Decode.
        let t2 = Instant::now();
        let out = &mut generation.ids;
        if let Some(mut spec) = self.speculation.take() {
            let counts = &mut generation.speculative;
            let r = self.decode_speculative(
                &mut spec,
                &mut sampler,
                &mut logits,
                out,
                stop,
                on_event,
                counts,
            );
            self.speculation = Some(spec);
            generation.finish = r?;
            generation.decode_time = t2.elapsed();
            return finish_constrained(generation, &sampler);
        }
        generation.finish = loop {
            if out.len() >= stop.max_new_tokens {
                break Finish::Length;
            }
            let id = sampler.sample(&mut logits, &self.cached);
            out.push(id);
            let go_on = on_event(&Event::Token { id });
            if let Some(finish) = self.after_sample(id, go_on, out.len(), stop)? {
                break finish;
            }
            let mut cs = sampler.constraint.as_mut();
            overlapped(cs.as_mut_slice(), || self.push(id, &mut logits))?;
        };
        generation.decode_time = t2.elapsed();
        finish_constrained(generation, &sampler)
    }

    /// Takes a new prompt (`ids` already expanded with `<image>` tokens;
    /// `crops` for every image in it, in order): keeps the cached prefix it
    /// shares (rolling back to a snapshot if needed), encodes the images
    /// whose tokens lie past it, and sets up the rest to prefill with
    /// [`Session::prefill_step`]. Images whose tokens lie entirely in the
    /// kept prefix are not re-encoded (their crops are skipped by counting
    /// feature rows). A prompt already pending is dropped.
    pub fn start(&mut self, ids: &[u32], crops: &[CropPatches<'_>]) -> Result<Started> {
        self.pending = None;
        if ids.is_empty() {
            return Err(model::ModelError::EmptyPrompt.into());
        }
        if ids.len() > self.max_len() {
            return Err(model::ModelError::ContextOverflow {
                needed: ids.len(),
                limit: self.max_len(),
            }
            .into());
        }
        let r = self.start_inner(ids, crops);
        if r.is_err() {
            let _ = self.reset();
        }
        r
    }

    fn start_inner(&mut self, ids: &[u32], crops: &[CropPatches<'_>]) -> Result<Started> {
        // Reuse stops at the first image whose pixels differ from the cached one.
        let prints: Vec<u64> = crops.iter().map(fingerprint).collect();
        let same = self
            .crop_prints
            .iter()
            .zip(&prints)
            .take_while(|(a, b)| a == b)
            .count();
        let limit = match self.model.image_token_id() {
            Some(img) if same < crops.len() => {
                let rows_before: usize = crops[..same].iter().map(|c| c.h * c.w / 4).sum();
                // Position of the first <image> token of crop `same`.
                ids.iter()
                    .enumerate()
                    .filter(|&(_, &t)| t == img)
                    .nth(rows_before)
                    .map_or(ids.len(), |(p, _)| p)
            }
            _ => ids.len(),
        };
        let reused = self.reuse(ids, limit)?;
        self.crop_prints = prints;
        let suffix = &ids[reused..];

        // Encode only the crops whose feature rows land in the suffix.
        let t0 = Instant::now();
        let image = self.model.image_token_id();
        let rows_before =
            image.map_or(0, |img| ids[..reused].iter().filter(|&&i| i == img).count());
        let mut skip_rows = rows_before;
        let mut first_crop = 0;
        while first_crop < crops.len() && skip_rows > 0 {
            let rows = crops[first_crop].h * crops[first_crop].w / 4;
            if rows > skip_rows {
                return Err(RuntimeError::PrefixSplitsImage);
            }
            skip_rows -= rows;
            first_crop += 1;
        }
        let new_crops = &crops[first_crop..];
        let features = if new_crops.is_empty() {
            None
        } else {
            Some(self.model.encode_images(&self.be, new_crops)?)
        };
        let image_time = if features.is_some() {
            t0.elapsed()
        } else {
            Duration::ZERO
        };
        // The merged embeddings are built once; image runs may straddle
        // prefill chunks, which slice them.
        let x = self
            .model
            .embed_with_images(&self.be, suffix, features.as_ref())?;
        self.cached.truncate(reused);
        self.pending = Some(Pending {
            x,
            suffix: suffix.to_vec(),
            done: 0,
            reused,
            elapsed: Duration::ZERO,
        });
        Ok(Started {
            reused,
            crops_encoded: new_crops.len(),
            image_time,
        })
    }

    /// Whether a prompt taken by [`Session::start`] still has tokens to prefill.
    pub fn is_prefilling(&self) -> bool {
        self.pending.is_some()
    }

    /// Prefills the next `max_tokens` (at least one) of the pending prompt.
    /// When that finishes it, `logits` holds the last position's logits,
    /// the conv states are snapshotted (a turn boundary) and the return is
    /// `Some`; `None` while tokens remain. No pending prompt: an error.
    pub fn prefill_step(
        &mut self,
        max_tokens: usize,
        logits: &mut Vec<f32>,
    ) -> Result<Option<Prefilled>> {
        let r = self.prefill_step_inner(max_tokens, logits);
        if r.is_err() {
            self.pending = None;
            let _ = self.reset();
        }
        r
    }

    fn prefill_step_inner(
        &mut self,
        max_tokens: usize,
        logits: &mut Vec<f32>,
    ) -> Result<Option<Prefilled>> {
        let Some(p) = self.pending.as_mut() else {
            return Err(RuntimeError::NothingToPrefill);
        };
        let t0 = Instant::now();
        let d = self.model.text.cfg.hidden_size;
        let (r0, r1) = (p.done, (p.done + max_tokens.max(1)).min(p.suffix.len()));
        let mut part = self.be.zeros(DType::F32, Shape::from([r1 - r0, d]))?;
        self.be.slice_rows(op::SliceRows {
            src: &p.x,
            row0: r0,
            out: &mut part,
        })?;
        let text = &self.model.text;
        text.prefill_embeds_into(&self.be, &mut part, &mut self.state, logits)?;
        self.cached.extend_from_slice(&p.suffix[r0..r1]);
        p.done = r1;
        p.elapsed += t0.elapsed();
        if r1 < p.suffix.len() {
            return Ok(None);
        }
        let (reused, computed, elapsed) = (p.reused, p.suffix.len(), p.elapsed);
        self.pending = None;
        let t1 = Instant::now();
        self.snapshots.push(self.snapshot()?);
        Ok(Some(Prefilled {
            reused,
            computed,
            elapsed: elapsed + t1.elapsed(),
        }))
    }

    /// What ends generation after `id` was sampled (`n` tokens so far;
    /// `go_on` false: the caller cancels): `None` to go on, else why it
    /// ends. A token that ends it is still run through the model when there
    /// is room, so the cache holds it (the next turn's prompt starts after it).
    pub fn after_sample(
        &mut self,
        id: u32,
        go_on: bool,
        n: usize,
        stop: &StopConfig,
    ) -> Result<Option<Finish>> {
        let finish = if stop.stop_ids.contains(&id) {
            Finish::Stop
        } else if !go_on {
            Finish::Cancelled
        } else if self.state.seq.pos >= self.max_len() {
            return Ok(Some(Finish::Context));
        } else if n >= stop.max_new_tokens {
            Finish::Length
        } else {
            return Ok(None);
        };
        self.push_token(id)?;
        Ok(Some(finish))
    }

    /// Runs sampled token `id` through the model at the next position;
    /// `logits` receives the next position's logits.
    pub fn push(&mut self, id: u32, logits: &mut Vec<f32>) -> Result<()> {
        self.model
            .text
            .decode_into(&self.be, id, &mut self.state, logits)?;
        self.cached.push(id);
        Ok(())
    }

    /// [`Session::push`] for several sessions on one model at once: the
    /// matmuls run once on all their rows ([`model::text::TextModel::step_batch`];
    /// `bs` sized for `sessions.len()`), `logits` receives `[b, vocab]`.
    pub fn push_batch(
        sessions: &mut [&mut Session<B>],
        ids: &[u32],
        bs: &mut BatchState<B>,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let runs: Vec<&[u32]> = ids.chunks(1).collect();
        Self::step_batch(sessions, &runs, bs, logits)
    }

    /// One batched step of several sessions on one model: session `i` runs
    /// `runs[i]`, its sampled token alone (a decode step) or followed by
    /// drafts (a speculative verify inside the batch, recorded so that
    /// [`Session::keep`] can cut it back). `bs` is sized for all the rows;
    /// `logits` receives `[rows, vocab]`, the sessions' rows in order, each
    /// row the decode step it stands for
    /// ([`model::text::TextModel::step_batch`]).
    pub fn step_batch(
        sessions: &mut [&mut Session<B>],
        runs: &[&[u32]],
        bs: &mut BatchState<B>,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        let Some(first) = sessions.first() else {
            return Ok(());
        };
        let model = Arc::clone(&first.model);
        if sessions.iter().any(|s| !Arc::ptr_eq(&s.model, &model)) {
            return Err(model::ModelError::Batch("sessions of different models".into()).into());
        }
        if runs.len() != sessions.len() {
            return Err(model::ModelError::Batch(format!(
                "{} runs for {} sessions",
                runs.len(),
                sessions.len()
            ))
            .into());
        }
        let text = &model.text;
        for (s, run) in sessions.iter_mut().zip(runs) {
            if run.len() > 1 {
                s.begin_record()?;
            }
        }
        let mut be = None;
        let mut states: Vec<&mut TextState<B>> = Vec::with_capacity(runs.len());
        let mut recs: Vec<Option<&mut Recorder<B>>> = Vec::with_capacity(runs.len());
        for (s, run) in sessions.iter_mut().zip(runs) {
            let Session {
                be: b,
                state,
                recorder,
                ..
            } = &mut **s;
            be.get_or_insert(&*b);
            states.push(state);
            recs.push(if run.len() > 1 {
                recorder.as_mut()
            } else {
                None
            });
        }
        let be = be.expect("checked non-empty");
        text.step_batch(be, runs, &mut states, &mut recs, bs, logits)?;
        for (s, run) in sessions.iter_mut().zip(runs) {
            s.cached.extend_from_slice(run);
        }
        Ok(())
    }

    /// Runs the last sampled token through the model so the cache holds it
    /// (the next turn's prompt starts after it).
    fn push_token(&mut self, id: u32) -> Result<()> {
        if self.state.seq.pos < self.max_len() {
            let mut unused = Vec::new();
            self.model
                .text
                .decode_into(&self.be, id, &mut self.state, &mut unused)?;
            self.cached.push(id);
        }
        Ok(())
    }

    /// Logits of every prompt position (`[t, vocab]`, host f32), for parity
    /// tools; does not touch the session's cache.
    pub fn prompt_logits(&self, ids: &[u32], crops: &[CropPatches<'_>]) -> Result<Vec<f32>> {
        let features = if crops.is_empty() {
            None
        } else {
            Some(self.model.encode_images(&self.be, crops)?)
        };
        let mut x = self
            .model
            .embed_with_images(&self.be, ids, features.as_ref())?;
        let t = ids.len();
        let mut st = self.model.text.new_state(&self.be, t)?;
        self.model
            .text
            .forward_fused(&self.be, &mut x, &mut st.seq)?;
        let d = self.model.text.cfg.hidden_size;
        let mut normed = self.be.zeros(DType::F32, Shape::from([t, d]))?;
        self.model.text.final_norm(&self.be, &x, &mut normed)?;
        let mut logits: Tensor<B> = self
            .be
            .zeros(DType::F32, Shape::from([t, self.model.text.cfg.vocab_size]))?;
        self.model.text.head(&self.be, &normed, &mut logits)?;
        Ok(self.be.download_f32(&logits)?)
    }
}
