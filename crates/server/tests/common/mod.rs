//! A test server on loopback over a scripted [`Generator`] (no model), and a
//! small blocking HTTP client.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use runtime::model::prompt::{ContentPart, MessageContent};
use runtime::session::Finish;
use server::generator::{Generator, Job, JobEvent, JobInput, JobSummary, Sink, SubmitError};
use server::{ImageLimits, Limits, ServerConfig, ServerError};

/// What the scripted generator saw and did.
#[derive(Default)]
pub struct Seen {
    pub jobs: AtomicUsize,
    /// A job's sink returned false.
    pub cancelled: AtomicBool,
    pub shutdown: AtomicBool,
    /// Last job's settings: max_new_tokens and whether greedy.
    pub max_new_tokens: AtomicUsize,
    pub greedy: AtomicBool,
    pub images: AtomicUsize,
    /// Last job's number of tools and its messages (`role: text`).
    pub tools: AtomicUsize,
    pub history: std::sync::Mutex<Vec<String>>,
}

/// Answers by the prompt's last text:
/// - `BUSY`: `SubmitError::Busy`; `FAIL`: accepted, then `Failed`;
/// - `SLOW`: one "x" every 20 ms until cancelled or shut down (at most 10 s);
/// - anything else: "echo: <text>" in two pieces, then `Done` (finish Stop,
///   or Length when `max_new_tokens` < 3).
pub struct Scripted {
    pub seen: Arc<Seen>,
    pub vision: bool,
}

fn last_text(input: &JobInput) -> String {
    match input {
        JobInput::Text(t) => t.clone(),
        JobInput::Chat { messages, .. } => match messages.last().map(|m| &m.content) {
            Some(MessageContent::Text(t)) => t.clone(),
            Some(MessageContent::Parts(parts)) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect(),
            None => String::new(),
        },
        _ => String::new(),
    }
}

