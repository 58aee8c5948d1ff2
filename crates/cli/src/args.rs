//! Command-line arguments shared by the generation commands, and `bench`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use runtime::constraint::Constraint;
use runtime::engine::{BackendChoice, EngineOptions};
use runtime::model::preprocess::ProcessorOverrides;
use runtime::model::prompt::{ChatMessage, ContentPart, parse_messages};
use runtime::model::tensor::cpu::WeightFormat;
use runtime::sampling::SamplingConfig;
use runtime::speculative::SpeculativeConfig;
use runtime::tools::ToolSet;

#[derive(clap::Args, Clone, Debug)]
pub struct InputArgs {
    /// The model: a folder (Hugging Face layout), a GGUF file (X.gguf; add
    /// --mmproj for images), a hub id org/name[@revision], or a hub GGUF repo
    /// with a quantization, org/name-GGUF:QUANT (e.g.
    /// LiquidAI/LFM2-VL-450M-GGUF:Q4_0; its mmproj comes along). Hub files
    /// come from the local Hugging Face cache, else are downloaded.
    #[arg(long, default_value = runtime::source::DEFAULT_REPO)]
    pub model: String,
    /// The user prompt (with --image, the images come first).
    pub prompt: Option<String>,
    /// The user prompt as a flag (llama.cpp's -p), instead of the positional one.
    #[arg(
        short = 'p',
        long = "prompt",
        value_name = "TEXT",
        conflicts_with = "prompt"
    )]
    pub prompt_flag: Option<String>,
    /// An image for the prompt (repeatable; in order).
    #[arg(long)]
    pub image: Vec<PathBuf>,
    /// A system message.
    #[arg(long)]
    pub system: Option<String>,
    /// A chat in the transformers format (JSON list of {role, content});
    /// image items are {"type": "image", "image": "path"} (relative to the file).
    #[arg(long)]
    pub messages: Option<PathBuf>,
    /// Sampling preset: greedy (default) or model-card (temperature 0.1, min_p 0.15,
    /// repetition_penalty 1.05, top_k 50).
    #[arg(long)]
    pub preset: Option<String>,
    #[arg(long)]
    pub temperature: Option<f32>,
    #[arg(long)]
    pub top_k: Option<usize>,
    #[arg(long)]
    pub top_p: Option<f32>,
    #[arg(long)]
    pub min_p: Option<f32>,
    #[arg(long)]
    pub repetition_penalty: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 256)]
    pub max_new_tokens: usize,
    /// Text that ends generation (repeatable).
    #[arg(long)]
    pub stop: Vec<String>,
    /// Constrain the reply to JSON valid under this JSON Schema: a file, or
    /// - for standard input (unsupported keywords are errors).
    #[arg(long, value_name = "FILE|-", group = "constraint")]
    pub json_schema: Option<PathBuf>,
    /// Constrain the reply to text this regex matches whole (Rust regex
    /// syntax, no look-around).
    #[arg(long, value_name = "REGEX", group = "constraint")]
    pub regex: Option<String>,
    /// Constrain the reply to a Lark grammar in FILE (llguidance's dialect:
    /// a `start` rule; may embed %json{...} schemas).
    #[arg(long, value_name = "FILE", group = "constraint")]
    pub grammar: Option<PathBuf>,
    /// Functions the model may call: a JSON file with OpenAI's `tools` list
    /// ([{"type": "function", "function": {"name", "description",
    /// "parameters"}}]). The reply's calls are printed (generate --json:
    /// "tool_calls").
    #[arg(long, value_name = "FILE")]
    pub tools: Option<PathBuf>,
    /// auto (the model decides), none, required (at least one call) or a
    /// function's name (that call); required and a name constrain decoding.
    #[arg(long, value_name = "CHOICE", requires = "tools")]
    pub tool_choice: Option<String>,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// How the model is loaded: what `run`, `chat`, `generate`, `logits` and
