//! The handlers: chat and text completions (whole or streamed as
//! server-sent events ending with `data: [DONE]`), `/v1/models` and
//! `/health`.
//!
//! A job's events cross from the scheduler's thread on an unbounded channel:
//! its sink returns `false` once the receiver is gone (the client hung up,
//! the handler or the stream was dropped), which cancels the job.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use runtime::RuntimeError;
use runtime::tools;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};

use crate::app::{AppState, JsonBody};
use crate::convert::{self, Endpoint, Settings};
use crate::error::ApiError;
use crate::generator::{Generator, Job, JobEvent, JobInput, Sink, SubmitError};
use crate::request::{ChatRequest, CompletionRequest};
use crate::response::{Reply, Usage, calls_finish, finish_reason, model_object};

pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    let (status, what) = match state.model() {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(ApiError::Loading) => (StatusCode::SERVICE_UNAVAILABLE, "loading"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down"),
    };
    (status, Json(json!({ "status": what }))).into_response()
}

pub async fn models(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    let model = state.model()?;
    Ok(Json(json!({
        "object": "list",
        "data": [model_object(model.model_name(), state.started)],
    })))
}

pub async fn model(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let model = state.model()?;
    if id != model.model_name() {
        return Err(ApiError::NoSuchModel {
            id,
            served: model.model_name().to_string(),
        });
    }
    Ok(Json(model_object(model.model_name(), state.started)))
}

pub async fn chat(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<ChatRequest>,
) -> Result<Response, ApiError> {
    let model = state.model()?;
    let limits = &state.config.limits;
    let settings = convert::settings(&req.params, Endpoint::Chat, limits)?;
    let prompt =
        convert::chat_prompt(req.messages, limits, model.has_vision(), model.model_name())?;
    let image_limits = limits.image.clone();
    let input = move || -> Result<JobInput, ApiError> {
        let images = convert::load_images(&prompt.images, &image_limits)?;
        Ok(JobInput::Chat {
            messages: prompt.messages,
            images,
        })
    };
    run(&state, model, Endpoint::Chat, settings, input).await
}

pub async fn completions(
    State(state): State<Arc<AppState>>,
    JsonBody(req): JsonBody<CompletionRequest>,
) -> Result<Response, ApiError> {
    let model = state.model()?;
    let settings = convert::settings(&req.params, Endpoint::Completion, &state.config.limits)?;
    if !settings.tools.tools.is_empty() {
        return Err(ApiError::InvalidParam {
            param: "tools".into(),
            detail: "tools are for chat completions (/v1/chat/completions)".into(),
        });
    }
    let prompt = convert::completion_prompt(req.prompt.0)?;
    run(&state, model, Endpoint::Completion, settings, move || {
        Ok(JobInput::Text(prompt))
    })
    .await
}

fn submit_error(e: SubmitError) -> ApiError {
    match e {
        SubmitError::Busy => ApiError::Busy,
        SubmitError::Stopped => ApiError::ShuttingDown,
        SubmitError::Invalid(e) => ApiError::from_runtime(e),
    }
}

/// Builds the job's input (blocking: images), submits it, and answers.
async fn run(
    state: &Arc<AppState>,
    model: Arc<dyn Generator>,
    endpoint: Endpoint,
    settings: Settings,
    input: impl FnOnce() -> Result<JobInput, ApiError> + Send + 'static,
) -> Result<Response, ApiError> {
    let mut reply = Reply::new(endpoint, model.model_name(), settings.include_usage);
    reply.tools = settings.tools.active();
    let (tx, rx) = mpsc::unbounded_channel();
    let sink: Sink = Box::new(move |ev| tx.send(ev).is_ok());
    let job_settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let job = Job {
            input: input()?,
            sampling: job_settings.sampling,
            max_new_tokens: job_settings.max_new_tokens,
            stop_strings: job_settings.stop_strings,
            ignore_eos: job_settings.ignore_eos,
            speculative: job_settings.speculative,
            constraint: job_settings.constraint.as_ref().map(|(c, _)| c.clone()),
            tools: job_settings.tools.clone(),
        };
        // A constraint that does not compile: the response format's, or
        // the call grammar of the tools.
        let param = job_settings
            .constraint
            .as_ref()
            .map_or("tools", |(_, p)| *p);
        model.submit(job, sink).map_err(|e| match e {
            SubmitError::Invalid(RuntimeError::Constraint(detail)) => ApiError::InvalidParam {
                param: param.into(),
                detail,
            },
            e => submit_error(e),
        })
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))??;
    let stop = state.stop_signal();
    if settings.stream {
        let events = ChunkStream::new(reply, rx, stop).into_stream();
        Ok(Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response())
    } else {
        let (text, finish, usage) = collect(rx, stop).await?;
        if reply.tools {
            let (content, calls) = tools::split_calls(&text)
                .map_err(|e| ApiError::ToolCall(RuntimeError::ToolCall(e)))?;
            let full = reply.full_with_calls(&content, &calls, Some(finish), usage);
            return Ok(Json(full).into_response());
        }
        Ok(Json(reply.full(&text, Some(finish), usage)).into_response())
    }
}