impl Generator for Scripted {
    fn submit(&self, job: Job, mut sink: Sink) -> Result<(), SubmitError> {
        let text = last_text(&job.input);
        if text.contains("BUSY") {
            return Err(SubmitError::Busy);
        }
        let seen = self.seen.clone();
        seen.jobs.fetch_add(1, Ordering::SeqCst);
        seen.max_new_tokens
            .store(job.max_new_tokens, Ordering::SeqCst);
        seen.greedy.store(job.sampling.greedy, Ordering::SeqCst);
        seen.tools.store(job.tools.tools.len(), Ordering::SeqCst);
        if let JobInput::Chat { messages, .. } = &job.input {
            *seen.history.lock().unwrap_or_else(|e| e.into_inner()) = messages
                .iter()
                .map(|m| match &m.content {
                    MessageContent::Text(t) => format!("{}: {t}", m.role),
                    MessageContent::Parts(_) => format!("{}: (parts)", m.role),
                })
                .collect();
        }
        if let JobInput::Chat { images, .. } = &job.input {
            seen.images.store(images.len(), Ordering::SeqCst);
        }
        std::thread::spawn(move || {
            if !sink(JobEvent::Prefilled {
                prompt_tokens: 7,
                reused_tokens: 0,
            }) {
                return;
            }
            if text.contains("FAIL") {
                sink(JobEvent::Failed("the device was lost".into()));
                return;
            }
            if text.contains("SLOW") {
                for _ in 0..500 {
                    if seen.shutdown.load(Ordering::SeqCst) {
                        return; // the sink is dropped without a Done
                    }
                    if !sink(JobEvent::Text("x".into())) {
                        seen.cancelled.store(true, Ordering::SeqCst);
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            let reply = if text.contains("BADCALL") {
                "<|tool_call_start|>[get_weather(city=]<|tool_call_end|>".to_string()
            } else if text.contains("CALL") {
                "Let me check. <|tool_call_start|>[get_weather(city=\"Paris\", days=2), \
                 now()]<|tool_call_end|>"
                    .to_string()
            } else {
                format!("echo: {text}")
            };
            if text.contains("CALL") {
                // Pieces that split the markers.
                for piece in reply.as_bytes().chunks(7) {
                    sink(JobEvent::Text(String::from_utf8_lossy(piece).into()));
                }
            } else {
                let (a, b) = reply.split_at(reply.len() / 2);
                sink(JobEvent::Text(a.into()));
                sink(JobEvent::Text(b.into()));
            }
            sink(JobEvent::Done(JobSummary {
                prompt_tokens: 7,
                completion_tokens: 2,
                finish: if job.max_new_tokens < 3 {
                    Finish::Length
                } else {
                    Finish::Stop
                },
                text: reply,
                ids: vec![1, 2],
            }));
        });
        Ok(())
    }
    fn max_len(&self) -> usize {
        64
    }
    fn has_vision(&self) -> bool {
        self.vision
    }
    fn model_name(&self) -> &str {
        "scripted"
    }
    fn shutdown(&self) {
        self.seen.shutdown.store(true, Ordering::SeqCst);
    }
}

pub fn config() -> ServerConfig {
    ServerConfig {
        api_key: None,
        max_body_bytes: 64 << 10,
        limits: Limits {
            max_images: 2,
            max_tokens: 50,
            completion_default_tokens: 16,
            max_stops: 4,
            image: ImageLimits {
                max_pixels: 1 << 20,
                max_bytes: 1 << 20,
                allow_remote: false,
                fetch_timeout: Duration::from_secs(2),
            },
        },
    }
}

/// A server on 127.0.0.1:<free port> in its own runtime; stopped on drop.
pub struct TestServer {
    pub base: String,
    pub seen: Arc<Seen>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
}

impl TestServer {
    pub fn start(config: ServerConfig, load_delay: Duration) -> TestServer {
        let seen = Arc::new(Seen::default());
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let gen_seen = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            rt.block_on(async move {
                let listener = server::bind("127.0.0.1", 0).await?;
                let _ = addr_tx.send(listener.local_addr().expect("local addr"));
                let load = move || {
                    std::thread::sleep(load_delay);
                    Ok(Scripted {
                        seen: gen_seen,
                        vision: true,
                    })
                };
                server::serve(listener, config, load, async move {
                    let _ = stop_rx.await;
                })
                .await
            })
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server bound");
        let server = TestServer {
            base: format!("http://{addr}"),
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        };
        if load_delay.is_zero() {
            // Loading still runs on its own thread: wait for it.
            let t = std::time::Instant::now();
            while get(&format!("{}/health", server.base), None).status != 200 {
                assert!(t.elapsed() < Duration::from_secs(10), "never loaded");
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        server
    }

    /// Sends the shutdown signal and waits for `serve` to return.
    pub fn stop(&mut self) -> Option<Result<(), ServerError>> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.thread.take().map(|t| t.join().expect("server thread"))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Status, headers of interest and body of one request.
pub struct Answer {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// Asserts an OpenAI error body with this status; returns `error`.
    pub fn error(&self, status: u16) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", self.body);
        let v = self.json();
        let e = v["error"].clone();
        assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
        assert!(e["type"].is_string(), "{v}");
        assert!(e.get("param").is_some() && e.get("code").is_some(), "{v}");
        e
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> Answer {
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    Answer {
        status: resp.status(),
        retry_after: resp.header("retry-after").map(str::to_string),
        body: resp.into_string().expect("body"),
    }
}

pub fn get(url: &str, key: Option<&str>) -> Answer {
    let mut req = ureq::get(url);
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    answer(req.call())
}

pub fn post(url: &str, body: &str) -> Answer {
    post_with(url, body, Some("application/json"), None)
}

pub fn post_with(url: &str, body: &str, content_type: Option<&str>, key: Option<&str>) -> Answer {
    let mut req = ureq::post(url).timeout(Duration::from_secs(30));
    if let Some(ct) = content_type {
        req = req.set("Content-Type", ct);
    }
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    answer(req.send_string(body))
}

/// The `data:` payloads of a server-sent event stream.
pub fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| d.trim_start().to_string())
        .collect()
}
