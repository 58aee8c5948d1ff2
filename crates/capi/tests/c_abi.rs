//! The C ABI from C and C++: the header compiles as C11 and C++17 with
//! every warning an error; `examples/c/generate.c` (gcc, against
//! `liblfm2vl.so` and against `liblfm2vl.a`) and `examples/cpp/generate.cpp`
//! (g++, shared) give exactly the greedy ids of the engine (what `lfm2vl
//! generate --greedy` runs) on a fixture model with an image; and
//! `examples/c/chat.c` holds two two-turn conversations at once on a model
//! and its fork, from two threads, each giving the engine's ids and the
//! second turn reusing the first; `examples/c/errors.c` gets a status and a
//! message, never a crash, for NULL handles, a bad path, a corrupt file, a
//! zero-size image, bad settings, malformed messages and tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, ensure};
use runtime::engine::{BackendChoice, Engine, EngineOptions, Request};
use runtime::model::preprocess::{DecodeLimits, load_image};
use runtime::model::prompt::{ChatMessage, ContentPart};

const STRICT: [&str; 4] = ["-Wall", "-Wextra", "-Werror", "-pedantic"];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The folder holding `liblfm2vl.so` and `liblfm2vl.a`: beside the test
/// binary (`deps/`, where `cargo test` leaves them), else its parent
/// (where `cargo build` puts them).
fn lib_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let deps = exe.parent().context("target folder")?;
    [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .find(|d| d.join("liblfm2vl.so").is_file() && d.join("liblfm2vl.a").is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no liblfm2vl.so and liblfm2vl.a in or above {}",
                deps.display()
            )
        })
}

fn scratch() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("lfm2vl-capi-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn run(cmd: &mut Command) -> Result<String> {
    // The examples find the library by their run path: cargo's
    // LD_LIBRARY_PATH may name a folder holding an older copy.
    let out = cmd
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .with_context(|| format!("{cmd:?}"))?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    ensure!(
        out.status.success(),
        "{cmd:?}: {}\n{text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(text)
}

/// How an example is linked.
#[derive(Clone, Copy, PartialEq)]
enum Link {
    Shared,
    Static,
}

/// Builds `examples/SRC` (C11 with gcc, or C++17 with g++ for `.cpp`)
/// against the shared or the static library.
fn build(src: &str, link: Link, dir: &Path) -> Result<PathBuf> {
    let lib = lib_dir()?;
    let cpp = src.ends_with(".cpp");
    let name = src.replace(['/', '.'], "_");
    let exe = dir.join(format!("{name}_{}", link == Link::Static));
    let mut cmd = Command::new(if cpp { "g++" } else { "gcc" });
    cmd.arg(if cpp { "-std=c++17" } else { "-std=c11" })
        .args(STRICT)
        .arg("-pthread")
        .arg("-I")
        .arg(root().join("crates/capi/include"))
        .arg(root().join("examples").join(src))
        .arg("-o")
        .arg(&exe);
    match link {
        Link::Shared => cmd
            .arg("-L")
            .arg(&lib)
            .arg(format!("-Wl,-rpath,{}", lib.display()))
            .arg("-llfm2vl"),
        // The system libraries `rustc --print native-static-libs` names.
        Link::Static => cmd.arg(lib.join("liblfm2vl.a")).args([
            "-ldl",
            "-lgcc_s",
            "-lutil",
            "-lrt",
            "-lpthread",
            "-lm",
            "-lc",
        ]),
    };
    run(&mut cmd)?;
    Ok(exe)
}

#[test]
fn the_header_compiles_as_c11_and_cpp17() -> Result<()> {
    let header = root().join("crates/capi/include/lfm2vl.h");
    for (cc, std, lang) in [("gcc", "-std=c11", "c"), ("g++", "-std=c++17", "c++")] {
        run(Command::new(cc)
            .arg(std)
            .args(STRICT)
            .args(["-fsyntax-only", "-x", lang])
            .arg(&header))?;
    }
    Ok(())
}

#[test]
fn the_c_example_gives_the_engines_greedy_ids() -> Result<()> {
    let dir = scratch()?;
    let model = tests::fixture_path("models/tiny-450m");
    let image = tests::fixture_path("cases/images/small_100x150.png");
    let prompt = "What is in this image?";
    let opts = EngineOptions {
        backend: BackendChoice::Cpu,
        max_len: 1024,
        ..Default::default()
    };
    let mut engine = Engine::load(model.to_str().context("path")?, &opts)?;
    let parts = vec![ContentPart::image(), ContentPart::text(prompt)];
    let messages = [ChatMessage::parts("user", parts)];
    let images = [load_image(&image, &DecodeLimits::default())?];
    let mut req = Request::new(&messages);
    req.images = &images;
    req.max_new_tokens = 16;
    let want = engine.generate(&req, |_| true)?;
    for (src, link) in [
        ("c/generate.c", Link::Shared),
        ("c/generate.c", Link::Static),
        ("cpp/generate.cpp", Link::Shared),
    ] {
        let exe = build(src, link, &dir)?;
        let out = run(Command::new(&exe)
            .arg(&model)
            .arg(prompt)
            .arg(&image)
            .env("LFM_THREADS", "2"))?;
        let got: Vec<u32> = out
            .lines()
            .find_map(|l| l.strip_prefix("ids:"))
            .context("no ids line")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()?;
        let ids = &want.generation.ids;
        ensure!(!got.is_empty() && &got == ids, "{src}: {got:?} vs {ids:?}");
        ensure!(
            out.starts_with(&want.text),
            "{src}: streamed {out:?} vs {:?}",
            want.text
        );
    }
    Ok(())
}

#[test]
fn bad_input_from_c_is_a_status_and_a_message() -> Result<()> {
    let dir = scratch()?;
    let exe = build("c/errors.c", Link::Shared, &dir)?;
    let corrupt = dir.join("corrupt.gguf");
    std::fs::write(&corrupt, b"GGUF\x03\x00\x00\x00 not really a model")?;
    let out = run(Command::new(&exe)
        .arg(tests::fixture_path("models/tiny-450m"))
        .arg(&corrupt)
        .env("LFM_THREADS", "2"))?;
    ensure!(out.contains("0 failures"), "{out}");
    Ok(())
}

/// The ids after `label` ("A1 ids:") and the count after its `reused:`.
fn turn(out: &str, label: &str) -> Result<(Vec<u32>, usize)> {
    let line = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{label} {key}:")))
            .with_context(|| format!("no {label} {key} line in {out}"))
    };
    let ids = line("ids")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    Ok((ids, line("reused")?.trim().parse()?))
}

