//! The embeddable API: load a model (a folder, a GGUF file with an optional
//! mmproj GGUF, or a hub id; [`crate::source::resolve_model`]) on the
//! chosen backend, turn chat messages and images into a prompt, and
//! generate with streaming text. The runtime backend choice appears in
//! exactly one `enum` ([`Engine`] holds a [`Session`] per backend type).
//!
//! ```no_run
//! use runtime::engine::{BackendChoice, Engine, EngineOptions, Progress, Request};
//! use runtime::model::prompt::ChatMessage;
//!
//! // The defaults, with the environment's `LFM_*` overrides.
//! let opts = EngineOptions::from_env(BackendChoice::Auto)?;
//! let mut engine = Engine::load("LiquidAI/LFM2-VL-450M", &opts)?;
//! let messages = [ChatMessage::text("user", "Say hello.")];
//! let out = engine.generate(&Request::new(&messages), |p| {
//!     if let Progress::Text(piece) = p {
//!         print!("{piece}");
//!     }
//!     true
//! })?;
//! eprintln!("\n{} tokens, {:.1} tok/s", out.generation.ids.len(), out.decode_tok_s());
//! # Ok::<(), runtime::RuntimeError>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use model::CropPatches;
use model::preprocess::{self, ProcessorConfig, ProcessorOverrides, RgbImage};
use model::prompt::{ChatMessage, ContentPart, MessageContent, PromptBuilder};
use tensor::Backend;
use tensor::cpu::{CpuBackend, CpuOptions, WeightFormat};

use crate::constraint::{Constraint, GrammarCache};
use crate::error::{Result, RuntimeError};
use crate::files::ModelFiles;
use crate::prompter::Prompter;
use crate::sampling::{Sampler, SamplingConfig};
use crate::session::{Event, Generation, Session, StopConfig};
use crate::source::ModelSource;
use crate::speculative::{DraftModel, DraftSource, Drafter, Ngram, Speculation, SpeculativeConfig};
use crate::stream::TextStream;
use crate::tools::{self, ToolCall, ToolSet};

/// Which compute backend runs the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendChoice {
    Cpu,
    Wgpu,
    /// A hardware GPU through wgpu when one exists (never a software
    /// adapter such as lavapipe), else the CPU.
    Auto,
}

impl std::str::FromStr for BackendChoice {
    type Err = RuntimeError;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl BackendChoice {
    /// `cpu`, `wgpu` (or `gpu`) or `auto`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(BackendChoice::Cpu),
            "wgpu" | "gpu" => Ok(BackendChoice::Wgpu),
            "auto" => Ok(BackendChoice::Auto),
            other => Err(RuntimeError::Backend(
                other.into(),
                "use cpu, wgpu or auto".into(),
            )),
        }
    }
}

/// How [`Engine::load`] loads a model. [`EngineOptions::default`] takes
/// every default and reads no environment; [`EngineOptions::from_env`]
/// applies the `LFM_*` variables (`crate::options`) of the backends a
/// choice may open over them.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    pub backend: BackendChoice,
    /// The CPU backend's options: tier (default: the best available),
    /// threads (default: all cores), and how it stores matmul weights
    /// (`weights`): the checkpoint's dtype (exact), int8 with row scales
    /// (faster decode, approximate) or bf16 for the AVX512-BF16 dot product
    /// (faster prefill and images, their x rounded to bf16; decode exact).
    /// The wgpu backend takes the native format and the block formats
    /// (`q8_0`, `q4_0`, `q4_k`, `q6_k`; quantized at upload there too).
    ///
    /// A GGUF model's block-quantized tensors (Q8_0, Q4_0, Q4_K, Q6_K) are
    /// used as stored whatever `weights` says: they are never dequantized
    /// and requantized. Its float tensors (F32 / F16 / BF16 matmul weights,
    /// e.g. all of a BF16 GGUF's) follow `weights` as a safetensors
    /// checkpoint's do, so `q4_0` on a BF16 GGUF quantizes them at load.
    pub cpu: CpuOptions,
    /// The wgpu backend's options (adapter, kernel choices, submits).
    #[cfg(feature = "wgpu")]
    pub wgpu: tensor::wgpu::WgpuOptions,
    /// Context capacity in tokens (KV cache size).
    pub max_len: usize,
    /// Image-processing knobs over the checkpoint's processor config (for
    /// a GGUF model: over the defaults [`ModelFiles::processor`] describes).
    pub processor: ProcessorOverrides,
    /// Speculative decoding for every generation (`None`: plain decoding).
    /// A draft model loads on the target's backend.
    pub speculative: Option<SpeculativeConfig>,
    /// The mmproj GGUF (vision tower and connector) of a GGUF model; only
    /// with a GGUF model ([`crate::source::resolve_model`] refuses it with
    /// a folder). Default `None`: a GGUF file loads as a text-only model,
    /// and a hub GGUF repo (`org/name-GGUF:QUANT`) brings its own mmproj.
    pub mmproj: Option<PathBuf>,
}

