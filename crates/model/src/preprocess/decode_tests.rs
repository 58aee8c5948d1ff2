//! Tests of the decoding rules with tiny images encoded in-test.

use std::io::Cursor;

use image::codecs::{
    bmp::BmpEncoder, gif, jpeg::JpegEncoder, png::PngEncoder, tiff::TiffEncoder, webp::WebPEncoder,
};
use image::{
    DynamicImage, ExtendedColorType, GrayAlphaImage, GrayImage, ImageBuffer, ImageEncoder, Luma,
    LumaA, Rgb, RgbImage, Rgba, RgbaImage,
};

use super::*;

fn rgb_test_image(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([(x * 30) as u8, (y * 40) as u8, ((x + y) * 7) as u8])
    })
}

fn png_bytes(img: &DynamicImage) -> Vec<u8> {
    let mut out = Vec::new();
    img.write_with_encoder(PngEncoder::new(&mut out)).unwrap();
    out
}

fn decode(bytes: &[u8]) -> Result<RgbImage> {
    decode_image(bytes, "test", &DecodeLimits::default())
}

#[test]
fn decode_lossless_formats_roundtrip() {
    let img = rgb_test_image(7, 5);
    let dy = DynamicImage::ImageRgb8(img.clone());
    let mut encoded: Vec<(&str, Vec<u8>)> = vec![("png", png_bytes(&dy))];
    let mut bmp = Vec::new();
    dy.write_with_encoder(BmpEncoder::new(&mut bmp)).unwrap();
    encoded.push(("bmp", bmp));
    let mut tiff = Cursor::new(Vec::new());
    dy.write_with_encoder(TiffEncoder::new(&mut tiff)).unwrap();
    encoded.push(("tiff", tiff.into_inner()));
    let mut webp = Vec::new();
    dy.write_with_encoder(WebPEncoder::new_lossless(&mut webp))
        .unwrap();
    encoded.push(("webp", webp));
    for (name, bytes) in encoded {
        assert_eq!(decode(&bytes).unwrap(), img, "{name}");
    }
}

#[test]
fn decode_jpeg_is_close() {
    let img = RgbImage::from_fn(16, 16, |x, y| Rgb([(x * 8) as u8, (y * 8) as u8, 128]));
    let mut jpg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpg, 95)
        .write_image(img.as_raw(), 16, 16, ExtendedColorType::Rgb8)
        .unwrap();
    let got = decode(&jpg).unwrap();
    let max = got
        .as_raw()
        .iter()
        .zip(img.as_raw())
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap();
    assert!(max <= 8, "JPEG error {max}");
}

#[test]
fn decode_gif_takes_the_first_frame() {
    let mut bytes = Vec::new();
    {
        let mut enc = gif::GifEncoder::new(&mut bytes);
        for color in [[200u8, 10, 10, 255], [10, 200, 10, 255]] {
            let frame = image::Frame::new(RgbaImage::from_pixel(4, 3, Rgba(color)));
            enc.encode_frame(frame).unwrap();
        }
    }
    let got = decode(&bytes).unwrap();
    assert_eq!((got.width(), got.height()), (4, 3));
    assert!(
        got.pixels().all(|p| p.0 == [200, 10, 10]),
        "{:?}",
        got.get_pixel(0, 0)
    );
}

#[test]
fn decode_alpha_is_composited_on_white() {
    let img = RgbaImage::from_fn(3, 1, |x, _| match x {
        0 => Rgba([100, 0, 255, 128]),
        1 => Rgba([10, 20, 30, 0]),
        _ => Rgba([10, 20, 30, 255]),
    });
    let got = decode(&png_bytes(&DynamicImage::ImageRgba8(img))).unwrap();
    // Pillow: alpha_composite((255,255,255,255), (100,0,255,128)) = (177,127,255).
    assert_eq!(got.get_pixel(0, 0).0, [177, 127, 255]);
    assert_eq!(got.get_pixel(1, 0).0, [255, 255, 255]);
    assert_eq!(got.get_pixel(2, 0).0, [10, 20, 30]);
}

#[test]
fn decode_gray_and_gray_alpha_become_rgb() {
    let g = GrayImage::from_fn(2, 1, |x, _| Luma([if x == 0 { 0 } else { 77 }]));
    let got = decode(&png_bytes(&DynamicImage::ImageLuma8(g))).unwrap();
    assert_eq!(got.get_pixel(1, 0).0, [77, 77, 77]);
    let ga = GrayAlphaImage::from_pixel(1, 1, LumaA([0, 128]));
    let got = decode(&png_bytes(&DynamicImage::ImageLumaA8(ga))).unwrap();
    assert_eq!(got.get_pixel(0, 0).0, [127, 127, 127]);
}