/// `serve` share.
#[derive(clap::Args, Clone, Debug)]
pub struct EngineArgs {
    /// The mmproj GGUF (vision tower + connector) for a GGUF --model, e.g.
    /// mmproj-LFM2-VL-450M-F16.gguf. Without it a GGUF file runs text only.
    #[arg(long, value_name = "FILE")]
    pub mmproj: Option<PathBuf>,
    #[arg(long)]
    pub min_image_tokens: Option<usize>,
    #[arg(long)]
    pub max_image_tokens: Option<usize>,
    #[arg(long)]
    pub no_image_splitting: bool,
    #[arg(long)]
    pub max_tiles: Option<usize>,
    /// cpu, wgpu or auto.
    #[arg(long, default_value = "auto")]
    pub backend: String,
    /// CPU worker threads (default: LFM_THREADS or all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context capacity in tokens (`serve`: of each parallel sequence; a
    /// longer prompt is refused).
    #[arg(long, default_value_t = 8192)]
    pub max_len: usize,
    /// CPU matmul weights: native (the checkpoint's bf16, exact), int8 (one
    /// scale per row: about half the decode time, approximate), bf16dot
    /// (AVX512-BF16 CPUs: faster prefill and images, their activations
    /// rounded to bf16; decode exact), or ggml's q8_0, q4_0, q4_k, q6_k blocks
    /// quantized at load (these on wgpu too). A GGUF's block-quantized tensors
    /// always stay as stored; only its float tensors follow this.
    #[arg(long, default_value = "native")]
    pub weights: String,
    /// Speculative decoding (exact: greedy output is plain decoding's token
    /// for token, sampled output follows the same distribution): `ngram`
    /// drafts by prompt lookup; `draft:PATH` runs a smaller model with the
    /// same tokenizer (a folder, .gguf or hub id; it sees images as their
    /// placeholder tokens).
    #[arg(long, value_name = "ngram|draft:PATH")]
    pub speculative: Option<String>,
    /// Tokens drafted per step at most (1 to 8; default 4).
    #[arg(long, value_name = "K")]
    pub draft_max: Option<usize>,
}

impl EngineArgs {
    /// The environment's options (`runtime::options`) with these flags over
    /// them.
    pub fn engine_options(&self) -> Result<EngineOptions> {
        let processor = ProcessorOverrides {
            min_image_tokens: self.min_image_tokens,
            max_image_tokens: self.max_image_tokens,
            do_image_splitting: self.no_image_splitting.then_some(false),
            max_tiles: self.max_tiles,
            ..Default::default()
        };
        let mut opts = EngineOptions::from_env(BackendChoice::parse(&self.backend)?)?;
        if let Some(t) = self.threads {
            opts.cpu.threads = Some(t);
        }
        opts.cpu.weights = weight_format(&self.weights)?;
        opts.max_len = self.max_len;
        opts.processor = processor;
        opts.mmproj = self.mmproj.clone();
        opts.speculative = match (&self.speculative, self.draft_max) {
            (Some(src), k) => {
                let mut c = SpeculativeConfig::new(src.parse()?);
                c.draft_max = k.unwrap_or(c.draft_max);
                c.validate()?;
                Some(c)
            }
            (None, Some(_)) => bail!("--draft-max needs --speculative"),
            (None, None) => None,
        };
        Ok(opts)
    }
}

/// `lfm2vl info`: the machine, and with --model what the model files hold.
#[derive(clap::Args, Clone, Debug)]
pub struct InfoArgs {
    /// Also describe this model (a folder, X.gguf, org/name or
    /// org/name-GGUF:QUANT, as for the other commands): its files, tensor
    /// types, shapes and whether it has a vision tower.
    #[arg(long)]
    pub model: Option<String>,
    /// The mmproj GGUF of a GGUF --model.
    #[arg(long, value_name = "FILE")]
    pub mmproj: Option<PathBuf>,
}

impl InputArgs {
    /// The environment's options (`runtime::options`) with the flags over
    /// them.
    pub fn engine_options(&self) -> Result<EngineOptions> {
        self.engine.engine_options()
    }

    /// The prompt: positional or `-p`.
    pub fn prompt_text(&self) -> Option<&String> {
        self.prompt.as_ref().or(self.prompt_flag.as_ref())
    }

    pub fn system_messages(&self) -> Vec<ChatMessage> {
        self.system
            .iter()
            .map(|s| ChatMessage::text("system", s.clone()))
            .collect()
    }