impl EngineOptions {
    /// The defaults on `backend`, with the options of each backend it may
    /// open from the environment ([`crate::options::cpu_from_env`] unless
    /// `backend` is wgpu, [`crate::options::wgpu_from_env`] unless it is
    /// cpu): errors as those do on malformed values, so a variable of the
    /// backend not chosen is never read.
    pub fn from_env(backend: BackendChoice) -> Result<Self> {
        Self::from_env_with_isa(backend, None)
    }

    /// [`EngineOptions::from_env`] with `isa` (a command-line flag), when
    /// given, in place of `LFM_ISA` ([`crate::options::cpu_from_env_or`]).
    pub fn from_env_with_isa(backend: BackendChoice, isa: Option<&str>) -> Result<Self> {
        let mut opts = EngineOptions {
            backend,
            ..EngineOptions::default()
        };
        if backend != BackendChoice::Wgpu {
            opts.cpu = crate::options::cpu_from_env_or(isa)?;
        }
        #[cfg(feature = "wgpu")]
        if backend != BackendChoice::Cpu {
            opts.wgpu = crate::options::wgpu_from_env()?;
        }
        Ok(opts)
    }
}

/// The wgpu backend's options for the weight format asked for: the block
/// formats quantize at upload there too (`WgpuOptions::quantize`); int8
/// and bf16dot weights are CPU backend formats.
#[cfg(feature = "wgpu")]
pub(crate) fn wgpu_options(
    weights: WeightFormat,
    wgpu: &tensor::wgpu::WgpuOptions,
) -> Result<tensor::wgpu::WgpuOptions> {
    match weights {
        WeightFormat::Native => Ok(wgpu.clone()),
        w if w.block().is_some() => Ok(tensor::wgpu::WgpuOptions {
            quantize: w.block(),
            ..wgpu.clone()
        }),
        other => Err(RuntimeError::Backend(
            "wgpu".into(),
            format!("{other:?} weights run on the CPU backend only (choose the cpu backend)"),
        )),
    }
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            backend: BackendChoice::Auto,
            cpu: CpuOptions::default(),
            #[cfg(feature = "wgpu")]
            wgpu: tensor::wgpu::WgpuOptions::default(),
            max_len: 8192,
            processor: ProcessorOverrides::default(),
            mmproj: None,
            speculative: None,
        }
    }
}

/// One generation request. It borrows the conversation and its images, so
/// a chat loop that keeps both sends each turn without copying them.
#[derive(Clone, Debug)]
pub struct Request<'a> {
    pub messages: &'a [ChatMessage],
    /// One image per `{"type": "image"}` item, in order.
    pub images: &'a [RgbImage],
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    /// Text that ends generation (not included in the output).
    pub stop_strings: Vec<String>,
    /// Structured output: what the reply must match.
    pub constraint: Option<Constraint>,
    /// Functions the model may call, and how ([`crate::tools`]): listed in
    /// the prompt, the reply's calls parsed into [`Output::tool_calls`];
    /// `required` or a named function constrains decoding to a valid call.
    pub tools: ToolSet,
}

