//! Image decoding into the 8-bit RGB the processor expects (spec §6.0).
//!
//! Formats: JPEG, PNG, WebP, GIF (first frame), BMP, TIFF, detected from the
//! content (not the file name). Before any pixel is decoded, the header's
//! size is checked: zero-size images, images over
//! [`DecodeLimits::max_pixels`] (default [`DEFAULT_MAX_PIXELS`] = 8192² ≈ 67 Mpx)
//! and images one of whose sides is over [`DecodeLimits::max_aspect`] times
//! the other (default [`DEFAULT_MAX_ASPECT`] = 1000: transformers' processor
//! takes the 7×3001 (429:1) of the parity fixtures, but a 100000×1 strip is
//! not a picture) are refused. EXIF orientation is applied (as transformers' `load_image`
//! does with `ImageOps.exif_transpose`).
//!
//! Conversion rule to 8-bit RGB ([`to_rgb8`]):
//! - RGB8 as is; gray is replicated to R = G = B;
//! - 16-bit samples become `round(v·255/65535)` (= `(v + 128) / 257`);
//!   float samples are clamped to [0, 1] and scaled by 255 (the `image`
//!   crate's conversions);
//! - alpha is **composited on white**, exactly as transformers'
//!   `convert_to_rgb` (PIL `alpha_composite` over an opaque white
//!   background, PIL's 7-bit fixed-point formula); fully transparent pixels
//!   become white;
//! - CMYK (JPEG, TIFF) is converted to RGB by the `image` crate's decoders.

use std::io::{BufRead, BufReader, Cursor, Seek};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage, RgbaImage};

use super::error::{PreprocessError, Result};

/// Default pixel limit: 8192 × 8192.
pub const DEFAULT_MAX_PIXELS: u64 = 1 << 26;

/// Default aspect-ratio limit: the long side at most 1000 times the short.
pub const DEFAULT_MAX_ASPECT: u32 = 1000;

/// Limits checked against the image header before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `width · height`.
    pub max_pixels: u64,
    /// Largest accepted `max(w, h) / min(w, h)`.
    pub max_aspect: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            max_aspect: DEFAULT_MAX_ASPECT,
        }
    }
}

/// Decodes an in-memory image file; `label` names it in errors.
pub fn decode_image(bytes: &[u8], label: &str, limits: &DecodeLimits) -> Result<RgbImage> {
    decode_reader(Cursor::new(bytes), label, limits)
}

/// Opens and decodes an image file (streamed: an oversized image is refused
/// after reading its header only).
pub fn load_image(path: &Path, limits: &DecodeLimits) -> Result<RgbImage> {
    let file = std::fs::File::open(path).map_err(|source| PreprocessError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_reader(BufReader::new(file), &path.display().to_string(), limits)
}

fn decode_reader<R: BufRead + Seek>(
    reader: R,
    label: &str,
    limits: &DecodeLimits,
) -> Result<RgbImage> {
    let err = |source: image::ImageError| PreprocessError::Decode {
        image: label.to_string(),
        source,
    };
    let mut reader = ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| err(image::ImageError::IoError(e)))?;
    let mut lim = image::Limits::default();
    // Room for the largest accepted image at 16 bytes per pixel (RGBA f32)
    // plus decoder scratch; decoders that exceed it fail with a limit error.
    lim.max_alloc = Some(
        limits
            .max_pixels
            .saturating_mul(16)
            .saturating_add(64 << 20),
    );
    reader.limits(lim);
    let mut decoder = reader.into_decoder().map_err(err)?;
    let (width, height) = decoder.dimensions();
    check_size(label, width, height, limits)?;
    // A broken EXIF block must not make a readable image unreadable.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut img = DynamicImage::from_decoder(decoder).map_err(err)?;
    img.apply_orientation(orientation);
    Ok(to_rgb8(img))
}

