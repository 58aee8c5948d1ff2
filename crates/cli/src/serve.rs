//! `lfm2vl serve`: the OpenAI-compatible HTTP server (`server`) over a
//! scheduler (`runtime::scheduler`) on one loaded model. Binds first and
//! prints `listening on http://HOST:PORT` (one line on stdout, flushed),
//! then loads the model while `/health` answers `loading`.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use runtime::engine::Engine;
use runtime::scheduler::{Scheduler, SchedulerOptions};
use server::generator::Renamed;
use server::{ImageLimits, Limits, ServerConfig};

#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    /// The model: a folder (Hugging Face layout), a GGUF file (add --mmproj
    /// for images), a hub id org/name[@revision] or org/name-GGUF:QUANT.
    #[arg(long, default_value = runtime::source::DEFAULT_REPO)]
    pub model: String,
    /// The name /v1/models lists and replies carry (default: a hub id as
    /// given, else the model's folder or GGUF file name).
    #[arg(long, value_name = "NAME")]
    pub served_model_name: Option<String>,
    /// Address to listen on (0.0.0.0 for every interface).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on; 0 picks a free one (printed on the first line).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Require `Authorization: Bearer KEY` on /v1/* (/health stays open).
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// Sequences decoded together (batched decode).
    #[arg(long, default_value_t = SchedulerOptions::default().parallel)]
    pub parallel: usize,
    /// Requests that may wait beyond those; past that a request gets 503.
    #[arg(long, default_value_t = SchedulerOptions::default().queue)]
    pub queue: usize,
    /// Prompt tokens prefilled between two decode steps.
    #[arg(long, default_value_t = SchedulerOptions::default().prefill_chunk)]
    pub prefill_chunk: usize,
    /// Most tokens one request generates: a larger max_tokens is clamped to
    /// it, and a chat request without max_tokens gets it.
    #[arg(long, default_value_t = 4096)]
    pub max_tokens: usize,
    /// Largest request body in bytes (larger: 413).
    #[arg(long, default_value_t = 20 << 20)]
    pub max_body_bytes: usize,
    /// Most images in one request.
    #[arg(long, default_value_t = 8)]
    pub max_images: usize,
    /// Largest image, in pixels (width × height), checked from its header
    /// before decoding.
    #[arg(long, default_value_t = 1 << 24)]
    pub max_image_pixels: u64,
    /// Largest encoded image in bytes (a data: URI's payload or a download).
    #[arg(long, default_value_t = 20 << 20)]
    pub max_image_bytes: u64,
    /// Fetch http(s) image URLs (otherwise only data: URIs are taken).
    #[arg(long)]
    pub allow_remote_images: bool,
    /// Timeout of one image download, in seconds.
    #[arg(long, default_value_t = 20)]
    pub fetch_timeout_s: u64,
    /// How the model is loaded (as for `run`): --mmproj, --backend,
    /// --threads, --weights, --max-len (each parallel sequence's context: a
    /// longer prompt gets 400 context_length_exceeded), image settings.
    #[command(flatten)]
    pub engine: crate::args::EngineArgs,
}

impl ServeArgs {
    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            api_key: self.api_key.clone(),
            max_body_bytes: self.max_body_bytes,
            limits: Limits {
                max_images: self.max_images,
                max_tokens: self.max_tokens.max(1),
                completion_default_tokens: 16,
                max_stops: 16,
                image: ImageLimits {
                    max_pixels: self.max_image_pixels,
                    max_bytes: self.max_image_bytes,
                    allow_remote: self.allow_remote_images,
                    fetch_timeout: Duration::from_secs(self.fetch_timeout_s),
                },
            },
        }
    }
}

pub fn run(a: &ServeArgs) -> Result<()> {
    let engine_opts = a.engine.engine_options()?;
    let sched_opts = SchedulerOptions {
        parallel: a.parallel.max(1),
        queue: a.queue,
        prefill_chunk: a.prefill_chunk.max(1),
    };
    let config = a.server_config();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("lfm2vl-http")
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let model = a.model.clone();
    // A hub model loads from a snapshot folder named by its commit: serve it
    // under the id it was asked for.
    let name = a
        .served_model_name
        .clone()
        .or_else(|| (!std::path::Path::new(&a.model).exists()).then(|| a.model.clone()));
    let result = rt.block_on(async move {
        let listener = server::bind(&a.host, a.port).await?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on http://{addr}")?;
        stdout.flush()?;
        let load = move || {
            let engine = Engine::load(&model, &engine_opts)?;
            eprintln!(
                "loaded {model} on {} in {:.2} s; serving ({} parallel, queue {})",
                engine.backend_description,
                engine.load_time.as_secs_f64(),
                sched_opts.parallel,
                sched_opts.queue
            );
            let scheduler = Scheduler::start(engine, sched_opts)?;
            let name = name.unwrap_or_else(|| scheduler.model_name().to_string());
            Ok(Renamed {
                inner: scheduler,
                name,
            })
        };
        server::serve(listener, config, load, server::shutdown_signal()).await?;
        anyhow::Ok(())
    });
    // A model still loading when the signal came keeps its thread: don't wait.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}
