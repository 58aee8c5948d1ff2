//! Command-line arguments shared by the generation commands, and `bench`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use runtime::constraint::Constraint;
use runtime::engine::{BackendChoice, EngineOptions};
use runtime::model::preprocess::ProcessorOverrides;
use runtime::model::prompt::{ChatMessage, ContentPart, parse_messages};
use runtime::model::tensor::cpu::WeightFormat;
use runtime::sampling::{SamplingConfig, SamplingKnobs};
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
        let knobs = SamplingKnobs {
            preset: self.preset.clone(),
            temperature: self.temperature,
            top_k: self.top_k,
            top_p: self.top_p,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            seed: self.seed,
        };
        knobs.resolve().map_err(anyhow::Error::msg)
    }
}

pub(crate) fn weight_format(s: &str) -> Result<WeightFormat> {
    WeightFormat::parse(s).with_context(|| {
        format!("unknown --weights {s:?} (use native, int8, bf16dot, q8_0, q4_0, q4_k or q6_k)")
    })
}
