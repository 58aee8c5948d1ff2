//! The HTTP layer on loopback over a scripted generator (no model): the
//! OpenAI shapes of replies and streams, every error as OpenAI's JSON with
//! the server still up afterwards, the API key, `/health` while loading,
//! cancellation when the client hangs up, and graceful shutdown. (The real
//! model behind the same routes: `crates/cli/tests/serve.rs` and
//! `tests/serve/test_openai.py`.)

mod common;

use std::io::{Read, Write};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::{TestServer, config, get, post, post_with, sse_data};
use serde_json::{Value, json};

fn chat_body(text: &str, extra: Value) -> String {
    let mut v = json!({"model": "any", "messages": [{"role": "user", "content": text}]});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    v.to_string()
}

fn wait_until(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(10), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn health_says_loading_until_the_model_is_there() {
    let s = TestServer::start(config(), Duration::from_millis(600));
    let h = get(&format!("{}/health", s.base), None);
    assert_eq!((h.status, h.json()), (503, json!({"status": "loading"})));
    let e = post(
        &format!("{}/v1/chat/completions", s.base),
        &chat_body("hi", json!({})),
    );
    assert_eq!(e.error(503)["code"], "model_loading");
    assert_eq!(e.retry_after.as_deref(), Some("1"));
    wait_until("loaded", || {
        get(&format!("{}/health", s.base), None).status == 200
    });
    assert_eq!(
        get(&format!("{}/health", s.base), None).json(),
        json!({"status": "ok"})
    );
    let m = get(&format!("{}/v1/models", s.base), None).json();
    assert_eq!(m["object"], "list");
    assert_eq!(m["data"][0]["id"], "scripted");
    assert_eq!(m["data"][0]["object"], "model");
    let one = get(&format!("{}/v1/models/scripted", s.base), None);
    assert_eq!(one.json()["id"], "scripted");
    get(&format!("{}/v1/models/other", s.base), None).error(404);
}

#[test]
fn chat_and_completion_replies_have_openai_shapes() {
    let s = TestServer::start(config(), Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let r = post(&url, &chat_body("hello", json!({"temperature": 0})));
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["object"], "chat.completion");
    assert!(v["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(v["model"], "scripted");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "echo: hello");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9})
    );
    assert!(s.seen.greedy.load(Ordering::SeqCst));
    assert_eq!(s.seen.max_new_tokens.load(Ordering::SeqCst), 50);

    let r = post(&url, &chat_body("hello", json!({"max_tokens": 2})));
    assert_eq!(r.json()["choices"][0]["finish_reason"], "length");
    assert!(!s.seen.greedy.load(Ordering::SeqCst));

    let r = post(
        &format!("{}/v1/completions", s.base),
        r#"{"prompt":"once","max_tokens":1000}"#,
    );
    let v = r.json();
    assert_eq!(v["object"], "text_completion");
    assert_eq!(v["choices"][0]["text"], "echo: once");
    assert_eq!(s.seen.max_new_tokens.load(Ordering::SeqCst), 50, "clamped");
    post(&format!("{}/v1/completions", s.base), r#"{"prompt":"x"}"#);
    assert_eq!(s.seen.max_new_tokens.load(Ordering::SeqCst), 16, "default");
}

#[test]
fn streams_send_role_then_content_then_finish_then_usage() {
    let s = TestServer::start(config(), Duration::ZERO);
    let r = post(
        &format!("{}/v1/chat/completions", s.base),
        &chat_body(
            "hi",
            json!({"stream": true, "stream_options": {"include_usage": true}}),
        ),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let data = sse_data(&r.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert!(chunks.windows(2).all(|w| w[0]["id"] == w[1]["id"]));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "echo: hi");
    let n = chunks.len();
    assert_eq!(chunks[n - 2]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[n - 1]["choices"], json!([]));
    assert_eq!(chunks[n - 1]["usage"]["total_tokens"], 9);

    // Text completions stream `text`, no role chunk, no usage unless asked.
    let r = post(
        &format!("{}/v1/completions", s.base),
        r#"{"prompt":"p","stream":true}"#,
    );
    let data = sse_data(&r.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "echo: p");
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[test]
fn bad_requests_get_openai_errors_and_the_server_stays_up() {
    let s = TestServer::start(config(), Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let png = "data:image/png;base64,iVBORw0KGgo=";
    let img = json!({"type": "image_url", "image_url": {"url": png}});
    let cases: Vec<(String, u16, Option<&str>)> = vec![
        ("{not json".into(), 400, Some("invalid_json")),
        (r#"{"messages":"hi"}"#.into(), 400, Some("invalid_type")),
        (
            chat_body("x", json!({"temperature": "hot"})),
            400,
            Some("invalid_type"),
        ),
        (
            chat_body("x", json!({"max_tokens": -1})),
            400,
            Some("invalid_type"),
        ),
        (
            chat_body("x", json!({"n": 2})),
            400,
            Some("unsupported_parameter"),
        ),
        (
            r#"{"messages":[{"role":"function","content":"x"}]}"#.into(),
            400,
            Some("unknown_role"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [img, img, img]}]}).to_string(),
            400,
            Some("too_many_images"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [img]}]}).to_string(),
            400,
            Some("invalid_image"),
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": "https://example.com/a.png"}]}]})
            .to_string(),
            400,
            Some("invalid_image"),
        ),
        (chat_body("BUSY", json!({})), 503, Some("server_busy")),
        (chat_body("FAIL", json!({})), 500, None),
        ("x".repeat(100 << 10), 413, Some("body_too_large")),
    ];
    for (body, status, code) in cases {
        let r = post(&url, &body);
        let e = r.error(status);
        assert_eq!(e["code"].as_str(), code, "{}", r.body);
        if status == 503 {
            assert_eq!(r.retry_after.as_deref(), Some("1"));
        }
        assert_eq!(get(&format!("{}/health", s.base), None).status, 200);
    }
    let r = post_with(&url, &chat_body("x", json!({})), None, None);
    assert_eq!(r.error(415)["code"], "unsupported_media_type");
    let r = post_with(&url, &chat_body("x", json!({})), Some("text/plain"), None);
    r.error(415);
    let r = get(&url, None);
    assert_eq!(r.error(405)["code"], "method_not_allowed");
    let r = get(&format!("{}/v1/nothing", s.base), None);
    assert_eq!(r.error(404)["code"], "unknown_url");
    // A failure after the stream started: an error event, then [DONE].
    let r = post(&url, &chat_body("FAIL", json!({"stream": true})));
    assert_eq!(r.status, 200);
    let data = sse_data(&r.body);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let err: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("device was lost")
    );
    // Still serving.
    assert_eq!(post(&url, &chat_body("ok", json!({}))).status, 200);
}

