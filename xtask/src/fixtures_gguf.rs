//! `cargo xtask fixtures-gguf [--check] [--keep]`: regenerates (or verifies)
//! the GGUF fixtures in `tests/fixtures-gguf/` (see the "GGUF fixtures" section
//! of `tests/fixtures/README.md`).
//!
//! 1. The venv of `cargo xtask fixtures` (`.venv-fixtures`, same pinned
//!    requirements, created the same way).
//! 2. `xtask/fixtures/gguf_generate.py --out <temp dir> --work <repo>/.venv-gguf`:
//!    the first run downloads the pinned `llama-cpp-python` sdist from PyPI and
//!    builds its `vendor/llama.cpp` with cmake under `.venv-gguf/` (gitignored;
//!    about 5 minutes on 2 cores), then writes the tiny-gguf checkpoint, its
//!    transformers references, the GGUF files and the llama.cpp references.
//! 3. Without `--check`: makes `tests/fixtures-gguf/` equal to the generated
//!    tree (hand-written files are left alone). With `--check`: fails unless
//!    every generated file is byte-identical to the committed one.
//!
//! A folder of its own, not `tests/fixtures/gguf/`: `cargo xtask fixtures`
//! owns `tests/fixtures/` (it removes files it did not generate) and the
//! fixture tests require every file there to be in its MANIFEST.json.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::fixtures::{Tree, run_tree};

/// The GGUF fixtures' tree.
const TREE: Tree = Tree {
    tag: "fixtures-gguf",
    dir: "fixtures-gguf",
    hand_written: &[".gitattributes", "NOTES-for-loader.md"],
    usage: "usage: cargo xtask fixtures-gguf [--check] [--keep]\n\n  \
    (no flag)  regenerate tests/fixtures-gguf/ (llama.cpp built once under .venv-gguf/)\n  \
    --check    regenerate into a temporary folder and fail unless every committed\n             \
    file is byte-identical (and none is missing or extra)\n  \
    --keep     keep the temporary output folder and print its path",
};

pub fn run(args: &[String]) -> Result<()> {
    run_tree(&TREE, args, generate)
}

fn generate(root: &Path, python: &Path, out: &Path) -> Result<()> {
    let script = root.join("xtask").join("fixtures").join("gguf_generate.py");
    let mut c = Command::new(python);
    c.arg(&script)
        .arg("--out")
        .arg(out)
        .arg("--work")
        .arg(root.join(".venv-gguf"));
    c.current_dir(root);
    c.env("PYTHONDONTWRITEBYTECODE", "1");
    c.env("PYTHONHASHSEED", "0");
    let start = std::time::Instant::now();
    crate::run_status(c).context("running the GGUF fixture generator")?;
    eprintln!(
        "[fixtures-gguf] generator finished in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
