//! `lfm2vl._lfm2vl`: the native half of the Python package (the Python
//! half, `python/lfm2vl/__init__.py`, turns messages, images and options
//! into what this takes and wraps what it returns). Messages, options and
//! results cross as JSON text, images as `(kind, path, data, width, height,
//! channels)` tuples; generation runs with the GIL released, and a stream
//! runs on a thread of its own, its pieces sent through a channel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use pyo3::exceptions::{PyException, PyStopIteration};
use pyo3::prelude::*;
use runtime::error::one_line as chain;
use runtime::model::preprocess::{
    DecodeLimits, PixelLayout, RgbImage, decode_image, from_pixels, load_image,
};
use runtime::model::prompt::ChatMessage;
use runtime::model::tensor::cpu::WeightFormat;
use runtime::sampling::SamplingKnobs;
use runtime::session::Finish;
use runtime::{
    BackendChoice, Constraint, Engine, EngineOptions, Output, Progress, Request, ToolSet,
};
use serde::Deserialize;
use serde_json::{Value, json};

pyo3::create_exception!(
    _lfm2vl,
    Error,
    PyException,
    "Anything lfm2vl refuses or fails at: a model that does not load, an \
     unreadable image, a prompt past the context, a bad option."
);

fn error(e: impl std::error::Error) -> PyErr {
    Error::new_err(chain(&e))
}

/// A loaded model and one conversation's cache. Calls on one model run one
/// at a time (a second waits for the first); `fork` gives another
/// conversation on the same weights.
#[pyclass(module = "lfm2vl._lfm2vl", frozen)]
struct Model {
    engine: Arc<Mutex<Engine>>,
    #[pyo3(get)]
    backend: String,
    #[pyo3(get)]
    has_vision: bool,
    #[pyo3(get)]
    max_len: usize,
}

fn locked(engine: &Mutex<Engine>) -> MutexGuard<'_, Engine> {
    match engine.lock() {
        Ok(g) => g,
        Err(poisoned) => {
            // A panic mid-generation may have left the caches half written.
            let mut g = poisoned.into_inner();
            let _ = g.reset();
            engine.clear_poison();
            g
        }
    }
}

impl Model {
    fn wrap(engine: Engine) -> Model {
        Model {
            backend: engine.backend_description.clone(),
            has_vision: engine.has_vision(),
            max_len: engine.max_len(),
            engine: Arc::new(Mutex::new(engine)),
        }
    }
}

#[pymethods]
impl Model {
    #[new]
    #[pyo3(signature = (model, backend = "auto", threads = None, max_len = None, weights = None, mmproj = None))]
    fn new(
        py: Python<'_>,
        model: &str,
        backend: &str,
        threads: Option<usize>,
        max_len: Option<usize>,
        weights: Option<&str>,
        mmproj: Option<PathBuf>,
    ) -> PyResult<Model> {
        let choice: BackendChoice = backend.parse().map_err(error)?;
        let mut opts = EngineOptions::from_env(choice).map_err(error)?;
        if threads == Some(0) {
            return Err(Error::new_err("threads must be at least 1"));
        }
        if threads.is_some() {
            opts.cpu.threads = threads;
        }
        if let Some(n) = max_len {
            opts.max_len = n;
        }
        if let Some(w) = weights {
            opts.cpu.weights = WeightFormat::parse(w).ok_or_else(|| {
                Error::new_err(format!(
                    "unknown weights {w:?} (native, int8, bf16dot, q8_0, q4_0, q4_k or q6_k)"
                ))
            })?;
        }
        opts.mmproj = mmproj;
        let engine = py.detach(|| Engine::load(model, &opts)).map_err(error)?;
        Ok(Model::wrap(engine))
    }

    /// Another conversation on the same weights (nothing loaded again).
    fn fork(&self, py: Python<'_>) -> PyResult<Model> {
        let engine = py.detach(|| locked(&self.engine).fork()).map_err(error)?;
        Ok(Model::wrap(engine))
    }

