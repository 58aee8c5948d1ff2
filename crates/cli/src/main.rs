//! The `lfm2vl` binary: a thin clap front end over `runtime`.
//!
//! - `run`: one-shot generation, text streamed to stdout, stats to stderr.
//! - `chat`: an interactive conversation reusing the caches across turns.
//! - `generate --json`, `logits --out`: parity tools for outside checkers.
//! - `bench`: text-model speed on a synthetic checkpoint; `info`: the machine
//!   and, with `--model`, what a model's files hold.
//! - `serve`: an OpenAI-compatible HTTP server (`serve.rs`).

mod args;
mod bench;
mod serve;

use std::io::{BufRead, Write};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use runtime::engine::{Engine, Progress, Request, load_message_images};
use runtime::model::prompt::{ChatMessage, ContentPart};

use crate::args::{InfoArgs, InputArgs};
use crate::bench::BenchArgs;

#[derive(Parser)]
#[command(name = "lfm2vl", version, about = "LFM2-VL inference engine")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    /// Log verbosity (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a reply to one prompt (with images), streaming to stdout.
    Run(InputArgs),
    /// Interactive chat: `/image PATH` attaches an image, `/reset` starts over.
    Chat(InputArgs),
    /// Generate and print one JSON object with prompt_ids, generated_ids and text.
    Generate {
        #[command(flatten)]
        input: InputArgs,
        /// Print JSON (the only output format; kept for explicitness).
        #[arg(long)]
        json: bool,
        /// Greedy decoding (same as --preset greedy).
        #[arg(long)]
        greedy: bool,
    },
    /// Write input_ids and the logits of every prompt position to a safetensors file.
    Logits {
        #[command(flatten)]
        input: InputArgs,
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// Prefill and decode speed on a synthetic checkpoint with the real shapes.
    Bench(BenchArgs),
    /// Print the CPU tiers and GPU adapters this machine offers, and with
    /// --model the model's files (GGUF: file type, tensor types per file,
    /// architecture), shapes and whether it has a vision tower.
    Info(InfoArgs),
    /// An OpenAI-compatible HTTP server: /v1/chat/completions (images as
    /// data: URIs; SSE streaming), /v1/completions, /v1/models, /health.
    Serve(Box<serve::ServeArgs>),
}

/// Runs the command; an error prints as its cause chain on a few lines
/// (`Error: …` then `Caused by:`), with a backtrace only under `-v` (even
/// when `RUST_BACKTRACE` is set), and exits with 1.
fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let verbose = cli.verbose;
    match run_cli(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            let causes: Vec<String> = e.chain().skip(1).map(|c| c.to_string()).collect();
            if !causes.is_empty() {
                eprintln!("\nCaused by:");
                for (i, c) in causes.iter().enumerate() {
                    eprintln!("    {i}: {c}");
                }
            }
            if verbose > 0 {
                eprintln!("\n{}", e.backtrace());
            }
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: Cli) -> Result<()> {
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level)),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.cmd {
        Cmd::Info(a) => info(&a),
        Cmd::Bench(a) => bench::bench(a),
        Cmd::Run(input) => run(&input),
        Cmd::Chat(input) => chat(&input),
        Cmd::Generate { input, greedy, .. } => generate_json(&input, greedy),
        Cmd::Logits { input, out } => logits(&input, &out),
        Cmd::Serve(a) => serve::run(&a),
    }
}

fn info(a: &InfoArgs) -> Result<()> {
    for line in runtime::system_info() {
        println!("{line}");
    }
    if let Some(model) = &a.model {
        let source = runtime::source::resolve_model(model, a.mmproj.as_deref())?;
        let files = runtime::files::ModelFiles::open(&source)
            .with_context(|| format!("opening {model}"))?;
        for line in files
            .describe()
            .with_context(|| format!("reading {model}"))?
        {
            println!("{line}");
        }
    } else if a.mmproj.is_some() {
        anyhow::bail!("--mmproj goes with --model X.gguf");
    }
    Ok(())
}

