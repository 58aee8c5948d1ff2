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

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::fixtures::{ensure_venv, list_files, remove_empty_dirs, same_bytes};

/// Files in `tests/fixtures-gguf/` written by hand, not by the generator.
const HAND_WRITTEN: &[&str] = &[".gitattributes", "NOTES-for-loader.md"];

const USAGE: &str = "usage: cargo xtask fixtures-gguf [--check] [--keep]\n\n  \
    (no flag)  regenerate tests/fixtures-gguf/ (llama.cpp built once under .venv-gguf/)\n  \
    --check    regenerate into a temporary folder and fail unless every committed\n             \
    file is byte-identical (and none is missing or extra)\n  \
    --keep     keep the temporary output folder and print its path";

pub fn run(args: &[String]) -> Result<()> {
    let mut check = false;
    let mut keep = false;
    for a in args {
        match a.as_str() {
            "--check" => check = true,
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }

    let root = crate::root();
    let python = ensure_venv(&root)?;
    let committed = root.join("tests").join("fixtures-gguf");
    let out = std::env::temp_dir().join(format!("lfm2vl-fixtures-gguf-{}", std::process::id()));
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let result = generate(&root, &python, &out).and_then(|()| {
        if check {
            check_tree(&out, &committed)
        } else {
            sync_tree(&out, &committed)
        }
    });
    if keep {
        eprintln!("[fixtures-gguf] generated files kept in {}", out.display());
    } else if let Err(e) = fs::remove_dir_all(&out) {
        eprintln!(
            "[fixtures-gguf] warning: could not remove {}: {e}",
            out.display()
        );
    }
    result
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

fn generated_only(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    Ok(list_files(dir)?
        .into_iter()
        .filter(|(k, _)| !HAND_WRITTEN.contains(&k.as_str()))
        .collect())
}

fn check_tree(generated: &Path, committed: &Path) -> Result<()> {
    let gen_files = list_files(generated)?;
    let com_files = generated_only(committed)?;
    let mut problems = Vec::new();
    for (rel, g) in &gen_files {
        match com_files.get(rel) {
            None => problems.push(format!("missing (generated, not committed): {rel}")),
            Some(c) if !same_bytes(g, c)? => problems.push(format!("differs: {rel}")),
            Some(_) => {}
        }
    }
    for rel in com_files.keys() {
        if !gen_files.contains_key(rel) {
            problems.push(format!("extra (committed, no longer generated): {rel}"));
        }
    }
    if problems.is_empty() {
        eprintln!(
            "[fixtures-gguf] check passed: {} files in tests/fixtures-gguf are byte-identical to a fresh run",
            gen_files.len()
        );
        return Ok(());
    }
    bail!(
        "tests/fixtures-gguf does not match a fresh run of the generator\n  {}\n\
         run `cargo xtask fixtures-gguf` to regenerate (see tests/fixtures/README.md)",
        problems.join("\n  ")
    )
}

fn sync_tree(generated: &Path, committed: &Path) -> Result<()> {
    let gen_files = list_files(generated)?;
    let (mut written, mut unchanged, mut removed) = (0usize, 0usize, 0usize);
    for (rel, path) in generated_only(committed)? {
        if !gen_files.contains_key(&rel) {
            fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            removed += 1;
        }
    }
    for (rel, src) in &gen_files {
        if HAND_WRITTEN.contains(&rel.as_str()) {
            bail!("the generator wrote {rel}, which is a hand-written file");
        }
        let dst = committed.join(rel);
        if dst.exists() && same_bytes(src, &dst)? {
            unchanged += 1;
            continue;
        }
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::copy(src, &dst)
            .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
        written += 1;
    }
    remove_empty_dirs(committed)?;
    eprintln!(
        "[fixtures-gguf] tests/fixtures-gguf updated: {written} written, {unchanged} unchanged, {removed} removed"
    );
    Ok(())
}
