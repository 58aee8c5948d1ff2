//! Errors of the preprocessing stage: configuration, decoding and
//! per-image limits. Every variant names the offending field, file or image.

use std::path::PathBuf;

/// Everything that can go wrong between a checkpoint's processor config or an
/// image file and `pixel_values`.
#[derive(Debug, thiserror::Error)]
pub enum PreprocessError {
    /// A config or image file could not be read.
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A config file is not the JSON we expect.
    #[error("parsing {path}: {source}")]
    ConfigParse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    /// Neither `processor_config.json` nor `preprocessor_config.json` exists.
    #[error("no processor_config.json or preprocessor_config.json in {dir}")]
    ConfigMissing { dir: PathBuf },
    /// A knob has a value the processor cannot work with.
    #[error("processor config: `{field}` = {value}: {reason}")]
    InvalidConfig {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    /// `resample` names a filter we do not implement (only PIL 2 = bilinear
    /// and 3 = bicubic, both antialiased, as torchvision's uint8 path).
    #[error("processor config: resample = {code} is not supported (2 = bilinear, 3 = bicubic)")]
    UnsupportedResample { code: u32 },
    /// The bytes are not an image in a format we decode, or are corrupt.
    /// `image` names the image: its path, or `#k` for the k-th input.
    #[error("image {image}: cannot decode: {source}")]
    Decode {
        image: String,
        #[source]
        source: image::ImageError,
    },
    /// Width or height is zero.
    #[error("image {image} is empty ({width}x{height})")]
    EmptyImage {
        image: String,
        width: u32,
        height: u32,
    },
    /// The header announces more pixels than the limit; nothing was decoded.
    #[error("image {image} is {width}x{height} = {pixels} pixels, over the limit of {limit}")]
    TooManyPixels {
        image: String,
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    /// A caller's pixel buffer does not hold the image it describes.
    #[error("image {image}: {detail}")]
    Pixels { image: String, detail: String },
    /// One side is over `limit` times the other; nothing was decoded.
    #[error("image {image} is {width}x{height}: one side is over {limit} times the other")]
    AspectRatio {
        image: String,
        width: u32,
        height: u32,
        limit: u32,
    },
    /// A crop has more patches than `pixel_values` has rows (only reachable
    /// with extreme aspect ratios or a caller-lowered `max_num_patches`).
    #[error(
        "image {image}: a {height}x{width} crop has {patches} patches, more than max_num_patches = {max}"
    )]
    TooManyPatches {
        image: String,
        height: usize,
        width: usize,
        patches: usize,
        max: usize,
    },
}

/// Result alias of the preprocessing module.
pub type Result<T, E = PreprocessError> = std::result::Result<T, E>;