fn load(input: &InputArgs) -> Result<Engine> {
    let engine = Engine::load(&input.model, &input.engine_options()?)
        .with_context(|| format!("loading {}", input.model))?;
    let what = match &engine.source {
        runtime::source::ModelSource::Gguf {
            model,
            mmproj: Some(m),
        } => format!("{} + {}", model.display(), m.display()),
        runtime::source::ModelSource::Gguf {
            model,
            mmproj: None,
        } => {
            format!("{} (text only: no --mmproj)", model.display())
        }
        runtime::source::ModelSource::Dir(d) => d.display().to_string(),
    };
    eprintln!(
        "loaded {what} on {} in {:.2} s",
        engine.backend_description,
        engine.load_time.as_secs_f64()
    );
    Ok(engine)
}

/// The conversation the input describes, with its images loaded.
struct Conversation {
    messages: Vec<ChatMessage>,
    images: Vec<runtime::model::preprocess::RgbImage>,
}

fn conversation(input: &InputArgs) -> Result<Conversation> {
    let messages = input.messages()?;
    let images = load_message_images(&messages, &input.image, &input.messages_base())?;
    Ok(Conversation { messages, images })
}

/// The request the input's flags describe, on `conv`.
fn request<'a>(input: &InputArgs, conv: &'a Conversation) -> Result<Request<'a>> {
    let mut req = Request::new(&conv.messages);
    req.images = &conv.images;
    req.sampling = input.sampling()?;
    req.max_new_tokens = input.max_new_tokens;
    req.stop_strings = input.stop.clone();
    req.constraint = input.constraint()?;
    req.tools = input.tools()?;
    Ok(req)
}

/// Streams a reply's text to stdout (a [`Engine::generate`] callback).
fn print_text(p: Progress<'_>) -> bool {
    if let Some(piece) = p.text() {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(piece.as_bytes());
        let _ = stdout.flush();
    }
    true
}

fn print_stats(out: &runtime::engine::Output) {
    let g = &out.generation;
    eprintln!(
        "\n[{} prompt tokens ({} reused), image encode {:.1} ms, prefill {:.1} tok/s, \
         decode {} tokens at {:.1} tok/s, finish {:?}]",
        g.prompt_tokens,
        g.reused_tokens,
        g.image_time.as_secs_f64() * 1e3,
        out.prefill_tok_s(),
        g.ids.len(),
        out.decode_tok_s(),
        g.finish
    );
    let c = g.constraint;
    if c.masks > 0 {
        eprintln!(
            "[constraint: {} token masks, {:.1} µs each]",
            c.masks,
            c.mask_time.as_secs_f64() * 1e6 / c.masks as f64
        );
    }
    let sp = g.speculative;
    if sp.steps > 0 {
        eprintln!(
            "[speculative: {} verify steps, {} of {} drafted tokens accepted ({:.0}%)]",
            sp.steps,
            sp.accepted,
            sp.drafted,
            100.0 * sp.accepted as f64 / sp.drafted.max(1) as f64
        );
    }
}

fn run(input: &InputArgs) -> Result<()> {
    let conv = conversation(input)?;
    let req = request(input, &conv)?;
    let mut engine = load(input)?;
    let out = engine.generate(&req, print_text)?;
    println!();
    for c in &out.tool_calls {
        eprintln!("[tool call: {}({})]", c.name, c.arguments);
    }
    print_stats(&out);
    Ok(())
}

fn generate_json(input: &InputArgs, greedy: bool) -> Result<()> {
    let conv = conversation(input)?;
    let mut req = request(input, &conv)?;
    let mut engine = load(input)?;
    if greedy {
        req.sampling = runtime::sampling::SamplingConfig::default();
    }
    if req.max_new_tokens == 0 {
        let functions = req.tools.functions();
        let (ids, _) =
            engine
                .prompter()
                .prepare_with_tools(req.messages, req.images, &functions)?;
        let empty: [u32; 0] = [];
        println!(
            "{}",
            serde_json::json!({"prompt_ids": ids, "generated_ids": empty, "text": ""})
        );
        return Ok(());
    }
    let out = engine.generate(&req, |_| true)?;
    let mut v = serde_json::json!({
        "prompt_ids": out.prompt_ids, "generated_ids": out.generation.ids, "text": out.text,
    });
    if req.tools.active() {
        v["content"] = out.content.into();
        v["tool_calls"] = out
            .tool_calls
            .iter()
            .map(|c| serde_json::json!({"name": c.name, "arguments": c.arguments}))
            .collect();
    }
    println!("{v}");
    Ok(())
}

