//! The tensor-core kernels' start-up checks (cooperative matrices are an
//! experimental wgpu feature): [`WgpuBackend::check_coop`] runs
//! [`super::matmul::coop::self_check`] and [`super::attention::coop::self_check`] on
//! the kernels the backend would take and turns off, with a warning, those
//! that fail.

use std::sync::Arc;

use super::WgpuBackend;
use super::attention::coop as attention_coop;
use super::device::GpuDevice;
use super::matmul::{self, coop};
use crate::op;

impl WgpuBackend {
    /// Runs [`coop::self_check`] on the tensor-core GEMM where the device
    /// has cooperative matrices (an experimental wgpu feature), and turns
    /// the GEMM off with a warning where it fails: the f32 GEMM then runs.
    /// Then [`attention_coop::self_check`] on the tensor-core attention
    /// (hd 64's plan), which turns only the attention off where it fails.
    pub(super) fn check_coop(&mut self) {
        let Some(c) = coop::coop_gemm(self) else {
            return;
        };
        let checked = coop::self_check(self, &|x, w, b, y| match c.presplit {
            true => matmul::coop_presplit_with(
                self,
                op::Matmul {
                    x,
                    w,
                    bias: Some(b),
                    out: y,
                },
                c.grid,
            ),
            false => matmul::coop_with(
                self,
                op::Matmul {
                    x,
                    w,
                    bias: Some(b),
                    out: y,
                },
                c.grid,
            ),
        });
        if let Err(e) = checked {
            tracing::warn!(error = %e, "tensor-core GEMM off: its self-check failed");
            // Attention goes with it: the same feature.
            self.turn_off_coop(|dev| dev.coop_fragment = None);
            return;
        }
        tracing::info!(
            fragment = format_args!("{0}x{0}x{0} f16 -> f32", c.cm),
            "tensor-core GEMM on (cooperative matrices)"
        );
        // The plan of the vision towers' widths (hd 64), at the check's.
        let sg = self.device().subgroup_size.unwrap_or(0);
        let plan =
            attention_coop::AttnCoop::new(64, c.cm, sg, &self.device().limits).and_then(|p| {
                attention_coop::AttnCoop::with_plan(attention_coop::SELF_CHECK_HD, p.cm, p.ns, p.kf)
            });
        let check = |p| {
            attention_coop::self_check(self, &|q, k, v, kv_len, scale, out| {
                let op = op::Attention {
                    q,
                    k,
                    v,
                    kv_len,
                    causal: false,
                    scale,
                    out,
                };
                attention_coop::attention_coop_with(self, op, p)
            })
        };
        match plan.map(check) {
            Some(Ok(())) => tracing::info!("tensor-core attention on (bidirectional)"),
            Some(Err(e)) => {
                tracing::warn!(error = %e, "tensor-core attention off: its self-check failed");
                self.turn_off_coop(|dev| dev.coop_attention = false);
            }
            None => {
                tracing::info!(
                    subgroup = sg,
                    "tensor-core attention off: no plan fits the device"
                );
                self.turn_off_coop(|dev| dev.coop_attention = false);
            }
        }
    }

    /// Applies `off` to the device (turning a tensor-core kernel off) and
    /// drops the errors the failed check left.
    fn turn_off_coop(&mut self, off: impl FnOnce(&mut GpuDevice)) {
        match Arc::get_mut(&mut self.gpu) {
            Some(gpu) => {
                off(&mut gpu.dev);
                if let Ok(mut errors) = gpu.errors.lock() {
                    errors.clear();
                }
            }
            // Unreachable: `with_device` calls this before the backend is
            // shared.
            None => tracing::error!("a tensor-core kernel could not be turned off"),
        }
    }
}
