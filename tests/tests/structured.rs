//! Structured output on the random-weight fixture models: under a JSON
//! schema, a regex and a Lark grammar, seeded sampled generations (a random
//! model is the hardest case: it has no idea of JSON) always give output
//! that matches, on the CPU and on wgpu; a `length` finish cuts it short;
//! invalid constraints are typed errors before anything runs.

use std::sync::LazyLock;

use anyhow::{Context, Result, ensure};
use model::prompt::ChatMessage;
use runtime::constraint::Constraint;
use runtime::engine::{BackendChoice, Engine, EngineOptions, Request};
use runtime::sampling::SamplingConfig;
use runtime::session::Finish;
use runtime::speculative::{DraftSource, SpeculativeConfig};
use runtime::tools::ToolSet;
use serde_json::{Value, json};
use tests::fixture_path;

/// Nested objects, an array, an enum, required fields and a string
/// pattern; lengths and ranges bounded so a random model finishes.
fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 12},
            "kind": {"enum": ["cat", "dog", "bird"]},
            "code": {"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"},
            "tags": {"type": "array", "items": {"type": "string", "maxLength": 6}, "maxItems": 3},
            "box": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer", "minimum": 0, "maximum": 999},
                    "y": {"type": "integer", "minimum": 0, "maximum": 999},
                    "ok": {"type": "boolean"}
                },
                "required": ["x", "y"],
                "additionalProperties": false
            }
        },
        "required": ["name", "kind", "code", "box"],
        "additionalProperties": false
    })
}

const REGEX: &str = r"(yes|no): [a-z]{1,8}( [0-9]{1,3}){0,3}\.";

const LARK: &str = r#"
start: sum
sum: term (("+" | "-") term){0,3}
term: NUMBER | "(" sum ")"
NUMBER: /[0-9]{1,3}/
"#;

fn engine(backend: BackendChoice) -> Result<Engine> {
    let opts = EngineOptions {
        backend,
        max_len: 1024,
        ..Default::default()
    };
    let dir = fixture_path("models/tiny-450m");
    Engine::load(dir.to_str().context("path")?, &opts).map_err(Into::into)
}

static DESCRIBE: LazyLock<[ChatMessage; 1]> =
    LazyLock::new(|| [ChatMessage::text("user", "Describe the animal as JSON.")]);

fn request(c: &Constraint, seed: u64, max_new_tokens: usize) -> Request<'static> {
    let mut req = Request::new(&*DESCRIBE);
    req.sampling = SamplingConfig {
        greedy: false,
        temperature: 1.0,
        top_k: 0,
        seed,
        ..SamplingConfig::default()
    };
    req.max_new_tokens = max_new_tokens;
    req.constraint = Some(c.clone());
    req
}

/// `n` seeded generations under `c`; each must finish with `stop` and
/// pass `check`.
fn generations(
    engine: &mut Engine,
    c: &Constraint,
    n: u64,
    check: &dyn Fn(&str) -> Result<()>,
) -> Result<()> {
    let mut tokens = 0;
    for seed in 0..n {
        let out = engine.generate(&request(c, seed, 400), |_| true)?;
        let g = &out.generation;
        tokens += g.ids.len();
        ensure!(
            g.finish == Finish::Stop,
            "{} seed {seed}: finish {:?} after {} tokens: {:?}",
            c.kind(),
            g.finish,
            g.ids.len(),
            out.text
        );
        check(&out.text).with_context(|| format!("{} seed {seed}: {:?}", c.kind(), out.text))?;
    }
    eprintln!("{}: {n} generations, {tokens} tokens", c.kind());
    Ok(())
}

fn all_constraints_hold(engine: &mut Engine, n: u64) -> Result<()> {
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).context("schema")?;
    let c = Constraint::JsonSchema {
        schema: schema.clone(),
        strict: true,
    };
    generations(engine, &c, n, &|text| {
        let v: Value = serde_json::from_str(text).context("not JSON")?;
        if let Err(e) = validator.validate(&v) {
            anyhow::bail!("invalid under the schema: {e}");
        }
        Ok(())
    })?;
    let re = regex_full(REGEX)?;
    generations(engine, &Constraint::Regex(REGEX.into()), n, &|text| {
        ensure!(re.is_match(text), "does not match the regex");
        Ok(())
    })?;
    generations(engine, &Constraint::Lark(LARK.into()), n, &|text| {
        ensure!(arithmetic(text), "not in the grammar's language");
        Ok(())
    })?;
    Ok(())
}

/// The regex anchored at both ends.
fn regex_full(r: &str) -> Result<regex::Regex> {
    Ok(regex::Regex::new(&format!("^(?:{r})$"))?)
}

