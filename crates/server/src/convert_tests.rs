//! Unit tests of `convert`: roles, parts, limits and the parameter mapping.

use std::time::Duration;

use super::*;
use crate::request::{ChatRequest, ParseBody};

fn limits() -> Limits {
    Limits {
        max_images: 2,
        max_tokens: 100,
        completion_default_tokens: 16,
        max_stops: 4,
        image: ImageLimits {
            max_pixels: 1 << 20,
            max_bytes: 1 << 20,
            allow_remote: false,
            fetch_timeout: Duration::from_secs(1),
        },
    }
}

fn chat(json: &str) -> ChatRequest {
    ChatRequest::parse(json.as_bytes()).unwrap()
}

fn prompt(json: &str) -> Result<ChatPrompt, ApiError> {
    chat_prompt(chat(json).messages, &limits(), true, "m")
}

#[test]
fn messages_become_chat_messages_with_image_placeholders() {
    let p = prompt(
        r#"{"messages":[{"role":"developer","content":"sys"},
            {"role":"user","content":[{"type":"text","text":"a"},
                {"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},
            {"role":"assistant","content":null}]}"#,
    )
    .unwrap();
    assert_eq!(p.messages[0], ChatMessage::text("system", "sys"));
    assert_eq!(
        p.messages[1],
        ChatMessage::parts("user", vec![ContentPart::text("a"), ContentPart::image()])
    );
    assert_eq!(p.messages[2], ChatMessage::text("assistant", ""));
    assert_eq!(
        p.images,
        vec![PendingImage {
            param: "messages[1].content[1].image_url".into(),
            url: "data:image/png;base64,AA==".into()
        }]
    );
}

#[test]
fn bad_messages_are_refused_with_their_param() {
    let e = prompt(r#"{"messages":[{"role":"function","content":"x"}]}"#).unwrap_err();
    assert_eq!(e.code(), Some("unknown_role"));
    assert_eq!(e.param(), Some("messages[0].role"));
    assert!(e.to_string().contains("unknown role"));
    let e = prompt(r#"{"messages":[]}"#).unwrap_err();
    assert_eq!(e.param(), Some("messages"));
    let e = prompt(r#"{"messages":[{"role":"user"}]}"#).unwrap_err();
    assert_eq!(e.param(), Some("messages[0].content"));
    let e = prompt(
        r#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":"http://x/a.png"}]}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("invalid_image"));
    assert!(e.to_string().contains("--allow-remote-images"), "{e}");
    let img = r#"{"type":"image_url","image_url":"data:image/png;base64,AA=="}"#;
    let e = prompt(&format!(
        r#"{{"messages":[{{"role":"user","content":[{img},{img},{img}]}}]}}"#
    ))
    .unwrap_err();
    assert_eq!(e.code(), Some("too_many_images"));
    let e = chat_prompt(
        chat(&format!(
            r#"{{"messages":[{{"role":"user","content":[{img}]}}]}}"#
        ))
        .messages,
        &limits(),
        false,
        "text-only",
    )
    .unwrap_err();
    assert_eq!(e.code(), Some("images_not_supported"));
}

#[test]
fn settings_follow_openai_defaults_and_limits() {
    let s = settings(&Params::default(), Endpoint::Chat, &limits()).unwrap();
    assert!(!s.sampling.greedy);
    assert_eq!(s.sampling.temperature, 1.0);
    assert_eq!(s.sampling.top_k, 0);
    assert_eq!(s.max_new_tokens, 100);
    let s = settings(&Params::default(), Endpoint::Completion, &limits()).unwrap();
    assert_eq!(s.max_new_tokens, 16);

    let p = chat(
        r#"{"messages":[],"temperature":0,"max_tokens":1000,"stop":["a","","b"],"seed":7,
            "top_k":5,"stream":true,"stream_options":{"include_usage":true}}"#,
    )
    .params;
    let s = settings(&p, Endpoint::Chat, &limits()).unwrap();
    assert!(s.sampling.greedy);
    assert_eq!(s.max_new_tokens, 100, "clamped to the cap");
    assert_eq!(s.stop_strings, ["a", "b"]);
    assert_eq!(s.sampling.seed, 7);
    assert_eq!(s.sampling.top_k, 5);
    assert!(s.stream && s.include_usage);

    let p = chat(r#"{"messages":[],"max_tokens":10,"max_completion_tokens":20}"#).params;
    assert_eq!(
        settings(&p, Endpoint::Chat, &limits())
            .unwrap()
            .max_new_tokens,
        20
    );
}

#[test]
fn unsupported_and_invalid_parameters_are_refused() {
    for (body, param) in [
        (r#"{"messages":[],"n":2}"#, "n"),
        (
            r#"{"messages":[],"frequency_penalty":0.5}"#,
            "frequency_penalty",
        ),
        (r#"{"messages":[],"logprobs":true}"#, "logprobs"),
        (
            r#"{"messages":[],"tools":[{"type":"function"}]}"#,
            "tools[0].function.name",
        ),
        (
            r#"{"messages":[],"response_format":{"type":"xml"}}"#,
            "response_format.type",
        ),
        (
            r#"{"messages":[],"response_format":{"type":"json_schema"}}"#,
            "response_format.json_schema",
        ),
        (
            r#"{"messages":[],"response_format":{"type":"json_schema",
                "json_schema":{"name":"x","schema":[1]}}}"#,
            "response_format.json_schema.schema",
        ),
        (
            r#"{"messages":[],"response_format":{"type":"json_schema",
                "json_schema":{"name":"x","strict":"yes"}}}"#,
            "response_format.json_schema.strict",
        ),
        (
            r#"{"messages":[],"response_format":{"type":"regex"}}"#,
            "response_format.regex",
        ),
        (r#"{"messages":[],"max_tokens":0}"#, "max_tokens"),
        (r#"{"messages":[],"top_p":1.5}"#, "top_p"),
        (r#"{"messages":[],"temperature":-1}"#, "temperature"),
        (
            r#"{"messages":[],"repetition_penalty":0}"#,
            "repetition_penalty",
        ),
        (r#"{"messages":[],"stop":["a","b","c","d","e"]}"#, "stop"),
    ] {
        let e = settings(&chat(body).params, Endpoint::Chat, &limits()).unwrap_err();
        assert_eq!(e.param(), Some(param), "{body}: {e}");
        assert_eq!(e.status().as_u16(), 400);
    }
    // Neutral values pass.
    let p = chat(
        r#"{"messages":[],"n":1,"frequency_penalty":0,"presence_penalty":0,"logprobs":false,
            "response_format":{"type":"text"},"tools":[]}"#,
    )
    .params;
    settings(&p, Endpoint::Chat, &limits()).unwrap();
}

#[test]
fn response_formats_become_constraints() {
    use runtime::constraint::Constraint;
    let of = |body: &str| {
        let p = chat(body).params;
        settings(&p, Endpoint::Chat, &limits())
            .unwrap()
            .constraint
            .map(|(c, param)| {
                assert_eq!(param, "response_format");
                c
            })
    };
    assert_eq!(of(r#"{"messages":[]}"#), None);
    assert_eq!(of(r#"{"messages":[],"response_format":null}"#), None);
    assert_eq!(
        of(r#"{"messages":[],"response_format":{"type":"json_object"}}"#),
        Some(Constraint::JsonObject)
    );
    assert_eq!(
        of(r#"{"messages":[],"response_format":{"type":"json_schema",
              "json_schema":{"name":"a","strict":true,"schema":{"type":"integer"}}}}"#),
        Some(Constraint::JsonSchema {
            schema: serde_json::json!({"type": "integer"}),
            strict: true
        })
    );
    assert_eq!(
        of(
            r#"{"messages":[],"response_format":{"type":"json_schema","json_schema":{"name":"a"}}}"#
        ),
        Some(Constraint::JsonSchema {
            schema: serde_json::json!({}),
            strict: false
        })
    );
    assert_eq!(
        of(r#"{"messages":[],"response_format":{"type":"regex","regex":"[0-9]+"}}"#),
        Some(Constraint::Regex("[0-9]+".into()))
    );
    assert_eq!(
        of(r#"{"messages":[],"response_format":{"type":"grammar","grammar":"start: \"a\""}}"#),
        Some(Constraint::Lark("start: \"a\"".into()))
    );
}

#[test]
fn one_completion_prompt() {
    assert_eq!(completion_prompt(vec!["x".into()]).unwrap(), "x");
    assert!(completion_prompt(vec![]).is_err());
    assert!(completion_prompt(vec!["a".into(), "b".into()]).is_err());
}