impl<'a> Request<'a> {
    /// `messages` with no images, the default sampling, at most 256 new
    /// tokens.
    pub fn new(messages: &'a [ChatMessage]) -> Self {
        Request {
            messages,
            images: &[],
            sampling: SamplingConfig::default(),
            max_new_tokens: 256,
            stop_strings: Vec::new(),
            constraint: None,
            tools: ToolSet::default(),
        }
    }
}

/// What [`Engine::generate`] reports while it runs, in order: the images
/// encoded and the prompt processed (events), then each token drawn (an
/// event) with the text it completes, if any.
#[derive(Clone, Copy, Debug)]
pub enum Progress<'a> {
    /// The next piece of the reply: the pieces concatenate to
    /// [`Output::text`]. Text that may be the start of a stop string is
    /// held back until it is not.
    Text(&'a str),
    /// Images encoded, the prompt processed, a token drawn.
    Event(&'a Event),
}

impl<'a> Progress<'a> {
    /// The piece of text, if this is one.
    pub fn text(self) -> Option<&'a str> {
        match self {
            Progress::Text(t) => Some(t),
            Progress::Event(_) => None,
        }
    }
}

/// The result of [`Engine::generate`].
#[derive(Clone, Debug)]
pub struct Output {
    pub prompt_ids: Vec<u32>,
    /// The whole reply (with tools: call lists included).
    pub text: String,
    /// With tools: the calls the reply makes, and its text without them.
    pub tool_calls: Vec<ToolCall>,
    pub content: String,
    pub generation: Generation,
}

impl Output {
    pub fn prefill_tok_s(&self) -> f64 {
        let computed = self.generation.prompt_tokens - self.generation.reused_tokens;
        computed as f64 / self.generation.prefill_time.as_secs_f64().max(1e-9)
    }

    pub fn decode_tok_s(&self) -> f64 {
        self.generation.ids.len() as f64 / self.generation.decode_time.as_secs_f64().max(1e-9)
    }
}

// Boxed: the two sessions differ in size, and an Engine is made once.
pub(crate) enum Inner {
    Cpu(Box<Session<CpuBackend>>),
    #[cfg(feature = "wgpu")]
    Wgpu(Box<Session<tensor::wgpu::WgpuBackend>>),
}

/// A loaded model with its prompt machinery and one conversation's state.
pub struct Engine {
    inner: Inner,
    /// Where the model came from.
    pub source: ModelSource,
    /// The checkpoint folder, or a GGUF model's text GGUF file
    /// (`source.path()`).
    pub dir: PathBuf,
    /// Shared with the engine's forks ([`Engine::fork`]).
    pub prompt: Arc<PromptBuilder>,
    pub processor: ProcessorConfig,
    /// Ids that end generation (`eos_token_id` and `<|im_end|>`).
    pub stop_ids: Vec<u32>,
    pub backend_description: String,
    pub load_time: Duration,
    /// The structured-output compiler (built on the first constraint).
    pub grammars: GrammarCache,
}

fn session<B: Backend>(be: B, files: &ModelFiles, max_len: usize) -> Result<Session<B>> {
    let model = files.load(&be)?;
    Session::new(be, model, max_len)
}

/// The drafter `cfg` asks for, for session `s` (a draft model loaded on
/// its backend; its tokenizer must be the target's, `prompt`'s).
fn speculation<B>(
    cfg: &SpeculativeConfig,
    s: &Session<B>,
    prompt: &PromptBuilder,
) -> Result<Speculation>
where
    B: Backend + Clone + Send + Sync + 'static,
    DraftModel<B>: Drafter,
{
    let drafter: Box<dyn Drafter> = match &cfg.source {
        DraftSource::Ngram => Box::new(Ngram::default()),
        DraftSource::Model(spec) => {
            let load = || -> Result<DraftModel<B>> {
                let source = crate::source::resolve_model(spec, None)?;
                let files = ModelFiles::open(&source)?;
                let (ours, theirs) = (prompt.tokenizer(), files.prompt()?);
                if ours.inner().get_vocab(true) != theirs.tokenizer().inner().get_vocab(true) {
                    return Err(RuntimeError::Speculative(
                        "its tokenizer is not the target's (the vocabularies differ)".into(),
                    ));
                }
                let model = Arc::new(files.load(&s.be)?);
                let vocab = s.model.text.cfg.vocab_size;
                DraftModel::new(s.be.clone(), model, vocab, s.max_len())
            };
            Box::new(load().map_err(|e| RuntimeError::DraftModel {
                spec: spec.clone(),
                source: Box::new(e),
            })?)
        }
    };
    Speculation::new(drafter, cfg.draft_max)
}

