//! The image-processor knobs (`Lfm2VlImageProcessor`, spec §1.1, §6) read
//! from a checkpoint and overridable by the caller.
//!
//! Which file wins, as transformers 5.24 `ImageProcessingMixin.get_image_processor_dict`
//! decides, plus one fallback for the original Liquid hub layout:
//! 1. `processor_config.json` with a nested `image_processor` object
//!    (what transformers 5 `save_pretrained` writes);
//! 2. otherwise `preprocessor_config.json` (transformers 4 / HF-native hub files);
//! 3. otherwise the top level of `processor_config.json` (the original hub
//!    files of LFM2-VL-450M / -1.6B, read by Liquid's remote code);
//! 4. otherwise the knobs in `config.json` itself, when it has any besides
//!    `downsample_factor` (some conversions ship only that file; transformers
//!    would load no processor at all, mlx-vlm reads them there).
//!
//! The chosen object is used whole (transformers does not merge the two
//! files key by key); missing keys and `null` take the class defaults.
//! `use_image_special_tokens` is a processor (not image-processor) setting and
//! is read from the top level of `processor_config.json` first.
//! `max_num_patches` in a file is ignored: transformers recomputes it from the
//! other knobs (only a caller override sets it).

use std::path::Path;

use serde::Deserialize;

use super::error::{PreprocessError, Result};

/// Largest accepted `max_tiles`. LFM2's vocabulary has row/column markers up
/// to 10×10; larger grids are refused rather than silently tokenized as text.
pub const MAX_TILES_LIMIT: usize = 100;

/// PIL resampling filter codes (`resample` in the config) we implement. Both
/// are antialiased and computed like torchvision's native uint8 CPU path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResampleFilter {
    /// PIL code 2 (the LFM2-VL default).
    Bilinear,
    /// PIL code 3.
    Bicubic,
}

impl ResampleFilter {
    /// Maps a PIL resampling code; `None` for codes we do not implement.
    pub fn from_pil_code(code: u32) -> Option<ResampleFilter> {
        match code {
            2 => Some(ResampleFilter::Bilinear),
            3 => Some(ResampleFilter::Bicubic),
            _ => None,
        }
    }
}

/// The effective preprocessing settings. Defaults are the transformers class
/// defaults of `Lfm2VlImageProcessor` (note: `use_thumbnail` defaults to
/// true there; the 450M checkpoint sets it false).
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessorConfig {
    /// Split large images into tiles. `false` behaves as `min_tiles = max_tiles = 1`.
    pub do_image_splitting: bool,
    /// Fewest tiles (`gw·gh`) of a split image.
    pub min_tiles: usize,
    /// Most tiles of a split image.
    pub max_tiles: usize,
    /// Append a smart-resized thumbnail after the tiles of a split image.
    pub use_thumbnail: bool,
    /// Lower bound of the smart-resize area, in image tokens.
    pub min_image_tokens: usize,
    /// Upper bound of the smart-resize area, in image tokens.
    pub max_image_tokens: usize,
    /// Vision patch size P (pixels).
    pub encoder_patch_size: usize,
    /// Side of a square tile (pixels).
    pub tile_size: usize,
    /// Split threshold factor: split when the rounded area exceeds
    /// `max_image_tokens·P²·f²·max_pixels_tolerance`.
    pub max_pixels_tolerance: f64,
    /// Pixel-unshuffle factor f of the connector.
    pub downsample_factor: usize,
    /// Rows of `pixel_values` per crop; `None` = transformers' formula
    /// (see [`ProcessorConfig::max_num_patches`]).
    pub max_num_patches: Option<usize>,
    /// Per-channel mean (on the 0..1 scale).
    pub image_mean: [f32; 3],
    /// Per-channel std (on the 0..1 scale).
    pub image_std: [f32; 3],
    /// Rescale factor applied before normalisation (1/255).
    pub rescale_factor: f64,
    /// Apply `rescale_factor`.
    pub do_rescale: bool,
    /// Apply mean/std.
    pub do_normalize: bool,
    /// PIL resampling code: 2 = bilinear, 3 = bicubic.
    pub resample: u32,
    /// Emit `<|image_start|>`, `<|image_end|>`, row/col and thumbnail markers.
    pub use_image_special_tokens: bool,
}