    /// The `--messages` file alone, or `--system`: the start of a chat.
    pub fn history(&self) -> Result<Vec<ChatMessage>> {
        match &self.messages {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                parse_messages(&text).with_context(|| format!("parsing {}", path.display()))
            }
            None => Ok(self.system_messages()),
        }
    }

    /// The chat: `--messages`, or `--system` + one user turn of images and the prompt.
    pub fn messages(&self) -> Result<Vec<ChatMessage>> {
        if let Some(path) = &self.messages {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let mut m =
                parse_messages(&text).with_context(|| format!("parsing {}", path.display()))?;
            if let Some(p) = self.prompt_text() {
                m.push(ChatMessage::text("user", p.clone()));
            }
            return Ok(m);
        }
        let mut m = self.system_messages();
        let Some(prompt) = self.prompt_text() else {
            if self.image.is_empty() {
                return Ok(m);
            }
            bail!("give a prompt with the images");
        };
        let mut parts: Vec<ContentPart> = self.image.iter().map(|_| ContentPart::image()).collect();
        parts.push(ContentPart::text(prompt.clone()));
        m.push(ChatMessage::parts("user", parts));
        Ok(m)
    }

    /// Folder that relative image paths in `--messages` are resolved against.
    pub fn messages_base(&self) -> PathBuf {
        self.messages
            .as_ref()
            .and_then(|p| p.parent().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("."))
    }

    /// The structured-output constraint the flags ask for.
    pub fn constraint(&self) -> Result<Option<Constraint>> {
        let read = |path: &PathBuf| -> Result<String> {
            if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("reading standard input")?;
                return Ok(s);
            }
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
        };
        if let Some(path) = &self.json_schema {
            let text = read(path)?;
            let schema = serde_json::from_str(&text)
                .with_context(|| format!("--json-schema {}: not JSON", path.display()))?;
            return Ok(Some(Constraint::JsonSchema {
                schema,
                strict: true,
            }));
        }
        if let Some(r) = &self.regex {
            return Ok(Some(Constraint::Regex(r.clone())));
        }
        if let Some(path) = &self.grammar {
            return Ok(Some(Constraint::Lark(read(path)?)));
        }
        Ok(None)
    }

    /// The tools `--tools` and `--tool-choice` give.
    pub fn tools(&self) -> Result<ToolSet> {
        let Some(path) = &self.tools else {
            return Ok(ToolSet::default());
        };
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let list: Vec<serde_json::Value> = serde_json::from_str(&text)
            .with_context(|| format!("--tools {}: not a JSON list", path.display()))?;
        let choice = self.tool_choice.as_deref().map(|c| match c {
            "auto" | "none" | "required" => serde_json::json!(c),
            name => serde_json::json!({"type": "function", "function": {"name": name}}),
        });
        ToolSet::from_openai(&list, choice.as_ref())
            .with_context(|| format!("--tools {}", path.display()))
    }

    pub fn sampling(&self) -> Result<SamplingConfig> {
        let mut s = match &self.preset {
            Some(name) => {
                SamplingConfig::preset(name).with_context(|| format!("unknown preset {name:?}"))?
            }
            None => SamplingConfig::default(),
        };
        let sampled = self.temperature.is_some()
            || self.top_p.is_some()
            || self.min_p.is_some()
            || self.top_k.is_some();
        if sampled {
            s.greedy = false;
        }
        if let Some(t) = self.temperature {
            s.temperature = t;
        }
        if let Some(k) = self.top_k {
            s.top_k = k;
        }
        if let Some(p) = self.top_p {
            s.top_p = p;
        }
        if let Some(p) = self.min_p {
            s.min_p = p;
        }
        if let Some(r) = self.repetition_penalty {
            s.repetition_penalty = r;
        }
        s.seed = self.seed;
        s.validate().map_err(anyhow::Error::msg)?;
        Ok(s)
    }
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Model shapes: 450m (LFM2-VL-450M) or 1.6b (LFM2-VL-1.6B).
    #[arg(long, default_value = "450m")]
    synthetic: String,
    /// Time a real model instead of the synthetic one: a folder, X.gguf
    /// (add --mmproj for the image timings), org/name or
    /// org/name-GGUF:QUANT, as for the other commands.
    #[arg(long, conflicts_with = "synthetic")]
    model: Option<String>,
    /// The mmproj GGUF of a GGUF --model.
    #[arg(long, value_name = "FILE", requires = "model")]
    mmproj: Option<PathBuf>,
    /// Compute backend: cpu, wgpu or auto.
    #[arg(long, default_value = "cpu")]
    backend: String,
    /// CPU worker threads (default: LFM_THREADS or all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// CPU tier (default: LFM_ISA or the best available).
    #[arg(long)]
    isa: Option<String>,
    /// Prompt tokens for the prefill measurement.
    #[arg(long, default_value_t = 512)]
    prompt: usize,
    /// Tokens for the decode measurement.
    #[arg(long, default_value_t = 128)]
    generate: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Folder for the synthetic checkpoint (reused across runs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Skip image512 / ttft_image512 (slow on software adapters).
    #[arg(long)]
    no_image: bool,
    /// CPU matmul weights: native (bf16), int8 (one scale per row), bf16dot
    /// (AVX512-BF16 CPUs; prompt and image activations rounded to bf16), or
    /// ggml's q8_0, q4_0, q4_k, q6_k blocks quantized at load (also on wgpu).
    #[arg(long, default_value = "native")]
    weights: String,
    /// Concurrent streams through the scheduler `serve` runs (batched
    /// decode), e.g. 1,2,4,8: per count the aggregate decode tok/s and the
    /// time to first token, instead of the single-stream figures. --prompt
    /// and --generate are per stream.
    #[arg(long, value_delimiter = ',')]
    streams: Vec<usize>,
    /// Time speculative decoding instead: a verify step of k = 1, 2, 4, 8
    /// drafts against one decode step, decode with every draft accepted (a
    /// greedy run replayed), and the acceptance-rate → speedup curve.
    #[arg(long)]
    speculative: bool,
}