/// `sum` of [`LARK`], by hand: terms of 1–3 digits or parenthesised
/// sums, joined by at most three `+`/`-`.
fn arithmetic(s: &str) -> bool {
    fn sum(b: &[u8], i: &mut usize) -> bool {
        if !term(b, i) {
            return false;
        }
        let mut ops = 0;
        while *i < b.len() && (b[*i] == b'+' || b[*i] == b'-') {
            ops += 1;
            *i += 1;
            if ops > 3 || !term(b, i) {
                return false;
            }
        }
        true
    }
    fn term(b: &[u8], i: &mut usize) -> bool {
        if *i < b.len() && b[*i] == b'(' {
            *i += 1;
            if !sum(b, i) || *i >= b.len() || b[*i] != b')' {
                return false;
            }
            *i += 1;
            return true;
        }
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        (1..=3).contains(&(*i - start))
    }
    let b = s.as_bytes();
    let mut i = 0;
    sum(b, &mut i) && i == b.len()
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {
                "city": {"type": "string", "maxLength": 10},
                "unit": {"enum": ["c", "f"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 14}},
            "required": ["city"]}}},
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object",
            "properties": {}}}},
        {"type": "function", "function": {"name": "add", "parameters": {"type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
            "required": ["a", "b"], "additionalProperties": false}}}
    ])
}

