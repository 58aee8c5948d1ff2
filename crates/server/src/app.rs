//! The router and what every route shares: the server's state (its
//! configuration, the model once loaded, the shutdown signal), the API-key
//! check, the JSON body extractor with the body limit, and the OpenAI-shaped
//! answers to unknown URLs and methods.

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::convert::Limits;
use crate::error::ApiError;
use crate::generator::Generator;
use crate::request::ParseBody;
use crate::routes;

/// How the server answers.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Requests to `/v1/*` must send `Authorization: Bearer KEY` (`/health`
    /// stays open). `None`: no key.
    pub api_key: Option<String>,
    /// Largest request body in bytes (a larger one gets 413).
    pub max_body_bytes: usize,
    pub limits: Limits,
}

/// A body this much over the limit is refused from its Content-Length
/// without reading it; a smaller excess is read and thrown away first, so
/// that a client which sends its whole body before reading sees the 413
/// rather than a reset connection.
const DRAIN_BYTES: u64 = 16 << 20;

/// What the handlers share.
pub struct AppState {
    pub config: ServerConfig,
    model: OnceLock<Arc<dyn Generator>>,
    stop_tx: watch::Sender<bool>,
    /// When the server started (`created` of `/v1/models`).
    pub started: u64,
}

impl AppState {
    pub fn new(config: ServerConfig) -> Arc<AppState> {
        Arc::new(AppState {
            config,
            model: OnceLock::new(),
            stop_tx: watch::channel(false).0,
            started: crate::response::unix_now(),
        })
    }

    /// Makes the model available: `/health` turns 200 and requests are served.
    /// A second call is ignored.
    pub fn set_model(&self, model: Arc<dyn Generator>) {
        let _ = self.model.set(model);
    }

    /// The model, once loaded and while not shutting down.
    pub fn model(&self) -> Result<Arc<dyn Generator>, ApiError> {
        if self.stopping() {
            return Err(ApiError::ShuttingDown);
        }
        self.model.get().cloned().ok_or(ApiError::Loading)
    }

    /// The model if it was ever loaded (for shutting it down).
    pub fn loaded(&self) -> Option<Arc<dyn Generator>> {
        self.model.get().cloned()
    }

    /// Starts the shutdown: new requests get 503, streams end.
    pub fn begin_shutdown(&self) {
        self.stop_tx.send_replace(true);
    }

    pub fn stopping(&self) -> bool {
        *self.stop_tx.borrow()
    }

    /// A receiver that changes to `true` at [`AppState::begin_shutdown`].
    pub fn stop_signal(&self) -> watch::Receiver<bool> {
        self.stop_tx.subscribe()
    }
}

/// The routes: `/health` open, `/v1/*` behind the API key when one is set.
pub fn router(state: Arc<AppState>) -> Router {
    let v1 = Router::new()
        .route("/v1/chat/completions", post(routes::chat))
        .route("/v1/completions", post(routes::completions))
        .route("/v1/models", get(routes::models))
        .route("/v1/models/{*id}", get(routes::model))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_key,
        ));
    Router::new()
        .route("/health", get(routes::health))
        .merge(v1)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::NotFound {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_string(),
    }
}

/// Byte-wise comparison in time independent of where the first difference is.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_key(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if let Some(key) = &state.config.api_key {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        if !given.is_some_and(|g| same_secret(g.as_bytes(), key.as_bytes())) {
            return Err(ApiError::Unauthorized);
        }
    }
    Ok(next.run(req).await)
}

/// A JSON request body parsed into `T`, every failure an [`ApiError`]:
/// a missing or non-JSON Content-Type (415), a body over the limit (413),
/// invalid JSON or a field of the wrong type (400, naming the field).
pub struct JsonBody<T>(pub T);

fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
}

fn too_large(limit: usize) -> ApiError {
    ApiError::Body {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        detail: format!("the request body is over the server's limit of {limit} bytes"),
    }
}

/// Reads the body up to `limit` bytes; past it, reads and drops up to
/// [`DRAIN_BYTES`] more and answers 413.
async fn read_body(req: Request, limit: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64 + DRAIN_BYTES) {
        return Err(too_large(limit));
    }
    let mut stream = req.into_body().into_data_stream();
    let mut buf = Vec::with_capacity(declared.map_or(0, |n| n.min(limit as u64) as usize));
    let mut over = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::Body {
            status: StatusCode::BAD_REQUEST,
            detail: format!("reading the request body: {e}"),
        })?;
        if over == 0 && buf.len() + chunk.len() <= limit {
            buf.extend_from_slice(&chunk);
            continue;
        }
        over += chunk.len() as u64;
        if over > DRAIN_BYTES {
            break;
        }
    }
    if over > 0 {
        return Err(too_large(limit));
    }
    Ok(Bytes::from(buf))
}

impl<T: ParseBody> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::ContentType);
        }
        let bytes = read_body(req, state.config.max_body_bytes).await?;
        Ok(JsonBody(T::parse(&bytes)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        let mut h = axum::http::HeaderMap::new();
        assert!(!is_json(&h));
        for (ct, ok) in [
            ("application/json", true),
            ("Application/JSON; charset=utf-8", true),
            ("application/vnd.api+json", true),
            ("text/plain", false),
            ("multipart/form-data", false),
        ] {
            h.insert(header::CONTENT_TYPE, ct.parse().unwrap());
            assert_eq!(is_json(&h), ok, "{ct}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }
}
