//! `<image>` expansion (spec §7.2): each placeholder of the rendered prompt
//! becomes the marker and placeholder string of its image, as transformers'
//! `Lfm2VlProcessor._build_image_tokens` writes it.
//!
//! ```text
//! single crop:  <|image_start|> <image>×tokens_for_image <|image_end|>
//! tiled:        <|image_start|> (<|img_row_R_col_C|> <image>×tokens_per_tile)… for R, C row-major
//!               [<|img_thumbnail|> <image>×tokens_for_image] <|image_end|>
//! ```
//! R is the 1-based tile row and C the column; no separators. Without
//! special tokens only the `<image>` runs remain.

use crate::preprocess::ImageLayout;

use super::error::{PromptError, Result};

/// The marker strings of the expansion. Defaults are LFM2-VL's; a
/// `tokenizer_config.json` may rename them (`image_token`,
/// `image_start_token`, `image_end_token`, `image_thumbnail_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageTokenStrings {
    /// The placeholder, `<image>`.
    pub image: String,
    /// `<|image_start|>`.
    pub start: String,
    /// `<|image_end|>`.
    pub end: String,
    /// `<|img_thumbnail|>`.
    pub thumbnail: String,
}

impl Default for ImageTokenStrings {
    fn default() -> Self {
        ImageTokenStrings {
            image: "<image>".into(),
            start: "<|image_start|>".into(),
            end: "<|image_end|>".into(),
            thumbnail: "<|img_thumbnail|>".into(),
        }
    }
}

/// `<|img_row_{row}_col_{col}|>` with 1-based `row` (tile row) and `col`.
pub fn row_col_token(row: usize, col: usize) -> String {
    format!("<|img_row_{row}_col_{col}|>")
}

/// The replacement string of one image.
pub fn image_replacement(layout: &ImageLayout, use_special: bool, t: &ImageTokenStrings) -> String {
    let mut s = String::with_capacity(t.image.len() * layout.num_image_tokens() + 64);
    if use_special {
        s.push_str(&t.start);
    }
    if layout.tiled {
        for row in 0..layout.grid_rows {
            for col in 0..layout.grid_cols {
                if use_special {
                    s.push_str(&row_col_token(row + 1, col + 1));
                }
                s.push_str(&t.image.repeat(layout.tokens_per_tile));
            }
        }
        if layout.thumbnail {
            if use_special {
                s.push_str(&t.thumbnail);
            }
            s.push_str(&t.image.repeat(layout.tokens_for_image));
        }
    } else {
        s.push_str(&t.image.repeat(layout.tokens_for_image));
    }
    if use_special {
        s.push_str(&t.end);
    }
    s
}

/// Non-overlapping occurrences of `placeholder` in `text` (Python's `str.count`).
pub fn count_placeholders(text: &str, placeholder: &str) -> usize {
    if placeholder.is_empty() {
        return 0;
    }
    text.matches(placeholder).count()
}

/// Replaces the k-th placeholder of `text` by the expansion of `images[k]`;
/// errors unless the counts agree.
pub fn expand_image_placeholders(
    text: &str,
    images: &[ImageLayout],
    use_special: bool,
    t: &ImageTokenStrings,
) -> Result<String> {
    let placeholders = count_placeholders(text, &t.image);
    if placeholders != images.len() {
        return Err(PromptError::ImageCountMismatch {
            placeholders,
            images: images.len(),
        });
    }
    let mut out = String::with_capacity(text.len());
    let mut pieces = text.split(t.image.as_str());
    // `split` yields placeholders + 1 pieces.
    out.push_str(pieces.next().unwrap_or_default());
    for (layout, piece) in images.iter().zip(pieces) {
        out.push_str(&image_replacement(layout, use_special, t));
        out.push_str(piece);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preprocess::ProcessorConfig;

    fn cfg16() -> ProcessorConfig {
        ProcessorConfig {
            max_pixels_tolerance: 1.5,
            ..ProcessorConfig::default()
        }
    }

    #[test]
    fn expand_single_crop() {
        let l = ImageLayout::plan(256, 384, &cfg16());
        let s = image_replacement(&l, true, &ImageTokenStrings::default());
        assert_eq!(
            s,
            format!("<|image_start|>{}<|image_end|>", "<image>".repeat(96))
        );
        let s = image_replacement(&l, false, &ImageTokenStrings::default());
        assert_eq!(s, "<image>".repeat(96));
    }

    #[test]
    fn expand_grid_rows_are_tile_rows() {
        // 1080x1920 on the 1.6B setting: gh = 2 rows, gw = 4 columns + thumbnail.
        let l = ImageLayout::plan(1080, 1920, &cfg16());
        let s = image_replacement(&l, true, &ImageTokenStrings::default());
        let markers: Vec<&str> = s.split("<image>").filter(|p| !p.is_empty()).collect();
        assert_eq!(
            markers,
            vec![
                "<|image_start|><|img_row_1_col_1|>",
                "<|img_row_1_col_2|>",
                "<|img_row_1_col_3|>",
                "<|img_row_1_col_4|>",
                "<|img_row_2_col_1|>",
                "<|img_row_2_col_2|>",
                "<|img_row_2_col_3|>",
                "<|img_row_2_col_4|>",
                "<|img_thumbnail|>",
                "<|image_end|>",
            ]
        );
        assert_eq!(count_placeholders(&s, "<image>"), 2300);
    }

    #[test]
    fn expand_counts_must_match() {
        let l = ImageLayout::plan(64, 64, &cfg16());
        let t = ImageTokenStrings::default();
        let e = expand_image_placeholders("a<image>b<image>", std::slice::from_ref(&l), true, &t);
        assert!(matches!(
            e,
            Err(PromptError::ImageCountMismatch {
                placeholders: 2,
                images: 1
            })
        ));
        let e = expand_image_placeholders("no image", std::slice::from_ref(&l), true, &t);
        assert!(matches!(
            e,
            Err(PromptError::ImageCountMismatch {
                placeholders: 0,
                images: 1
            })
        ));
        let s = expand_image_placeholders("a<image>b", &[l], false, &t).unwrap();
        assert_eq!(s, format!("a{}b", "<image>".repeat(64)));
    }
}