/// Refuses a zero-size image, one over the pixel limit or one too thin.
fn check_size(label: &str, width: u32, height: u32, limits: &DecodeLimits) -> Result<()> {
    if width == 0 || height == 0 {
        return Err(PreprocessError::EmptyImage {
            image: label.to_string(),
            width,
            height,
        });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > limits.max_pixels {
        return Err(PreprocessError::TooManyPixels {
            image: label.to_string(),
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    let (long, short) = (width.max(height), width.min(height));
    if u64::from(long) > u64::from(short) * u64::from(limits.max_aspect) {
        return Err(PreprocessError::AspectRatio {
            image: label.to_string(),
            width,
            height,
            limit: limits.max_aspect,
        });
    }
    Ok(())
}

/// How decoded pixels lie in a caller's buffer: `height` rows `stride`
/// bytes apart (0: packed, `width · channels`), each `width` pixels of
/// `channels` bytes: 1 (gray), 3 (RGB) or 4 (RGBA, not premultiplied).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PixelLayout {
    pub width: u32,
    pub height: u32,
    pub channels: u32,
    pub stride: usize,
}

impl PixelLayout {
    /// Checks the layout (1, 3 or 4 channels; the size limits of a file;
    /// a stride of at least a row) and returns the bytes a buffer needs:
    /// `(height − 1) · stride + width · channels`.
    pub fn bytes_needed(&self, label: &str, limits: &DecodeLimits) -> Result<usize> {
        let bad = |detail: String| PreprocessError::Pixels {
            image: label.to_string(),
            detail,
        };
        let c = self.channels;
        if !matches!(c, 1 | 3 | 4) {
            return Err(bad(format!("{c} channels (1: gray, 3: RGB, 4: RGBA)")));
        }
        check_size(label, self.width, self.height, limits)?;
        let row = self.row();
        let stride = self.stride_or_row();
        if stride < row {
            return Err(bad(format!(
                "a stride of {stride} bytes is less than a row ({row} bytes)"
            )));
        }
        // At most 2^26 rows (the pixel limit) of a stride that fits in memory.
        (self.height as usize - 1)
            .checked_mul(stride)
            .and_then(|n| n.checked_add(row))
            .ok_or_else(|| bad(format!("a stride of {stride} bytes overflows")))
    }

    fn row(&self) -> usize {
        self.width as usize * self.channels as usize
    }

    fn stride_or_row(&self) -> usize {
        if self.stride == 0 {
            self.row()
        } else {
            self.stride
        }
    }
}

/// An image from 8-bit pixels already decoded (an app's frame, a PIL or
/// numpy image), under the same size limits as a file and converted to RGB
/// by the same rule ([`to_rgb8`]: alpha composited on white). The buffer
/// must hold every row ([`PixelLayout::bytes_needed`]).
pub fn from_pixels(
    pixels: &[u8],
    layout: PixelLayout,
    label: &str,
    limits: &DecodeLimits,
) -> Result<RgbImage> {
    let need = layout.bytes_needed(label, limits)?;
    if pixels.len() < need {
        let PixelLayout {
            width,
            height,
            channels,
            ..
        } = layout;
        return Err(PreprocessError::Pixels {
            image: label.to_string(),
            detail: format!(
                "{} bytes, but {width}x{height} with {channels} channels and a stride of \
                 {} needs {need}",
                pixels.len(),
                layout.stride_or_row()
            ),
        });
    }
    let (row, stride, h) = (layout.row(), layout.stride_or_row(), layout.height as usize);
    let (width, height) = (layout.width, layout.height);
    let mut packed = Vec::with_capacity(row * h);
    for y in 0..h {
        packed.extend_from_slice(&pixels[y * stride..y * stride + row]);
    }
    let img = match layout.channels {
        1 => image::GrayImage::from_raw(width, height, packed).map(DynamicImage::ImageLuma8),
        3 => RgbImage::from_raw(width, height, packed).map(DynamicImage::ImageRgb8),
        _ => RgbaImage::from_raw(width, height, packed).map(DynamicImage::ImageRgba8),
    };
    Ok(to_rgb8(
        img.expect("the packed buffer has the image's size"),
    ))
}

/// PIL's `alpha_composite` of `(v, a)` over opaque white, one channel.
#[inline]
fn over_white(v: u8, a: u8) -> u8 {
    if a == 0 {
        return 255;
    }
    // Destination alpha is 255, so PIL's `outa255` is 255² and its 7-bit
    // coefficients are `a·128` and `(255 − a)·128`.
    let (v, a) = (u32::from(v), u32::from(a));
    let tmp = v * (a << 7) + 255 * ((255 - a) << 7) + (0x80 << 7);
    ((((tmp >> 8) + tmp) >> 8) >> 7) as u8
}

fn composite_on_white(rgba: &RgbaImage) -> RgbImage {
    let mut out = Vec::with_capacity(rgba.width() as usize * rgba.height() as usize * 3);
    for p in rgba.pixels() {
        let [r, g, b, a] = p.0;
        out.extend_from_slice(&[over_white(r, a), over_white(g, a), over_white(b, a)]);
    }
    RgbImage::from_raw(rgba.width(), rgba.height(), out).expect("RGB buffer has the image size")
}

/// Converts any decoded image to 8-bit RGB by the rule in the module doc.
pub fn to_rgb8(img: DynamicImage) -> RgbImage {
    match img {
        DynamicImage::ImageRgb8(rgb) => rgb,
        DynamicImage::ImageLuma8(_)
        | DynamicImage::ImageLuma16(_)
        | DynamicImage::ImageRgb16(_) => img.to_rgb8(),
        DynamicImage::ImageRgb32F(_) => img.to_rgb8(),
        other => composite_on_white(&other.to_rgba8()),
    }
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
