//! OpenAI's request bodies as they arrive: `POST /v1/chat/completions`
//! ([`ChatRequest`]) and `POST /v1/completions` ([`CompletionRequest`]).
//!
//! Fields this server does not know are ignored (as OpenAI-compatible servers
//! do); known fields of the wrong type are refused, naming the field
//! ([`parse_json`]). What the values mean is decided in `convert`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use crate::error::ApiError;

/// Parses a JSON body into `T`; a type error names the field at fault
/// (`messages[0].content`) as OpenAI's `param`.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => ApiError::Json {
                param: (path != ".").then_some(path),
                detail: format!("invalid request: {inner}"),
            },
            _ => ApiError::Json {
                param: None,
                detail: format!("the body is not valid JSON: {inner}"),
            },
        }
    })?;
    de.end().map_err(|e| ApiError::Json {
        param: None,
        detail: format!("the body is not valid JSON: {e}"),
    })?;
    Ok(value)
}

/// The sampling and stopping parameters both endpoints share.
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct Params {
    /// Ignored: the server serves one model (echoed back as the served name).
    pub model: Option<String>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub top_k: Option<u64>,
    pub min_p: Option<f32>,
    pub repetition_penalty: Option<f32>,
    /// Extension (llama.cpp's): generate `max_tokens` whatever comes, EOS
    /// included (benchmarks).
    pub ignore_eos: Option<bool>,
    /// Extension: speculative decoding on or off for this request (off by
    /// default unless the server was started with `--speculative`; on
    /// without it, drafts come from prompt lookup). Output is exact either way.
    pub speculative: Option<bool>,
    pub frequency_penalty: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub seed: Option<i64>,
    pub stop: Option<Stop>,
    pub n: Option<u64>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub logprobs: Option<serde_json::Value>,
    pub top_logprobs: Option<u64>,
    pub logit_bias: Option<serde_json::Map<String, serde_json::Value>>,
    pub best_of: Option<u64>,
    pub echo: Option<bool>,
    pub suffix: Option<String>,
    pub tools: Option<Vec<serde_json::Value>>,
    pub tool_choice: Option<serde_json::Value>,
    pub parallel_tool_calls: Option<bool>,
    pub response_format: Option<serde_json::Value>,
}

/// `POST /v1/chat/completions`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub messages: Vec<WireMessage>,
    pub params: Params,
}

/// `POST /v1/completions`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    pub prompt: PromptInput,
    pub params: Params,
}

/// A request body. (Its own fields and [`Params`] are read in two passes
/// over the bytes rather than with `#[serde(flatten)]`, which loses the
/// path of a type error.)
pub trait ParseBody: Sized {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError>;
}

impl ParseBody for ChatRequest {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Body {
            messages: Vec<WireMessage>,
        }
        let body: Body = parse_json(bytes)?;
        Ok(ChatRequest {
            messages: body.messages,
            params: parse_json(bytes)?,
        })
    }
}

impl ParseBody for CompletionRequest {
    fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        #[derive(Deserialize)]
        struct Body {
            prompt: PromptInput,
        }
        let body: Body = parse_json(bytes)?;
        Ok(CompletionRequest {
            prompt: body.prompt,
            params: parse_json(bytes)?,
        })
    }
}

#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
pub struct StreamOptions {
    pub include_usage: Option<bool>,
}

/// One message: a role and its content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireMessage {
    pub role: String,
    /// `null` (or absent) is allowed for assistant turns only.
    #[serde(default)]
    pub content: Option<WireContent>,
    /// An assistant turn's calls.
    #[serde(default)]
    pub tool_calls: Option<Vec<WireToolCall>>,
}

/// A call in an assistant turn of the history.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireToolCall {
    pub function: WireFunctionCall,
}

/// The function a call names and its arguments: a JSON object as a string.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireFunctionCall {
    pub name: String,
    pub arguments: String,
}

/// A message's content: a string or a list of parts.
#[derive(Debug, Clone, PartialEq)]
pub enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

/// One part of a list content.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WirePart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

/// `{"url": "...", "detail": ...}` or, as some clients send, the URL string itself.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageUrl {
    pub url: String,
}

/// `stop`: a string or a list of strings.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop(pub Vec<String>);

/// `prompt`: a string or a list holding one string.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptInput(pub Vec<String>);

