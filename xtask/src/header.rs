//! `cargo xtask header [--check]`: the C header of `crates/capi`
//! (`include/lfm2vl.h`) from its source with cbindgen. `--check` fails
//! when the committed header differs from what the source gives (CI).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

pub fn run(args: &[String]) -> Result<()> {
    let check = args.iter().any(|a| a == "--check");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("workspace root")?
        .to_path_buf();
    let krate = root.join("crates/capi");
    let config = cbindgen::Config {
        language: cbindgen::Language::C,
        include_guard: Some("LFM2VL_H".into()),
        cpp_compat: true,
        documentation: true,
        usize_is_size_t: true,
        header: Some(
            "/* lfm2vl: the C API of lfm2vl-rs. Written by `cargo xtask header` from\n \
             * crates/capi/src/; do not edit. */"
                .into(),
        ),
        sys_includes: vec!["stdbool.h".into(), "stddef.h".into(), "stdint.h".into()],
        no_includes: true,
        ..Default::default()
    };
    let bindings = cbindgen::Builder::new()
        .with_crate(&krate)
        .with_config(config)
        .generate()
        .context("cbindgen")?;
    let mut text = Vec::new();
    bindings.write(&mut text);
    let path = krate.join("include/lfm2vl.h");
    if check {
        let committed = std::fs::read(&path).with_context(|| path.display().to_string())?;
        if committed != text {
            bail!(
                "{} is stale: run `cargo xtask header` and commit it",
                path.display()
            );
        }
        println!("{}: up to date", path.display());
        return Ok(());
    }
    std::fs::write(&path, &text).with_context(|| path.display().to_string())?;
    println!("wrote {}", path.display());
    Ok(())
}
