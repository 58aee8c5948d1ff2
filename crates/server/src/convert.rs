//! From OpenAI's parameters to a scheduler job: roles and content parts to
//! [`ChatMessage`]s (image parts become placeholders, their URLs kept for
//! loading), and the sampling, length and stop settings, with the
//! server's limits applied. Pure functions; the images are loaded later
//! ([`load_images`], blocking).

use std::hash::{BuildHasher, Hasher};

use runtime::constraint::Constraint;
use runtime::model::preprocess::RgbImage;
use runtime::model::prompt::{ChatMessage, ContentPart, MessageContent};
use runtime::sampling::SamplingConfig;
use runtime::tools::{self, ToolCall, ToolSet};
use serde_json::Value;

use crate::error::ApiError;
use crate::images::{self, ImageLimits};
use crate::request::{Params, WireContent, WireMessage, WirePart, WireToolCall};

/// The per-request limits the server enforces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most images in one request.
    pub max_images: usize,
    /// Most tokens one request may generate; a larger `max_tokens` is
    /// clamped to it, and a request without one gets it (chat).
    pub max_tokens: usize,
    /// `max_tokens` of a text completion that sets none (OpenAI's 16).
    pub completion_default_tokens: usize,
    /// Most stop strings in one request.
    pub max_stops: usize,
    pub image: ImageLimits,
}

/// What a request asks for besides its prompt.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    pub sampling: SamplingConfig,
    pub max_new_tokens: usize,
    pub stop_strings: Vec<String>,
    pub stream: bool,
    /// `stream_options.include_usage`: a last chunk with the usage.
    pub include_usage: bool,
    /// `ignore_eos` (extension): `max_tokens` are generated whatever comes.
    pub ignore_eos: bool,
    /// `speculative` (extension): speculative decoding on or off for this
    /// request (`None`: as the server was started).
    pub speculative: Option<bool>,
    /// What the output must match (`response_format`), and the request
    /// field it came from (for the error when it does not compile).
    pub constraint: Option<(Constraint, &'static str)>,
    /// `tools` and `tool_choice`.
    pub tools: ToolSet,
}

/// An image part still to be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingImage {
    /// Where it is in the request (`messages[1].content[0].image_url`).
    pub param: String,
    pub url: String,
}

/// A chat request's prompt: messages with image placeholders, and the
/// images in the order of those placeholders.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatPrompt {
    pub messages: Vec<ChatMessage>,
    pub images: Vec<PendingImage>,
}

/// Which endpoint a request came to (they differ in defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completion,
}

/// The messages as the chat template takes them. Roles: `system` (and
/// OpenAI's `developer`, rendered as `system`), `user`, `assistant`, `tool`; other
/// roles are refused. Images are counted against the limit and their URLs
/// checked (scheme, remote allowed) here, before anything is fetched.
pub fn chat_prompt(
    wire: Vec<WireMessage>,
    limits: &Limits,
    has_vision: bool,
    model: &str,
) -> Result<ChatPrompt, ApiError> {
    if wire.is_empty() {
        return Err(ApiError::InvalidParam {
            param: "messages".into(),
            detail: "at least one message is required".into(),
        });
    }
    let mut messages = Vec::with_capacity(wire.len());
    let mut images = Vec::new();
    for (i, m) in wire.into_iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" => "user",
            "assistant" => "assistant",
            "tool" => "tool",
            _ => {
                return Err(ApiError::UnknownRole {
                    param: format!("messages[{i}].role"),
                    role: m.role,
                });
            }
        };
        let calls = history_calls(i, m.tool_calls.as_deref().unwrap_or_default())?;
        let content = match m.content {
            None if role == "assistant" => MessageContent::Text(String::new()),
            None => {
                return Err(ApiError::InvalidParam {
                    param: format!("messages[{i}].content"),
                    detail: "a system or user message needs content".into(),
                });
            }
            Some(WireContent::Text(t)) => MessageContent::Text(t),
            Some(WireContent::Parts(parts)) => {
                let mut out = Vec::with_capacity(parts.len());
                for (j, p) in parts.into_iter().enumerate() {
                    match p {
                        WirePart::Text { text } => out.push(ContentPart::text(text)),
                        WirePart::ImageUrl { image_url } => {
                            let param = format!("messages[{i}].content[{j}].image_url");
                            images::check_url(&image_url.url, &limits.image).map_err(|source| {
                                ApiError::Image {
                                    param: param.clone(),
                                    source,
                                }
                            })?;
                            images.push(PendingImage {
                                param,
                                url: image_url.url,
                            });
                            out.push(ContentPart::image());
                        }
                    }
                }
                MessageContent::Parts(out)
            }
        };
        let content = match (calls, content) {
            (None, c) => c,
            (Some(calls), MessageContent::Text(t)) => MessageContent::Text(calls + &t),
            (Some(calls), MessageContent::Parts(mut parts)) => {
                parts.insert(0, ContentPart::text(calls));
                MessageContent::Parts(parts)
            }
        };
        messages.push(ChatMessage {
            role: role.to_string(),
            content,
        });
    }
    if images.len() > limits.max_images {
        return Err(ApiError::TooManyImages {
            count: images.len(),
            limit: limits.max_images,
        });
    }
    if !images.is_empty() && !has_vision {
        return Err(ApiError::NoVision {
            model: model.to_string(),
        });
    }
    Ok(ChatPrompt { messages, images })
}