impl Engine {
    /// Loads `model`: a folder, a `.gguf` file (with `opts.mmproj` for
    /// images), or a hub id (`org/name[@revision]`, or a GGUF repo
    /// `org/name-GGUF:QUANT`) from the local cache or downloaded
    /// ([`crate::source::resolve_model`]).
    pub fn load(model: &str, opts: &EngineOptions) -> Result<Self> {
        let source = crate::source::resolve_model(model, opts.mmproj.as_deref())?;
        Self::load_source(source, opts)
    }

    /// Another conversation on this engine's model, empty, with room for
    /// as many tokens: no weights loaded or copied (the model and the
    /// prompt machinery are shared, read-only), only the new conversation's
    /// caches allocated. Its `load_time` is the time that took.
    pub fn fork(&self) -> Result<Self> {
        let t0 = Instant::now();
        let inner = match &self.inner {
            Inner::Cpu(s) => Inner::Cpu(Box::new(s.fork(s.max_len())?)),
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => Inner::Wgpu(Box::new(s.fork(s.max_len())?)),
        };
        Ok(Engine {
            inner,
            source: self.source.clone(),
            dir: self.dir.clone(),
            prompt: Arc::clone(&self.prompt),
            processor: self.processor.clone(),
            stop_ids: self.stop_ids.clone(),
            backend_description: self.backend_description.clone(),
            load_time: t0.elapsed(),
            grammars: self.grammars.clone(),
        })
    }

    /// Loads an already resolved `source` (`opts.mmproj` is not read: a
    /// [`ModelSource::Gguf`] names its own). For a GGUF model the prompt
    /// comes from the text GGUF's `tokenizer.*` metadata and the image
    /// processor from [`ModelFiles::processor`].
    pub fn load_source(source: ModelSource, opts: &EngineOptions) -> Result<Self> {
        let t0 = Instant::now();
        let files = ModelFiles::open(&source)?;
        let dir = source.path().to_path_buf();
        let prompt = files.prompt()?;
        let processor = files.processor(&opts.processor)?;
        let choice = match opts.backend {
            BackendChoice::Auto
                if matches!(opts.cpu.weights, WeightFormat::Int8 | WeightFormat::Bf16Dot) =>
            {
                tracing::info!(weights = ?opts.cpu.weights, "auto backend: these weights run on the CPU");
                BackendChoice::Cpu
            }
            BackendChoice::Auto => {
                #[cfg(feature = "wgpu")]
                let gpu = tensor::wgpu::hardware_gpu();
                #[cfg(not(feature = "wgpu"))]
                let gpu: Option<String> = None;
                match gpu {
                    Some(name) => {
                        tracing::info!(adapter = %name, "auto backend: hardware GPU found, using wgpu");
                        BackendChoice::Wgpu
                    }
                    None => {
                        tracing::info!("auto backend: no hardware GPU, using the CPU");
                        BackendChoice::Cpu
                    }
                }
            }
            other => other,
        };
        if let Some(spec) = &opts.speculative {
            spec.validate()?;
        }
        let spec = opts.speculative.as_ref();
        let inner = match choice {
            BackendChoice::Cpu | BackendChoice::Auto => {
                let be = CpuBackend::new(opts.cpu.clone())?;
                let mut s = session(be, &files, opts.max_len)?;
                s.speculation = spec.map(|c| speculation(c, &s, &prompt)).transpose()?;
                Inner::Cpu(Box::new(s))
            }
            #[cfg(feature = "wgpu")]
            BackendChoice::Wgpu => {
                let wgpu = wgpu_options(opts.cpu.weights, &opts.wgpu)?;
                let be = tensor::wgpu::WgpuBackend::new(wgpu)?;
                let mut s = session(be, &files, opts.max_len)?;
                s.speculation = spec.map(|c| speculation(c, &s, &prompt)).transpose()?;
                Inner::Wgpu(Box::new(s))
            }
            #[cfg(not(feature = "wgpu"))]
            BackendChoice::Wgpu => {
                return Err(RuntimeError::Backend(
                    "wgpu".into(),
                    "this build has no wgpu feature".into(),
                ));
            }
        };
        let backend_description = match &inner {
            Inner::Cpu(s) => s.be.describe(),
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => s.be.describe(),
        };
        tracing::info!(backend = %backend_description, dir = %dir.display(), "model loaded");
        let cfg = match &inner {
            Inner::Cpu(s) => &s.model.cfg,
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => &s.model.cfg,
        };
        let mut stop_ids: Vec<u32> = cfg.text.eos_token_id.into_iter().collect();
        if let Some(id) = prompt.tokenizer().token_to_id("<|im_end|>")
            && !stop_ids.contains(&id)
        {
            stop_ids.push(id);
        }
        let prompt = Arc::new(prompt);
        let grammars =
            GrammarCache::new(Arc::clone(&prompt), cfg.text.vocab_size, stop_ids.clone());
        Ok(Engine {
            inner,
            source,
            dir,
            prompt,
            processor,
            stop_ids,
            backend_description,
            load_time: t0.elapsed(),
            grammars,
        })
    }