    /// Forgets the conversation cache.
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| locked(&self.engine).reset()).map_err(error)
    }

    /// The prompt's token ids, as `generate` would run them.
    fn prompt_ids(
        &self,
        py: Python<'_>,
        messages: &str,
        images: Vec<ImageArg>,
        options: &str,
    ) -> PyResult<Vec<u32>> {
        let job = Job::parse(messages, images, options)?;
        py.detach(|| {
            let engine = locked(&self.engine);
            let functions = job.tools.functions();
            let (ids, _) =
                engine
                    .prompter()
                    .prepare_with_tools(&job.messages, &job.images, &functions)?;
            Ok::<_, runtime::RuntimeError>(ids)
        })
        .map_err(error)
    }

    /// Generates a reply; returns it as JSON text. Ctrl-C stops it
    /// (KeyboardInterrupt) within a token.
    fn generate(
        &self,
        py: Python<'_>,
        messages: &str,
        images: Vec<ImageArg>,
        options: &str,
    ) -> PyResult<String> {
        let job = Job::parse(messages, images, options)?;
        let mut interrupt = None;
        let out = py.detach(|| {
            let mut engine = locked(&self.engine);
            engine.generate(&job.request(), |p| {
                if !matches!(p, Progress::Event(runtime::session::Event::Token { .. })) {
                    return true;
                }
                match Python::attach(|py| py.check_signals()) {
                    Ok(()) => true,
                    Err(e) => {
                        interrupt = Some(e);
                        false
                    }
                }
            })
        });
        if let Some(e) = interrupt {
            return Err(e);
        }
        Ok(result(&out.map_err(error)?).to_string())
    }

    /// Starts a generation on its own thread; the returned stream yields
    /// its text pieces.
    fn stream(&self, messages: &str, images: Vec<ImageArg>, options: &str) -> PyResult<Stream> {
        let job = Job::parse(messages, images, options)?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let engine = Arc::clone(&self.engine);
        let flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("lfm2vl-stream".into())
            .spawn(move || {
                let mut engine = locked(&engine);
                let out = engine.generate(&job.request(), |p| {
                    if let Some(piece) = p.text() {
                        // A dropped stream stops generation at the next token.
                        if tx.send(Piece::Text(piece.to_string())).is_err() {
                            return false;
                        }
                    }
                    !flag.load(Ordering::Relaxed)
                });
                let end = out.map(|o| result(&o).to_string()).map_err(|e| chain(&e));
                let _ = tx.send(Piece::End(end));
            })
            .map_err(|e| Error::new_err(format!("starting the stream thread: {e}")))?;
        Ok(Stream {
            rx: Mutex::new(Some(rx)),
            stop,
            result: Mutex::new(None),
        })
    }
}

/// What a stream's thread sends: a text piece, then the result (JSON) or
/// the error.
enum Piece {
    Text(String),
    End(Result<String, String>),
}

/// The text pieces of a generation running on its own thread. `close()`
/// (or dropping it) stops the generation at the next token.
#[pyclass(module = "lfm2vl._lfm2vl", frozen)]
struct Stream {
    /// `None` once the end was seen.
    rx: Mutex<Option<Receiver<Piece>>>,
    stop: Arc<AtomicBool>,
    /// The result's JSON, once the end was seen.
    result: Mutex<Option<String>>,
}

#[pymethods]
impl Stream {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<String> {
        // The receiver is taken out while waiting (the lock is not held
        // without the GIL) and put back unless the end was seen.
        let taken = self.rx.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut rx) = taken else {
            return Err(PyStopIteration::new_err(()));
        };
        let put_back = |rx| *self.rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
        loop {
            // Wait without the GIL, a tenth of a second at a time, so that
            // Ctrl-C reaches Python.
            let got;
            (rx, got) = py.detach(move || {
                let got = rx.recv_timeout(Duration::from_millis(100));
                (rx, got)
            });
            match got {
                Ok(Piece::Text(t)) => {
                    put_back(rx);
                    return Ok(t);
                }
                Ok(Piece::End(Ok(json))) => {
                    *self.result.lock().unwrap_or_else(|p| p.into_inner()) = Some(json);
                    return Err(PyStopIteration::new_err(()));
                }
                Ok(Piece::End(Err(msg))) => return Err(Error::new_err(msg)),
                Err(RecvTimeoutError::Timeout) => {
                    if let Err(e) = py.check_signals() {
                        self.stop.store(true, Ordering::Relaxed);
                        put_back(rx);
                        return Err(e);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::new_err("the generation thread ended early"));
                }
            }
        }
    }

    /// The result's JSON once the stream is exhausted, else `None`.
    fn result(&self) -> Option<String> {
        self.result
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Stops the generation at the next token (its result, once the
    /// stream is read to the end, says `cancelled`).
    fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// One image from Python: `(kind, path, data, width, height, channels)`,
/// where kind is `path` (a file), `encoded` (a file's bytes in `data`) or
/// `pixels` (8-bit pixels in `data`, rows packed).
type ImageArg = (String, Option<PathBuf>, Option<Vec<u8>>, u32, u32, u32);

/// The options `generate` takes, as the Python layer writes them (any
/// left out takes its default).
#[derive(Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Options {
    max_tokens: usize,
    preset: Option<String>,
    temperature: Option<f32>,
    top_k: Option<usize>,
    top_p: Option<f32>,
    min_p: Option<f32>,
    repetition_penalty: Option<f32>,
    seed: u64,
    stop: Vec<String>,
    json_schema: Option<Value>,
    strict: bool,
    json_object: bool,
    regex: Option<String>,
    grammar: Option<String>,
    tools: Option<Vec<Value>>,
    tool_choice: Option<Value>,
    parallel_tool_calls: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            max_tokens: 256,
            preset: None,
            temperature: None,
            top_k: None,
            top_p: None,
            min_p: None,
            repetition_penalty: None,
            seed: 0,
            stop: Vec::new(),
            json_schema: None,
            strict: true,
            json_object: false,
            regex: None,
            grammar: None,
            tools: None,
            tool_choice: None,
            parallel_tool_calls: true,
        }
    }
}

