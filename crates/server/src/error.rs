//! The server's errors: [`ServerError`] for starting and running the server,
//! [`ApiError`] for one request (each becomes an HTTP status and OpenAI's
//! error body, `{"error": {"message", "type", "param", "code"}}`), and
//! [`ImageError`] for an image part that cannot become pixels.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use runtime::model::preprocess::PreprocessError;

/// Starting or running the server failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving HTTP: {0}")]
    Serve(#[source] std::io::Error),
    #[error("loading the model: {0}")]
    Load(#[source] runtime::RuntimeError),
    #[error("the model loader stopped without a result: {0}")]
    LoaderPanicked(String),
}

/// Why an image part gave no pixels.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    #[error("the url is not a data: URI or an http(s) URL")]
    UnsupportedUrl,
    #[error(
        "remote image URLs are turned off (the server runs without --allow-remote-images); send a data: URI"
    )]
    RemoteOff,
    #[error("a data: URI without ;base64 is not supported")]
    NotBase64,
    #[error("the data: URI's media type {0:?} is not an image")]
    NotImageMedia(String),
    #[error("invalid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("fetching {url}: {detail}")]
    Fetch { url: String, detail: String },
    #[error("the image is over the limit of {limit} bytes")]
    TooManyBytes { limit: u64 },
    #[error(transparent)]
    Decode(#[from] PreprocessError),
}

