//! `cargo xtask fixtures [--check]`: regenerates the transformers parity
//! fixtures (see tests/fixtures/README.md).

use anyhow::{Result, bail};

pub fn run(_args: &[String]) -> Result<()> {
    bail!("the fixtures generator has not landed yet")
}