fn weight_format(s: &str) -> Result<WeightFormat> {
    WeightFormat::parse(s).with_context(|| {
        format!("unknown --weights {s:?} (use native, int8, bf16dot, q8_0, q4_0, q4_k or q6_k)")
    })
}

pub fn bench(a: BenchArgs) -> Result<()> {
    let backend = runtime::engine::BackendChoice::parse(&a.backend)?;
    // `--isa` wins over LFM_ISA (which is then not read at all); a backend
    // that cannot be opened does not read its variables.
    let env = EngineOptions::from_env_with_isa(backend, a.isa.as_deref())?;
    let mut cpu = env.cpu;
    if let Some(t) = a.threads {
        cpu.threads = Some(t);
    }
    cpu.weights = weight_format(&a.weights)?;
    let source = a
        .model
        .as_deref()
        .map(|m| runtime::source::resolve_model(m, a.mmproj.as_deref()))
        .transpose()?;
    let synthetic = source.is_none();
    let opts = runtime::bench::BenchOptions {
        model: runtime::synthetic::Synthetic::parse(&a.synthetic)?,
        source,
        backend,
        cpu,
        #[cfg(feature = "wgpu")]
        wgpu: env.wgpu,
        prompt: a.prompt,
        generate: a.generate,
        reps: a.reps,
        dir: a
            .dir
            .unwrap_or_else(|| std::env::temp_dir().join("lfm2vl-synthetic")),
        image: !a.no_image,
    };
    if !a.streams.is_empty() {
        return streams(&opts, &a.streams, a.json);
    }
    if a.speculative {
        return speculative(&opts, a.json);
    }
    let r = runtime::bench::bench(&opts)?;
    let ms = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64() * 1e3);
    let ops = |v: &[runtime::model::tensor::cpu::profile::OpTime]| {
        let total: f64 = v.iter().map(|o| o.total.as_secs_f64()).sum();
        v.iter()
            .map(|o| {
                serde_json::json!({
                    "op": o.op, "calls": o.calls,
                    "ms": (o.total.as_secs_f64() * 1e6).round() / 1e3,
                    "pct": (1000.0 * o.total.as_secs_f64() / total).round() / 10.0,
                })
            })
            .collect::<Vec<_>>()
    };
    let pp = format!("pp{}", a.prompt);
    let tg = format!("tg{}", a.generate);
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "model": r.model, "backend": r.backend, "load_s": r.load.as_secs_f64(),
                pp.clone(): r.prefill.tok_s(), tg.clone(): r.decode.tok_s(),
                "decode_mb_per_token": r.decode_bytes as f64 / 1e6,
                "decode_gb_s": r.decode_bytes as f64 * r.decode.tok_s() / 1e9,
                "decode_host_ms_per_token": r.decode_waited.map(|w| (r.decode.median.as_secs_f64() - w.as_secs_f64()) * 1e3 / a.generate as f64),
                "image512_ms": ms(r.image512),
                "ttft_image512_ms": ms(r.ttft_image512),
                "sampling_us_per_token": r.sampling.as_secs_f64() * 1e6,
                "prefill_ops": ops(&r.prefill_ops), "decode_ops": ops(&r.decode_ops),
                "image512_ops": ops(&r.image_ops),
            })
        );
        return Ok(());
    }
    let kind = if synthetic { " (synthetic bf16)" } else { "" };
    println!("model {}{kind}, backend {}", r.model, r.backend);
    println!("load      {:>8.2} s", r.load.as_secs_f64());
    println!(
        "{pp:<9} {:>8.1} tok/s  ({:.1} ms)",
        r.prefill.tok_s(),
        r.prefill.median.as_secs_f64() * 1e3
    );
    println!(
        "{tg:<9} {:>8.1} tok/s  ({:.2} ms/token; weights {:.1} MB/token read at {:.1} GB/s)",
        r.decode.tok_s(),
        r.decode.median.as_secs_f64() * 1e3 / a.generate as f64,
        r.decode_bytes as f64 / 1e6,
        r.decode_bytes as f64 * r.decode.tok_s() / 1e9
    );
    if let Some(waited) = r.decode_waited {
        let step = r.decode.median.as_secs_f64() * 1e3 / a.generate as f64;
        let host = step - waited.as_secs_f64() * 1e3 / a.generate as f64;
        println!(
            "          host work {host:.3} ms/token of {step:.3} (the rest waits for the device)"
        );
    }
    println!(
        "sampling  {:>8.1} µs/token  (model-card preset on the host; not in {tg})",
        r.sampling.as_secs_f64() * 1e6
    );
    if let (Some(img), Some(ttft)) = (ms(r.image512), ms(r.ttft_image512)) {
        println!("image512  {img:>8.1} ms  (one 512×512 tile: vision tower + connector)");
        if let (Some(waited), Some(_)) = (r.image_waited, r.decode_waited) {
            let host = img - waited.as_secs_f64() * 1e3;
            println!(
                "          host work {host:.2} ms of {img:.2} (the rest waits for the device)"
            );
        }
        println!(
            "ttft_image512 {ttft:>4.1} ms  (image + prefill of its 256 tokens and a short prompt)"
        );
    }
    for (phase, v) in [
        ("prefill", &r.prefill_ops),
        ("decode", &r.decode_ops),
        ("image512", &r.image_ops),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    {
        let sum: f64 = v.iter().map(|o| o.total.as_secs_f64() * 1e3).sum();
        let what = if r.backend.starts_with("wgpu") {
            "GPU time per shader"
        } else {
            "time per op"
        };
        println!("\nwhere the {phase} time goes (one profiled run; {what}, {sum:.2} ms in all):");
        if phase == "decode" {
            let calls: u64 = v.iter().map(|o| o.calls).sum();
            println!(
                "  {:.1} {} per token",
                calls as f64 / a.generate.max(1) as f64,
                if r.backend.starts_with("wgpu") {
                    "dispatches"
                } else {
                    "ops"
                }
            );
        }
        for o in ops(v) {
            println!(
                "  {:<22} {:>6} calls {:>10.3} ms {:>6.1}%",
                o["op"].as_str().unwrap_or(""),
                o["calls"],
                o["ms"].as_f64().unwrap_or(0.0),
                o["pct"].as_f64().unwrap_or(0.0)
            );
        }
    }
    Ok(())
}

