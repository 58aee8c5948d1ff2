//! The `lfm2vl` binary.
fn main() {}
