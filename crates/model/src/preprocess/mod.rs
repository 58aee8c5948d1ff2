//! Image preprocessing: decode, smart resize, tiling, normalisation and
//! patchify, exactly as transformers' `Lfm2VlImageProcessor` (spec §6).
//!
//! Pure functions from images and a [`ProcessorConfig`] to the vision
//! tower's inputs; no tensor backend involved:
//!
//! ```text
//! bytes ──decode_image──► RgbImage ──ImageLayout::plan──► grid, sizes, token counts
//!                              └──preprocess──► crops (uint8) ──► pixel_values [n, P, 3·p²]
//!                                                                 pixel_attention_mask [n, P]
//!                                                                 spatial_shapes [n] (h, w)
//! ```
//!
//! Files: `config` (knobs), `decode` (files → RGB8), `layout` (smart resize,
//! split, crop list, token counts), `grid` (tile-grid candidates and their
//! CPython tie order), `resize` (torchvision's uint8 antialiased kernel),
//! `patchify` (normalise + patches), `error`.

mod config;
mod decode;
mod error;
mod grid;
mod layout;
mod patchify;
mod resize;

pub use config::{
    ChannelStats, MAX_TILES_LIMIT, PREPROCESSOR_CONFIG_FILE, PROCESSOR_CONFIG_FILE,
    ProcessorConfig, ProcessorOverrides, ResampleFilter,
};
pub use decode::{
    DEFAULT_MAX_PIXELS, DecodeLimits, PixelLayout, decode_image, from_pixels, load_image, to_rgb8,
};
pub use error::{PreprocessError, Result};
pub use grid::{DEFAULT_TARGET_RATIOS, find_closest_aspect_ratio, target_ratios};
/// The `image` crate version used for decoding, re-exported for callers.
pub use image;
pub use image::RgbImage;
pub use layout::{CropKind, ImageLayout, is_image_too_large, smart_resize};
pub use patchify::{Normalizer, patchify_into};
pub use resize::{AxisWeights, axis_weights, crop_tile, resize_rgb8};

/// One crop fed to the vision tower.
#[derive(Debug, Clone, PartialEq)]
pub struct Crop {
    /// Index of the source image in the `images` slice.
    pub image: usize,
    /// Tile, thumbnail or single crop.
    pub kind: CropKind,
    /// The resized crop before normalisation, `[16h, 16w, 3]` (HWC, RGB).
    pub pixels: RgbImage,
}

/// The processor's output for a batch of images (one prompt).
#[derive(Debug, Clone, PartialEq)]
pub struct Preprocessed {
    /// `[n, max_num_patches, patch_dim]` row-major; rows past a crop's
    /// `h·w` patches are 0.0.
    pub pixel_values: Vec<f32>,
    /// `[n, max_num_patches]`: 1 for the first `h·w` rows of each crop.
    pub pixel_attention_mask: Vec<i32>,
    /// `[n]` `(h_patches, w_patches)` of each crop.
    pub spatial_shapes: Vec<[usize; 2]>,
    /// Rows per crop in `pixel_values` (P).
    pub max_num_patches: usize,
    /// Length of a patch vector, `3·p²`.
    pub patch_dim: usize,
    /// `[n]` crops in output order (spec §6.5).
    pub crops: Vec<Crop>,
    /// Per input image: its grid and token layout (for the prompt).
    pub images: Vec<ImageLayout>,
}

impl Preprocessed {
    /// Number of crops n.
    pub fn num_crops(&self) -> usize {
        self.crops.len()
    }

    /// `[max_num_patches, patch_dim]` slice of crop `k`.
    pub fn crop_pixel_values(&self, k: usize) -> &[f32] {
        let n = self.max_num_patches * self.patch_dim;
        &self.pixel_values[k * n..(k + 1) * n]
    }

    /// Total `<image>` tokens over all images.
    pub fn num_image_tokens(&self) -> usize {
        self.images.iter().map(ImageLayout::num_image_tokens).sum()
    }
}

/// The resized crops of one image, in output order.
pub fn image_crops(
    img: &RgbImage,
    layout: &ImageLayout,
    filter: ResampleFilter,
) -> Vec<(CropKind, RgbImage)> {
    let (rh, rw) = layout.resized;
    if !layout.tiled {
        return vec![(CropKind::Single, resize_rgb8(img, rh, rw, filter))];
    }
    let t = layout.tile_size;
    let big = resize_rgb8(img, layout.grid_rows * t, layout.grid_cols * t, filter);
    let mut out: Vec<(CropKind, RgbImage)> = layout
        .crops()
        .into_iter()
        .filter_map(|kind| match kind {
            CropKind::Tile { row, col } => Some((kind, crop_tile(&big, row, col, t))),
            _ => None,
        })
        .collect();
    if layout.thumbnail {
        out.push((CropKind::Thumbnail, resize_rgb8(img, rh, rw, filter)));
    }
    out
}

/// Runs the whole processor on `images` (in prompt order): validates `cfg`,
/// plans, resizes and crops each image, then normalises and patchifies
/// every crop into padded `pixel_values`.
pub fn preprocess(images: &[RgbImage], cfg: &ProcessorConfig) -> Result<Preprocessed> {
    cfg.validate()?;
    let p = cfg.encoder_patch_size;
    let max_num_patches = cfg.max_num_patches();
    let patch_dim = cfg.patch_dim();
    let norm = Normalizer::new(cfg);

    let mut layouts = Vec::with_capacity(images.len());
    let mut crops = Vec::new();
    for (index, img) in images.iter().enumerate() {
        let (w, h) = (img.width(), img.height());
        if w == 0 || h == 0 {
            return Err(PreprocessError::EmptyImage {
                image: format!("#{index}"),
                width: w,
                height: h,
            });
        }
        let layout = ImageLayout::plan(h as usize, w as usize, cfg);
        for (kind, pixels) in image_crops(img, &layout, cfg.filter()) {
            let (ch, cw) = (pixels.height() as usize, pixels.width() as usize);
            let patches = (ch / p) * (cw / p);
            if patches > max_num_patches {
                return Err(PreprocessError::TooManyPatches {
                    image: format!("#{index}"),
                    height: ch,
                    width: cw,
                    patches,
                    max: max_num_patches,
                });
            }
            crops.push(Crop {
                image: index,
                kind,
                pixels,
            });
        }
        layouts.push(layout);
    }

    let n = crops.len();
    let mut pixel_values = vec![0.0f32; n * max_num_patches * patch_dim];
    let mut pixel_attention_mask = vec![0i32; n * max_num_patches];
    let mut spatial_shapes = Vec::with_capacity(n);
    for (k, crop) in crops.iter().enumerate() {
        let (h, w) = (
            crop.pixels.height() as usize / p,
            crop.pixels.width() as usize / p,
        );
        let rows = &mut pixel_values
            [k * max_num_patches * patch_dim..(k + 1) * max_num_patches * patch_dim];
        patchify_into(&crop.pixels, p, &norm, rows);
        pixel_attention_mask[k * max_num_patches..k * max_num_patches + h * w].fill(1);
        spatial_shapes.push([h, w]);
    }
    Ok(Preprocessed {
        pixel_values,
        pixel_attention_mask,
        spatial_shapes,
        max_num_patches,
        patch_dim,
        crops,
        images: layouts,
    })
}