/// `bench --streams`: one line (or JSON object) per stream count.
fn streams(opts: &runtime::bench::BenchOptions, counts: &[usize], json: bool) -> Result<()> {
    let rows = runtime::bench_streams::bench_streams(opts, counts)?;
    let one = rows
        .iter()
        .find(|r| r.streams == 1)
        .map(|r| r.aggregate_tok_s);
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    if json {
        let v: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "streams": r.streams, "tokens": r.tokens,
                    "aggregate_tok_s": r.aggregate_tok_s,
                    "per_stream_tok_s": r.per_stream_tok_s,
                    "vs_one_stream": one.map(|o| r.aggregate_tok_s / o),
                    "ttft_mean_ms": ms(r.ttft_mean), "ttft_max_ms": ms(r.ttft_max),
                    "wall_s": r.wall.as_secs_f64(),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({ "prompt": opts.prompt, "generate": opts.generate, "rows": v })
        );
        return Ok(());
    }
    println!(
        "streams  aggregate tok/s  vs 1 stream  per-stream tok/s  ttft mean / max (ms)  (prompt {}, generate {} per stream)",
        opts.prompt, opts.generate
    );
    for r in &rows {
        let vs = one.map_or("-".to_string(), |o| {
            format!("{:.2}x", r.aggregate_tok_s / o)
        });
        println!(
            "{:>7}  {:>15.1}  {:>11}  {:>16.1}  {:>9.1} / {:.1}",
            r.streams,
            r.aggregate_tok_s,
            vs,
            r.per_stream_tok_s,
            ms(r.ttft_mean),
            ms(r.ttft_max)
        );
    }
    Ok(())
}

