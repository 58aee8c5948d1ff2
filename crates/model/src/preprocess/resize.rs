//! Antialiased resize of 8-bit RGB images, reproducing torchvision's native
//! uint8 CPU path (`F.interpolate(..., antialias=True)` on a uint8 tensor →
//! aten `_upsample_bilinear2d_aa` / `_upsample_bicubic2d_aa`, the
//! Pillow-SIMD-style fixed-point kernel; spec §6.6).
//!
//! Per axis (align_corners = false, no explicit scale):
//! - `scale = in / out`; `support = (taps/2)·scale` when downscaling, else
//!   `taps/2` (taps = 2 bilinear, 4 bicubic); at most `2·ceil(support)+1` taps;
//! - output `i` has `center = scale·(i + 0.5)`, first input
//!   `xmin = max(trunc(center − support + 0.5), 0)`, count
//!   `min(trunc(center + support + 0.5), in) − xmin`, and f64 weights
//!   `filter(((xmin + j) − center + 0.5) / max(scale, 1))`, normalised to sum 1;
//! - the f64 weights become integers: the precision `p` is the largest
//!   (≤ 22) with `trunc(0.5 + w_max·2^(p+1)) < 2^15`, and
//!   `w_int = trunc(±0.5 + w·2^p)` (sign of `w`);
//! - a pass computes `clamp((2^(p−1) + Σ w_int·pixel) >> p, 0, 255)` with an
//!   arithmetic shift, per channel, into a uint8 buffer.
//!
//! The horizontal pass runs first (only if the width changes), then the
//! vertical pass on its uint8 output (only if the height changes). An
//! unchanged size returns a copy (torchvision's identity shortcut).

use image::RgbImage;

use super::config::ResampleFilter;

/// Integer weights of one axis.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisWeights {
    /// `[out]` first input index of each output.
    pub starts: Vec<usize>,
    /// `[out]` number of inputs of each output.
    pub counts: Vec<usize>,
    /// Row stride of `weights` (the most taps any output can have).
    pub stride: usize,
    /// `[out, stride]` fixed-point weights (int16 range).
    pub weights: Vec<i32>,
    /// Fixed-point precision `p` (weights are scaled by `2^p`).
    pub precision: u32,
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

/// Keys cubic with a = −0.5 (aten's antialiased bicubic filter).
fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// aten's `_compute_index_ranges_int16_weights` for an antialiased resize
/// of one axis from `in_size` to `out_size` (both ≥ 1).
pub fn axis_weights(in_size: usize, out_size: usize, filter: ResampleFilter) -> AxisWeights {
    let (taps, f): (f64, fn(f64) -> f64) = match filter {
        ResampleFilter::Bilinear => (2.0, bilinear),
        ResampleFilter::Bicubic => (4.0, bicubic),
    };
    let scale = in_size as f64 / out_size as f64;
    let support = if scale >= 1.0 {
        (taps * 0.5) * scale
    } else {
        taps * 0.5
    };
    let stride = support.ceil() as usize * 2 + 1;
    let invscale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };

    let mut starts = Vec::with_capacity(out_size);
    let mut counts = Vec::with_capacity(out_size);
    let mut wf = vec![0.0f64; out_size * stride];
    let mut w_max = 0.0f64;
    for i in 0..out_size {
        let center = scale * (i as f64 + 0.5);
        // `as i64` truncates toward zero, like the C++ static_cast.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xend = ((center + support + 0.5) as i64).min(in_size as i64);
        let count = (xend - xmin).clamp(0, stride as i64) as usize;
        let row = &mut wf[i * stride..(i + 1) * stride];
        let mut total = 0.0f64;
        for (j, w) in row.iter_mut().enumerate().take(count) {
            let v = f(((j as i64 + xmin) as f64 - center + 0.5) * invscale);
            *w = v;
            total += v;
        }
        if total != 0.0 {
            for w in row.iter_mut().take(count) {
                *w /= total;
                w_max = w_max.max(*w);
            }
        }
        starts.push(xmin as usize);
        counts.push(count);
    }

    let mut precision = 0u32;
    while precision < 22 {
        let next = (0.5 + w_max * (1i64 << (precision + 1)) as f64) as i64;
        if next >= 1 << 15 {
            break;
        }
        precision += 1;
    }
    let one = (1i64 << precision) as f64;
    let weights = wf
        .iter()
        .map(|&v| {
            if v < 0.0 {
                (-0.5 + v * one) as i32
            } else {
                (0.5 + v * one) as i32
            }
        })
        .collect();
    AxisWeights {
        starts,
        counts,
        stride,
        weights,
        precision,
    }
}

