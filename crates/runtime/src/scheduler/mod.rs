//! Many concurrent generations over one loaded model (what `lfm2vl serve`
//! runs on): a bounded queue of jobs, `parallel` slots each with its own
//! session (caches, snapshots) over the shared model, and one worker thread
//! that interleaves chunked prefill with **batched decode** — the decode
//! steps of every slot go through one matmul per weight
//! ([`crate::session::Session::push_batch`]).
//!
//! A job's prompt is built on the submitting thread ([`Scheduler::submit`]:
//! template, image preprocessing, tokenization; its errors are the
//! request's), so the worker only runs the model. A new job takes the free
//! slot whose cached tokens share the longest prefix with its prompt when
//! that keeps at least half of the slot's cache (a follow-up turn reuses its
//! conversation's cache, as one `Session` does), else an empty or the least
//! recently used slot.
//!
//! Results: a job decoded alone takes exactly [`Session`]'s path (the same
//! kernels as `generate`); batched with others, its logits differ from that
//! only by the summation order of the matmuls over `b` rows instead of one
//! (none on the CPU up to nine rows; tested: `tests/tests/scheduler.rs`).
//!
//! Speculative decoding ([`Job::speculative`]): each step, the jobs that
//! draft share the rows a batch keeps exact
//! ([`model::text::MAX_VERIFY_ROWS`], less one row per decoding job), and
//! their drafts are verified inside the batched step with the others'
//! plain tokens; each then keeps what its target agrees with.
//!
//! [`Session`]: crate::session::Session

mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use model::preprocess::{Preprocessed, RgbImage};
use model::prompt::ChatMessage;

use crate::constraint::{Constrained, Constraint};
use crate::engine::{Engine, Inner};
use crate::error::{Result, RuntimeError};
use crate::prompter::Prompter;
use crate::sampling::SamplingConfig;
use crate::session::Finish;
use crate::tools::ToolSet;

/// How a [`Scheduler`] runs.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Sequences decoded together (slots, each with its own caches of the
    /// engine's context length). Default 4.
    pub parallel: usize,
    /// Jobs that may wait for a slot; past that [`Scheduler::submit`]
    /// answers [`SubmitError::Busy`]. Default 32.
    pub queue: usize,
    /// Prompt tokens prefilled between two decode steps (a long prompt
    /// doesn't stall the other slots' streams for its whole prefill).
    /// Default 256.
    pub prefill_chunk: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            parallel: 4,
            queue: 32,
            prefill_chunk: 256,
        }
    }
}

/// What to generate from.
#[derive(Clone, Debug)]
pub enum JobInput {
    /// Chat messages rendered with the model's template, with one image per
    /// image part, in order.
    Chat {
        messages: Vec<ChatMessage>,
        images: Vec<RgbImage>,
    },
    /// A raw prompt, tokenized as is (no template, no BOS added).
    Text(String),
    /// Token ids, as they are (no image features: no `<image>` ids).
    Ids(Vec<u32>),
}

#[derive(Clone, Debug)]
pub struct Job {
    pub input: JobInput,
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    /// Text that ends generation (cut from the output with what follows).
    pub stop_strings: Vec<String>,
    /// Generate `max_new_tokens` whatever comes (EOS included): for benchmarks.
    pub ignore_eos: bool,
    /// Speculative decoding: `None` as the engine was loaded
    /// ([`crate::engine::EngineOptions::speculative`]); `Some(true)` on
    /// (the engine's drafter, or prompt lookup if it has none); `Some(false)` off.
    pub speculative: Option<bool>,
    /// Structured output: what the reply must match (compiled at submit:
    /// an invalid one is [`SubmitError::Invalid`]).
    pub constraint: Option<Constraint>,
    /// Functions a chat prompt lists for the model to call (the reply's
    /// text then keeps the call markers, special tokens); `required` or a
    /// named function constrains decoding to a valid call.
    pub tools: ToolSet,
}

impl Job {
    /// Greedy, 256 new tokens at most, no stop strings.
    pub fn new(input: JobInput) -> Self {
        Job {
            input,
            sampling: SamplingConfig::default(),
            max_new_tokens: 256,
            stop_strings: Vec::new(),
            ignore_eos: false,
            speculative: None,
            constraint: None,
            tools: ToolSet::default(),
        }
    }
}

/// What a job's [`Sink`] receives, in order: `Prefilled`, `Text`s, then
/// one `Done` or `Failed`.
#[derive(Clone, Debug)]
pub enum JobEvent {
    Prefilled {
        prompt_tokens: usize,
        reused_tokens: usize,
    },
    /// Generated text: never splits a UTF-8 character; text that may start
    /// a stop string is held back, and a stop string and what follows it
    /// are never sent.
    Text(String),
    Done(JobSummary),
    /// A backend error after the job was accepted.
    Failed(String),
}

#[derive(Clone, Debug)]
pub struct JobSummary {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub finish: Finish,
    /// The whole generated text.
    pub text: String,
    /// The generated ids (a stop id included when it ended generation).
    pub ids: Vec<u32>,
}

/// Receives a job's events on the scheduler's thread; returning `false`
/// cancels the job (e.g. the client went away).
pub type Sink = Box<dyn FnMut(JobEvent) -> bool + Send>;

#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Every slot is taken and the queue is full: try again later.
    #[error("the server is busy: every slot and the queue are full")]
    Busy,
    /// The request's fault (template, images, context, sampling settings).
    #[error(transparent)]
    Invalid(RuntimeError),
    /// The scheduler is shutting down.
    #[error("the server is shutting down")]
    Stopped,
}

