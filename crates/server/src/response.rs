//! OpenAI's response bodies: `chat.completion` and `text_completion`
//! objects, their streamed chunks (`chat.completion.chunk`: the role first,
//! then content deltas, then the finish reason, then, when asked, a usage
//! chunk with no choices), and `/v1/models`.

use std::hash::{BuildHasher, Hasher};

use runtime::session::Finish;
use runtime::tools::ToolCall;
use serde_json::{Value, json};

use crate::convert::Endpoint;

/// Token counts of one request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

impl Usage {
    pub fn to_json(self) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        })
    }
}

/// OpenAI's `finish_reason`: `stop` (an end token or a stop string) or
/// `length` (`max_tokens`, or the context is full). `None` for a
/// cancelled job, which gets no reply.
pub fn finish_reason(f: Finish) -> Option<&'static str> {
    match f {
        Finish::Stop => Some("stop"),
        Finish::Length | Finish::Context => Some("length"),
        Finish::Cancelled => None,
    }
}

/// The finish reason of a reply that made calls: `tool_calls`, unless it
/// was cut short.
pub fn calls_finish(finish: Option<&str>) -> Option<&str> {
    match finish {
        Some("stop") => Some("tool_calls"),
        other => other,
    }
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What every object of one reply shares.
#[derive(Clone, Debug)]
pub struct Reply {
    pub endpoint: Endpoint,
    pub id: String,
    pub created: u64,
    pub model: String,
    /// Streamed chunks carry `"usage": null` until the usage chunk
    /// (`stream_options.include_usage`).
    pub include_usage: bool,
    /// The request gave tools: the reply's calls become `tool_calls`.
    pub tools: bool,
}

impl Reply {
    /// A reply with a fresh id (`chatcmpl-…` / `cmpl-…`).
    pub fn new(endpoint: Endpoint, model: &str, include_usage: bool) -> Reply {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(unix_now());
        let prefix = match endpoint {
            Endpoint::Chat => "chatcmpl",
            Endpoint::Completion => "cmpl",
        };
        Reply {
            endpoint,
            id: format!("{prefix}-{:016x}", h.finish()),
            created: unix_now(),
            model: model.to_string(),
            include_usage,
            tools: false,
        }
    }

    fn object(&self, streamed: bool) -> &'static str {
        match (self.endpoint, streamed) {
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
            (Endpoint::Completion, _) => "text_completion",
        }
    }

    /// The whole (non-streamed) response.
    pub fn full(&self, text: &str, finish: Option<&str>, usage: Usage) -> Value {
        self.full_with_calls(text, &[], finish, usage)
    }

    /// [`Reply::full`] of a chat reply that made tool `calls` (the
    /// content `null` when it is empty, the finish `tool_calls`).
    pub fn full_with_calls(
        &self,
        text: &str,
        calls: &[ToolCall],
        finish: Option<&str>,
        usage: Usage,
    ) -> Value {
        let choice = match self.endpoint {
            Endpoint::Chat if !calls.is_empty() => json!({
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": (!text.is_empty()).then_some(text),
                    "tool_calls": self.calls_json(calls, false),
                },
                "logprobs": null,
                "finish_reason": calls_finish(finish),
            }),
            Endpoint::Chat => json!({
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "logprobs": null,
                "finish_reason": finish,
            }),
            Endpoint::Completion => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": finish,
            }),
        };
        json!({
            "id": self.id,
            "object": self.object(false),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [choice],
            "usage": usage.to_json(),
        })
    }

    fn chunk(&self, choice: Value) -> Value {
        let mut v = json!({
            "id": self.id,
            "object": self.object(true),
            "created": self.created,
            "model": self.model,
            "system_fingerprint": null,
            "choices": [choice],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        v
    }

    /// The first chunk of a chat stream: the assistant's role (no chunk
    /// for a text completion).
    pub fn role_chunk(&self) -> Option<Value> {
        (self.endpoint == Endpoint::Chat).then(|| {
            self.chunk(json!({
                "index": 0,
                "delta": {"role": "assistant", "content": ""},
                "logprobs": null,
                "finish_reason": null,
            }))
        })
    }

    /// A chunk of generated text.
    pub fn text_chunk(&self, text: &str) -> Value {
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0, "delta": {"content": text}, "logprobs": null, "finish_reason": null,
            }),
            Endpoint::Completion => json!({
                "index": 0, "text": text, "logprobs": null, "finish_reason": null,
            }),
        })
    }

    /// OpenAI's `tool_calls` entries (`index` added in streamed deltas).
    fn calls_json(&self, calls: &[ToolCall], streamed: bool) -> Value {
        let entries = calls.iter().enumerate().map(|(k, c)| {
            let mut v = json!({
                "id": format!("call_{}_{k}", self.id.rsplit('-').next().unwrap_or_default()),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments.to_string()},
            });
            if streamed {
                v["index"] = json!(k);
            }
            v
        });
        Value::Array(entries.collect())
    }

    /// A chat chunk carrying the reply's tool calls (whole, one delta).
    pub fn calls_chunk(&self, calls: &[ToolCall]) -> Value {
        self.chunk(json!({
            "index": 0,
            "delta": {"tool_calls": self.calls_json(calls, true)},
            "logprobs": null,
            "finish_reason": null,
        }))
    }

    /// The chunk that ends the choice.
    pub fn finish_chunk(&self, finish: Option<&str>) -> Value {
        self.chunk(match self.endpoint {
            Endpoint::Chat => json!({
                "index": 0, "delta": {}, "logprobs": null, "finish_reason": finish,
            }),
            Endpoint::Completion => json!({
                "index": 0, "text": "", "logprobs": null, "finish_reason": finish,
            }),
        })
    }

    /// The last chunk with `stream_options.include_usage`: no choices.
    pub fn usage_chunk(&self, usage: Usage) -> Value {
        let mut v = self.chunk(Value::Null);
        v["choices"] = json!([]);
        v["usage"] = usage.to_json();
        v
    }
}

/// One entry of `/v1/models`.
pub fn model_object(name: &str, created: u64) -> Value {
    json!({"id": name, "object": "model", "created": created, "owned_by": "lfm2vl"})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_have_openai_shapes() {
        let r = Reply::new(Endpoint::Chat, "m", true);
        assert!(r.id.starts_with("chatcmpl-"));
        let c = r.role_chunk().unwrap();
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["choices"][0]["delta"]["role"], "assistant");
        assert!(c["usage"].is_null() && c.get("usage").is_some());
        assert_eq!(r.text_chunk("hi")["choices"][0]["delta"]["content"], "hi");
        let f = r.finish_chunk(Some("stop"));
        assert_eq!(f["choices"][0]["finish_reason"], "stop");
        let u = r.usage_chunk(Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
        });
        assert_eq!(u["choices"], json!([]));
        assert_eq!(u["usage"]["total_tokens"], 5);

        let r = Reply::new(Endpoint::Completion, "m", false);
        assert!(r.role_chunk().is_none());
        let c = r.text_chunk("x");
        assert_eq!(c["object"], "text_completion");
        assert_eq!(c["choices"][0]["text"], "x");
        assert!(c.get("usage").is_none());
        let full = r.full("x", Some("length"), Usage::default());
        assert_eq!(full["choices"][0]["finish_reason"], "length");
    }

    #[test]
    fn context_and_length_both_finish_with_length() {
        assert_eq!(finish_reason(Finish::Context), Some("length"));
        assert_eq!(finish_reason(Finish::Length), Some("length"));
        assert_eq!(finish_reason(Finish::Stop), Some("stop"));
    }
}
