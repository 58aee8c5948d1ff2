//! `cargo test` builds the extension module (`lib_lfm2vl.so`) with the
//! workspace's features, so CI's pytest run (`crates/python/tests`, with the
//! module copied into a package folder) reuses the test build instead of a
//! second build of the dependency tree. This test checks that the module
//! was built and exports its initialisation function.

use std::path::PathBuf;

/// `lib_lfm2vl.so` (Linux), `lib_lfm2vl.dylib` (macOS) or `_lfm2vl.dll`
/// beside this test binary or one folder up.
fn module() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let deps = exe.parent()?;
    let name = format!(
        "{}_lfm2vl{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    [Some(deps), deps.parent()]
        .into_iter()
        .flatten()
        .map(|d| d.join(&name))
        .find(|p| p.is_file())
}

#[test]
fn the_extension_module_is_built() {
    let path = module().expect("the extension module next to the test binary");
    let bytes = std::fs::read(&path).expect("readable");
    let init = b"PyInit__lfm2vl";
    assert!(
        bytes.windows(init.len()).any(|w| w == init),
        "{} does not export PyInit__lfm2vl",
        path.display()
    );
}