/// An assistant turn's `tool_calls` as LFM2 writes them (before its text).
fn history_calls(i: usize, calls: &[WireToolCall]) -> Result<Option<String>, ApiError> {
    if calls.is_empty() {
        return Ok(None);
    }
    let calls = calls
        .iter()
        .enumerate()
        .map(|(j, c)| {
            let arguments = serde_json::from_str::<Value>(&c.function.arguments)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    invalid(
                        &format!("messages[{i}].tool_calls[{j}].function.arguments"),
                        "must be a JSON object in a string",
                    )
                })?;
            Ok(ToolCall {
                name: c.function.name.clone(),
                arguments,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(Some(tools::write_calls(&calls)))
}

/// Loads the images of a prompt, in order (blocking: decoding, maybe fetching).
pub fn load_images(
    pending: &[PendingImage],
    limits: &ImageLimits,
) -> Result<Vec<RgbImage>, ApiError> {
    pending
        .iter()
        .map(|p| {
            images::load(&p.url, &p.param, limits).map_err(|source| ApiError::Image {
                param: p.param.clone(),
                source,
            })
        })
        .collect()
}

/// The one prompt of a text completion.
pub fn completion_prompt(prompt: Vec<String>) -> Result<String, ApiError> {
    let mut prompt = prompt;
    match prompt.len() {
        1 => Ok(prompt.remove(0)),
        n => Err(ApiError::Unsupported {
            param: "prompt".into(),
            detail: format!("one prompt per request is supported, got {n}"),
        }),
    }
}

fn unsupported(param: &str, detail: &str) -> ApiError {
    ApiError::Unsupported {
        param: param.into(),
        detail: detail.into(),
    }
}

/// Refuses the parameters this server does not implement, unless they hold
/// their neutral value.
fn refuse_unsupported(p: &Params) -> Result<(), ApiError> {
    if p.n.is_some_and(|n| n != 1) {
        return Err(unsupported("n", "only n = 1 is supported"));
    }
    if p.best_of.is_some_and(|n| n != 1) {
        return Err(unsupported("best_of", "only best_of = 1 is supported"));
    }
    for (param, v) in [
        ("frequency_penalty", p.frequency_penalty),
        ("presence_penalty", p.presence_penalty),
    ] {
        if v.is_some_and(|v| v != 0.0) {
            return Err(unsupported(
                param,
                "only 0 is supported; use repetition_penalty (> 1 discourages repeats)",
            ));
        }
    }
    let logprobs = match &p.logprobs {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => false,
        Some(serde_json::Value::Number(n)) => n.as_u64() != Some(0),
        Some(_) => true,
    };
    if logprobs || p.top_logprobs.is_some_and(|n| n > 0) {
        return Err(unsupported(
            "logprobs",
            "log probabilities are not supported",
        ));
    }
    if p.logit_bias.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(unsupported("logit_bias", "logit_bias is not supported"));
    }
    if p.echo == Some(true) {
        return Err(unsupported("echo", "echo is not supported"));
    }
    if p.suffix.as_ref().is_some_and(|s| !s.is_empty()) {
        return Err(unsupported("suffix", "suffix is not supported"));
    }
    Ok(())
}

fn invalid(param: &str, detail: impl Into<String>) -> ApiError {
    ApiError::InvalidParam {
        param: param.into(),
        detail: detail.into(),
    }
}

/// `response_format` as a constraint: absent, `null` or `{"type": "text"}`
/// none; `{"type": "json_object"}` any JSON object; `{"type":
/// "json_schema", "json_schema": {"name", "schema", "strict"}}` JSON valid
/// under `schema` (any JSON without one; `strict`: unsupported keywords
/// are errors, else ignored). Extensions: `{"type": "regex", "regex": R}`
/// and `{"type": "grammar", "grammar": LARK}`.
pub fn response_format(f: Option<&Value>) -> Result<Option<Constraint>, ApiError> {
    const P: &str = "response_format";
    let Some(f) = f.filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    let text = |key: &str| -> Result<String, ApiError> {
        f.get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| invalid(&format!("{P}.{key}"), "must be a string"))
    };
    match f.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Constraint::JsonObject)),
        Some("json_schema") => {
            let spec = f
                .get("json_schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| invalid(&format!("{P}.json_schema"), "must be an object"))?;
            let schema = match spec.get("schema") {
                None | Some(Value::Null) => Value::Object(Default::default()),
                Some(s @ (Value::Object(_) | Value::Bool(_))) => s.clone(),
                Some(_) => {
                    return Err(invalid(
                        &format!("{P}.json_schema.schema"),
                        "must be a JSON Schema object",
                    ));
                }
            };
            let strict = match spec.get("strict") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    return Err(invalid(
                        &format!("{P}.json_schema.strict"),
                        "must be a boolean",
                    ));
                }
            };
            Ok(Some(Constraint::JsonSchema { schema, strict }))
        }
        Some("regex") => Ok(Some(Constraint::Regex(text("regex")?))),
        Some("grammar") => Ok(Some(Constraint::Lark(text("grammar")?))),
        Some(other) => Err(invalid(
            &format!("{P}.type"),
            format!(
                "unknown type {other:?} (use text, json_object, json_schema, \
                 or the extensions regex and grammar)"
            ),
        )),
        None => Err(invalid(&format!("{P}.type"), "missing")),
    }
}

