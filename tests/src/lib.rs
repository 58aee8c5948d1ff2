//! Test support shared by the workspace's integration tests: loading the
//! committed transformers parity fixtures (`tests/fixtures/`, see its
//! README.md) and comparing tensors.
//!
//! Everything here reads committed files only (no Python, no torch), so it runs
//! in CI. Loaders return `anyhow` errors with the offending path; [`compare`]
//! returns a typed [`Mismatch`] whose `Display` says what went wrong where.
//!
//! One module per concern, all re-exported here: `fixtures` (paths, JSON,
//! the reference cases), `tensors` (safetensors contents and their dtypes),
//! `compare` (tolerances, reports, mismatches); and two public modules for
//! the GGUF tests: [`gguf`] (a GGUF writer) and [`gguf_convert`] (the tiny
//! checkpoints converted the way llama.cpp's converter does).
//!
//! ```no_run
//! use tests::{Case, Tolerance, compare};
//! let case = Case::load("single_image")?;
//! let want = case.f32("vision.crop0.last_hidden_state")?;
//! let got = want.clone(); // ... the engine's output
//! let report = compare("vision.crop0.last_hidden_state", &got, &want, Tolerance::new(1e-5, 1e-4))?;
//! println!("{report}");
//! # Ok::<(), anyhow::Error>(())
//! ```

mod compare;
mod fixtures;
pub mod gguf;
pub mod gguf_convert;
mod tensors;

pub use compare::{Mismatch, Report, Tolerance, compare, compare_exact, unravel};
pub use fixtures::{
    Case, CropInfo, Preprocess, fixture_path, fixtures_dir, json_str, json_usize, read_json,
    sha256_hex,
};
pub use tensors::{FixtureDType, TensorData, TensorFile};

/// `<image>` placeholder id (spec §7.1).
pub const IMAGE_TOKEN_ID: i64 = 396;
/// `<|im_end|>`: eos.
pub const EOS_TOKEN_ID: i64 = 7;
/// `<|img_thumbnail|>`.
pub const IMG_THUMBNAIL_ID: i64 = 497;
/// `<|image_start|>`.
pub const IMAGE_START_ID: i64 = 498;
/// `<|image_end|>`.
pub const IMAGE_END_ID: i64 = 499;

/// Id of `<|img_row_{row}_col_{col}|>` (1-based row = tile row, col = tile column).
pub fn img_row_col_id(row: usize, col: usize) -> i64 {
    397 + 10 * (row as i64 - 1) + (col as i64 - 1)
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn image_row_col_ids() {
        assert_eq!(img_row_col_id(1, 1), 397);
        assert_eq!(img_row_col_id(10, 10), 496);
    }
}