#[test]
fn decode_16bit_rounds_to_nearest() {
    let vals = [385u16, 386, 0x8080, 65535];
    let img: ImageBuffer<Rgb<u16>, Vec<u16>> = ImageBuffer::from_fn(4, 1, |x, _| {
        let v = vals[x as usize];
        Rgb([v, v, 0])
    });
    let got = decode(&png_bytes(&DynamicImage::ImageRgb16(img))).unwrap();
    let r: Vec<u8> = got.pixels().map(|p| p.0[0]).collect();
    // round(v·255/65535): 1.498 → 1, 1.502 → 2, 128, 255.
    assert_eq!(r, vec![1, 2, 128, 255]);
}

/// A JPEG of a 16×8 image (left half black, right half white) with an EXIF
/// APP1 segment carrying `orientation`.
fn jpeg_with_orientation(orientation: u16) -> Vec<u8> {
    let img = RgbImage::from_fn(16, 8, |x, _| {
        if x < 8 {
            Rgb([0, 0, 0])
        } else {
            Rgb([255, 255, 255])
        }
    });
    let mut jpg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpg, 95)
        .write_image(img.as_raw(), 16, 8, ExtendedColorType::Rgb8)
        .unwrap();
    let mut tiff = b"II*\0".to_vec();
    tiff.extend(8u32.to_le_bytes());
    tiff.extend(1u16.to_le_bytes()); // one IFD entry
    tiff.extend(0x0112u16.to_le_bytes()); // Orientation
    tiff.extend(3u16.to_le_bytes()); // SHORT
    tiff.extend(1u32.to_le_bytes());
    tiff.extend(orientation.to_le_bytes());
    tiff.extend([0, 0]);
    tiff.extend(0u32.to_le_bytes()); // no next IFD
    let mut seg = b"Exif\0\0".to_vec();
    seg.extend(tiff);
    let mut out = jpg[..2].to_vec(); // SOI
    out.extend([0xFF, 0xE1]);
    out.extend(((seg.len() + 2) as u16).to_be_bytes());
    out.extend(seg);
    out.extend(&jpg[2..]);
    out
}

fn mean(img: &RgbImage, x0: u32, x1: u32, y0: u32, y1: u32) -> f64 {
    let mut s = 0.0;
    let mut n = 0.0;
    for y in y0..y1 {
        for x in x0..x1 {
            s += img.get_pixel(x, y).0[0] as f64;
            n += 1.0;
        }
    }
    s / n
}

#[test]
fn decode_applies_exif_orientation() {
    // 1: as stored.
    let img = decode(&jpeg_with_orientation(1)).unwrap();
    assert_eq!((img.width(), img.height()), (16, 8));
    assert!(mean(&img, 0, 6, 0, 8) < 30.0 && mean(&img, 10, 16, 0, 8) > 225.0);
    // 3: rotate 180° → black on the right.
    let img = decode(&jpeg_with_orientation(3)).unwrap();
    assert!(mean(&img, 0, 6, 0, 8) > 225.0 && mean(&img, 10, 16, 0, 8) < 30.0);
    // 6: rotate 90° clockwise → 8×16, black on top.
    let img = decode(&jpeg_with_orientation(6)).unwrap();
    assert_eq!((img.width(), img.height()), (8, 16));
    assert!(mean(&img, 0, 8, 0, 6) < 30.0 && mean(&img, 0, 8, 10, 16) > 225.0);
    // 8: rotate 90° counter-clockwise → black at the bottom.
    let img = decode(&jpeg_with_orientation(8)).unwrap();
    assert!(mean(&img, 0, 8, 0, 6) > 225.0 && mean(&img, 0, 8, 10, 16) < 30.0);
}

/// A 24-bit BMP header announcing `w × h` with no pixel data.
fn bmp_header(w: i32, h: i32) -> Vec<u8> {
    let mut b = b"BM".to_vec();
    b.extend(54u32.to_le_bytes()); // file size (not checked)
    b.extend(0u32.to_le_bytes());
    b.extend(54u32.to_le_bytes()); // pixel data offset
    b.extend(40u32.to_le_bytes()); // BITMAPINFOHEADER
    b.extend(w.to_le_bytes());
    b.extend(h.to_le_bytes());
    b.extend(1u16.to_le_bytes());
    b.extend(24u16.to_le_bytes());
    b.extend([0u8; 24]);
    b
}