/// `bench --speculative`: the verify cost, replayed drafts, the curve.
fn speculative(opts: &runtime::bench::BenchOptions, json: bool) -> Result<()> {
    use runtime::bench_speculative::{SpecRow, bench_speculative};
    let r = bench_speculative(opts, &[4, 8])?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    let step = ms(r.plain_step);
    let rate = |c: &runtime::speculative::SpecCounts| c.accepted as f64 / c.drafted.max(1) as f64;
    if json {
        let row = |s: &SpecRow| {
            serde_json::json!({
                "k": s.k, "accuracy": s.accuracy, "tok_s": s.tok_s,
                "speedup": s.tok_s / r.plain_tok_s, "acceptance": rate(&s.counts),
                "steps": s.counts.steps, "drafted": s.counts.drafted, "accepted": s.counts.accepted,
            })
        };
        let verify: Vec<_> = r
            .verify
            .iter()
            .map(|v| serde_json::json!({ "k": v.k, "ms": ms(v.time), "vs_decode_step": ms(v.time) / step }))
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "prompt": opts.prompt, "generate": opts.generate,
                "plain_tok_s": r.plain_tok_s, "decode_step_ms": step,
                "verify": verify,
                "replay": r.replay.iter().map(row).collect::<Vec<_>>(),
                "curve": r.curve.iter().map(row).collect::<Vec<_>>(),
            })
        );
        return Ok(());
    }
    println!(
        "plain decode {:.1} tok/s ({step:.2} ms a step; prompt {}, generate {})",
        r.plain_tok_s, opts.prompt, opts.generate
    );
    println!("verify  k drafts  ms      vs one decode step");
    for v in &r.verify {
        println!(
            "        {:>8}  {:>6.2}  {:.2}x",
            v.k,
            ms(v.time),
            ms(v.time) / step
        );
    }
    println!("every draft accepted (a greedy run replayed)");
    println!("        k  tok/s    speedup  verify steps");
    for s in &r.replay {
        println!(
            "  {:>7}  {:>7.1}  {:>6.2}x  {}",
            s.k,
            s.tok_s,
            s.tok_s / r.plain_tok_s,
            s.counts.steps
        );
    }
    println!("acceptance curve (each drafted token right with probability a)");
    println!("        k  a     accepted  tok/s    speedup");
    for s in &r.curve {
        println!(
            "  {:>7}  {:.2}  {:>7.0}%  {:>7.1}  {:>6.2}x",
            s.k,
            s.accuracy,
            100.0 * rate(&s.counts),
            s.tok_s,
            s.tok_s / r.plain_tok_s
        );
    }
    Ok(())
}