impl Default for ProcessorConfig {
    fn default() -> Self {
        ProcessorConfig {
            do_image_splitting: true,
            min_tiles: 2,
            max_tiles: 10,
            use_thumbnail: true,
            min_image_tokens: 64,
            max_image_tokens: 256,
            encoder_patch_size: 16,
            tile_size: 512,
            max_pixels_tolerance: 2.0,
            downsample_factor: 2,
            max_num_patches: None,
            image_mean: [0.5; 3],
            image_std: [0.5; 3],
            rescale_factor: 1.0 / 255.0,
            do_rescale: true,
            do_normalize: true,
            resample: 2,
            use_image_special_tokens: true,
        }
    }
}

/// Per-channel statistics: a list of three numbers or one number for all.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum ChannelStats {
    /// One value per channel (R, G, B).
    PerChannel([f32; 3]),
    /// The same value for every channel.
    Scalar(f32),
}

impl ChannelStats {
    fn to_array(self) -> [f32; 3] {
        match self {
            ChannelStats::PerChannel(a) => a,
            ChannelStats::Scalar(v) => [v; 3],
        }
    }
}

/// Optional values for every knob: the shape of a config file and of caller
/// overrides. `None` leaves the current value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ProcessorOverrides {
    pub do_image_splitting: Option<bool>,
    pub min_tiles: Option<usize>,
    pub max_tiles: Option<usize>,
    pub use_thumbnail: Option<bool>,
    pub min_image_tokens: Option<usize>,
    pub max_image_tokens: Option<usize>,
    pub encoder_patch_size: Option<usize>,
    pub tile_size: Option<usize>,
    pub max_pixels_tolerance: Option<f64>,
    pub downsample_factor: Option<usize>,
    pub max_num_patches: Option<usize>,
    pub image_mean: Option<ChannelStats>,
    pub image_std: Option<ChannelStats>,
    pub rescale_factor: Option<f64>,
    pub do_rescale: Option<bool>,
    pub do_normalize: Option<bool>,
    pub resample: Option<u32>,
    pub use_image_special_tokens: Option<bool>,
}

impl ProcessorOverrides {
    /// Returns `cfg` with every `Some` field of `self` applied.
    pub fn apply(&self, mut cfg: ProcessorConfig) -> ProcessorConfig {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { cfg.$f = v; } )* };
        }
        set!(
            do_image_splitting,
            min_tiles,
            max_tiles,
            use_thumbnail,
            min_image_tokens,
            max_image_tokens,
            encoder_patch_size,
            tile_size,
            max_pixels_tolerance,
            downsample_factor,
            rescale_factor,
            do_rescale,
            do_normalize,
            resample,
            use_image_special_tokens
        );
        if let Some(v) = self.max_num_patches {
            cfg.max_num_patches = Some(v);
        }
        if let Some(v) = self.image_mean {
            cfg.image_mean = v.to_array();
        }
        if let Some(v) = self.image_std {
            cfg.image_std = v.to_array();
        }
        cfg
    }
}

/// File name transformers 5 writes (knobs nested under `image_processor`).
pub const PROCESSOR_CONFIG_FILE: &str = "processor_config.json";
/// File name of the HF-native image-processor config.
pub const PREPROCESSOR_CONFIG_FILE: &str = "preprocessor_config.json";

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(PreprocessError::Io {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|source| PreprocessError::ConfigParse {
            path: path.to_path_buf(),
            source,
        })
}

