//! `cargo run --release -p benches --bin bench-recording [-- --ops N] [--d D]`
//!
//! The host's cost of recording one dispatch on the wgpu backend: chains of
//! small decode-like ops (residual add, RMSNorm, a d × d bf16 GEMV, d = 1024
//! unless `--d` says otherwise; a small d keeps a software adapter's own
//! work out of the way) recorded back to back, timed up to (not including)
//! the final sync. The backend takes its options from the environment
//! (`runtime::options::wgpu_from_env`): run with
//! `LFM_WGPU_OPS_PER_SUBMIT=4096 LFM_WGPU_FIRST_SUBMIT=0` to time the
//! recording alone (one submit at the end); with the defaults the submits
//! every 64 ops are included. Prints the median over 7 rounds in µs per
//! dispatch. On a software adapter the device's own threads compete for
//! the host's cores, so the figure is noisier there.

use anyhow::Result;

#[cfg(feature = "wgpu")]
fn main() -> Result<()> {
    use anyhow::Context;
    use std::time::Instant;
    use tensor::{Backend, DType, Shape, op};
    let mut ops = 3900usize;
    let mut d = 1024usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ops" => ops = args.next().context("--ops N")?.parse()?,
            "--d" => d = args.next().context("--d D")?.parse()?,
            other => {
                anyhow::bail!(
                    "unknown argument {other:?} (usage: bench-recording [--ops N] [--d D])"
                )
            }
        }
    }
    let be = tensor::wgpu::WgpuBackend::new(runtime::options::wgpu_from_env()?)?;
    let z = |dt: DType, dims: &[usize]| be.zeros(dt, Shape::from(dims.to_vec()));
    let (mut x, y, w, mut o) = (
        z(DType::F32, &[1, d])?,
        z(DType::F32, &[1, d])?,
        z(DType::F32, &[d])?,
        z(DType::F32, &[1, d])?,
    );
    let (wb, mut g) = (z(DType::BF16, &[d, d])?, z(DType::F32, &[1, d])?);
    let mut round = |n: usize| -> Result<f64> {
        let t = Instant::now();
        for _ in 0..n.div_ceil(3) {
            be.add_assign(op::AddAssign { x: &mut x, y: &y })?;
            be.rms_norm(op::RmsNorm {
                x: &x,
                w: &w,
                eps: 1e-5,
                out: &mut o,
            })?;
            be.matmul(op::Matmul {
                x: &o,
                w: &wb,
                bias: None,
                out: &mut g,
            })?;
        }
        let us = t.elapsed().as_secs_f64() * 1e6 / (3 * n.div_ceil(3)) as f64;
        be.sync()?;
        Ok(us)
    };
    round(300)?; // pipelines and bind groups
    let mut v = (0..7).map(|_| round(ops)).collect::<Result<Vec<f64>>>()?;
    v.sort_by(f64::total_cmp);
    println!(
        "{}, d = {d}: {:.2} µs per dispatch recorded (median of 7 rounds of {ops}; min {:.2}, max {:.2})",
        be.describe(),
        v[3],
        v[0],
        v[6]
    );
    Ok(())
}

#[cfg(not(feature = "wgpu"))]
fn main() -> Result<()> {
    anyhow::bail!("bench-recording needs the wgpu feature")
}