#[inline]
fn finish(acc: i32, precision: u32) -> u8 {
    (acc >> precision).clamp(0, 255) as u8
}

fn rounding(precision: u32) -> i32 {
    if precision == 0 {
        0
    } else {
        1 << (precision - 1)
    }
}

/// Horizontal pass: `[h, w_in, 3]` → `[h, out_w, 3]`.
fn horizontal(src: &[u8], h: usize, w_in: usize, aw: &AxisWeights) -> Vec<u8> {
    let out_w = aw.starts.len();
    let mut out = vec![0u8; h * out_w * 3];
    let half = rounding(aw.precision);
    for y in 0..h {
        let srow = &src[y * w_in * 3..(y + 1) * w_in * 3];
        let orow = &mut out[y * out_w * 3..(y + 1) * out_w * 3];
        for xo in 0..out_w {
            let start = aw.starts[xo];
            let k = &aw.weights[xo * aw.stride..xo * aw.stride + aw.counts[xo]];
            let px = &srow[start * 3..(start + k.len()) * 3];
            let mut acc = [half; 3];
            for (w, p) in k.iter().zip(px.chunks_exact(3)) {
                acc[0] += *w * p[0] as i32;
                acc[1] += *w * p[1] as i32;
                acc[2] += *w * p[2] as i32;
            }
            for c in 0..3 {
                orow[xo * 3 + c] = finish(acc[c], aw.precision);
            }
        }
    }
    out
}

/// Vertical pass: `[h_in, w, 3]` → `[out_h, w, 3]`.
fn vertical(src: &[u8], w: usize, aw: &AxisWeights) -> Vec<u8> {
    let out_h = aw.starts.len();
    let row_len = w * 3;
    let mut out = vec![0u8; out_h * row_len];
    let half = rounding(aw.precision);
    let mut acc = vec![0i32; row_len];
    for yo in 0..out_h {
        acc.fill(half);
        let start = aw.starts[yo];
        let k = &aw.weights[yo * aw.stride..yo * aw.stride + aw.counts[yo]];
        for (j, &wt) in k.iter().enumerate() {
            let srow = &src[(start + j) * row_len..(start + j + 1) * row_len];
            for (a, &p) in acc.iter_mut().zip(srow) {
                *a += wt * p as i32;
            }
        }
        let orow = &mut out[yo * row_len..(yo + 1) * row_len];
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = finish(a, aw.precision);
        }
    }
    out
}

/// Resizes `src` to `out_h × out_w` (both ≥ 1) with torchvision's uint8
/// antialiased kernel; see the module doc for the exact arithmetic.
pub fn resize_rgb8(src: &RgbImage, out_h: usize, out_w: usize, filter: ResampleFilter) -> RgbImage {
    let (in_w, in_h) = (src.width() as usize, src.height() as usize);
    if (in_h, in_w) == (out_h, out_w) {
        return src.clone();
    }
    let mut data: Vec<u8> = src.as_raw().clone();
    if out_w != in_w {
        data = horizontal(&data, in_h, in_w, &axis_weights(in_w, out_w, filter));
    }
    if out_h != in_h {
        data = vertical(&data, out_w, &axis_weights(in_h, out_h, filter));
    }
    // The buffer holds exactly out_h·out_w·3 bytes by construction.
    RgbImage::from_raw(out_w as u32, out_h as u32, data).expect("resize buffer has the output size")
}