#[test]
fn an_oversized_body_is_refused_even_when_sent_whole_first() {
    let s = TestServer::start(config(), Duration::ZERO);
    let addr = s.base.trim_start_matches("http://");
    // 1 MiB against a 64 KiB limit, written in full before reading.
    let body = vec![b' '; 1 << 20];
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    c.write_all(&body).unwrap();
    let mut resp = String::new();
    c.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("body_too_large"), "{resp}");
}

#[test]
fn the_api_key_guards_v1_but_not_health() {
    let mut cfg = config();
    cfg.api_key = Some("sekret".into());
    let s = TestServer::start(cfg, Duration::ZERO);
    let url = format!("{}/v1/chat/completions", s.base);
    let body = chat_body("hi", json!({}));
    let r = post(&url, &body);
    assert_eq!(r.error(401)["code"], "invalid_api_key");
    post_with(&url, &body, Some("application/json"), Some("wrong")).error(401);
    let ok = post_with(&url, &body, Some("application/json"), Some("sekret"));
    assert_eq!(ok.status, 200, "{}", ok.body);
    get(&format!("{}/v1/models", s.base), None).error(401);
    assert_eq!(
        get(&format!("{}/v1/models", s.base), Some("sekret")).status,
        200
    );
    assert_eq!(get(&format!("{}/health", s.base), None).status, 200);
}