/// A fresh seed for a request that names none.
fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// The settings of a request: OpenAI's defaults (temperature 1, top_p 1,
/// no top-k, min-p or repetition penalty), `temperature: 0` for greedy.
pub fn settings(p: &Params, endpoint: Endpoint, limits: &Limits) -> Result<Settings, ApiError> {
    refuse_unsupported(p)?;
    let (param, asked) = match (p.max_completion_tokens, p.max_tokens) {
        (Some(n), _) => ("max_completion_tokens", Some(n)),
        (None, n) => ("max_tokens", n),
    };
    let max_new_tokens = match asked {
        Some(0) => {
            return Err(ApiError::InvalidParam {
                param: param.into(),
                detail: "must be at least 1".into(),
            });
        }
        Some(n) => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(limits.max_tokens),
        None => match endpoint {
            Endpoint::Chat => limits.max_tokens,
            Endpoint::Completion => limits.completion_default_tokens.min(limits.max_tokens),
        },
    };
    let temperature = p.temperature.unwrap_or(1.0);
    let sampling = SamplingConfig {
        greedy: temperature == 0.0,
        temperature,
        top_k: p
            .top_k
            .map_or(0, |k| usize::try_from(k).unwrap_or(usize::MAX)),
        top_p: p.top_p.unwrap_or(1.0),
        min_p: p.min_p.unwrap_or(0.0),
        repetition_penalty: p.repetition_penalty.unwrap_or(1.0),
        seed: p.seed.map_or_else(random_seed, |s| s as u64),
    };
    sampling
        .validate()
        .map_err(|detail| ApiError::InvalidParam {
            param: detail
                .split_whitespace()
                .next()
                .unwrap_or("temperature")
                .to_string(),
            detail,
        })?;
    let stop_strings: Vec<String> = p
        .stop
        .as_ref()
        .map(|s| s.0.iter().filter(|s| !s.is_empty()).cloned().collect())
        .unwrap_or_default();
    if stop_strings.len() > limits.max_stops {
        return Err(ApiError::InvalidParam {
            param: "stop".into(),
            detail: format!(
                "{} stop strings, over the limit of {}",
                stop_strings.len(),
                limits.max_stops
            ),
        });
    }
    let stream = p.stream.unwrap_or(false);
    Ok(Settings {
        sampling,
        max_new_tokens,
        stop_strings,
        stream,
        include_usage: stream
            && p.stream_options
                .as_ref()
                .and_then(|o| o.include_usage)
                .unwrap_or(false),
        ignore_eos: p.ignore_eos.unwrap_or(false),
        speculative: p.speculative,
        constraint: response_format(p.response_format.as_ref())?.map(|c| (c, "response_format")),
        tools: ToolSet {
            parallel: p.parallel_tool_calls.unwrap_or(true),
            ..ToolSet::from_openai(
                p.tools.as_deref().unwrap_or_default(),
                p.tool_choice.as_ref(),
            )
            .map_err(|e| invalid(&e.param, e.detail))?
        },
    })
}

#[cfg(test)]
#[path = "convert_tests.rs"]
mod tests;