fn parse_overrides(value: &serde_json::Value, path: &Path) -> Result<ProcessorOverrides> {
    let mut o: ProcessorOverrides =
        serde_json::from_value(value.clone()).map_err(|source| PreprocessError::ConfigParse {
            path: path.to_path_buf(),
            source,
        })?;
    // transformers recomputes max_num_patches from the other knobs.
    o.max_num_patches = None;
    Ok(o)
}

impl ProcessorConfig {
    /// Reads the checkpoint directory's processor config (see the module doc
    /// for which file wins), without validating it.
    pub fn from_dir(dir: &Path) -> Result<ProcessorConfig> {
        let pc_path = dir.join(PROCESSOR_CONFIG_FILE);
        let pp_path = dir.join(PREPROCESSOR_CONFIG_FILE);
        let pc = read_json(&pc_path)?;
        let pp = read_json(&pp_path)?;
        let nested = pc.as_ref().and_then(|v| v.get("image_processor"));
        let mut file = match (nested, &pp, &pc) {
            (Some(n), _, _) => parse_overrides(n, &pc_path)?,
            (None, Some(p), _) => parse_overrides(p, &pp_path)?,
            (None, None, Some(c)) => parse_overrides(c, &pc_path)?,
            (None, None, None) => {
                let cfg_path = dir.join("config.json");
                let missing = || PreprocessError::ConfigMissing {
                    dir: dir.to_path_buf(),
                };
                let model = read_json(&cfg_path)?.ok_or_else(missing)?;
                let knobs = parse_overrides(&model, &cfg_path)?;
                let only_model_level = ProcessorOverrides {
                    downsample_factor: knobs.downsample_factor,
                    ..Default::default()
                };
                if knobs == only_model_level {
                    return Err(missing());
                }
                knobs
            }
        };
        // Processor-level setting: the top level of processor_config.json first.
        if let Some(v) = pc
            .as_ref()
            .and_then(|v| v.get("use_image_special_tokens"))
            .and_then(|v| v.as_bool())
        {
            file.use_image_special_tokens = Some(v);
        }
        Ok(file.apply(ProcessorConfig::default()))
    }

