//! The request path a client's bytes take before a job exists, for the
//! fuzz targets (`crates/fuzz-targets`): body parsing, the settings and
//! the prompt under small limits, and data: images decoded (remote URLs are
//! refused before any fetch). Every input
//! must end in `Ok` or an [`ApiError`], never a panic.

use std::time::Duration;

use crate::convert::{self, Endpoint, Limits};
use crate::error::ApiError;
use crate::images::ImageLimits;
use crate::request::{ChatRequest, CompletionRequest, ParseBody};

/// The server's limits, small: 4 images of at most a megapixel and 1 MiB,
/// no remote fetches.
fn limits() -> Limits {
    Limits {
        max_images: 4,
        max_tokens: 4096,
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

/// A `/v1/chat/completions` body, as far as the job it would submit.
pub fn chat_body(bytes: &[u8]) -> Result<(), ApiError> {
    let limits = limits();
    let req = ChatRequest::parse(bytes)?;
    convert::settings(&req.params, Endpoint::Chat, &limits)?;
    let prompt = convert::chat_prompt(req.messages, &limits, true, "fuzz")?;
    convert::load_images(&prompt.images, &limits.image)?;
    Ok(())
}

/// A `/v1/completions` body, as far as the job it would submit.
pub fn completion_body(bytes: &[u8]) -> Result<(), ApiError> {
    let limits = limits();
    let req = CompletionRequest::parse(bytes)?;
    convert::settings(&req.params, Endpoint::Completion, &limits)?;
    convert::completion_prompt(req.prompt.0)?;
    Ok(())
}
