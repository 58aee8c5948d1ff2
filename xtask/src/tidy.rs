//! `cargo xtask tidy`: source rules that rustfmt and clippy do not check,
//! or check only for the code one target and feature set compiles.
//!
//! It reads every Rust file `git ls-files` knows under `crates/`, `tests/`,
//! `benches/` and `xtask/` (tracked, or untracked and not ignored) and
//! prints one `path:line: message` per violation, then their count, and
//! fails if there is any. The rules:
//!
//! 1. **File length**: no `.rs` file over [`MAX_LINES`] lines.
//! 2. **Environment reads**: library source (`crates/*/src/**`) reads the
//!    environment (`env::var`, `env::var_os`, `env::vars`, `env::vars_os`,
//!    or those names imported from `std::env`) only in an *options module*:
//!    a file named `options.rs`, or anything under
//!    `crates/tensor/src/testing/` (the test harness's own switches). That
//!    keeps every knob of the engine in one documented place per crate.
//!    Binaries under `crates/*/src` (`main.rs`, `bin/`) are held to the
//!    same rule: the CLI's environment is part of its interface and belongs
//!    in its `options.rs` next to its flags. Out of scope, so free to read
//!    the environment where they need it: integration tests (`tests/`,
//!    `crates/*/tests/`), `benches/` and `xtask/`, which are harnesses and
//!    tooling rather than the engine. (`#[cfg(test)]` modules inside
//!    `crates/*/src` are library source and not exempt.)
//! 3. **SAFETY comments**: every `unsafe` block and `unsafe impl` has a
//!    `// SAFETY:` comment on its own line or in the comment lines directly
//!    above it. Attribute lines (`#[cfg(..)]`) may sit between the comment
//!    and the code, and a block inside a statement that starts on an earlier
//!    line (`let x = f(\n unsafe { .. },`) may have its comment above that
//!    statement. `unsafe fn` and `unsafe extern` are declarations, not
//!    blocks (clippy's `missing_safety_doc` covers their docs).
//!
//! Matches inside comments, string literals and char literals do not count:
//! each line is split into its code and its comment text by a small lexer
//! that knows `//`, nested `/* */`, `"..."` with escapes (also across
//! lines), raw strings `r#"..."#` and char literals versus lifetimes.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The longest a Rust source file may be.
pub const MAX_LINES: usize = 800;

/// The top-level folders whose Rust files are checked.
const ROOTS: &[&str] = &["crates/", "tests/", "benches/", "xtask/"];

/// How far up a multi-line statement the SAFETY comment is looked for.
const MAX_STATEMENT_LINES: usize = 12;

const USAGE: &str = "usage: cargo xtask tidy\n\n  \
    checks the workspace's Rust sources (crates/, tests/, benches/, xtask/) for:\n  \
    - files over 800 lines\n  \
    - environment reads in library code outside an options module\n  \
    - unsafe blocks and unsafe impls without a // SAFETY: comment\n  \
    (the rules and their exemptions: xtask/src/tidy.rs)";

/// One broken rule at one place.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    pub path: String,
    /// 1-based.
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.path, self.line, self.message)
    }
}

pub fn run(args: &[String]) -> Result<()> {
    if let Some(a) = args.first() {
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            return Ok(());
        }
        bail!("unexpected argument {a:?}\n\n{USAGE}");
    }
    let root = crate::root();
    let files = rust_files(&root)?;
    let mut found = Vec::new();
    for rel in &files {
        let path = root.join(rel);
        if !path.exists() {
            continue; // deleted in the work tree, not yet in the index
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        found.extend(check(rel, &text));
    }
    found.sort();
    for v in &found {
        println!("{v}");
    }
    if !found.is_empty() {
        // A plain exit: the list above is the report, an error's backtrace
        // would only bury it.
        eprintln!(
            "tidy: {} violation(s) in {} files checked (rules: xtask/src/tidy.rs)",
            found.len(),
            files.len()
        );
        std::process::exit(1);
    }
    println!("tidy: {} files, no violations", files.len());
    Ok(())
}