/// A request's owned parts.
struct Job {
    messages: Vec<ChatMessage>,
    images: Vec<RgbImage>,
    options: Options,
    sampling: runtime::SamplingConfig,
    constraint: Option<Constraint>,
    tools: ToolSet,
}

impl Job {
    fn parse(messages: &str, images: Vec<ImageArg>, options: &str) -> PyResult<Job> {
        let messages: Vec<ChatMessage> =
            serde_json::from_str(messages).map_err(|e| Error::new_err(format!("messages: {e}")))?;
        let options: Options =
            serde_json::from_str(options).map_err(|e| Error::new_err(format!("options: {e}")))?;
        let images = images
            .iter()
            .enumerate()
            .map(|(k, im)| image(k, im))
            .collect::<PyResult<Vec<_>>>()?;
        let o = &options;
        let sampling = SamplingKnobs {
            preset: o.preset.clone(),
            temperature: o.temperature,
            top_k: o.top_k,
            top_p: o.top_p,
            min_p: o.min_p,
            repetition_penalty: o.repetition_penalty,
            seed: o.seed,
        }
        .resolve()
        .map_err(Error::new_err)?;
        let mut constraints = Vec::new();
        if let Some(schema) = &o.json_schema {
            constraints.push(Constraint::JsonSchema {
                schema: schema.clone(),
                strict: o.strict,
            });
        }
        if o.json_object {
            constraints.push(Constraint::JsonObject);
        }
        if let Some(r) = &o.regex {
            constraints.push(Constraint::Regex(r.clone()));
        }
        if let Some(g) = &o.grammar {
            constraints.push(Constraint::Lark(g.clone()));
        }
        if constraints.len() > 1 {
            return Err(Error::new_err(
                "give at most one of json_schema, json_object, regex and grammar",
            ));
        }
        let mut tools = match &o.tools {
            Some(list) => ToolSet::from_openai(list, o.tool_choice.as_ref()).map_err(error)?,
            None if o.tool_choice.is_some() => {
                return Err(Error::new_err("tool_choice without tools"));
            }
            None => ToolSet::default(),
        };
        tools.parallel = o.parallel_tool_calls;
        Ok(Job {
            messages,
            images,
            sampling,
            constraint: constraints.pop(),
            tools,
            options,
        })
    }

    fn request(&self) -> Request<'_> {
        let mut req = Request::new(&self.messages);
        req.images = &self.images;
        req.sampling = self.sampling.clone();
        req.max_new_tokens = self.options.max_tokens;
        req.stop_strings = self.options.stop.clone();
        req.constraint = self.constraint.clone();
        req.tools = self.tools.clone();
        req
    }
}

fn image(k: usize, (kind, path, data, width, height, channels): &ImageArg) -> PyResult<RgbImage> {
    let limits = DecodeLimits::default();
    let label = format!("#{k}");
    let missing = || Error::new_err(format!("image {label}: no {kind} given"));
    let img = match kind.as_str() {
        "path" => load_image(path.as_ref().ok_or_else(missing)?, &limits),
        "encoded" => decode_image(data.as_ref().ok_or_else(missing)?, &label, &limits),
        "pixels" => {
            let layout = PixelLayout {
                width: *width,
                height: *height,
                channels: *channels,
                stride: 0,
            };
            from_pixels(data.as_ref().ok_or_else(missing)?, layout, &label, &limits)
        }
        other => {
            return Err(Error::new_err(format!(
                "image {label}: unknown kind {other:?}"
            )));
        }
    };
    img.map_err(error)
}

/// A generation's result, for Python.
fn result(o: &Output) -> Value {
    let g = &o.generation;
    let finish = match g.finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::Context => "context",
        Finish::Cancelled => "cancelled",
    };
    json!({
        "text": o.text,
        "content": o.content,
        "tool_calls": o.tool_calls.iter()
            .map(|c| json!({"name": c.name, "arguments": c.arguments}))
            .collect::<Vec<_>>(),
        "finish": finish,
        "prompt_ids": o.prompt_ids,
        "ids": g.ids,
        "prompt_tokens": g.prompt_tokens,
        "reused_tokens": g.reused_tokens,
        "image_seconds": g.image_time.as_secs_f64(),
        "prefill_seconds": g.prefill_time.as_secs_f64(),
        "decode_seconds": g.decode_time.as_secs_f64(),
        "prefill_tok_s": o.prefill_tok_s(),
        "decode_tok_s": o.decode_tok_s(),
    })
}

/// The engine's version and what this machine offers (CPU tiers, GPUs).
#[pyfunction]
fn system_info() -> Vec<String> {
    runtime::system_info()
}

#[pymodule]
fn _lfm2vl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("Error", m.py().get_type::<Error>())?;
    m.add_class::<Model>()?;
    m.add_class::<Stream>()?;
    m.add_function(wrap_pyfunction!(system_info, m)?)?;
    Ok(())
}
