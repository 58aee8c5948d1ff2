//! Image parts to pixels: `data:image/...;base64,...` URIs, and, only when
//! the server allows it, http(s) URLs fetched with a size limit. Decoding
//! goes through `preprocess::decode_image` with the server's pixel limit, so
//! a file that is not an image, an empty one or an absurdly large one is a
//! typed error before any pixel is decoded. Blocking: run off the async
//! threads.

use std::io::Read;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use runtime::model::preprocess::{DecodeLimits, RgbImage, decode_image};

use crate::error::ImageError;

/// Where an image's bytes come from, and the limits on them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted `width · height`.
    pub max_pixels: u64,
    /// Largest accepted encoded size (a data: URI's decoded bytes, or a
    /// download).
    pub max_bytes: u64,
    /// Whether http(s) URLs are fetched (otherwise they are refused).
    pub allow_remote: bool,
    /// Connect + read timeout of a fetch.
    pub fetch_timeout: Duration,
}

/// Base64 as clients write it: standard alphabet, padding optional.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Whether `url` names a remote resource (http or https).
pub fn is_remote(url: &str) -> bool {
    let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Checks a URL without fetching or decoding anything: a data: URI must be
/// base64 with an image media type (or none), a remote URL must be allowed.
pub fn check_url(url: &str, limits: &ImageLimits) -> Result<(), ImageError> {
    if is_remote(url) {
        return if limits.allow_remote {
            Ok(())
        } else {
            Err(ImageError::RemoteOff)
        };
    }
    data_uri_payload(url).map(|_| ())
}

/// The base64 payload of a data: URI, after checking its header.
fn data_uri_payload(url: &str) -> Result<&str, ImageError> {
    let rest = url
        .strip_prefix("data:")
        .or_else(|| url.strip_prefix("DATA:"))
        .ok_or(ImageError::UnsupportedUrl)?;
    let (header, payload) = rest.split_once(',').ok_or(ImageError::UnsupportedUrl)?;
    let mut fields = header.split(';');
    let media = fields.next().unwrap_or("").trim().to_ascii_lowercase();
    if !fields.any(|f| f.trim().eq_ignore_ascii_case("base64")) {
        return Err(ImageError::NotBase64);
    }
    // An empty media type (`data:;base64,`) and application/octet-stream
    // are accepted: the decoder sniffs the format from the bytes.
    if !(media.is_empty() || media.starts_with("image/") || media == "application/octet-stream") {
        return Err(ImageError::NotImageMedia(media));
    }
    Ok(payload)
}

/// The encoded image bytes behind `url` (a data: URI, or a fetch).
pub fn image_bytes(url: &str, limits: &ImageLimits) -> Result<Vec<u8>, ImageError> {
    if is_remote(url) {
        if !limits.allow_remote {
            return Err(ImageError::RemoteOff);
        }
        return fetch(url, limits);
    }
    let payload = data_uri_payload(url)?;
    // Base64 is 4/3 of the bytes: refuse before decoding what is too long.
    if payload.len() as u64 / 4 * 3 > limits.max_bytes.saturating_add(3) {
        return Err(ImageError::TooManyBytes {
            limit: limits.max_bytes,
        });
    }
    let clean: String;
    let payload = if payload.bytes().any(|b| b.is_ascii_whitespace()) {
        clean = payload
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        &clean
    } else {
        payload
    };
    Ok(BASE64.decode(payload)?)
}

/// Downloads `url`, refusing more than `limits.max_bytes`.
fn fetch(url: &str, limits: &ImageLimits) -> Result<Vec<u8>, ImageError> {
    let err = |detail: String| ImageError::Fetch {
        url: url.to_string(),
        detail,
    };
    let resp = ureq::AgentBuilder::new()
        .timeout(limits.fetch_timeout)
        .redirects(4)
        .build()
        .get(url)
        .call()
        .map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(limits.max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ImageError::TooManyBytes {
            limit: limits.max_bytes,
        });
    }
    Ok(bytes)
}

/// The pixels of one image part; `label` names it in errors.
pub fn load(url: &str, label: &str, limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    let bytes = image_bytes(url, limits)?;
    let decode = DecodeLimits {
        max_pixels: limits.max_pixels,
        ..DecodeLimits::default()
    };
    Ok(decode_image(&bytes, label, &decode)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ImageLimits {
        ImageLimits {
            max_pixels: 1 << 20,
            max_bytes: 1 << 20,
            allow_remote: false,
            fetch_timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn data_uris_decode() {
        let l = limits();
        assert_eq!(
            image_bytes("data:image/png;base64,AAEC", &l).unwrap(),
            [0, 1, 2]
        );
        assert_eq!(image_bytes("data:;base64,AAE=", &l).unwrap(), [0, 1]);
        assert_eq!(
            image_bytes("data:image/png;base64,AAE", &l).unwrap(),
            [0, 1]
        );
        assert_eq!(
            image_bytes("data:image/png;base64,AA\nEC", &l).unwrap(),
            [0, 1, 2]
        );
        assert!(matches!(
            image_bytes("data:image/png,abc", &l),
            Err(ImageError::NotBase64)
        ));
        assert!(matches!(
            image_bytes("data:text/plain;base64,AAEC", &l),
            Err(ImageError::NotImageMedia(_))
        ));
        assert!(matches!(
            image_bytes("data:image/png;base64,!!!", &l),
            Err(ImageError::Base64(_))
        ));
        assert!(matches!(
            image_bytes("file:///etc/passwd", &l),
            Err(ImageError::UnsupportedUrl)
        ));
        assert!(matches!(
            image_bytes("HTTPS://example.com/a.png", &l),
            Err(ImageError::RemoteOff)
        ));
        let small = ImageLimits {
            max_bytes: 2,
            ..limits()
        };
        assert!(matches!(
            image_bytes("data:image/png;base64,AAECAwQFBgcICQ==", &small),
            Err(ImageError::TooManyBytes { .. })
        ));
    }

    #[test]
    fn bytes_that_are_no_image_are_a_decode_error() {
        let e = load("data:image/png;base64,AAECAwQF", "#0", &limits()).unwrap_err();
        assert!(matches!(e, ImageError::Decode(_)), "{e}");
    }
}
