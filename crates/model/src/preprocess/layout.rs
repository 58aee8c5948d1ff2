//! Sizes and crop layout from the image size alone (spec §6.2–§6.5, §7.2):
//! smart resize, the split decision, the grid, the crop list and the token
//! counts. No pixels are touched here.
//!
//! All rounding is Python's: `round` is half-to-even, and every floor/ceil
//! argument is computed in f64 in the same operation order as transformers.

use super::config::ProcessorConfig;
use super::grid::{find_closest_aspect_ratio, target_ratios};

/// Python's `round(x / factor) * factor` (`round_by_factor`), half to even.
fn round_by_factor(x: usize, factor: usize) -> usize {
    ((x as f64 / factor as f64).round_ties_even() as usize) * factor
}

/// transformers' `smart_resize`: the single-crop (or thumbnail) size, as
/// `(height, width)`, both multiples of `P·f`, area within
/// `[min_pixels, max_pixels]` (up to the `P·f` clamp on extreme aspect ratios).
pub fn smart_resize(height: usize, width: usize, cfg: &ProcessorConfig) -> (usize, usize) {
    let tf = cfg.total_factor();
    let tf_f = tf as f64;
    let mut h_bar = tf.max(round_by_factor(height, tf));
    let mut w_bar = tf.max(round_by_factor(width, tf));
    if h_bar * w_bar > cfg.max_pixels() {
        let beta = ((height * width) as f64 / cfg.max_pixels() as f64).sqrt();
        h_bar = tf.max((height as f64 / beta / tf_f).floor() as usize * tf);
        w_bar = tf.max((width as f64 / beta / tf_f).floor() as usize * tf);
    } else if h_bar * w_bar < cfg.min_pixels() {
        let beta = (cfg.min_pixels() as f64 / (height * width) as f64).sqrt();
        h_bar = (height as f64 * beta / tf_f).ceil() as usize * tf;
        w_bar = (width as f64 * beta / tf_f).ceil() as usize * tf;
    }
    (h_bar, w_bar)
}

/// transformers' `_is_image_too_large` (note: it clamps each side to `P`,
/// not `P·f` as smart resize does).
pub fn is_image_too_large(height: usize, width: usize, cfg: &ProcessorConfig) -> bool {
    let tf = cfg.total_factor();
    let p = cfg.encoder_patch_size;
    let h_bar = p.max(round_by_factor(height, tf));
    let w_bar = p.max(round_by_factor(width, tf));
    let limit = cfg.max_pixels() as f64 * cfg.max_pixels_tolerance;
    (h_bar * w_bar) as f64 > limit
}

/// What one crop of an image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropKind {
    /// The whole image, smart-resized (image not split).
    Single,
    /// Tile at 0-based `(row, col)` of the grid.
    Tile { row: usize, col: usize },
    /// The smart-resized whole image appended after the tiles.
    Thumbnail,
}

/// The crop layout of one image, from its size and the config: enough to
/// build its prompt tokens (spec §7.2) and to resize it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayout {
    /// Original size in pixels.
    pub height: usize,
    pub width: usize,
    /// Grid rows `gh` and columns `gw`; `1 × 1` when not split.
    pub grid_rows: usize,
    pub grid_cols: usize,
    /// Whether the image is split into tiles.
    pub tiled: bool,
    /// Smart-resize size `(height, width)`: the single crop, or the thumbnail.
    pub resized: (usize, usize),
    /// Whether a thumbnail follows the tiles.
    pub thumbnail: bool,
    /// Side of a tile in pixels.
    pub tile_size: usize,
    /// Image tokens per tile.
    pub tokens_per_tile: usize,
    /// Image tokens of the single crop or of the thumbnail.
    pub tokens_for_image: usize,
}

impl ImageLayout {
    /// Plans one `height × width` image (both ≥ 1) under `cfg`
    /// (transformers' `resize_and_split`).
    pub fn plan(height: usize, width: usize, cfg: &ProcessorConfig) -> ImageLayout {
        let resized = smart_resize(height, width, cfg);
        let split = cfg.splitting() && is_image_too_large(height, width, cfg);
        let (grid_rows, grid_cols) = if split {
            let (min_t, max_t) = cfg.tile_range();
            let ratios = target_ratios(min_t, max_t);
            let aspect = width as f64 / height as f64;
            let (gw, gh) = find_closest_aspect_ratio(aspect, &ratios, width, height, cfg.tile_size);
            (gh, gw)
        } else {
            (1, 1)
        };
        // A 1×1 grid (only reachable with min_tiles = 1) is treated as not
        // split: transformers would resize to one tile_size² tile but count
        // the smart-resize size's tokens in the prompt, which can disagree.
        let tiled = split && grid_rows * grid_cols > 1;
        let thumbnail = tiled && cfg.use_thumbnail;
        ImageLayout {
            height,
            width,
            grid_rows,
            grid_cols,
            tiled,
            resized,
            thumbnail,
            tile_size: cfg.tile_size,
            tokens_per_tile: cfg.tokens_per_tile(),
            tokens_for_image: cfg.tokens_for_size(resized.0, resized.1),
        }
    }

    /// The crops in output order (spec §6.5): tiles row-major, then the
    /// thumbnail; or the single crop.
    pub fn crops(&self) -> Vec<CropKind> {
        if !self.tiled {
            return vec![CropKind::Single];
        }
        let mut v: Vec<CropKind> = (0..self.grid_rows)
            .flat_map(|row| (0..self.grid_cols).map(move |col| CropKind::Tile { row, col }))
            .collect();
        if self.thumbnail {
            v.push(CropKind::Thumbnail);
        }
        v
    }