    /// Renders and tokenizes `messages` with `images` (and preprocesses the
    /// images) exactly as transformers' processor does.
    pub fn prepare(
        &self,
        messages: &[ChatMessage],
        images: &[RgbImage],
    ) -> Result<(Vec<u32>, preprocess::Preprocessed)> {
        self.prompter().prepare(messages, images)
    }

    /// This engine's request-to-prompt machinery, for other threads.
    pub fn prompter(&self) -> Prompter {
        let no_vision = self.no_vision();
        Prompter {
            prompt: Arc::clone(&self.prompt),
            processor: self.processor.clone(),
            max_len: self.max_len(),
            no_vision,
            grammars: self.grammars.clone(),
        }
    }

    /// The engine's conversation, by backend (the scheduler's first slot).
    pub(crate) fn into_inner(self) -> Inner {
        self.inner
    }

    /// Whether the model has a vision tower (a GGUF model loaded without
    /// an mmproj, or a plain LFM2 checkpoint, has none and takes no images).
    pub fn has_vision(&self) -> bool {
        match &self.inner {
            Inner::Cpu(s) => s.model.vision.is_some(),
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => s.model.vision.is_some(),
        }
    }

    /// Without a vision tower: the model and why ([`Prompter::no_vision`]).
    fn no_vision(&self) -> Option<(String, String)> {
        if self.has_vision() {
            return None;
        }
        let hint = match &self.source {
            ModelSource::Gguf { .. } => {
                "it was loaded without a vision tower: pass --mmproj mmproj-….gguf \
                 (EngineOptions::mmproj) with the GGUF model"
            }
            ModelSource::Dir(_) => "the checkpoint has no vision tower (a text-only model)",
        };
        Some((self.dir.display().to_string(), hint.into()))
    }

    /// Context capacity in tokens.
    pub fn max_len(&self) -> usize {
        match &self.inner {
            Inner::Cpu(s) => s.max_len(),
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => s.max_len(),
        }
    }