/// Waits for one job's end: its text, finish reason and usage.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<JobEvent>,
    mut stop: watch::Receiver<bool>,
) -> Result<(String, &'static str, Usage), ApiError> {
    loop {
        let ev = tokio::select! {
            ev = rx.recv() => ev,
            _ = stop.wait_for(|s| *s) => return Err(ApiError::ShuttingDown),
        };
        match ev {
            Some(JobEvent::Done(s)) => {
                let finish = finish_reason(s.finish).ok_or(ApiError::ShuttingDown)?;
                let usage = Usage {
                    prompt_tokens: s.prompt_tokens,
                    completion_tokens: s.completion_tokens,
                };
                return Ok((s.text, finish, usage));
            }
            Some(JobEvent::Failed(e)) => return Err(ApiError::Generation(e)),
            Some(JobEvent::Prefilled { .. } | JobEvent::Text(_)) => {}
            None => return Err(ApiError::ShuttingDown),
        }
    }
}

/// The server-sent events of one streamed job.
struct ChunkStream {
    reply: Reply,
    rx: mpsc::UnboundedReceiver<JobEvent>,
    stop: watch::Receiver<bool>,
    /// Events ready to send, in order.
    ready: std::collections::VecDeque<Event>,
    /// With tools: the text not yet sent (from a call marker on, or what
    /// may be the start of one), and the bytes of content sent.
    held: String,
    sent: usize,
    started: bool,
    ended: bool,
}

fn data(v: &Value) -> Event {
    Event::default().data(v.to_string())
}

impl ChunkStream {
    fn new(
        reply: Reply,
        rx: mpsc::UnboundedReceiver<JobEvent>,
        stop: watch::Receiver<bool>,
    ) -> Self {
        ChunkStream {
            reply,
            rx,
            stop,
            ready: Default::default(),
            held: String::new(),
            sent: 0,
            started: false,
            ended: false,
        }
    }

    /// An error in the stream (the status line went out already): OpenAI's
    /// error object as an event, then `[DONE]`.
    fn fail(&mut self, e: ApiError) {
        tracing::warn!("stream {} ended: {e}", self.reply.id);
        self.ready.push_back(data(&e.body()));
        self.end();
    }

    fn end(&mut self) {
        self.ready.push_back(Event::default().data("[DONE]"));
        self.ended = true;
    }

    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                return Some(e);
            }
            if self.ended {
                return None;
            }
            if !self.started {
                self.started = true;
                if let Some(c) = self.reply.role_chunk() {
                    return Some(data(&c));
                }
            }
            let ev = tokio::select! {
                ev = self.rx.recv() => Some(ev),
                _ = self.stop.wait_for(|s| *s) => None,
            };
            let Some(ev) = ev else {
                self.fail(ApiError::ShuttingDown);
                continue;
            };
            match ev {
                Some(JobEvent::Prefilled { .. }) => {}
                Some(JobEvent::Text(t)) => {
                    let t = self.content_part(t);
                    if !t.is_empty() {
                        return Some(data(&self.reply.text_chunk(&t)));
                    }
                }
                Some(JobEvent::Done(s)) => match finish_reason(s.finish) {
                    Some(mut f) => {
                        if self.reply.tools {
                            match tools::split_calls(&s.text) {
                                Ok((content, calls)) => {
                                    let rest = content.get(self.sent..).unwrap_or_default();
                                    if !rest.is_empty() {
                                        self.ready.push_back(data(&self.reply.text_chunk(rest)));
                                    }
                                    if !calls.is_empty() {
                                        self.ready.push_back(data(&self.reply.calls_chunk(&calls)));
                                        f = calls_finish(Some(f)).unwrap_or(f);
                                    }
                                }
                                Err(e) => {
                                    self.fail(ApiError::ToolCall(RuntimeError::ToolCall(e)));
                                    continue;
                                }
                            }
                        }
                        self.ready
                            .push_back(data(&self.reply.finish_chunk(Some(f))));
                        if self.reply.include_usage {
                            let usage = Usage {
                                prompt_tokens: s.prompt_tokens,
                                completion_tokens: s.completion_tokens,
                            };
                            self.ready.push_back(data(&self.reply.usage_chunk(usage)));
                        }
                        self.end();
                    }
                    None => self.fail(ApiError::ShuttingDown),
                },
                Some(JobEvent::Failed(e)) => self.fail(ApiError::Generation(e)),
                None => self.fail(ApiError::ShuttingDown),
            }
        }
    }

    /// Of streamed text `t`, what may go out as content now: all of it
    /// without tools; with tools, nothing from a call marker on (the calls
    /// go out whole at the end) and nothing that may start one.
    fn content_part(&mut self, t: String) -> String {
        if !self.reply.tools {
            return t;
        }
        self.held.push_str(&t);
        let cut = match self.held.find(tools::CALL_START) {
            Some(at) => at,
            None => {
                let marker = tools::CALL_START;
                let partial = (1..marker.len())
                    .rev()
                    .find(|&n| self.held.ends_with(&marker[..n]))
                    .unwrap_or(0);
                self.held.len() - partial
            }
        };
        let out = self
            .held
            .get(self.sent..cut)
            .unwrap_or_default()
            .to_string();
        self.sent = self.sent.max(cut);
        out
    }

    fn into_stream(self) -> impl Stream<Item = Result<Event, Infallible>> + Send {
        futures_util::stream::unfold(
            self,
            |mut s| async move { s.next().await.map(|e| (Ok(e), s)) },
        )
    }
}
