//! `lfm2vl generate` with structured output and tools on the tiny fixture
//! checkpoint: `--json-schema`, `--regex`, `--grammar` (files and standard
//! input) shape sampled output; `--tools` with `--tool-choice required` or
//! a name gives calls; bad schemas, regexes, grammars and tools are clean
//! errors (cause chain, exit status 1, no panic, no backtrace).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};

fn lfm2vl() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_lfm2vl"));
    c.env("LFM_THREADS", "2");
    c.args([
        "generate",
        "--json",
        "--backend",
        "cpu",
        "--temperature",
        "1",
    ])
    .arg("--model")
    .arg(tests::fixture_path("models/tiny-450m"));
    c
}

fn scratch(name: &str, text: &str) -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("lfm2vl-structured-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    let p = d.join(name);
    std::fs::write(&p, text)?;
    Ok(p)
}

/// The JSON `generate --json` printed; the command must succeed.
fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<Value> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn failure(cmd: &mut Command) -> Result<String> {
    let out = cmd.env("RUST_BACKTRACE", "1").output()?;
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    ensure!(
        out.status.code() == Some(1),
        "exit {:?}: {err}",
        out.status.code()
    );
    ensure!(
        err.contains("Error: ") && !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    Ok(err)
}

#[test]
fn constraints_shape_sampled_output() -> Result<()> {
    let schema = json!({"type": "object", "properties": {
        "kind": {"enum": ["cat", "dog"]}, "n": {"type": "integer", "minimum": 0, "maximum": 99}},
        "required": ["kind", "n"], "additionalProperties": false});
    let file = scratch("schema.json", &schema.to_string())?;
    for seed in ["1", "2"] {
        let v = run(
            lfm2vl()
                .args(["-p", "Pet?", "--seed", seed, "--max-new-tokens", "200"])
                .arg("--json-schema")
                .arg(&file),
            None,
        )?;
        let out: Value = serde_json::from_str(v["text"].as_str().context("text")?)?;
        ensure!(
            ["cat", "dog"].contains(&out["kind"].as_str().unwrap_or_default())
                && out["n"].as_u64().is_some_and(|n| n <= 99)
                && out.as_object().is_some_and(|o| o.len() == 2),
            "{out}"
        );
    }
    // The schema from standard input.
    let v = run(
        lfm2vl().args([
            "-p",
            "Pet?",
            "--max-new-tokens",
            "200",
            "--json-schema",
            "-",
        ]),
        Some(&schema.to_string()),
    )?;
    serde_json::from_str::<Value>(v["text"].as_str().context("text")?)?;
    let v = run(
        lfm2vl().args([
            "-p",
            "Code?",
            "--max-new-tokens",
            "20",
            "--regex",
            "[A-Z]{2}-[0-9]{3}",
        ]),
        None,
    )?;
    let text = v["text"].as_str().context("text")?;
    ensure!(
        text.len() == 6
            && text.as_bytes()[2] == b'-'
            && text[3..].bytes().all(|b| b.is_ascii_digit()),
        "{text}"
    );
    let lark = scratch("yesno.lark", "start: (\"yes\" | \"no\") \"!\"\n")?;
    let v = run(
        lfm2vl()
            .args(["-p", "Well?", "--max-new-tokens", "20"])
            .arg("--grammar")
            .arg(&lark),
        None,
    )?;
    ensure!(
        ["yes!", "no!"].contains(&v["text"].as_str().unwrap_or_default()),
        "{v}"
    );
    Ok(())
}

#[test]
fn tools_give_calls() -> Result<()> {
    let tools = json!([{"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string", "maxLength": 8}},
                       "required": ["city"]}}},
        {"type": "function", "function": {"name": "now"}}]);
    let file = scratch("tools.json", &tools.to_string())?;
    for (choice, names) in [
        ("required", &["get_weather", "now"][..]),
        ("now", &["now"][..]),
    ] {
        let v = run(
            lfm2vl()
                .args(["-p", "Weather in Oslo?", "--max-new-tokens", "200"])
                .args(["--tool-choice", choice])
                .arg("--tools")
                .arg(&file),
            None,
        )?;
        let calls = v["tool_calls"].as_array().context("tool_calls")?;
        ensure!(!calls.is_empty(), "{v}");
        for c in calls {
            ensure!(
                names.contains(&c["name"].as_str().unwrap_or_default()),
                "{v}"
            );
            ensure!(c["arguments"].is_object(), "{v}");
        }
    }
    Ok(())
}

#[test]
fn bad_constraints_and_tools_are_clean_errors() -> Result<()> {
    let not_json = scratch("bad.json", "{\"type\": ")?;
    let bad_type = scratch(
        "badtype.json",
        r#"{"type": "object", "properties": {"a": {"type": "nope"}}}"#,
    )?;
    let bad_lark = scratch("bad.lark", "start: undefined_rule\n")?;
    let bad_tools = scratch(
        "badtools.json",
        r#"[{"type": "function", "function": {"name": "a b"}}]"#,
    )?;
    let tools = scratch(
        "tools2.json",
        r#"[{"type": "function", "function": {"name": "now"}}]"#,
    )?;
    let cases: Vec<(Vec<std::ffi::OsString>, &str)> = vec![
        (vec!["--json-schema".into(), not_json.into()], "not JSON"),
        (
            vec!["--json-schema".into(), bad_type.into()],
            "constraint: json_schema:",
        ),
        (
            vec!["--json-schema".into(), "/no/such/schema.json".into()],
            "reading /no/such/schema.json",
        ),
        (
            vec!["--regex".into(), "(unclosed".into()],
            "constraint: regex:",
        ),
        (
            vec!["--regex".into(), "a[a&&b]".into()],
            "no output satisfies it",
        ),
        (
            vec!["--grammar".into(), bad_lark.into()],
            "constraint: grammar:",
        ),
        (
            vec!["--tools".into(), bad_tools.into()],
            "tools[0].function.name",
        ),
        (
            vec![
                "--tools".into(),
                tools.into(),
                "--tool-choice".into(),
                "fly".into(),
            ],
            "\"fly\" is not among the tools",
        ),
    ];
    for (flags, want) in cases {
        let err = failure(
            lfm2vl()
                .args(["-p", "x", "--max-new-tokens", "4"])
                .args(&flags),
        )?;
        ensure!(err.contains(want), "{flags:?}: {err}");
    }
    Ok(())
}