impl<'de> Deserialize<'de> for WireContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WireContent;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of content parts")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<WireContent, E> {
                Ok(WireContent::Text(s.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WireContent, A::Error> {
                let mut parts = Vec::new();
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(WireContent::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ImageUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Obj {
            url: String,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ImageUrl;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a URL string or {\"url\": ...}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ImageUrl, E> {
                Ok(ImageUrl { url: s.to_string() })
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<ImageUrl, A::Error> {
                let o = Obj::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ImageUrl { url: o.url })
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings (`null` is handled by the `Option` around it).
fn string_or_list<'de, D: Deserializer<'de>>(
    d: D,
    what: &'static str,
) -> Result<Vec<String>, D::Error> {
    struct V(&'static str);
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<String>, E> {
            Ok(vec![s.to_string()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
            let mut v = Vec::new();
            while let Some(s) = seq.next_element::<String>()? {
                v.push(s);
            }
            Ok(v)
        }
    }
    d.deserialize_any(V(what))
}

impl<'de> Deserialize<'de> for Stop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_or_list(d, "a string or a list of strings").map(Stop)
    }
}

impl<'de> Deserialize<'de> for PromptInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        string_or_list(d, "a string (or a list holding one string)").map(PromptInput)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_request_parses_openai_shapes() {
        let r = ChatRequest::parse(
            br#"{"model":"x","messages":[
                {"role":"system","content":"be brief"},
                {"role":"user","content":[
                    {"type":"image_url","image_url":{"url":"data:image/png;base64,AAAA","detail":"low"}},
                    {"type":"image_url","image_url":"data:image/png;base64,BBBB"},
                    {"type":"text","text":"What?"}]},
                {"role":"assistant","content":null}],
              "temperature":0,"max_tokens":16,"stop":"\n","seed":-3,
              "stream":true,"stream_options":{"include_usage":true},"unknown_field":[1,2]}"#,
        )
        .unwrap();
        assert_eq!(r.messages.len(), 3);
        assert_eq!(
            r.messages[1].content,
            Some(WireContent::Parts(vec![
                WirePart::ImageUrl {
                    image_url: ImageUrl {
                        url: "data:image/png;base64,AAAA".into()
                    }
                },
                WirePart::ImageUrl {
                    image_url: ImageUrl {
                        url: "data:image/png;base64,BBBB".into()
                    }
                },
                WirePart::Text {
                    text: "What?".into()
                },
            ]))
        );
        assert_eq!(r.messages[2].content, None);
        assert_eq!(r.params.temperature, Some(0.0));
        assert_eq!(r.params.stop, Some(Stop(vec!["\n".into()])));
        assert_eq!(r.params.seed, Some(-3));
        assert_eq!(
            r.params.stream_options.and_then(|o| o.include_usage),
            Some(true)
        );
    }

    #[test]
    fn type_errors_name_the_field() {
        let e = ChatRequest::parse(br#"{"messages":[{"role":"user","content":5}]}"#).unwrap_err();
        assert_eq!(e.param(), Some("messages[0].content"), "{e}");
        let e = ChatRequest::parse(br#"{"messages":[],"temperature":"hot"}"#).unwrap_err();
        assert_eq!(e.param(), Some("temperature"), "{e}");
        let e = ChatRequest::parse(br#"{"messages":[],"stop":[1]}"#).unwrap_err();
        assert_eq!(e.param(), Some("stop[0]"), "{e}");
        let e =
            ChatRequest::parse(br#"{"messages":[{"role":"user","content":[{"type":"video"}]}]}"#)
                .unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
        let e = ChatRequest::parse(br#"{"max_tokens":3}"#).unwrap_err();
        assert!(e.to_string().contains("messages"), "{e}");
    }

    #[test]
    fn syntax_errors_have_no_param() {
        for body in [&b"{"[..], b"not json", b"{\"messages\":[]} trailing", b""] {
            let e = ChatRequest::parse(body).unwrap_err();
            assert_eq!(e.code(), Some("invalid_json"), "{e}");
            assert_eq!(e.param(), None);
        }
    }

    #[test]
    fn prompt_is_a_string_or_a_list() {
        let r = CompletionRequest::parse(br#"{"prompt":"hi","max_tokens":4}"#).unwrap();
        assert_eq!(r.prompt, PromptInput(vec!["hi".into()]));
        let r = CompletionRequest::parse(br#"{"prompt":["a","b"]}"#).unwrap();
        assert_eq!(r.prompt.0.len(), 2);
        assert!(CompletionRequest::parse(br#"{"prompt":3}"#).is_err());
    }
}