/// The Rust files under [`ROOTS`] that git tracks or would track.
fn rust_files(root: &Path) -> Result<Vec<String>> {
    let out = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .args(["--", "*.rs"])
        .current_dir(root)
        .output()
        .context("running git ls-files")?;
    if !out.status.success() {
        bail!(
            "git ls-files failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut files: Vec<String> = String::from_utf8(out.stdout)
        .context("git ls-files printed a non-UTF-8 path")?
        .split('\0')
        .filter(|p| ROOTS.iter().any(|r| p.starts_with(r)))
        .map(str::to_string)
        .collect();
    files.sort();
    files.dedup();
    Ok(files)
}

/// Every violation in one file; `path` is relative to the workspace root,
/// '/'-separated.
pub fn check(path: &str, text: &str) -> Vec<Violation> {
    let lines = lex(text);
    let mut out = Vec::new();
    let mut push = |line: usize, message: String| {
        out.push(Violation {
            path: path.to_string(),
            line,
            message,
        })
    };
    if lines.len() > MAX_LINES {
        push(
            MAX_LINES + 1,
            format!(
                "file has {} lines, over the {MAX_LINES}-line limit (split it by concern)",
                lines.len()
            ),
        );
    }
    let env_rule = is_library(path) && !is_options_module(path);
    for (i, l) in lines.iter().enumerate() {
        if env_rule && reads_env(&l.code) {
            push(
                i + 1,
                "environment read in library code outside an options module \
                 (read it in the crate's options.rs, or in crates/tensor/src/testing/ \
                 for a test-harness switch)"
                    .into(),
            );
        }
        if let Some(what) = unsafe_item(&l.code)
            && !has_safety_comment(&lines, i)
        {
            push(
                i + 1,
                format!("{what} without a `// SAFETY:` comment on its line or directly above it"),
            );
        }
    }
    out
}

/// Library source: `crates/<name>/src/**`.
fn is_library(path: &str) -> bool {
    let mut parts = path.split('/');
    parts.next() == Some("crates") && parts.next().is_some() && parts.next() == Some("src")
}

/// A file where library code may read the environment.
fn is_options_module(path: &str) -> bool {
    path.rsplit('/').next() == Some("options.rs") || path.starts_with("crates/tensor/src/testing/")
}

/// Whether a line's code reads an environment variable.
fn reads_env(code: &str) -> bool {
    if code.contains("env::var") {
        return true; // var, var_os, vars, vars_os, by path or imported
    }
    // `use std::env::{self, var};`
    if let Some(at) = code.find("env::{") {
        return code[at..]
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .any(|w| matches!(w, "var" | "var_os" | "vars" | "vars_os"));
    }
    false
}

/// `Some("unsafe block")` / `Some("unsafe impl")` when the line's code
/// opens one.
fn unsafe_item(code: &str) -> Option<&'static str> {
    let mut rest = code;
    let mut base = 0;
    while let Some(at) = rest.find("unsafe") {
        let start = base + at;
        let before = code[..start].chars().next_back();
        let after = &code[start + "unsafe".len()..];
        let word_start = before.is_none_or(|c| !is_ident(c));
        let spaced = after.starts_with(char::is_whitespace);
        let after = after.trim_start();
        if word_start && after.starts_with('{') {
            return Some("unsafe block");
        }
        if word_start
            && spaced
            && after.starts_with("impl")
            && after[4..].starts_with(|c: char| !is_ident(c))
        {
            return Some("unsafe impl");
        }
        base = start + "unsafe".len();
        rest = &code[base..];
    }
    None
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether the `unsafe` on line `i` is covered by a SAFETY comment: on the
/// line itself, or in the comment lines above it, skipping attributes, and
/// above the start of the statement it continues.
fn has_safety_comment(lines: &[Line], i: usize) -> bool {
    let safety = |l: &Line| l.comment.contains("SAFETY:");
    if safety(&lines[i]) {
        return true;
    }
    let mut statement_lines = 0;
    for l in lines[..i].iter().rev() {
        let code = l.code.trim();
        if code.is_empty() {
            if l.comment.is_empty() {
                return false; // a blank line ends the comment block
            }
            if safety(l) {
                return true;
            }
            continue;
        }
        if code.starts_with("#[") || code.starts_with("#![") {
            continue;
        }
        if ends_statement(code) {
            return false;
        }
        // An earlier line of the same statement: its trailing comment, or
        // the comment above it, may carry the SAFETY.
        statement_lines += 1;
        if statement_lines > MAX_STATEMENT_LINES {
            return false;
        }
        if safety(l) {
            return true;
        }
    }
    false
}

/// Whether a code line ends a statement, item or match arm (so the line
/// below starts a new one).
fn ends_statement(code: &str) -> bool {
    code.ends_with(';')
        || code.ends_with('{')
        || code.ends_with('}')
        || code.ends_with("},")
        || (code.ends_with(',') && code.contains("=>"))
}

/// One source line: its code (string and char literal contents blanked,
/// comments removed) and the text of its comments.
#[derive(Debug, Default)]
struct Line {
    code: String,
    comment: String,
}

/// Where the lexer is at the end of a line.
#[derive(Clone, Copy)]
enum State {
    Code,
    /// Inside `/* */`, nested this deep.
    Block(usize),
    /// Inside `"..."`.
    Str,
    /// Inside a raw string closed by `"` and this many `#`.
    Raw(usize),
}

fn lex(text: &str) -> Vec<Line> {
    let mut state = State::Code;
    let mut out = Vec::new();
    for raw in text.lines() {
        let cs: Vec<char> = raw.chars().collect();
        let mut l = Line::default();
        let mut i = 0;
        while i < cs.len() {
            let c = cs[i];
            let next = cs.get(i + 1).copied();
            match state {
                State::Block(depth) => {
                    if c == '*' && next == Some('/') {
                        state = if depth == 1 {
                            State::Code
                        } else {
                            State::Block(depth - 1)
                        };
                        i += 2;
                    } else if c == '/' && next == Some('*') {
                        state = State::Block(depth + 1);
                        i += 2;
                    } else {
                        l.comment.push(c);
                        i += 1;
                    }
                }
                State::Str => {
                    if c == '\\' {
                        i += 2;
                    } else {
                        if c == '"' {
                            l.code.push('"');
                            state = State::Code;
                        }
                        i += 1;
                    }
                }
                State::Raw(hashes) => {
                    let closes = c == '"'
                        && cs.len() > i + hashes
                        && cs[i + 1..=i + hashes].iter().all(|&h| h == '#');
                    if closes {
                        l.code.push('"');
                        state = State::Code;
                        i += 1 + hashes;
                    } else {
                        i += 1;
                    }
                }
                State::Code => {
                    if c == '/' && next == Some('/') {
                        l.comment.extend(&cs[i + 2..]);
                        break;
                    }
                    if c == '/' && next == Some('*') {
                        state = State::Block(1);
                        i += 2;
                        continue;
                    }
                    if c == '"' {
                        l.code.push('"');
                        state = State::Str;
                        i += 1;
                        continue;
                    }
                    if c == 'r'
                        && matches!(next, Some('"' | '#'))
                        && raw_prefix_ok(&l.code)
                        && let Some(hashes) = raw_string_hashes(&cs[i + 1..])
                    {
                        l.code.push('"');
                        state = State::Raw(hashes);
                        i += 2 + hashes;
                        continue;
                    }
                    if c == '\'' {
                        if next == Some('\\') {
                            // '\n', '\'', '\u{..}': up to the closing quote.
                            let close = (i + 3..cs.len()).find(|&j| cs[j] == '\'');
                            l.code.push_str("' '");
                            i = close.map_or(cs.len(), |j| j + 1);
                            continue;
                        }
                        if cs.get(i + 2) == Some(&'\'') {
                            l.code.push_str("' '");
                            i += 3;
                            continue;
                        }
                        // A lifetime or label.
                    }
                    l.code.push(c);
                    i += 1;
                }
            }
        }
        out.push(l);
    }
    out
}

/// Whether an `r` after `code` starts a raw string (`r"`, `br"`) rather
/// than ending an identifier.
fn raw_prefix_ok(code: &str) -> bool {
    let ident: String = code.chars().rev().take_while(|&c| is_ident(c)).collect();
    ident.is_empty() || ident == "b" || ident == "c"
}

/// For the characters after an `r`: the number of `#` before an opening
/// `"`, or `None` (a raw identifier `r#name`).
fn raw_string_hashes(after_r: &[char]) -> Option<usize> {
    let hashes = after_r.iter().take_while(|&&c| c == '#').count();
    (after_r.get(hashes) == Some(&'"')).then_some(hashes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_of(path: &str, text: &str) -> Vec<usize> {
        check(path, text).into_iter().map(|v| v.line).collect()
    }

    #[test]
    fn long_files_are_flagged_at_the_first_line_over() {
        let ok = "fn f() {}\n".repeat(MAX_LINES);
        assert!(check("crates/a/src/lib.rs", &ok).is_empty());
        let long = "fn f() {}\n".repeat(MAX_LINES + 1);
        let v = check("tests/tests/x.rs", &long);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].line, MAX_LINES + 1);
        assert!(
            v[0].to_string()
                .starts_with("tests/tests/x.rs:801: file has 801 lines")
        );
    }

    #[test]
    fn env_reads_in_library_code_are_flagged() {
        let src = "fn f() {\n\
                   let a = std::env::var(\"A\");\n\
                   let b = std::env::var_os(\"B\");\n\
                   for (k, v) in std::env::vars() {}\n\
                   let c = env::var(\"C\");\n\
                   }\n";
        assert_eq!(lines_of("crates/tensor/src/wgpu/mod.rs", src), [2, 3, 4, 5]);
        assert_eq!(lines_of("crates/cli/src/main.rs", src), [2, 3, 4, 5]);
        let import = "use std::env::{self, var_os};\nuse std::env::var;\n";
        assert_eq!(lines_of("crates/runtime/src/source.rs", import), [1, 2]);
    }

    #[test]
    fn env_reads_in_options_modules_tests_and_tools_pass() {
        let src = "fn f() { let _ = std::env::var(\"LFM_X\"); }\n";
        for path in [
            "crates/tensor/src/options.rs",
            "crates/tensor/src/wgpu/options.rs",
            "crates/tensor/src/testing/mod.rs",
            "crates/tensor/src/testing/rng.rs",
            "crates/tensor/tests/wgpu_common/mod.rs",
            "tests/tests/session.rs",
            "tests/src/lib.rs",
            "benches/src/bin/bench-kernels/main.rs",
            "xtask/src/main.rs",
        ] {
            assert!(check(path, src).is_empty(), "{path}");
        }
    }

    #[test]
    fn env_reads_in_comments_and_strings_pass() {
        let src = "//! Reads `std::env::var(\"X\")` in options.rs.\n\
                   // std::env::var_os is read elsewhere\n\
                   const MSG: &str = \"std::env::var\";\n\
                   const RAW: &str = r#\"env::var(\"X\")\"#;\n\
                   /* env::var\n  env::vars */ fn f() {}\n\
                   const E: &str = env!(\"CARGO_PKG_NAME\");\n";
        assert!(check("crates/tensor/src/lib.rs", src).is_empty());
    }

    #[test]
    fn unsafe_blocks_without_safety_are_flagged() {
        let src = "fn f(p: *const f32) -> f32 {\n\
                   let x = unsafe { p.read() };\n\
                   // the pointer is fine\n\
                   unsafe { p.read() }\n\
                   }\n\
                   \n\
                   // SAFETY: a blank line separates this comment from the impl.\n\
                   \n\
                   unsafe impl Send for T {}\n";
        assert_eq!(lines_of("crates/tensor/src/cpu/x.rs", src), [2, 4, 9]);
        // A SAFETY for the previous statement does not cover the next one.
        let src = "fn f(p: *const f32) {\n\
                   // SAFETY: p is valid.\n\
                   let a = unsafe { p.read() };\n\
                   let b = unsafe { p.read() };\n\
                   }\n";
        assert_eq!(lines_of("benches/src/limits.rs", src), [4]);
        // Nor does the previous match arm's.
        let src = "match t {\n\
                   // SAFETY: proven.\n\
                   A(s) => unsafe { a(s) },\n\
                   B(s) => unsafe { b(s) },\n\
                   }\n";
        assert_eq!(lines_of("crates/tensor/src/cpu/x.rs", src), [4]);
    }

    #[test]
    fn documented_unsafe_blocks_pass() {
        let src = "fn f(p: *const f32, t: Tok) -> f32 {\n\
                   // SAFETY: the caller guarantees `p` is valid for one read.\n\
                   let x = unsafe { p.read() };\n\
                   // SAFETY: the comment may run over\n\
                   // several lines.\n\
                   unsafe { p.read() };\n\
                   let y = unsafe { p.read() }; // SAFETY: as above.\n\
                   match t {\n\
                   // SAFETY: the token proves AVX2.\n\
                   #[cfg(target_arch = \"x86_64\")]\n\
                   Tok::Avx2(s) => unsafe { g(s) },\n\
                   }\n\
                   // SAFETY: inside the buffer.\n\
                   *acc = s.mul(\n\
                   unsafe { s.load(p) },\n\
                   s.splat(2.0),\n\
                   );\n\
                   // SAFETY: the closure's caller holds the token.\n\
                   let corr = |q: usize| unsafe { s.load(p.add(q)) };\n\
                   }\n\
                   // SAFETY: T holds no thread-bound state.\n\
                   unsafe impl Send for T {}\n";
        assert_eq!(check("crates/tensor/src/cpu/x.rs", src), []);
    }

    #[test]
    fn unsafe_declarations_comments_and_strings_pass() {
        let src = "/// Reads `p`.\n\
                   ///\n\
                   /// # Safety\n\
                   /// `p` is valid; call as `unsafe { read(p) }`.\n\
                   pub unsafe fn read(p: *const f32) -> f32 { 0.0 }\n\
                   unsafe extern \"C\" { fn abs(x: i32) -> i32; }\n\
                   #![allow(clippy::multiple_unsafe_ops_per_block)]\n\
                   // unsafe { not code }\n\
                   const S: &str = \"unsafe { also not code }\";\n\
                   const M: &str = \"a string \\\" with an escaped quote, unsafe {\";\n\
                   fn life<'a>(x: &'a str) -> char { let q = '\"'; let u = 'u'; q }\n";
        assert_eq!(check("crates/tensor/src/cpu/x.rs", src), []);
    }

    #[test]
    fn lexer_tracks_strings_and_block_comments_across_lines() {
        let src = "const S: &str = \"first line\n\
                   unsafe { still the string }\";\n\
                   /* a block comment\n\
                   /* nested */ unsafe { still the comment }\n\
                   */ fn f() {}\n\
                   const R: &str = r##\"raw \"# unsafe {\n\
                   std::env::var(\"X\") \"##;\n";
        assert_eq!(check("crates/tensor/src/x.rs", src), []);
        let lines = lex("let a = r#type; // note\nlet b = br\"x\"; unsafe {}\n");
        assert_eq!(lines[0].code.trim(), "let a = r#type;");
        assert_eq!(lines[0].comment, " note");
        assert_eq!(lines[1].code, "let b = b\"\"; unsafe {}");
    }
}