/// A job with its prompt built, on its way to the worker.
struct Work {
    ids: Vec<u32>,
    pre: Option<Preprocessed>,
    sampling: SamplingConfig,
    max_new_tokens: usize,
    stop_strings: Vec<String>,
    ignore_eos: bool,
    speculative: Option<bool>,
    constrained: Option<Constrained>,
    /// Keep special tokens in the text (tool calls).
    keep_special: bool,
    sink: Sink,
}

struct Shared {
    prompter: Prompter,
    model_name: String,
    tx: Mutex<Option<SyncSender<Box<Work>>>>,
    worker: Mutex<Option<JoinHandle<()>>>,
    stopping: Arc<AtomicBool>,
}

/// A handle on the worker; clones share it. `Send + Sync`.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Scheduler {
    /// Starts the worker thread on `engine`'s model: `opts.parallel`
    /// sessions (the engine's own and forks of it, no weights copied).
    pub fn start(engine: Engine, opts: SchedulerOptions) -> Result<Scheduler> {
        let prompter = engine.prompter();
        let model_name = engine
            .dir
            .file_stem()
            .map_or_else(|| "lfm2-vl".into(), |s| s.to_string_lossy().into_owned());
        let stop_ids = engine.stop_ids.clone();
        let (tx, rx) = mpsc::sync_channel(opts.queue);
        let stopping = Arc::new(AtomicBool::new(false));
        let ctx = worker::Context {
            prompt: Arc::clone(&prompter.prompt),
            stop_ids,
            chunk: opts.prefill_chunk.max(1),
            stopping: Arc::clone(&stopping),
        };
        let parallel = opts.parallel.max(1);
        let spawn = std::thread::Builder::new().name("lfm2vl-scheduler".into());
        let worker = match engine.into_inner() {
            Inner::Cpu(s) => {
                let slots = worker::slots(*s, parallel)?;
                spawn.spawn(move || worker::run(slots, rx, ctx))
            }
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => {
                let slots = worker::slots(*s, parallel)?;
                spawn.spawn(move || worker::run(slots, rx, ctx))
            }
        }
        .map_err(|e| RuntimeError::Io {
            path: "lfm2vl-scheduler thread".into(),
            source: e,
        })?;
        Ok(Scheduler {
            shared: Arc::new(Shared {
                prompter,
                model_name,
                tx: Mutex::new(Some(tx)),
                worker: Mutex::new(Some(worker)),
                stopping,
            }),
        })
    }

    /// Builds the job's prompt (blocking: template, image preprocessing,
    /// tokenization) and queues it; its events go to `sink`.
    pub fn submit(&self, job: Job, sink: Sink) -> std::result::Result<(), SubmitError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(SubmitError::Stopped);
        }
        job.sampling
            .validate()
            .map_err(|e| SubmitError::Invalid(RuntimeError::Sampling(e)))?;
        let p = &self.shared.prompter;
        let (ids, pre) = match &job.input {
            JobInput::Chat { messages, images } => {
                let (ids, pre) = p
                    .prepare_with_tools(messages, images, &job.tools.functions())
                    .map_err(SubmitError::Invalid)?;
                (ids, (pre.num_crops() > 0).then_some(pre))
            }
            JobInput::Text(text) => (p.encode_text(text).map_err(SubmitError::Invalid)?, None),
            JobInput::Ids(ids) => (
                p.check_ids(ids).map_err(SubmitError::Invalid)?.to_vec(),
                None,
            ),
        };
        if pre.is_none()
            && let Some(img) = p.prompt.image_token_id().ok()
            && ids.contains(&img)
        {
            return Err(SubmitError::Invalid(RuntimeError::ImageCount {
                count: 0,
                slots: ids.iter().filter(|&&i| i == img).count(),
            }));
        }
        let constrained = p
            .constrain(job.constraint.as_ref(), &job.tools)
            .map_err(SubmitError::Invalid)?;
        let work = Box::new(Work {
            ids,
            pre,
            sampling: job.sampling,
            max_new_tokens: job.max_new_tokens,
            stop_strings: job.stop_strings,
            ignore_eos: job.ignore_eos,
            speculative: job.speculative,
            constrained,
            keep_special: job.tools.active(),
            sink,
        });
        let tx = self.shared.tx.lock().unwrap_or_else(|e| e.into_inner());
        match tx.as_ref().map(|tx| tx.try_send(work)) {
            Some(Ok(())) => Ok(()),
            Some(Err(TrySendError::Full(_))) => Err(SubmitError::Busy),
            None | Some(Err(TrySendError::Disconnected(_))) => Err(SubmitError::Stopped),
        }
    }

    /// The context in tokens (each slot's).
    pub fn max_len(&self) -> usize {
        self.shared.prompter.max_len
    }

    pub fn has_vision(&self) -> bool {
        self.shared.prompter.no_vision.is_none()
    }

    /// The model's name: its folder's or GGUF file's.
    pub fn model_name(&self) -> &str {
        &self.shared.model_name
    }

    /// The request-to-prompt machinery (tokenizer, template, processor).
    pub fn prompter(&self) -> &Prompter {
        &self.shared.prompter
    }

    /// Refuses new jobs, cancels the running and queued ones, and waits for
    /// the worker to end. Idempotent.
    pub fn shutdown(&self) {
        self.shared.stopping.store(true, Ordering::Release);
        self.shared
            .tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let worker = self
            .shared
            .worker
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(w) = worker {
            let _ = w.join();
        }
    }
}