fn logits(input: &InputArgs, out: &std::path::Path) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    let engine = load(input)?;
    let conv = conversation(input)?;
    let (ids, logits) = engine.prompt_logits(&conv.messages, &conv.images)?;
    let t = ids.len();
    let vocab = logits.len() / t.max(1);
    let id_bytes: Vec<u8> = ids.iter().flat_map(|&i| (i as i64).to_le_bytes()).collect();
    let logit_bytes: Vec<u8> = logits.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensors = [
        (
            "input_ids",
            TensorView::new(Dtype::I64, vec![t], &id_bytes)?,
        ),
        (
            "logits",
            TensorView::new(Dtype::F32, vec![t, vocab], &logit_bytes)?,
        ),
    ];
    safetensors::serialize_to_file(tensors, None, out)
        .with_context(|| format!("writing {}", out.display()))?;
    eprintln!(
        "wrote input_ids [{t}] and logits [{t}, {vocab}] to {}",
        out.display()
    );
    Ok(())
}

fn chat(input: &InputArgs) -> Result<()> {
    if input
        .json_schema
        .as_ref()
        .is_some_and(|p| p.as_os_str() == "-")
    {
        anyhow::bail!("chat reads its messages from standard input: give --json-schema a file");
    }
    let constraint = input.constraint()?;
    let tools = input.tools()?;
    let mut engine = load(input)?;
    // The history (--messages / --system); --image and a positional prompt
    // make the first turn, as if typed.
    let mut messages: Vec<ChatMessage> = input.history()?;
    let mut images = load_message_images(&messages, &[], &input.messages_base())?;
    let mut pending: Vec<std::path::PathBuf> = input.image.clone();
    let mut first_line = input.prompt_text().cloned();
    eprintln!(
        "chat: type a message; /image PATH attaches an image, /reset starts over, /quit ends"
    );
    let stdin = std::io::stdin();
    loop {
        let mut line = String::new();
        match first_line.take() {
            Some(p) => line = p,
            None => {
                eprint!("> ");
                if stdin.lock().read_line(&mut line)? == 0 {
                    return Ok(());
                }
            }
        }
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if line == "/quit" || line == "/exit" {
            return Ok(());
        }
        if line == "/reset" {
            engine.reset()?;
            messages = input.history()?;
            images = load_message_images(&messages, &[], &input.messages_base())?;
            pending.clear();
            eprintln!("(conversation reset)");
            continue;
        }
        if let Some(path) = line.strip_prefix("/image ") {
            pending.push(path.trim().into());
            eprintln!("(image attached to the next message)");
            continue;
        }
        let mut parts: Vec<ContentPart> = Vec::new();
        let images_before = images.len();
        for p in pending.drain(..) {
            let limits = runtime::model::preprocess::DecodeLimits::default();
            match runtime::model::preprocess::load_image(&p, &limits) {
                Ok(img) => {
                    images.push(img);
                    parts.push(ContentPart::image());
                }
                Err(e) => eprintln!("(skipping {}: {e})", p.display()),
            }
        }
        parts.push(ContentPart::text(line));
        messages.push(ChatMessage::parts("user", parts));
        let mut req = Request::new(&messages);
        req.images = &images;
        req.sampling = input.sampling()?;
        req.max_new_tokens = input.max_new_tokens;
        req.stop_strings = input.stop.clone();
        req.constraint = constraint.clone();
        req.tools = tools.clone();
        let out = engine.generate(&req, print_text);
        match out {
            Ok(out) => {
                println!();
                for c in &out.tool_calls {
                    eprintln!("[tool call: {}({})]", c.name, c.arguments);
                }
                print_stats(&out);
                messages.push(ChatMessage::text("assistant", out.text));
            }
            Err(e) => {
                // Undo the failed turn entirely (its message and its images).
                eprintln!("error: {e}");
                messages.pop();
                images.truncate(images_before);
            }
        }
    }
}
