//! An OpenAI-compatible HTTP server over `runtime::scheduler`: `POST
//! /v1/chat/completions` (text and images as data: URIs, whole or streamed
//! as server-sent events), `POST /v1/completions` (a raw prompt),
//! `GET /v1/models` and `GET /health`.
//!
//! [`serve`] answers from the moment it is called (`/health` says
//! `loading`, requests get 503) while the model loads on a blocking thread,
//! then serves until the shutdown future resolves: it then refuses new
//! requests, ends the streams in flight, shuts the scheduler down and lets
//! the connections finish.
//!
//! Modules: `request` (the bodies as they arrive), `convert` (to a
//! scheduler job, with the limits), `images` (data: URIs, optional
//! fetches, decoding), `response` (OpenAI's objects and chunks), `routes`
//! (handlers and the SSE stream), `app` (router, state, API key, body
//! extractor), `generator` (the [`Generator`] trait the scheduler
//! implements), `error`.

mod app;
mod convert;
mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod generator;
mod images;
mod request;
mod response;
mod routes;

use std::future::Future;
use std::sync::{Arc, Mutex};

pub use app::{AppState, ServerConfig, router};
pub use convert::Limits;
pub use error::{ApiError, ImageError, ServerError};
pub use generator::Generator;
pub use images::ImageLimits;
use tokio::net::TcpListener;

/// Binds `host:port` (`port` 0 picks a free one; the listener's
/// `local_addr` says which).
pub async fn bind(host: &str, port: u16) -> Result<TcpListener, ServerError> {
    let addr = format!("{host}:{port}");
    TcpListener::bind(&addr)
        .await
        .map_err(|source| ServerError::Bind { addr, source })
}

/// Serves on `listener` until `shutdown` resolves (or the model fails to
/// load: that error is returned). `load` runs on a blocking thread; the
/// server answers while it runs.
pub async fn serve<G, L, S>(
    listener: TcpListener,
    config: ServerConfig,
    load: L,
    shutdown: S,
) -> Result<(), ServerError>
where
    G: Generator,
    L: FnOnce() -> runtime::Result<G> + Send + 'static,
    S: Future<Output = ()> + Send + 'static,
{
    let state = AppState::new(config);
    let (fail_tx, fail_rx) = tokio::sync::oneshot::channel::<ServerError>();
    let loaded = state.clone();
    tokio::spawn(async move {
        match tokio::task::spawn_blocking(load).await {
            Ok(Ok(g)) => {
                loaded.set_model(Arc::new(g));
                tracing::info!("model loaded; serving");
                if loaded.stopping()
                    && let Some(m) = loaded.loaded()
                {
                    let _ = tokio::task::spawn_blocking(move || m.shutdown()).await;
                }
            }
            Ok(Err(e)) => {
                let _ = fail_tx.send(ServerError::Load(e));
            }
            Err(e) => {
                let _ = fail_tx.send(ServerError::LoaderPanicked(e.to_string()));
            }
        }
    });
    let failure = Arc::new(Mutex::new(None));
    let graceful = {
        let state = state.clone();
        let failure = failure.clone();
        async move {
            tokio::pin!(shutdown);
            let failed = tokio::select! {
                _ = &mut shutdown => None,
                Ok(e) = fail_rx => Some(e),
            };
            tracing::info!("shutting down");
            state.begin_shutdown();
            if let Some(m) = state.loaded() {
                let _ = tokio::task::spawn_blocking(move || m.shutdown()).await;
            }
            if let Ok(mut f) = failure.lock() {
                *f = failed;
            }
        }
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(graceful)
        .await
        .map_err(ServerError::Serve)?;
    match failure.lock().ok().and_then(|mut f| f.take()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Resolves at the first SIGINT (Ctrl-C) or, on Unix, SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