    /// Forgets the conversation (the next call prefills from scratch).
    pub fn reset(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Cpu(s) => s.reset(),
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => s.reset(),
        }
    }

    /// Generates a reply, reporting its [`Progress`] to `on` (text pieces
    /// and events; return `false` to stop: the output ends there, with
    /// [`crate::session::Finish::Cancelled`]). Reuses the cached prefix of
    /// the previous call.
    pub fn generate(
        &mut self,
        req: &Request<'_>,
        mut on: impl FnMut(Progress<'_>) -> bool,
    ) -> Result<Output> {
        self.generate_dyn(req, &mut on)
    }

    fn generate_dyn(
        &mut self,
        req: &Request<'_>,
        on: &mut dyn FnMut(Progress<'_>) -> bool,
    ) -> Result<Output> {
        let prompter = self.prompter();
        let constraint = prompter.constrain(req.constraint.as_ref(), &req.tools)?;
        let sampler = Sampler::constrained(req.sampling.clone(), constraint);
        let functions = req.tools.functions();
        let (ids, pre) = prompter.prepare_with_tools(req.messages, req.images, &functions)?;
        let crops = crop_views(&pre);
        let stop = StopConfig {
            max_new_tokens: req.max_new_tokens,
            stop_ids: self.stop_ids.clone(),
        };
        let tok = self.prompt.tokenizer();
        let mut stream =
            TextStream::new(&self.stop_ids, &req.stop_strings).keeping_special(req.tools.active());
        let mut callback = |e: &Event| -> bool {
            let go_on = on(Progress::Event(e));
            let Event::Token { id } = e else { return go_on };
            // The token's text goes out even when the event asked to stop,
            // so that the pieces still make the output's text.
            let piece = stream.push(tok, *id);
            let shown = piece.is_empty() || on(Progress::Text(piece));
            go_on && shown && !stream.stopped()
        };
        let generation = match &mut self.inner {
            Inner::Cpu(s) => s.generate_with(&ids, &crops, sampler, &stop, &mut callback)?,
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => s.generate_with(&ids, &crops, sampler, &stop, &mut callback)?,
        };
        // The final text; stream what was held back.
        let (text, rest) = stream.finish(tok);
        if !rest.is_empty() {
            on(Progress::Text(&rest));
        }
        let (content, tool_calls) = if req.tools.active() {
            tools::split_calls(&text)?
        } else {
            (text.clone(), Vec::new())
        };
        Ok(Output {
            prompt_ids: ids,
            text,
            tool_calls,
            content,
            generation,
        })
    }

    /// Logits `[t, vocab]` of every prompt position, for parity tools.
    pub fn prompt_logits(
        &self,
        messages: &[ChatMessage],
        images: &[RgbImage],
    ) -> Result<(Vec<u32>, Vec<f32>)> {
        let (ids, pre) = self.prepare(messages, images)?;
        let crops = crop_views(&pre);
        let logits = match &self.inner {
            Inner::Cpu(s) => s.prompt_logits(&ids, &crops)?,
            #[cfg(feature = "wgpu")]
            Inner::Wgpu(s) => s.prompt_logits(&ids, &crops)?,
        };
        Ok((ids, logits))
    }
}

/// Each crop's valid rows of `pixel_values`.
pub(crate) fn crop_views(pre: &preprocess::Preprocessed) -> Vec<CropPatches<'_>> {
    pre.spatial_shapes
        .iter()
        .enumerate()
        .map(|(k, &[h, w])| CropPatches {
            patches: &pre.crop_pixel_values(k)[..h * w * pre.patch_dim],
            h,
            w,
        })
        .collect()
}

/// Loads the images a message list names (`{"type": "image", "image": "path"}`),
/// in order; items without a path take the next of `extra` (e.g. `--image`).
pub fn load_message_images(
    messages: &[ChatMessage],
    extra: &[PathBuf],
    base: &Path,
) -> Result<Vec<RgbImage>> {
    let limits = preprocess::DecodeLimits::default();
    let mut extra = extra.iter();
    let mut out = Vec::new();
    for m in messages {
        if let MessageContent::Parts(parts) = &m.content {
            for p in parts {
                if let ContentPart::Image { image } = p {
                    let path = match image {
                        Some(s) => base.join(s),
                        None => match extra.next() {
                            Some(p) => p.clone(),
                            None => {
                                return Err(RuntimeError::ImageCount {
                                    count: out.len(),
                                    slots: out.len() + 1,
                                });
                            }
                        },
                    };
                    out.push(
                        preprocess::load_image(&path, &limits).map_err(model::ModelError::from)?,
                    );
                }
            }
        }
    }
    let left = extra.count();
    if left > 0 {
        return Err(RuntimeError::ImageCount {
            count: out.len() + left,
            slots: out.len(),
        });
    }
    Ok(out)
}