    /// Reads the directory's config, applies `overrides` and validates.
    pub fn load(dir: &Path, overrides: &ProcessorOverrides) -> Result<ProcessorConfig> {
        let cfg = overrides.apply(ProcessorConfig::from_dir(dir)?);
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every knob; the error names the first bad field.
    pub fn validate(&self) -> Result<()> {
        fn bad(field: &'static str, value: impl ToString, reason: &'static str) -> Result<()> {
            Err(PreprocessError::InvalidConfig {
                field,
                value: value.to_string(),
                reason,
            })
        }
        if self.encoder_patch_size == 0 {
            return bad("encoder_patch_size", 0, "must be at least 1");
        }
        if self.downsample_factor == 0 {
            return bad("downsample_factor", 0, "must be at least 1");
        }
        if self.tile_size == 0 || !self.tile_size.is_multiple_of(self.total_factor()) {
            return bad(
                "tile_size",
                self.tile_size,
                "must be a positive multiple of encoder_patch_size * downsample_factor",
            );
        }
        if self.min_image_tokens == 0 {
            return bad("min_image_tokens", 0, "must be at least 1");
        }
        if self.max_image_tokens < self.min_image_tokens {
            return bad(
                "max_image_tokens",
                self.max_image_tokens,
                "must be >= min_image_tokens",
            );
        }
        if self.do_image_splitting {
            if self.min_tiles == 0 {
                return bad("min_tiles", 0, "must be at least 1");
            }
            if self.max_tiles < self.min_tiles {
                return bad("max_tiles", self.max_tiles, "must be >= min_tiles");
            }
            if self.max_tiles > MAX_TILES_LIMIT {
                return bad("max_tiles", self.max_tiles, "must be <= 100");
            }
        }
        if !(self.max_pixels_tolerance.is_finite() && self.max_pixels_tolerance > 0.0) {
            return bad(
                "max_pixels_tolerance",
                self.max_pixels_tolerance,
                "must be finite and > 0",
            );
        }
        if self.max_num_patches == Some(0) {
            return bad("max_num_patches", 0, "must be at least 1");
        }
        if self.image_mean.iter().any(|v| !v.is_finite()) {
            return bad(
                "image_mean",
                format!("{:?}", self.image_mean),
                "must be finite",
            );
        }
        if self.image_std.iter().any(|v| !v.is_finite() || *v == 0.0) {
            return bad(
                "image_std",
                format!("{:?}", self.image_std),
                "must be finite and non-zero",
            );
        }
        if !(self.rescale_factor.is_finite() && self.rescale_factor > 0.0) {
            return bad(
                "rescale_factor",
                self.rescale_factor,
                "must be finite and > 0",
            );
        }
        if ResampleFilter::from_pil_code(self.resample).is_none() {
            return Err(PreprocessError::UnsupportedResample {
                code: self.resample,
            });
        }
        Ok(())
    }

    /// `encoder_patch_size · downsample_factor`: every smart-resized side is a multiple of it.
    pub fn total_factor(&self) -> usize {
        self.encoder_patch_size * self.downsample_factor
    }

    /// Smallest smart-resize area in pixels: `min_image_tokens·P²·f²`.
    pub fn min_pixels(&self) -> usize {
        self.min_image_tokens * self.total_factor() * self.total_factor()
    }

    /// Largest smart-resize area in pixels: `max_image_tokens·P²·f²`.
    pub fn max_pixels(&self) -> usize {
        self.max_image_tokens * self.total_factor() * self.total_factor()
    }

    /// `(min_tiles, max_tiles)` as the processor uses them: `(1, 1)` when
    /// splitting is off.
    pub fn tile_range(&self) -> (usize, usize) {
        if self.do_image_splitting {
            (self.min_tiles, self.max_tiles)
        } else {
            (1, 1)
        }
    }

    /// Whether a large image is split: `do_image_splitting` and not
    /// `min_tiles == max_tiles == 1`.
    pub fn splitting(&self) -> bool {
        self.tile_range() != (1, 1)
    }

    /// Rows of `pixel_values` per crop: the override, or transformers'
    /// `max(max_image_tokens·f², (tile_size/P)² if do_image_splitting else 0)`.
    pub fn max_num_patches(&self) -> usize {
        self.max_num_patches.unwrap_or_else(|| {
            let thumb = self.max_image_tokens * self.downsample_factor * self.downsample_factor;
            let per_side = self.tile_size / self.encoder_patch_size;
            let tile = if self.do_image_splitting {
                per_side * per_side
            } else {
                0
            };
            thumb.max(tile)
        })
    }

    /// Length of one patch vector: `3·P²`.
    pub fn patch_dim(&self) -> usize {
        3 * self.encoder_patch_size * self.encoder_patch_size
    }

    /// Image tokens of one tile: `ceil((tile_size / P) / f)²`.
    pub fn tokens_per_tile(&self) -> usize {
        let side = (self.tile_size / self.encoder_patch_size).div_ceil(self.downsample_factor);
        side * side
    }

    /// Image tokens of a single crop or thumbnail of `height × width` pixels:
    /// `ceil((height / P) / f) · ceil((width / P) / f)`.
    pub fn tokens_for_size(&self, height: usize, width: usize) -> usize {
        let p = self.encoder_patch_size;
        let f = self.downsample_factor;
        (height / p).div_ceil(f) * (width / p).div_ceil(f)
    }

    /// The validated resampling filter (bilinear if `resample` is unknown;
    /// [`ProcessorConfig::validate`] rejects that case).
    pub fn filter(&self) -> ResampleFilter {
        ResampleFilter::from_pil_code(self.resample).unwrap_or(ResampleFilter::Bilinear)
    }
}
