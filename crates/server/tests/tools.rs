//! Tool calls over HTTP with a scripted generator (no model): a reply
//! holding LFM2's call list becomes OpenAI `tool_calls`, whole and
//! streamed (the call markers never reach the content, even split across
//! pieces); an unparsable call is an error object; bad `tools`,
//! `tool_choice` and history calls are 400s naming the field; history
//! calls and tool results reach the prompt in LFM2's format. (The real
//! model, constrained calls included: `tests/serve/test_openai.py` and
//! `tests/tests/structured.rs`.)

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{TestServer, config, post, sse_data};
use serde_json::{Value, json};

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"},
            "days": {"type": "integer"}}, "required": ["city"]}}},
        {"type": "function", "function": {"name": "now"}}])
}

fn body(text: &str, extra: Value) -> String {
    let mut v = json!({"model": "any", "messages": [{"role": "user", "content": text}],
                       "tools": tools()});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v.to_string()
}

#[test]
fn calls_become_openai_tool_calls_whole_and_streamed() {
    let s = TestServer::start(config(), Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let r = post(&url, &body("CALL please", json!({})));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    let m = &v["choices"][0]["message"];
    assert_eq!(m["content"], "Let me check. ");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(m["tool_calls"][0]["type"], "function");
    assert_eq!(m["tool_calls"][0]["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(
        m["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args, json!({"city": "Paris", "days": 2}));
    assert_eq!(m["tool_calls"][1]["function"]["arguments"], "{}");
    let ids: Vec<&str> = (0..2)
        .map(|k| m["tool_calls"][k]["id"].as_str().unwrap())
        .collect();
    assert!(ids[0].starts_with("call_") && ids[0] != ids[1], "{ids:?}");
    assert_eq!(s.seen.tools.load(Ordering::SeqCst), 2);

    let r = post(&url, &body("CALL please", json!({"stream": true})));
    let chunks: Vec<Value> = sse_data(&r.body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, "Let me check. ", "no marker in the content");
    let calls: Vec<&Value> = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"].get("tool_calls"))
        .collect();
    assert_eq!(calls.len(), 1, "{chunks:?}");
    assert_eq!(calls[0][0]["index"], 0);
    assert_eq!(calls[0][1]["index"], 1);
    assert_eq!(calls[0][0]["function"]["name"], "get_weather");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "tool_calls");

    // Without tools the same reply is plain text.
    let plain = json!({"model": "any", "messages": [{"role": "user", "content": "CALL"}]});
    let r = post(&url, &plain.to_string());
    let text = r.json()["choices"][0]["message"]["content"].clone();
    assert!(
        text.as_str().unwrap().contains("<|tool_call_start|>"),
        "{text}"
    );
    // `tool_choice: none`: the tools are not shown, calls not read.
    let r = post(&url, &body("CALL", json!({"tool_choice": "none"})));
    assert!(
        r.json()["choices"][0]["message"]
            .get("tool_calls")
            .is_none()
    );
}

#[test]
fn an_unparsable_call_is_an_error_object() {
    let s = TestServer::start(config(), Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let r = post(&url, &body("BADCALL", json!({})));
    let e = r.error(500);
    assert_eq!(e["code"], "tool_call_parse_error", "{e}");
    assert!(
        e["message"].as_str().unwrap().contains("does not parse"),
        "{e}"
    );
    let r = post(&url, &body("BADCALL", json!({"stream": true})));
    let data = sse_data(&r.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(err["error"]["code"], "tool_call_parse_error", "{err}");
    // The server is still up.
    assert_eq!(post(&url, &body("hi", json!({}))).status, 200);
}

#[test]
fn bad_tools_are_refused_naming_the_field() {
    let s = TestServer::start(config(), Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let msgs = json!([{"role": "user", "content": "hi"}]);
    for (extra, param) in [
        (json!({"tools": [{"type": "browser"}]}), "tools[0].type"),
        (
            json!({"tools": [{"type": "function", "function": {"name": 3}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"tools": tools(), "tool_choice": "always"}),
            "tool_choice",
        ),
        (
            json!({"tools": tools(), "tool_choice": {"type": "function", "function": {"name": "fly"}}}),
            "tool_choice.function.name",
        ),
        (json!({"tool_choice": "required"}), "tool_choice"),
        (
            json!({"messages": [{"role": "assistant", "content": null, "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "now", "arguments": "[1"}}]},
                {"role": "user", "content": "hi"}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
    ] {
        let mut v = json!({"model": "any", "messages": msgs});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let e = post(&url, &v.to_string()).error(400);
        assert_eq!(e["param"], param, "{extra}: {e}");
    }
    let r = post(
        &format!("{}/v1/completions", s.base),
        &json!({"prompt": "x", "tools": tools()}).to_string(),
    );
    assert_eq!(r.error(400)["param"], "tools");
}

#[test]
fn history_calls_and_results_reach_the_prompt_in_lfm2_format() {
    let s = TestServer::start(config(), Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let v = json!({"model": "any", "tools": tools(), "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\", \"days\": 1}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 3}"},
        {"role": "user", "content": "thanks"}]});
    assert_eq!(post(&url, &v.to_string()).status, 200);
    let history = s.seen.history.lock().unwrap().clone();
    assert_eq!(
        history,
        vec![
            "user: Weather?",
            "assistant: <|tool_call_start|>[get_weather(city=\"Oslo\", days=1)]<|tool_call_end|>",
            "tool: {\"temp\": 3}",
            "user: thanks",
        ]
    );
}
