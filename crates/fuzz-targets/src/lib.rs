//! One function per untrusted input the engine reads: each takes any bytes
//! and must return (an error is fine) without panicking, hanging or reading
//! out of bounds. cargo-fuzz runs them under libFuzzer and AddressSanitizer
//! (`fuzz/`, `cargo xtask fuzz TARGET`); `tests/smoke.rs` runs them on the
//! committed seed corpora (`fuzz/corpus/<target>/`) and deterministic
//! mutations of the seeds in every `cargo test`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use model::preprocess::{self, DecodeLimits, ProcessorConfig, ProcessorOverrides, RgbImage};
use model::prompt::{ChatMessage, PromptBuilder};
use runtime::constraint::GrammarCache;
use runtime::prompter::Prompter;
use runtime::sampling::{Sampler, SamplingConfig};
use serde_json::Value;

/// A fuzz target: any bytes in, no panic out.
pub type Target = fn(&[u8]);

/// Every target, by the name cargo-fuzz and the corpus folders use.
pub const TARGETS: &[(&str, Target)] = &[
    ("config", config),
    ("safetensors", safetensors),
    ("gguf", gguf),
    ("image", image),
    ("chat", chat),
    ("tokenizer", tokenizer),
    ("request", request),
    ("tool_calls", tool_calls),
    ("sampling", sampling),
];

/// The repository root (for the tiny fixture checkpoint).
fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The tiny 450M-like fixture's prompt machinery, loaded once.
fn prompter() -> &'static Prompter {
    static P: OnceLock<Prompter> = OnceLock::new();
    P.get_or_init(|| {
        let dir = root().join("tests/fixtures/models/tiny-450m");
        let prompt = Arc::new(PromptBuilder::from_dir(&dir).expect("the tiny fixture's prompt"));
        let processor =
            ProcessorConfig::load(&dir, &ProcessorOverrides::default()).expect("its processor");
        let vocab = prompt.tokenizer().vocab_size();
        Prompter {
            grammars: GrammarCache::new(Arc::clone(&prompt), vocab, vec![7]),
            prompt,
            processor,
            max_len: 4096,
            no_vision: None,
        }
    })
}

/// `config.json` and the processor configs: the model config, its vision
/// part, and processor knobs applied and validated.
pub fn config(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if let Ok(cfg) = model::ModelConfig::from_value(v.clone())
        && let Some(vision) = &cfg.vision
    {
        let _ = model::vision::VisionConfig::from_values(vision, &cfg.raw);
    }
    for knobs in [Some(&v), v.get("image_processor")].into_iter().flatten() {
        if let Ok(o) = serde_json::from_value::<ProcessorOverrides>(knobs.clone()) {
            let _ = o.apply(ProcessorConfig::default()).validate();
        }
    }
}

/// A safetensors file: header, tensor table, every tensor read as f32.
pub fn safetensors(data: &[u8]) {
    // The checkpoint reader maps files: one scratch file per thread.
    let path = std::env::temp_dir().join(format!(
        "lfm2vl-fuzz-{}-{:?}.safetensors",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    if let Ok(ckpt) = model::weights::Checkpoint::open_files(std::slice::from_ref(&path)) {
        let names: Vec<String> = ckpt.names().map(str::to_string).collect();
        for name in names {
            if let Ok(t) = ckpt.get(&name) {
                let _ = t.to_f32();
            }
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// A GGUF file's header, metadata and tensor table.
pub fn gguf(data: &[u8]) {
    let _ = model::weights::gguf::reader::parse(data);
}

/// An image file of any format, decoded under a small pixel budget and
/// preprocessed as the tiny model's processor does.
pub fn image(data: &[u8]) {
    let limits = DecodeLimits {
        max_pixels: 1 << 20,
        ..DecodeLimits::default()
    };
    if let Ok(img) = preprocess::decode_image(data, "fuzz", &limits) {
        let _ = preprocess::preprocess(&[img], &prompter().processor);
    }
}

/// Chat messages (JSON) through the template, image expansion and the
/// tokenizer, with as many small images as the messages have slots.
pub fn chat(data: &[u8]) {
    let Ok(messages) = serde_json::from_slice::<Vec<ChatMessage>>(data) else {
        return;
    };
    let slots: usize = messages.iter().map(ChatMessage::num_images).sum();
    if slots > 8 {
        return;
    }
    // Sizes from the input's bytes: 1..=300 pixels a side.
    let side = |k: usize| 1 + data.get(k).copied().unwrap_or(7) as u32 * 300 / 256;
    let images: Vec<RgbImage> = (0..slots)
        .map(|k| RgbImage::new(side(2 * k), side(2 * k + 1)))
        .collect();
    let _ = prompter().prepare(&messages, &images);
}

/// Any UTF-8 through the tokenizer and back.
pub fn tokenizer(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let tok = prompter().prompt.tokenizer();
    if let Ok(ids) = tok.encode(text) {
        let _ = tok.decode(&ids, false);
        let _ = tok.decode(&ids, true);
    }
}

/// A server request body: chat completions, then text completions.
pub fn request(data: &[u8]) {
    let _ = server::fuzzing::chat_body(data);
    let _ = server::fuzzing::completion_body(data);
}

/// A reply's text through the tool-call parsers.
pub fn tool_calls(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = runtime::tools::split_calls(text);
    let _ = runtime::tools::pycall::parse_calls(text);
    let _ = runtime::tools::pycall::whole_calls(text);
}

/// Sampling settings (the first 24 bytes) on logits (the rest, as f32,
/// NaN and infinities included) with a history of ids.
pub fn sampling(data: &[u8]) {
    if data.len() < 28 {
        return;
    }
    let f = |k: usize| f32::from_le_bytes([data[k], data[k + 1], data[k + 2], data[k + 3]]);
    let cfg = SamplingConfig {
        greedy: data[0] & 1 == 1,
        temperature: f(1),
        top_k: data[5] as usize,
        top_p: f(6),
        min_p: f(10),
        repetition_penalty: f(14),
        seed: u64::from(data[18]),
    };
    if cfg.validate().is_err() {
        return;
    }
    let mut logits: Vec<f32> = data[24..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    if logits.is_empty() {
        return;
    }
    let history: Vec<u32> = data[19..24].iter().map(|&b| u32::from(b)).collect();
    let id = Sampler::new(cfg).sample(&mut logits, &history);
    assert!(
        (id as usize) < logits.len(),
        "sampled id {id} of {}",
        logits.len()
    );
}
