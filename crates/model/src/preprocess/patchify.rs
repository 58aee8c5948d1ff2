//! Rescale + normalise and patchify one crop (spec §6.7, §6.8).
//!
//! transformers fuses rescale and normalise: `mean' = f32(mean)·f32(1/rescale)`,
//! `std' = f32(std)·f32(1/rescale)` and `(f32(u8) − mean') / std'` in f32.
//! With mean = std = 0.5 this is `(u8 − 127.5) / 127.5`, which is bit-exact;
//! `u8 / 127.5 − 1` is not. Patches are row-major, each flattened in
//! `(py, px, c)` order.

use image::RgbImage;

use super::config::ProcessorConfig;

/// The per-channel affine map from a uint8 sample to the model's f32 input,
/// computed as transformers computes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalizer {
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// `(x − mean) / std` (fused rescale, or normalise alone).
    Normalize { mean: [f32; 3], std: [f32; 3] },
    /// `x · scale`.
    Rescale { scale: f32 },
    /// `x` as f32.
    Identity,
}

impl Normalizer {
    /// The map of `cfg` (`do_rescale`, `do_normalize`, mean, std, rescale factor).
    pub fn new(cfg: &ProcessorConfig) -> Normalizer {
        let mode = if cfg.do_normalize {
            let (mut mean, mut std) = (cfg.image_mean, cfg.image_std);
            if cfg.do_rescale {
                let inv = (1.0 / cfg.rescale_factor) as f32;
                for c in 0..3 {
                    mean[c] *= inv;
                    std[c] *= inv;
                }
            }
            Mode::Normalize { mean, std }
        } else if cfg.do_rescale {
            Mode::Rescale {
                scale: cfg.rescale_factor as f32,
            }
        } else {
            Mode::Identity
        };
        Normalizer { mode }
    }

    /// Maps one sample of channel `c`.
    #[inline]
    pub fn apply(&self, x: u8, c: usize) -> f32 {
        let x = x as f32;
        match self.mode {
            Mode::Normalize { mean, std } => (x - mean[c]) / std[c],
            Mode::Rescale { scale } => x * scale,
            Mode::Identity => x,
        }
    }
}

/// Writes the patches of `crop` (height and width multiples of `p`) into
/// `out`, `[h·w, 3·p²]` row-major with `h = height/p`, `w = width/p`;
/// `out` must hold at least that many values (the caller zero-pads the rest).
pub fn patchify_into(crop: &RgbImage, p: usize, norm: &Normalizer, out: &mut [f32]) {
    let width = crop.width() as usize;
    let (h, w) = (crop.height() as usize / p, width / p);
    let dim = 3 * p * p;
    let raw = crop.as_raw();
    for pr in 0..h {
        for pc in 0..w {
            let patch = &mut out[(pr * w + pc) * dim..(pr * w + pc + 1) * dim];
            for py in 0..p {
                let src = ((pr * p + py) * width + pc * p) * 3;
                let row = &raw[src..src + p * 3];
                let dst = &mut patch[py * p * 3..(py + 1) * p * 3];
                for (i, (d, &s)) in dst.iter_mut().zip(row).enumerate() {
                    *d = norm.apply(s, i % 3);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_default_is_bit_exact_fused_form() {
        let n = Normalizer::new(&ProcessorConfig::default());
        for x in 0..=255u8 {
            let want = (x as f32 - 127.5) / 127.5;
            assert_eq!(n.apply(x, 0).to_bits(), want.to_bits());
        }
        // The unfused form differs somewhere (why the fused form matters).
        assert!((0..=255u8).any(|x| (x as f32 / 127.5 - 1.0).to_bits() != n.apply(x, 1).to_bits()));
    }

    #[test]
    fn patchify_order_is_py_px_c() {
        let p = 2;
        let img = RgbImage::from_fn(4, 2, |x, y| image::Rgb([(10 * y + x) as u8, 100, 200]));
        let cfg = ProcessorConfig {
            do_normalize: false,
            do_rescale: false,
            ..ProcessorConfig::default()
        };
        let mut out = vec![0.0; 2 * 12];
        patchify_into(&img, p, &Normalizer::new(&cfg), &mut out);
        // patch 1 (col 1): pixels (y0,x2) (y0,x3) (y1,x2) (y1,x3), channel fastest.
        let r: Vec<f32> = out[12..].iter().step_by(3).copied().collect();
        assert_eq!(r, vec![2.0, 3.0, 12.0, 13.0]);
        assert_eq!(&out[12..15], &[2.0, 100.0, 200.0]);
    }
}
