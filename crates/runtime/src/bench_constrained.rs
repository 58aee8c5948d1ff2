//! `lfm2vl bench --constrained`: decode under a JSON schema against the
//! same decode without one, on the model of [`crate::bench::bench`] (the
//! synthetic checkpoints have a byte-level vocabulary of the real size, so
//! the masks cost what they cost on a real one). Both draw with the model
//! card's sampling settings and the same seeds; the constrained runs stop
//! when the output is complete, the plain ones run `generate` tokens. The
//! mask is computed on the decode thread between steps: its time per
//! token is reported beside the decode step's.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tensor::Backend;

use crate::bench::{BenchOptions, model_source, tokens};
use crate::bench_speculative::median;
use crate::constraint::{Constraint, Grammars};
use crate::engine::{Engine, Inner};
use crate::error::Result;
use crate::sampling::{Sampler, SamplingConfig};
use crate::session::{Session, StopConfig};

/// The default schema: a list of at least 8 records of a string, a
/// bounded integer, an enum array and an optional nested object (a
/// random model's output under it runs long).
pub fn default_schema() -> Value {
    json!({
        "type": "array", "minItems": 8,
        "items": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "maxLength": 12},
                "qty": {"type": "integer", "minimum": 0, "maximum": 999},
                "tags": {"type": "array", "items": {"enum": ["red", "green", "blue"]}, "maxItems": 3},
                "at": {"type": "object", "properties": {"x": {"type": "number"}, "y": {"type": "number"}},
                       "required": ["x", "y"], "additionalProperties": false}
            },
            "required": ["name", "qty", "tags"],
            "additionalProperties": false
        }
    })
}

#[derive(Clone, Debug)]
pub struct ConstrainedReport {
    /// Building the tokenizer's trie and token slices (once per model).
    pub compiler_build: Duration,
    /// Compiling the schema (once per request), its first mask included.
    pub compile: Duration,
    /// Median decode rates over the reps.
    pub plain_tok_s: f64,
    pub constrained_tok_s: f64,
    /// Tokens generated under the constraint (all reps) and the mask
    /// time per token.
    pub tokens: usize,
    pub mask_per_token: Duration,
    /// Advancing the parser, per token.
    pub advance_per_token: Duration,
}

/// Runs `o.reps` constrained and plain generations (interleaved, seeds
/// 0..reps) of up to `o.generate` tokens after `o.prompt` prompt tokens.
pub fn bench_constrained(o: &BenchOptions, schema: &Value) -> Result<ConstrainedReport> {
    let (source, _) = model_source(o)?;
    let opts = o.engine_options(o.prompt + o.generate + 16);
    let engine = Engine::load_source(source, &opts)?;
    let vocab = engine.prompt.tokenizer().vocab_size();
    let ids = tokens(o.prompt, vocab, 7);
    let cache = engine.grammars.clone();
    let t0 = Instant::now();
    let grammars = cache.grammars()?;
    let compiler_build = t0.elapsed();
    let c = Constraint::JsonSchema {
        schema: schema.clone(),
        strict: true,
    };
    let t1 = Instant::now();
    grammars.compile(&c)?;
    let compile = t1.elapsed();
    let stop_ids = engine.stop_ids.clone();
    let mut r = ConstrainedReport {
        compiler_build,
        compile,
        plain_tok_s: 0.0,
        constrained_tok_s: 0.0,
        tokens: 0,
        mask_per_token: Duration::ZERO,
        advance_per_token: Duration::ZERO,
    };
    let args = (grammars, &c, ids.as_slice(), stop_ids.as_slice());
    match engine.into_inner() {
        Inner::Cpu(mut s) => run(&mut s, o, args, &mut r)?,
        #[cfg(feature = "wgpu")]
        Inner::Wgpu(mut s) => run(&mut s, o, args, &mut r)?,
    }
    Ok(r)
}

fn run<B: Backend>(
    s: &mut Session<B>,
    o: &BenchOptions,
    (grammars, c, ids, stop_ids): (&Grammars, &Constraint, &[u32], &[u32]),
    r: &mut ConstrainedReport,
) -> Result<()> {
    let reps = o.reps.max(1);
    let cfg = |seed| SamplingConfig {
        seed,
        ..SamplingConfig::model_card()
    };
    let rate =
        |g: &crate::session::Generation| g.ids.len() as f64 / g.decode_time.as_secs_f64().max(1e-9);
    let plain_stop = StopConfig {
        max_new_tokens: o.generate,
        stop_ids: Vec::new(),
    };
    let stop = StopConfig {
        max_new_tokens: o.generate,
        stop_ids: stop_ids.to_vec(),
    };
    // A warm-up of each (the prompt then stays cached: decode alone is timed).
    s.generate(ids, &[], &cfg(99), &plain_stop, &mut |_| true)?;
    let (mut plain, mut constrained) = (Vec::new(), Vec::new());
    let (mut masks, mut mask_time, mut advance) = (0, Duration::ZERO, Duration::ZERO);
    for seed in 0..reps as u64 {
        let g = s.generate(ids, &[], &cfg(seed), &plain_stop, &mut |_| true)?;
        plain.push(rate(&g));
        let sampler = Sampler::constrained(cfg(seed), Some(grammars.compile(c)?));
        let g = s.generate_with(ids, &[], sampler, &stop, &mut |_| true)?;
        constrained.push(rate(&g));
        r.tokens += g.ids.len();
        masks += g.constraint.masks;
        mask_time += g.constraint.mask_time;
        advance += g.constraint.advance_time;
    }
    r.plain_tok_s = median(plain, |x| *x);
    r.constrained_tok_s = median(constrained, |x| *x);
    r.mask_per_token = mask_time / masks.max(1) as u32;
    r.advance_per_token = advance / masks.max(1) as u32;
    Ok(())
}