/// Crops the `size × size` tile at `(row, col)` of `img` (row-major tiles).
pub fn crop_tile(img: &RgbImage, row: usize, col: usize, size: usize) -> RgbImage {
    let w = img.width() as usize;
    let mut out = Vec::with_capacity(size * size * 3);
    for y in row * size..(row + 1) * size {
        let start = (y * w + col * size) * 3;
        out.extend_from_slice(&img.as_raw()[start..start + size * 3]);
    }
    RgbImage::from_raw(size as u32, size as u32, out).expect("tile buffer has the tile size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resize_identity_is_a_copy() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8, y as u8, 7]));
        assert_eq!(resize_rgb8(&img, 3, 5, ResampleFilter::Bilinear), img);
    }

    #[test]
    fn resize_weights_sum_to_one_in_fixed_point() {
        for (i, o) in [(1000, 32), (31, 256), (7, 3008), (1031, 512), (3, 320)] {
            let aw = axis_weights(i, o, ResampleFilter::Bilinear);
            let one = 1i32 << aw.precision;
            for x in 0..o {
                let s: i32 = aw.weights[x * aw.stride..x * aw.stride + aw.counts[x]]
                    .iter()
                    .sum();
                // Each weight rounds by at most 1/2 ulp.
                assert!(
                    (s - one).abs() <= aw.counts[x] as i32,
                    "{i}->{o} x={x}: {s} vs {one}"
                );
                assert!(aw.weights.iter().all(|&w| w < 1 << 15));
            }
        }
    }

    #[test]
    fn resize_constant_image_stays_constant() {
        let img = RgbImage::from_pixel(37, 23, image::Rgb([200, 3, 128]));
        for (h, w) in [(64, 96), (8, 8), (23, 512), (100, 37)] {
            let out = resize_rgb8(&img, h, w, ResampleFilter::Bilinear);
            assert!(out.pixels().all(|p| p.0 == [200, 3, 128]), "{h}x{w}");
        }
    }

    /// Outputs of torchvision 0.29.2 / torch 2.15 (`F.resize(uint8 CHW,
    /// antialias=True)`, `ATEN_CPU_CAPABILITY=avx2`) for the 5×9 test image below.
    #[rustfmt::skip]
    mod torch_ref {
        pub const BICUBIC_3X4: [u8; 36] = [69, 10, 125, 151, 115, 128, 145, 155, 128, 78, 118, 125, 150, 22, 127, 118, 127, 128, 130, 167, 128, 157, 130, 127, 136, 34, 125, 114, 139, 128, 108, 179, 128, 115, 142, 125];
        pub const BILINEAR_8X4: [u8; 96] = [31, 16, 109, 106, 111, 131, 172, 143, 131, 61, 120, 109, 75, 19, 125, 147, 114, 128, 140, 146, 128, 82, 123, 125, 135, 23, 144, 192, 118, 124, 100, 150, 124, 116, 127, 144, 166, 28, 121, 111, 123, 129, 124, 155, 129, 179, 132, 121, 149, 32, 121, 96, 127, 129, 140, 159, 129, 163, 136, 121, 84, 37, 144, 148, 132, 124, 149, 164, 124, 66, 141, 144, 135, 41, 125, 115, 136, 128, 112, 168, 128, 113, 145, 125, 179, 44, 109, 85, 139, 131, 82, 171, 131, 157, 148, 109];
    }

    fn test_image() -> RgbImage {
        RgbImage::from_fn(9, 5, |x, y| {
            image::Rgb([
                ((37 * x + 101 * y) % 256) as u8,
                ((x * x * 13 + y * 7) % 256) as u8,
                if (x + y) % 2 == 1 { 255 } else { 0 },
            ])
        })
    }

    #[test]
    fn resize_bicubic_matches_torchvision_uint8() {
        let out = resize_rgb8(&test_image(), 3, 4, ResampleFilter::Bicubic);
        assert_eq!(out.as_raw().as_slice(), &torch_ref::BICUBIC_3X4[..]);
    }

    #[test]
    fn resize_bilinear_up_and_down_matches_torchvision_uint8() {
        let out = resize_rgb8(&test_image(), 8, 4, ResampleFilter::Bilinear);
        assert_eq!(out.as_raw().as_slice(), &torch_ref::BILINEAR_8X4[..]);
    }
}
