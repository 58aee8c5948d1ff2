//! `cargo xtask fixtures [--check] [--keep]`: regenerates (or verifies) the
//! transformers parity fixtures in `tests/fixtures/` (see its README.md).
//!
//! 1. Creates (once) a virtual environment at `<repo>/.venv-fixtures` and
//!    installs the pinned `xtask/fixtures/requirements.txt` into it (again only
//!    when that file changed; a copy is kept inside the venv as a stamp).
//! 2. Runs `xtask/fixtures/generate.py --out <temp dir>`.
//! 3. Without `--check`: makes `tests/fixtures/` equal to the generated tree
//!    (hand-written files such as README.md are left alone).
//!    With `--check`: compares the generated tree with the committed one byte
//!    for byte and fails with the list of differing, missing and extra files.
//!
//! Environment: `LFM2VL_FIXTURES_PYTHON` picks the interpreter used to create
//! the venv (default `python3`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The parity fixtures' tree.
const TREE: Tree = Tree {
    tag: "fixtures",
    dir: "fixtures",
    hand_written: &["README.md", ".gitattributes"],
    usage: "usage: cargo xtask fixtures [--check] [--keep]\n\n  \
    (no flag)  regenerate tests/fixtures/ from xtask/fixtures/generate.py\n  \
    --check    regenerate into a temporary folder and fail unless every committed\n             \
    fixture file is byte-identical (and none is missing or extra)\n  \
    --keep     keep the temporary output folder and print its path",
};

pub fn run(args: &[String]) -> Result<()> {
    run_tree(&TREE, args, generate)
}

/// A generated fixture tree under `tests/`: `cargo xtask <tag>` writes it,
/// or with `--check` verifies it, leaving its hand-written files alone.
pub(crate) struct Tree {
    /// The xtask command, also the tag of its log lines.
    pub tag: &'static str,
    /// The folder under `tests/`.
    pub dir: &'static str,
    /// Files in the folder written by hand, not by the generator.
    pub hand_written: &'static [&'static str],
    pub usage: &'static str,
}

/// `cargo xtask <tree.tag> [--check] [--keep]`: runs `generate(root, python,
/// out)` into a temporary folder, then syncs `tests/<tree.dir>` to it or
/// checks it against it.
pub(crate) fn run_tree(
    tree: &Tree,
    args: &[String],
    generate: fn(&Path, &Path, &Path) -> Result<()>,
) -> Result<()> {
    let (mut check, mut keep) = (false, false);
    for a in args {
        match a.as_str() {
            "--check" => check = true,
            "--keep" => keep = true,
            "-h" | "--help" => {
                println!("{}", tree.usage);
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{}", tree.usage),
        }
    }

    let root = crate::root();
    let python = ensure_venv(&root)?;
    let committed = root.join("tests").join(tree.dir);
    let out = std::env::temp_dir().join(format!("lfm2vl-{}-{}", tree.tag, std::process::id()));
    if out.exists() {
        fs::remove_dir_all(&out).with_context(|| format!("removing {}", out.display()))?;
    }
    fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;

    let result = generate(&root, &python, &out).and_then(|()| {
        if check {
            check_tree(tree, &out, &committed)
        } else {
            sync_tree(tree, &out, &committed)
        }
    });
    if keep {
        eprintln!("[{}] generated files kept in {}", tree.tag, out.display());
    } else if let Err(e) = fs::remove_dir_all(&out) {
        eprintln!(
            "[{}] warning: could not remove {}: {e}",
            tree.tag,
            out.display()
        );
    }
    result
}

fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts").join("python.exe")
    } else {
        venv.join("bin").join("python")
    }
}

/// Creates `.venv-fixtures` if needed and installs the pinned requirements
/// when they changed since the last install. Returns the venv's python.
pub(crate) fn ensure_venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join(".venv-fixtures");
    let python = venv_python(&venv);
    if !python.exists() {
        let base = std::env::var("LFM2VL_FIXTURES_PYTHON").unwrap_or_else(|_| "python3".into());
        eprintln!("[fixtures] creating {} with {base}", venv.display());
        let mut c = Command::new(&base);
        c.arg("-m").arg("venv").arg(&venv);
        crate::run_status(c)
            .context("creating the fixtures venv (is python3 with the venv module installed?)")?;
    }
    let req_path = root.join("xtask").join("fixtures").join("requirements.txt");
    let req =
        fs::read_to_string(&req_path).with_context(|| format!("reading {}", req_path.display()))?;
    let stamp = venv.join(".lfm2vl-requirements.txt");
    let installed = fs::read_to_string(&stamp).unwrap_or_default();
    if installed != req {
        eprintln!(
            "[fixtures] installing {} (torch is ~5 GB the first time)",
            req_path.display()
        );
        let mut c = Command::new(&python);
        c.args(["-m", "pip", "install", "--disable-pip-version-check", "-r"])
            .arg(&req_path);
        crate::run_status(c).context("installing the pinned fixture requirements")?;
        fs::write(&stamp, &req).with_context(|| format!("writing {}", stamp.display()))?;
    }
    Ok(python)
}