    /// Pixel size `(height, width)` of a crop of this image.
    pub fn crop_size(&self, kind: CropKind) -> (usize, usize) {
        match kind {
            CropKind::Tile { .. } => (self.tile_size, self.tile_size),
            CropKind::Single | CropKind::Thumbnail => self.resized,
        }
    }

    /// Number of `<image>` tokens the prompt gets for this image, as
    /// transformers' `_build_image_tokens` counts them.
    pub fn num_image_tokens(&self) -> usize {
        if self.tiled {
            let tiles = self.grid_rows * self.grid_cols * self.tokens_per_tile;
            tiles
                + if self.thumbnail {
                    self.tokens_for_image
                } else {
                    0
                }
        } else {
            self.tokens_for_image
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn real(use_thumbnail: bool, tol: f64) -> ProcessorConfig {
        ProcessorConfig {
            use_thumbnail,
            max_pixels_tolerance: tol,
            ..ProcessorConfig::default()
        }
    }

    #[test]
    fn smart_resize_rounds_half_to_even() {
        let cfg = real(false, 2.0);
        // 1040/32 = 32.5 → 32 (ties to even), not 33; 1040² > max → downscale branch.
        assert_eq!(round_by_factor(1040, 32), 1024);
        assert_eq!(round_by_factor(1008, 32), 1024); // 31.5 → 32
        assert_eq!(round_by_factor(976, 32), 960); // 30.5 → 30
        assert_eq!(smart_resize(1040, 1040, &cfg), (512, 512));
        // Identity sizes.
        assert_eq!(smart_resize(512, 512, &cfg), (512, 512));
        assert_eq!(smart_resize(384, 256, &cfg), (384, 256));
    }

    #[test]
    fn smart_resize_upscale_uses_exact_f64_order() {
        let cfg = real(false, 2.0);
        // beta = sqrt(65536/10000) = 2.56; 100·beta = 256.0 exactly in f64 → 256, not 288.
        assert_eq!(smart_resize(100, 100, &cfg), (256, 256));
        assert_eq!(smart_resize(31, 31, &cfg), (256, 256));
        assert_eq!(smart_resize(64, 64, &cfg), (256, 256));
        assert_eq!(smart_resize(1, 1, &cfg), (256, 256));
        assert_eq!(smart_resize(2, 3, &cfg), (224, 320));
        assert_eq!(smart_resize(20, 30, &cfg), (224, 320));
    }

    #[test]
    fn smart_resize_extreme_strips_clamp() {
        let cfg = real(false, 2.0);
        assert_eq!(smart_resize(15, 4000, &cfg), (32, 4000));
        assert_eq!(smart_resize(7, 3001, &cfg), (32, 3008));
        assert_eq!(smart_resize(1000, 3000, &cfg), (288, 864));
    }

    #[test]
    fn split_decision_and_layout_match_spec_examples() {
        let s450 = real(false, 2.0);
        let s16 = real(true, 1.5);
        let l = ImageLayout::plan(1024, 512, &s450);
        assert!(!l.tiled);
        assert_eq!((l.resized, l.num_image_tokens()), ((704, 352), 242));
        let l = ImageLayout::plan(1024, 512, &s16);
        assert!(l.tiled && l.thumbnail);
        assert_eq!(
            (l.grid_rows, l.grid_cols, l.num_image_tokens()),
            (2, 1, 754)
        );
        let l = ImageLayout::plan(1080, 1920, &s16);
        assert_eq!(
            (l.grid_rows, l.grid_cols, l.num_image_tokens()),
            (2, 4, 2300)
        );
        let l = ImageLayout::plan(1000, 3000, &s16);
        assert_eq!(
            (l.grid_rows, l.grid_cols, l.num_image_tokens()),
            (1, 3, 1011)
        );
        let l = ImageLayout::plan(600, 800, &s16);
        assert_eq!(l.num_image_tokens(), 1770);
        let l = ImageLayout::plan(600, 800, &s450);
        assert!(!l.tiled);
        let l = ImageLayout::plan(1024, 1024, &s450);
        assert_eq!(
            (l.grid_rows, l.grid_cols, l.num_image_tokens()),
            (2, 2, 1024)
        );
        assert_eq!(l.crops().len(), 4);
        let l = ImageLayout::plan(1024, 1024, &s16);
        assert_eq!(l.crops().last(), Some(&CropKind::Thumbnail));
        assert_eq!(l.num_image_tokens(), 1280);
    }

    #[test]
    fn splitting_off_never_tiles() {
        let cfg = ProcessorConfig {
            do_image_splitting: false,
            ..ProcessorConfig::default()
        };
        let l = ImageLayout::plan(3000, 4000, &cfg);
        assert!(!l.tiled);
        assert_eq!(l.crops(), vec![CropKind::Single]);
        assert_eq!(cfg.max_num_patches(), 1024);
    }

    #[test]
    fn one_by_one_grid_is_not_split() {
        // min_tiles = 1 lets (1, 1) win for a near-square 700×700 (it beats
        // (2, 2) on the area tie-break); that is treated as a single crop.
        let cfg = ProcessorConfig {
            min_tiles: 1,
            max_pixels_tolerance: 1.5,
            ..ProcessorConfig::default()
        };
        assert!(is_image_too_large(700, 700, &cfg));
        let l = ImageLayout::plan(700, 700, &cfg);
        assert!(!l.tiled && !l.thumbnail);
        assert_eq!(l.crops(), vec![CropKind::Single]);
        assert_eq!(l.num_image_tokens(), 256);
    }
}