/// One request's failure, answered with OpenAI's error JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The body could not be read (too large, or the connection broke).
    #[error("{detail}")]
    Body { status: StatusCode, detail: String },
    #[error("expected a JSON body: Content-Type must be application/json")]
    ContentType,
    /// Not JSON, or JSON of the wrong shape (`param`: where, when known).
    #[error("{detail}")]
    Json {
        param: Option<String>,
        detail: String,
    },
    #[error("unknown role {role:?} (use system, user, assistant or tool)")]
    UnknownRole { param: String, role: String },
    /// A parameter this server does not implement with a value other than its
    /// neutral one.
    #[error("{param}: {detail}")]
    Unsupported { param: String, detail: String },
    #[error("{param}: {detail}")]
    InvalidParam { param: String, detail: String },
    #[error("{param}: {source}")]
    Image {
        param: String,
        #[source]
        source: ImageError,
    },
    #[error("{count} images in the request, over the limit of {limit}")]
    TooManyImages { count: usize, limit: usize },
    #[error("the model {model} takes no images (loaded without a vision tower)")]
    NoVision { model: String },
    #[error(
        "the prompt is {needed} tokens, longer than the model's context of {limit} tokens; \
         shorten the messages"
    )]
    ContextOverflow { needed: usize, limit: usize },
    /// The scheduler refused the request as invalid.
    #[error("{0}")]
    Rejected(runtime::RuntimeError),
    #[error("missing or incorrect API key (send Authorization: Bearer KEY)")]
    Unauthorized,
    #[error("unknown request URL: {method} {path}")]
    NotFound { method: String, path: String },
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: String, path: String },
    #[error("the model {id:?} does not exist (this server serves {served:?})")]
    NoSuchModel { id: String, served: String },
    #[error("the model is still loading; retry shortly")]
    Loading,
    #[error("the server is busy (its queue is full); retry shortly")]
    Busy,
    #[error("the server is shutting down")]
    ShuttingDown,
    /// Generation failed after the request was accepted.
    #[error("generation failed: {0}")]
    Generation(String),
    /// The model wrote a tool call that does not parse.
    #[error("{0}")]
    ToolCall(runtime::RuntimeError),
    /// A worker task panicked or was cancelled.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            Body { status, .. } => *status,
            ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json { .. }
            | UnknownRole { .. }
            | Unsupported { .. }
            | InvalidParam { .. }
            | Image { .. }
            | TooManyImages { .. }
            | NoVision { .. }
            | ContextOverflow { .. }
            | Rejected(_) => StatusCode::BAD_REQUEST,
            Unauthorized => StatusCode::UNAUTHORIZED,
            NotFound { .. } | NoSuchModel { .. } => StatusCode::NOT_FOUND,
            MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Loading | Busy | ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            Generation(_) | ToolCall(_) | Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `type`: `invalid_request_error` for every 4xx (401
    /// included, as OpenAI answers a bad key), `server_error` for 5xx.
    pub fn kind(&self) -> &'static str {
        if self.status().is_server_error() {
            "server_error"
        } else {
            "invalid_request_error"
        }
    }

    /// OpenAI's `code` (machine-readable; `None` where OpenAI sends null).
    pub fn code(&self) -> Option<&'static str> {
        use ApiError::*;
        Some(match self {
            Body { status, .. } if *status == StatusCode::PAYLOAD_TOO_LARGE => "body_too_large",
            Body { .. } => return None,
            ContentType => "unsupported_media_type",
            Json { param: None, .. } => "invalid_json",
            Json { .. } => "invalid_type",
            UnknownRole { .. } => "unknown_role",
            Unsupported { .. } => "unsupported_parameter",
            InvalidParam { .. } => "invalid_value",
            Image { .. } => "invalid_image",
            TooManyImages { .. } => "too_many_images",
            NoVision { .. } => "images_not_supported",
            ContextOverflow { .. } => "context_length_exceeded",
            Rejected(_) => return None,
            Unauthorized => "invalid_api_key",
            NotFound { .. } => "unknown_url",
            MethodNotAllowed { .. } => "method_not_allowed",
            NoSuchModel { .. } => "model_not_found",
            Loading => "model_loading",
            Busy => "server_busy",
            ShuttingDown => "shutting_down",
            ToolCall(_) => "tool_call_parse_error",
            Generation(_) | Internal(_) => return None,
        })
    }

    /// OpenAI's `param`: the request field at fault, when one is.
    pub fn param(&self) -> Option<&str> {
        use ApiError::*;
        match self {
            Json { param, .. } => param.as_deref(),
            UnknownRole { param, .. }
            | Unsupported { param, .. }
            | InvalidParam { param, .. }
            | Image { param, .. } => Some(param),
            TooManyImages { .. } | NoVision { .. } | ContextOverflow { .. } => Some("messages"),
            _ => None,
        }
    }

    /// The error body, `{"error": {...}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": self.kind(),
                "param": self.param(),
                "code": self.code(),
            }
        })
    }

    /// A failure the scheduler reported on submission.
    pub(crate) fn from_runtime(e: runtime::RuntimeError) -> Self {
        use runtime::RuntimeError as R;
        use runtime::model::ModelError as M;
        use runtime::model::prompt::PromptError as P;
        match e {
            R::Model(M::ContextOverflow { needed, limit }) => {
                ApiError::ContextOverflow { needed, limit }
            }
            R::Model(M::Prompt(P::PromptTooLong { tokens, max })) => ApiError::ContextOverflow {
                needed: tokens,
                limit: max,
            },
            R::Model(M::Preprocess(source)) => ApiError::Image {
                param: "messages".into(),
                source: ImageError::Decode(source),
            },
            R::NoVisionTower { model, .. } => ApiError::NoVision { model },
            other => ApiError::Rejected(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::warn!("{status}: {self}");
        } else {
            tracing::debug!("{status}: {self}");
        }
        let mut resp = (status, axum::Json(self.body())).into_response();
        if matches!(self, ApiError::Busy | ApiError::Loading) {
            resp.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
        }
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_have_openai_shape() {
        let e = ApiError::ContextOverflow {
            needed: 9000,
            limit: 8192,
        };
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let b = e.body();
        assert_eq!(b["error"]["type"], "invalid_request_error");
        assert_eq!(b["error"]["code"], "context_length_exceeded");
        assert_eq!(b["error"]["param"], "messages");
        assert!(b["error"]["message"].as_str().unwrap().contains("8192"));
        let b = ApiError::Busy.body();
        assert_eq!(b["error"]["type"], "server_error");
        assert_eq!(ApiError::Unauthorized.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            ApiError::Unauthorized.body()["error"]["param"],
            serde_json::Value::Null
        );
    }

    #[test]
    fn scheduler_rejections_keep_their_kind() {
        use runtime::model::ModelError;
        let e = ApiError::from_runtime(runtime::RuntimeError::Model(ModelError::ContextOverflow {
            needed: 10,
            limit: 5,
        }));
        assert_eq!(e.code(), Some("context_length_exceeded"));
        let e = ApiError::from_runtime(runtime::RuntimeError::Model(ModelError::Prompt(
            runtime::model::prompt::PromptError::PromptTooLong { tokens: 10, max: 5 },
        )));
        assert_eq!(e.code(), Some("context_length_exceeded"));
        let e = ApiError::from_runtime(runtime::RuntimeError::ImageCount { count: 2, slots: 1 });
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert!(e.to_string().contains("2 image(s)"));
    }
}
