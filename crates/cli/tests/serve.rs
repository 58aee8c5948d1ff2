//! `lfm2vl serve` end to end: the real binary on loopback (`--port 0`) over
//! the tiny fixture checkpoint. `/health`, `/v1/models`, greedy chats (text
//! and an image as a data: URI) equal to `lfm2vl generate --greedy`, every
//! kind of bad request answered with a 4xx and OpenAI's error JSON while the
//! server stays up, and the API key. (Streaming, concurrency and the
//! official client: `tests/serve/test_openai.py`; the HTTP layer in
//! detail over a scripted model: `crates/server/tests/http.rs`.)

use std::io::{BufRead, BufReader, Cursor};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use runtime::model::preprocess::image::{ImageFormat, RgbImage};
use serde_json::{Value, json};
use tests::fixture_path;

/// The context the server runs with: a long prompt overflows it.
const MAX_LEN: &str = "320";

/// A running `lfm2vl serve`, killed on drop.
struct Serve {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Serve {
    fn start(test: &str, extra: &[&str]) -> Result<Serve> {
        let dir = std::env::temp_dir().join(format!("lfm2vl-serve-{}-{test}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let log = dir.join("stderr.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_lfm2vl"))
            .env("LFM_THREADS", "2")
            .args([
                "serve",
                "--port",
                "0",
                "--backend",
                "cpu",
                "--max-len",
                MAX_LEN,
            ])
            .args(["--max-body-bytes", "262144", "--max-images", "2"])
            .arg("--model")
            .arg(fixture_path("models/tiny-450m"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .context("starting lfm2vl serve")?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let mut s = Serve {
            child,
            base: String::new(),
            log,
        };
        let Some(base) = line.trim().strip_prefix("listening on ") else {
            bail!("first line {line:?}; stderr: {}", s.stderr());
        };
        s.base = base.to_string();
        let t = Instant::now();
        loop {
            let h = s.get("/health", None);
            if h.status == 200 {
                ensure!(h.json()? == json!({"status": "ok"}), "{}", h.body);
                break;
            }
            ensure!(h.status == 503, "health {}: {}", h.status, h.body);
            ensure!(h.json()? == json!({"status": "loading"}), "{}", h.body);
            if t.elapsed() > Duration::from_secs(120) || s.child.try_wait()?.is_some() {
                bail!("never became healthy; stderr: {}", s.stderr());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(s)
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn get(&self, path: &str, key: Option<&str>) -> Answer {
        let mut r = ureq::get(&format!("{}{path}", self.base)).timeout(Duration::from_secs(60));
        if let Some(k) = key {
            r = r.set("Authorization", &format!("Bearer {k}"));
        }
        answer(r.call())
    }

    fn post(&self, path: &str, body: &str, key: Option<&str>) -> Answer {
        let mut r = ureq::post(&format!("{}{path}", self.base))
            .timeout(Duration::from_secs(120))
            .set("Content-Type", "application/json");
        if let Some(k) = key {
            r = r.set("Authorization", &format!("Bearer {k}"));
        }
        answer(r.send_string(body))
    }

    fn chat(&self, body: &Value) -> Answer {
        self.post("/v1/chat/completions", &body.to_string(), None)
    }

    /// Asserts the server still answers.
    fn alive(&self) -> Result<()> {
        let h = self.get("/health", None);
        ensure!(h.status == 200, "health {} after an error", h.status);
        ensure!(self.child_running(), "the server exited");
        Ok(())
    }

    fn child_running(&self) -> bool {
        // try_wait needs &mut; a process that exited is gone from /proc.
        Path::new(&format!("/proc/{}", self.child.id())).exists()
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {}", self.body))
    }

    /// Checks an OpenAI error body with this status; returns its `code`.
    fn error(&self, status: u16) -> Result<String> {
        ensure!(
            self.status == status,
            "status {}: {}",
            self.status,
            self.body
        );
        let e = &self.json()?["error"];
        ensure!(
            e["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        ensure!(e["type"].is_string(), "{}", self.body);
        ensure!(
            e.get("param").is_some() && e.get("code").is_some(),
            "{}",
            self.body
        );
        Ok(e["code"].as_str().unwrap_or("").to_string())
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    let resp = match r {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => {
            return Answer {
                status: 0,
                body: e.to_string(),
            };
        }
    };
    Answer {
        status: resp.status(),
        body: resp.into_string().unwrap_or_default(),
    }
}

fn data_uri(bytes: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

fn png(width: u32, height: u32) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    RgbImage::new(width, height).write_to(&mut out, ImageFormat::Png)?;
    Ok(out.into_inner())
}

/// A PNG whose header says 0×0 (encoders refuse to write one).
fn png_0x0() -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in bytes {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
        }
        !c
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let body: Vec<u8> = kind.iter().chain(data).copied().collect();
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    };
    // width 0, height 0, bit depth 8, colour type 2 (RGB), no interlace.
    chunk(b"IHDR", &[0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0]);
    chunk(b"IEND", &[]);
    out
}

fn image_chat(url: &str, text: &str, max_tokens: usize) -> Value {
    json!({
        "model": "tiny-450m",
        "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": url}},
            {"type": "text", "text": text}]}],
        "temperature": 0, "max_tokens": max_tokens,
    })
}

/// `lfm2vl generate --json --greedy`'s text for `messages` (transformers'
/// format; image items name files).
fn generate_text(messages: &Value, max_new: usize, dir: &Path) -> Result<String> {
    let file = dir.join("messages.json");
    std::fs::write(&file, serde_json::to_vec(messages)?)?;
    let out = Command::new(env!("CARGO_BIN_EXE_lfm2vl"))
        .env("LFM_THREADS", "2")
        .args(["generate", "--json", "--greedy", "--backend", "cpu"])
        .args([
            "--max-new-tokens",
            &max_new.to_string(),
            "--max-len",
            MAX_LEN,
        ])
        .arg("--model")
        .arg(fixture_path("models/tiny-450m"))
        .arg("--messages")
        .arg(&file)
        .output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["text"].as_str().context("text")?.to_string())
}

#[test]
fn serve_answers_health_models_and_greedy_chats_as_generate_does() -> Result<()> {
    let s = Serve::start("greedy", &[])?;
    let models = s.get("/v1/models", None).json()?;
    ensure!(models["data"][0]["id"] == "tiny-450m", "{models}");

    let dir = std::env::temp_dir().join(format!("lfm2vl-serve-{}-gen", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let text = "The quick brown fox jumps over the lazy dog.";
    let r = s.chat(&json!({
        "messages": [{"role": "user", "content": text}], "temperature": 0, "max_tokens": 12,
    }));
    ensure!(r.status == 200, "{}", r.body);
    let v = r.json()?;
    ensure!(
        v["object"] == "chat.completion" && v["model"] == "tiny-450m",
        "{v}"
    );
    let usage = &v["usage"];
    ensure!(
        usage["prompt_tokens"].as_u64().is_some_and(|n| n > 5),
        "{v}"
    );
    ensure!(
        usage["total_tokens"].as_u64()
            == Some(
                usage["prompt_tokens"].as_u64().unwrap_or(0)
                    + usage["completion_tokens"].as_u64().unwrap_or(0)
            ),
        "{v}"
    );
    ensure!(
        ["stop", "length"].contains(&v["choices"][0]["finish_reason"].as_str().unwrap_or("")),
        "{v}"
    );
    let want = generate_text(&json!([{"role": "user", "content": text}]), 12, &dir)?;
    ensure!(
        v["choices"][0]["message"]["content"] == want.as_str(),
        "{v} vs {want:?}"
    );

    let image = fixture_path("cases/images/small_100x150.png");
    let r = s.chat(&image_chat(
        &data_uri(&std::fs::read(&image)?),
        "What is in this image?",
        12,
    ));
    ensure!(r.status == 200, "{}", r.body);
    let got = r.json()?["choices"][0]["message"]["content"].clone();
    let want = generate_text(
        &json!([{"role": "user", "content": [
            {"type": "image", "image": image.display().to_string()},
            {"type": "text", "text": "What is in this image?"}]}]),
        12,
        &dir,
    )?;
    ensure!(got == want.as_str(), "{got} vs {want:?}");
    Ok(())
}

#[test]
fn serve_refuses_bad_requests_with_openai_errors_and_stays_up() -> Result<()> {
    // The default image limits: a 100000x1 strip is refused for its aspect
    // ratio (over 1000:1), from the header.
    let s = Serve::start("errors", &[])?;
    let user = |content: Value| json!({"messages": [{"role": "user", "content": content}], "max_tokens": 4});
    let img = |bytes: &[u8]| json!({"type": "image_url", "image_url": {"url": data_uri(bytes)}});
    let small = png(8, 8)?;
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "invalid JSON",
            "{\"messages\": [".into(),
            400,
            "invalid_json",
        ),
        (
            "messages not a list",
            r#"{"messages":"hi"}"#.into(),
            400,
            "invalid_type",
        ),
        (
            "content a number",
            user(json!(5)).to_string(),
            400,
            "invalid_type",
        ),
        (
            "temperature a string",
            json!({"messages": [{"role": "user", "content": "hi"}], "temperature": "warm"})
                .to_string(),
            400,
            "invalid_type",
        ),
        (
            "stop a number",
            json!({"messages": [{"role": "user", "content": "hi"}], "stop": 3}).to_string(),
            400,
            "invalid_type",
        ),
        (
            "unknown role",
            json!({"messages": [{"role": "wizard", "content": "hi"}]}).to_string(),
            400,
            "unknown_role",
        ),
        (
            "n = 2",
            json!({"messages": [{"role": "user", "content": "hi"}], "n": 2}).to_string(),
            400,
            "unsupported_parameter",
        ),
        (
            "not an image",
            user(json!([img(b"hello, not a png")])).to_string(),
            400,
            "invalid_image",
        ),
        (
            "a 0x0 image",
            user(json!([img(&png_0x0())])).to_string(),
            400,
            "invalid_image",
        ),
        (
            "a 100000x1 image",
            user(json!([img(&png(100_000, 1)?)])).to_string(),
            400,
            "invalid_image",
        ),
        (
            "too many images",
            user(json!([img(&small), img(&small), img(&small)])).to_string(),
            400,
            "too_many_images",
        ),
        (
            "a prompt past the context",
            user(json!("many words ".repeat(400))).to_string(),
            400,
            "context_length_exceeded",
        ),
        (
            "an oversized body",
            user(json!("x".repeat(300_000))).to_string(),
            413,
            "body_too_large",
        ),
        (
            "a remote image",
            user(json!([{"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/a.png"}}]))
                .to_string(),
            400,
            "invalid_image",
        ),
    ];
    for (what, body, status, code) in cases {
        let r = s.post("/v1/chat/completions", &body, None);
        let got = r.error(status).with_context(|| what.to_string())?;
        ensure!(
            got == code,
            "{what}: code {got:?}, want {code:?}: {}",
            r.body
        );
        s.alive().with_context(|| what.to_string())?;
    }
    let r = s.post("/v1/completions", r#"{"prompt": 42}"#, None);
    ensure!(r.error(400)? == "invalid_type", "{}", r.body);
    let r = s.get("/v1/chat/completions", None);
    r.error(405)?;
    // Still generating after all that.
    let r = s.chat(&image_chat(&data_uri(&small), "Hi", 4));
    ensure!(r.status == 200, "{}", r.body);
    let r = s.post(
        "/v1/completions",
        r#"{"prompt": "Once upon", "max_tokens": 4}"#,
        None,
    );
    ensure!(r.json()?["object"] == "text_completion", "{}", r.body);
    Ok(())
}

#[test]
fn serve_requires_the_api_key_when_given_one() -> Result<()> {
    let s = Serve::start(
        "key",
        &["--api-key", "k-123", "--served-model-name", "tiny"],
    )?;
    let body =
        json!({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}).to_string();
    let r = s.post("/v1/chat/completions", &body, None);
    ensure!(r.error(401)? == "invalid_api_key", "{}", r.body);
    let r = s.post("/v1/chat/completions", &body, Some("wrong"));
    r.error(401)?;
    s.get("/v1/models", None).error(401)?;
    let r = s.post("/v1/chat/completions", &body, Some("k-123"));
    ensure!(r.status == 200, "{}", r.body);
    ensure!(r.json()?["model"] == "tiny", "{}", r.body);
    let models = s.get("/v1/models", Some("k-123")).json()?;
    ensure!(models["data"][0]["id"] == "tiny", "{models}");
    ensure!(s.get("/health", None).status == 200);
    Ok(())
}