#[test]
fn decode_error_paths() {
    assert!(matches!(
        decode(b"not an image at all"),
        Err(PreprocessError::Decode { .. })
    ));
    assert!(matches!(decode(&[]), Err(PreprocessError::Decode { .. })));
    // Truncated PNG.
    let png = png_bytes(&DynamicImage::ImageRgb8(rgb_test_image(20, 20)));
    assert!(matches!(
        decode(&png[..png.len() / 2]),
        Err(PreprocessError::Decode { .. })
    ));
    // Over the pixel limit: refused from the header.
    let lim = DecodeLimits {
        max_pixels: 399,
        ..DecodeLimits::default()
    };
    assert!(matches!(
        decode_image(&png, "small-limit", &lim),
        Err(PreprocessError::TooManyPixels {
            pixels: 400,
            limit: 399,
            ..
        })
    ));
    // 100000×1 and 1×1001: over the aspect limit, refused from the header;
    // 1000×1 is the longest accepted.
    for (w, h) in [(100_000, 1), (1, 1001)] {
        match decode(&png_bytes(&DynamicImage::ImageRgb8(rgb_test_image(w, h)))) {
            Err(PreprocessError::AspectRatio { limit: 1000, .. }) => {}
            other => panic!("{w}x{h}: expected an aspect refusal, got {other:?}"),
        }
    }
    let strip = png_bytes(&DynamicImage::ImageRgb8(rgb_test_image(1000, 1)));
    assert!(decode(&strip).is_ok());
    // A header announcing 9000² pixels (over 8192²) and no data: refused before decoding.
    match decode(&bmp_header(9000, 9000)) {
        Err(PreprocessError::TooManyPixels { width: 9000, .. }) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Zero width: the BMP decoder refuses it itself; either way an error.
    assert!(matches!(
        decode(&bmp_header(0, 4)),
        Err(PreprocessError::EmptyImage { .. }) | Err(PreprocessError::Decode { .. })
    ));
    // Missing file.
    assert!(matches!(
        load_image(
            std::path::Path::new("/nonexistent/x.png"),
            &DecodeLimits::default()
        ),
        Err(PreprocessError::Io { .. })
    ));
}

#[test]
fn decode_over_white_matches_pil_samples() {
    // Values checked against Pillow 13 `Image.alpha_composite` over white
    // (all 65,536 (value, alpha) pairs agree with this formula).
    assert_eq!(over_white(100, 128), 177);
    assert_eq!(over_white(0, 128), 127);
    assert_eq!(over_white(255, 1), 255);
    assert_eq!(over_white(0, 0), 255);
    for v in 0..=255u8 {
        assert_eq!(over_white(v, 255), v);
    }
}

fn layout(width: u32, height: u32, channels: u32, stride: usize) -> PixelLayout {
    PixelLayout {
        width,
        height,
        channels,
        stride,
    }
}

#[test]
fn from_pixels_matches_the_decoded_file() {
    let lim = DecodeLimits::default();
    let rgb = rgb_test_image(7, 5);
    let rgba = RgbaImage::from_fn(7, 5, |x, y| {
        Rgba([(x * 30) as u8, 9, (y * 50) as u8, (x * y * 9) as u8])
    });
    let gray = GrayImage::from_fn(7, 5, |x, y| Luma([(x * 11 + y * 3) as u8]));
    let cases: [(DynamicImage, u32); 3] = [
        (DynamicImage::ImageRgb8(rgb), 3),
        (DynamicImage::ImageRgba8(rgba), 4),
        (DynamicImage::ImageLuma8(gray), 1),
    ];
    for (img, c) in cases {
        let want = decode(&png_bytes(&img)).unwrap();
        let raw = img.as_bytes();
        let got = from_pixels(raw, layout(7, 5, c, 0), "t", &lim).unwrap();
        assert_eq!(got, want, "{c} channels packed");
        // Rows padded to a stride, the last row unpadded.
        let row = 7 * c as usize;
        let stride = row + 5;
        let mut padded = vec![0xAB; 4 * stride + row];
        for y in 0..5 {
            padded[y * stride..y * stride + row].copy_from_slice(&raw[y * row..(y + 1) * row]);
        }
        let got = from_pixels(&padded, layout(7, 5, c, stride), "t", &lim).unwrap();
        assert_eq!(got, want, "{c} channels, stride {stride}");
    }
}

#[test]
fn from_pixels_error_paths() {
    let lim = DecodeLimits::default();
    let px = vec![0u8; 7 * 5 * 3];
    let err = |l: PixelLayout, bytes: &[u8]| from_pixels(bytes, l, "#0", &lim).unwrap_err();
    assert!(matches!(
        err(layout(0, 5, 3, 0), &px),
        PreprocessError::EmptyImage { .. }
    ));
    assert!(matches!(
        err(layout(7, 0, 3, 0), &[]),
        PreprocessError::EmptyImage { .. }
    ));
    let e = err(layout(7, 5, 2, 0), &px);
    assert!(e.to_string().contains("2 channels"), "{e}");
    let e = err(layout(7, 5, 3, 20), &px);
    assert!(e.to_string().contains("stride of 20"), "{e}");
    let e = err(layout(7, 5, 3, 0), &px[..px.len() - 1]);
    assert!(e.to_string().contains("104 bytes"), "{e}");
    let big = layout(1 << 14, 1 << 14, 3, 0);
    assert!(matches!(
        err(big, &px),
        PreprocessError::TooManyPixels { .. }
    ));
    let thin = layout(3000, 1, 3, 0);
    assert!(matches!(
        err(thin, &px),
        PreprocessError::AspectRatio { .. }
    ));
}