fn generate(root: &Path, python: &Path, out: &Path) -> Result<()> {
    let script = root.join("xtask").join("fixtures").join("generate.py");
    let mut c = Command::new(python);
    c.arg(&script).arg("--out").arg(out);
    c.current_dir(root);
    c.env("PYTHONDONTWRITEBYTECODE", "1");
    c.env("PYTHONHASHSEED", "0");
    let start = std::time::Instant::now();
    crate::run_status(c).context("running the fixture generator")?;
    eprintln!(
        "[fixtures] generator finished in {:.1} s",
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every regular file under `dir`, keyed by its '/'-separated relative path.
pub(crate) fn list_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>> {
    fn walk(base: &Path, dir: &Path, acc: &mut BTreeMap<String, PathBuf>) -> Result<()> {
        let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
            let path = entry.path();
            let ty = entry
                .file_type()
                .with_context(|| format!("stat {}", path.display()))?;
            if ty.is_dir() {
                walk(base, &path, acc)?;
            } else {
                let rel = path.strip_prefix(base).with_context(|| {
                    format!("{} is not under {}", path.display(), base.display())
                })?;
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                acc.insert(key, path);
            }
        }
        Ok(())
    }
    let mut acc = BTreeMap::new();
    if dir.exists() {
        walk(dir, dir, &mut acc)?;
    }
    Ok(acc)
}

pub(crate) fn same_bytes(a: &Path, b: &Path) -> Result<bool> {
    let ma = fs::metadata(a).with_context(|| format!("stat {}", a.display()))?;
    let mb = fs::metadata(b).with_context(|| format!("stat {}", b.display()))?;
    if ma.len() != mb.len() {
        return Ok(false);
    }
    let da = fs::read(a).with_context(|| format!("reading {}", a.display()))?;
    let db = fs::read(b).with_context(|| format!("reading {}", b.display()))?;
    Ok(da == db)
}

fn check_tree(tree: &Tree, generated: &Path, committed: &Path) -> Result<()> {
    let gen_files = list_files(generated)?;
    let com_files: BTreeMap<_, _> = list_files(committed)?
        .into_iter()
        .filter(|(k, _)| !tree.hand_written.contains(&k.as_str()))
        .collect();
    let mut differing = Vec::new();
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    for (rel, g) in &gen_files {
        match com_files.get(rel) {
            None => missing.push(rel.clone()),
            Some(c) => {
                if !same_bytes(g, c)? {
                    let gl = fs::metadata(g).map(|m| m.len()).unwrap_or(0);
                    let cl = fs::metadata(c).map(|m| m.len()).unwrap_or(0);
                    differing.push(format!(
                        "{rel} (committed {cl} bytes, regenerated {gl} bytes)"
                    ));
                }
            }
        }
    }
    for rel in com_files.keys() {
        if !gen_files.contains_key(rel) {
            extra.push(rel.clone());
        }
    }
    if differing.is_empty() && missing.is_empty() && extra.is_empty() {
        eprintln!(
            "[{}] check passed: {} files in tests/{} are byte-identical to a fresh run",
            tree.tag,
            gen_files.len(),
            tree.dir
        );
        return Ok(());
    }
    let mut msg = format!(
        "tests/{} does not match a fresh run of the generator\n",
        tree.dir
    );
    for (title, list) in [
        ("differing (committed vs regenerated)", &differing),
        ("missing (generated but not committed)", &missing),
        ("extra (committed but no longer generated)", &extra),
    ] {
        if !list.is_empty() {
            msg.push_str(&format!("  {title}: {}\n", list.len()));
            for item in list.iter() {
                msg.push_str(&format!("    {item}\n"));
            }
        }
    }
    msg.push_str(&format!(
        "run `cargo xtask {}` to regenerate (see tests/fixtures/README.md)",
        tree.tag
    ));
    bail!(msg)
}

fn sync_tree(tree: &Tree, generated: &Path, committed: &Path) -> Result<()> {
    let is_hand_written = |rel: &str| tree.hand_written.contains(&rel);
    let gen_files = list_files(generated)?;
    let com_files = list_files(committed)?;
    let (mut written, mut unchanged, mut removed) = (0usize, 0usize, 0usize);
    for (rel, path) in &com_files {
        if !is_hand_written(rel) && !gen_files.contains_key(rel) {
            fs::remove_file(path).with_context(|| format!("removing {}", path.display()))?;
            removed += 1;
        }
    }
    for (rel, src) in &gen_files {
        if is_hand_written(rel) {
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
        "[{}] tests/{} updated: {written} written, {unchanged} unchanged, {removed} removed",
        tree.tag, tree.dir
    );
    Ok(())
}

/// Removes empty sub-directories (left behind by removed files); keeps `dir`.
pub(crate) fn remove_empty_dirs(dir: &Path) -> Result<()> {
    let entries = fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_empty_dirs(&path)?;
            if fs::read_dir(&path)
                .map(|mut it| it.next().is_none())
                .unwrap_or(false)
            {
                fs::remove_dir(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    Ok(())
}
