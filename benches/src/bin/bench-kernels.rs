//! `cargo xtask bench-kernels`: matmul microbenchmarks at LFM2-VL shapes.
fn main() {}