/// Under `tool_choice` required (and a named function), seeded sampled
/// replies are always a well-formed list of calls of the given tools,
/// each call's arguments valid under its tool's schema.
fn tool_calls_always_validate(engine: &mut Engine, n: u64) -> Result<()> {
    let tools = weather_tools();
    let list = tools.as_array().context("tools")?;
    let validators = list
        .iter()
        .map(|t| {
            let f = &t["function"];
            Ok((
                f["name"].as_str().unwrap_or_default(),
                jsonschema::validator_for(&f["parameters"])?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let named = json!({"type": "function", "function": {"name": "add"}});
    let weather = [ChatMessage::text("user", "What is the weather in Oslo?")];
    for choice in [json!("required"), named] {
        let set = ToolSet::from_openai(list, Some(&choice))?;
        let mut calls = 0;
        for seed in 0..n {
            let mut req = request(&Constraint::JsonObject, seed, 400);
            req.constraint = None;
            req.messages = &weather;
            req.tools = set.clone();
            let out = engine.generate(&req, |_| true)?;
            let g = &out.generation;
            ensure!(
                g.finish == Finish::Stop && !out.tool_calls.is_empty(),
                "{choice} seed {seed}: {:?} {:?}",
                g.finish,
                out.text
            );
            for c in &out.tool_calls {
                let (_, v) = validators
                    .iter()
                    .find(|(name, _)| *name == c.name)
                    .with_context(|| format!("seed {seed}: unknown tool {:?}", c.name))?;
                if let Err(e) = v.validate(&c.arguments) {
                    anyhow::bail!("{choice} seed {seed}: {:?}: {e}", out.text);
                }
                if choice != "required" {
                    ensure!(c.name == "add", "seed {seed}: {:?}", out.text);
                }
            }
            calls += out.tool_calls.len();
        }
        eprintln!("tools {choice}: {n} replies, {calls} calls");
    }
    Ok(())
}

#[test]
fn constrained_sampling_always_matches_on_the_cpu() -> Result<()> {
    all_constraints_hold(&mut engine(BackendChoice::Cpu)?, 100)
}

#[test]
fn required_tool_calls_always_validate_on_the_cpu() -> Result<()> {
    tool_calls_always_validate(&mut engine(BackendChoice::Cpu)?, 100)
}

#[cfg(feature = "wgpu")]
#[test]
fn required_tool_calls_always_validate_on_wgpu() -> Result<()> {
    if tensor::wgpu::gpu_or_skip().is_none() {
        return Ok(());
    }
    tool_calls_always_validate(&mut engine(BackendChoice::Wgpu)?, 25)
}

#[cfg(feature = "wgpu")]
#[test]
fn constrained_sampling_always_matches_on_wgpu() -> Result<()> {
    if tensor::wgpu::gpu_or_skip().is_none() {
        return Ok(());
    }
    all_constraints_hold(&mut engine(BackendChoice::Wgpu)?, 100)
}

/// Speculative decoding under a constraint: drafts the constraint forbids
/// are cut, each verify row is judged with its own mask, and greedy output
/// is plain constrained decoding's, token for token.
#[test]
fn speculative_decoding_keeps_constrained_greedy_output() -> Result<()> {
    let dir = fixture_path("models/tiny-450m");
    let mut plain = engine(BackendChoice::Cpu)?;
    let opts = EngineOptions {
        backend: BackendChoice::Cpu,
        max_len: 1024,
        speculative: Some(SpeculativeConfig {
            source: DraftSource::Ngram,
            draft_max: 8,
        }),
        ..Default::default()
    };
    let mut spec = Engine::load(dir.to_str().context("path")?, &opts)?;
    let tools = weather_tools();
    let set = ToolSet::from_openai(tools.as_array().context("tools")?, Some(&json!("required")))?;
    let cases = [
        Some(Constraint::JsonSchema {
            schema: schema(),
            strict: true,
        }),
        Some(Constraint::Regex(REGEX.into())),
        None,
    ];
    let mut drafted = 0;
    for (k, c) in cases.iter().enumerate() {
        for prompt in ["Describe the animal as JSON.", "name name name: name name"] {
            let messages = [ChatMessage::text("user", prompt)];
            let mut req = request(&Constraint::JsonObject, 0, 120);
            req.sampling = SamplingConfig::default();
            req.constraint = c.clone();
            req.messages = &messages;
            if c.is_none() {
                req.tools = set.clone();
            }
            let a = plain.generate(&req, |_| true)?;
            let b = spec.generate(&req, |_| true)?;
            ensure!(
                a.generation.ids == b.generation.ids,
                "case {k} {prompt:?}: {:?} vs {:?}",
                a.text,
                b.text
            );
            drafted += b.generation.speculative.drafted;
        }
    }
    ensure!(drafted > 0, "nothing was drafted");
    Ok(())
}

#[test]
fn max_tokens_cuts_a_constrained_output_short() -> Result<()> {
    let mut e = engine(BackendChoice::Cpu)?;
    let c = Constraint::JsonSchema {
        schema: schema(),
        strict: true,
    };
    let out = e.generate(&request(&c, 7, 5), |_| true)?;
    ensure!(
        out.generation.finish == Finish::Length,
        "{:?}",
        out.generation.finish
    );
    ensure!(out.generation.ids.len() == 5);
    ensure!(out.text.starts_with('{'), "{:?}", out.text);
    Ok(())
}

#[test]
fn invalid_constraints_are_errors_before_generation() -> Result<()> {
    let mut e = engine(BackendChoice::Cpu)?;
    let bad = [
        (
            Constraint::JsonSchema {
                schema: json!({"type": "object", "properties": {"a": {"type": "nope"}}}),
                strict: true,
            },
            "json_schema",
        ),
        (
            Constraint::JsonSchema {
                schema: json!({"type": "string", "minLength": 5, "maxLength": 2}),
                strict: true,
            },
            "json_schema",
        ),
        // Unsupported keywords are errors when strict (ignored otherwise).
        (
            Constraint::JsonSchema {
                schema: json!({"type": "array", "uniqueItems": true}),
                strict: true,
            },
            "json_schema",
        ),
        (
            Constraint::JsonSchema {
                schema: json!({"$ref": "#/definitions/missing"}),
                strict: false,
            },
            "json_schema",
        ),
        (Constraint::Regex("(unclosed".into()), "regex"),
        (Constraint::Regex(r"(?=a)b".into()), "regex"),
        // Matches nothing: refused, not a hang or an empty output.
        (Constraint::Regex("a[a&&b]".into()), "regex"),
        (Constraint::Regex("a{3}b{2,1}".into()), "regex"),
        (Constraint::Lark("start: undefined_rule".into()), "grammar"),
        (Constraint::Lark("this is not lark".into()), "grammar"),
    ];
    for (c, kind) in bad {
        let err = e
            .generate(&request(&c, 0, 8), |_| true)
            .err()
            .with_context(|| format!("{c:?} must be refused"))?;
        let msg = err.to_string();
        ensure!(
            msg.starts_with(&format!("constraint: {kind}:")),
            "{c:?}: {msg}"
        );
    }
    let lenient = Constraint::JsonSchema {
        schema: json!({"type": "array", "uniqueItems": true, "maxItems": 2}),
        strict: false,
    };
    let out = e.generate(&request(&lenient, 0, 300), |_| true)?;
    let v: Value = serde_json::from_str(&out.text).context("lenient: not JSON")?;
    ensure!(v.as_array().is_some_and(|a| a.len() <= 2), "{v}");
    // The engine still works after the refusals.
    let ok = Constraint::Regex("[a-z]{3}".into());
    let out = e.generate(&request(&ok, 0, 8), |_| true)?;
    ensure!(
        regex_full("[a-z]{3}")?.is_match(&out.text),
        "{:?}",
        out.text
    );
    Ok(())
}