/// Reads one SSE stream's head on a raw connection until `needle` appears.
fn open_stream(base: &str, body: &str, needle: &str) -> std::net::TcpStream {
    let addr = base.trim_start_matches("http://");
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        c,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains(needle) {
        let n = c.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "stream closed early: {}",
            String::from_utf8_lossy(&got)
        );
        got.extend_from_slice(&buf[..n]);
    }
    c
}

#[test]
fn a_client_that_hangs_up_cancels_its_job() {
    let s = TestServer::start(config(), Duration::ZERO);
    let c = open_stream(
        &s.base,
        &chat_body("SLOW", json!({"stream": true})),
        "\"content\":\"x\"",
    );
    drop(c);
    wait_until("the job was cancelled", || {
        s.seen.cancelled.load(Ordering::SeqCst)
    });
    assert_eq!(get(&format!("{}/health", s.base), None).status, 200);
}

#[test]
fn shutdown_ends_streams_and_stops_the_generator() {
    let mut s = TestServer::start(config(), Duration::ZERO);
    let mut c = open_stream(
        &s.base,
        &chat_body("SLOW", json!({"stream": true})),
        "\"content\":\"x\"",
    );
    let t = Instant::now();
    let result = s.stop().expect("server ran");
    assert!(result.is_ok(), "{result:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert!(s.seen.shutdown.load(Ordering::SeqCst));
    let mut rest = String::new();
    let _ = c.read_to_string(&mut rest);
    assert!(rest.contains("shutting_down"), "{rest}");
    assert!(rest.contains("data: [DONE]"), "{rest}");
}

#[test]
fn a_client_that_hangs_up_before_a_whole_reply_cancels_its_job() {
    let s = TestServer::start(config(), Duration::ZERO);
    let addr = s.base.trim_start_matches("http://");
    let body = chat_body("SLOW", json!({}));
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    write!(
        c,
        "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    wait_until("the job started", || {
        s.seen.jobs.load(Ordering::SeqCst) == 1
    });
    drop(c);
    wait_until("the job was cancelled", || {
        s.seen.cancelled.load(Ordering::SeqCst)
    });
}

/// Serves `body` once per connection on a loopback port, as an HTTP/1.0 200.
fn one_file_server(body: Vec<u8>) -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { return };
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf);
            let _ = write!(
                c,
                "HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = c.write_all(&body);
        }
    });
    format!("http://{addr}/image.png")
}

#[test]
fn remote_images_are_fetched_only_when_allowed_and_within_the_byte_limit() {
    let mut png = std::io::Cursor::new(Vec::new());
    runtime::model::preprocess::image::RgbImage::new(16, 8)
        .write_to(
            &mut png,
            runtime::model::preprocess::image::ImageFormat::Png,
        )
        .unwrap();
    let png = png.into_inner();
    let url = one_file_server(png.clone());
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}, {"type": "text", "text": "hi"}]}]})
    .to_string();

    let s = TestServer::start(config(), Duration::ZERO);
    let chat = format!("{}/v1/chat/completions", s.base);
    let r = post(&chat, &body);
    assert!(
        r.error(400)["message"]
            .as_str()
            .unwrap()
            .contains("--allow-remote-images")
    );

    let mut cfg = config();
    cfg.limits.image.allow_remote = true;
    let s = TestServer::start(cfg.clone(), Duration::ZERO);
    let chat = format!("{}/v1/chat/completions", s.base);
    let r = post(&chat, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.seen.images.load(Ordering::SeqCst), 1);

    cfg.limits.image.max_bytes = png.len() as u64 - 1;
    let s = TestServer::start(cfg, Duration::ZERO);
    let r = post(&format!("{}/v1/chat/completions", s.base), &body);
    let e = r.error(400);
    assert_eq!(e["code"], "invalid_image");
    assert!(
        e["message"].as_str().unwrap().contains("over the limit"),
        "{e}"
    );
}