#[test]
fn two_conversations_at_once_from_c_threads() -> Result<()> {
    let dir = scratch()?;
    let model = tests::fixture_path("models/tiny-450m");
    let image = tests::fixture_path("cases/images/small_100x150.png");
    let opts = EngineOptions {
        backend: BackendChoice::Cpu,
        max_len: 1024,
        ..Default::default()
    };
    let mut engine = Engine::load(model.to_str().context("path")?, &opts)?;
    let images = [load_image(&image, &DecodeLimits::default())?];
    let parts = vec![
        ContentPart::image(),
        ContentPart::text("What is in this image?"),
    ];
    let mut messages = vec![ChatMessage::parts("user", parts)];
    let mut greedy = |messages: &[ChatMessage]| -> Result<runtime::Output> {
        let mut req = Request::new(messages);
        req.images = &images;
        req.max_new_tokens = 6;
        Ok(engine.generate(&req, |_| true)?)
    };
    let out1 = greedy(&messages)?;
    messages.push(ChatMessage::text("assistant", out1.text.clone()));
    messages.push(ChatMessage::text("user", "And the colours?"));
    let (first, second) = (out1.generation, greedy(&messages)?.generation);
    let exe = build("c/chat.c", Link::Shared, &dir)?;
    let out = run(Command::new(&exe).arg(&model).arg(&image))?;
    for who in ["A", "B"] {
        let (ids1, reused1) = turn(&out, &format!("{who}1"))?;
        let (ids2, reused2) = turn(&out, &format!("{who}2"))?;
        ensure!(
            ids1 == first.ids,
            "{who} turn 1: {ids1:?} vs {:?}",
            first.ids
        );
        ensure!(
            ids2 == second.ids,
            "{who} turn 2: {ids2:?} vs {:?}",
            second.ids
        );
        ensure!(reused1 == 0, "{who} turn 1 reused {reused1}");
        ensure!(
            reused2 >= first.prompt_tokens,
            "{who} turn 2 reused {reused2} of turn 1's {}",
            first.prompt_tokens
        );
    }
    Ok(())
}
