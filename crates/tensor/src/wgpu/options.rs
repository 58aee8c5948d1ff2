//! The wgpu backend's tuning options: [`WgpuOptions`], given to
//! [`super::WgpuBackend::new`] (or [`super::device::GpuDevice::open`]) and
//! held by the device ([`super::device::GpuDevice::options`]), so that two
//! backends in one process can differ.
//!
//! `tensor` never reads the environment (except in `testing/`): the
//! `LFM_WGPU_*` variables that set these fields (README.md, "Environment
//! variables") are parsed by the caller, `runtime::options::wgpu_from_env`.

use std::ops::RangeInclusive;

pub use super::attention::AttnKernel;
use crate::{DType, Result, TensorError};

/// Ops recorded per submit unless [`WgpuOptions::ops_per_submit`] says
/// otherwise: the uniform ring's slots.
pub const DEFAULT_OPS_PER_SUBMIT: u64 = 64;
/// The values [`WgpuOptions::ops_per_submit`] may take.
pub const OPS_PER_SUBMIT_RANGE: RangeInclusive<u64> = 8..=4096;
/// Ops of the first submit after a wait unless
/// [`WgpuOptions::first_submit`] says otherwise.
pub const DEFAULT_FIRST_SUBMIT: u64 = 16;
/// The values [`WgpuOptions::first_submit`] may take.
pub const FIRST_SUBMIT_RANGE: RangeInclusive<u64> = 0..=4096;

/// How the wgpu backend opens its device and picks its kernels. Every
/// field has the default of [`WgpuOptions::default`], named in its doc.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WgpuOptions {
    /// Open the first adapter whose name contains this substring
    /// (case-insensitive, e.g. `llvmpipe`). Default `None`: wgpu's
    /// high-performance choice.
    pub adapter: Option<String>,
    /// Ask for subgroup operations where the adapter has them. Default
    /// `true`; `false`: every kernel takes its workgroup-memory fallback,
    /// and the tensor-core kernels and the fused decode GEMVs (which need
    /// subgroups) stay off.
    pub subgroups: bool,
    /// Ask for cooperative matrices (tensor cores) where the adapter has
    /// them. Default `true`; `false`: the GEMM runs on the tiled f32 kernel
    /// only, attention on the SIMT kernels.
    pub coop: bool,
    /// The automatic choice takes the presplit variant of the tensor-core
    /// GEMM (x split into f16 halves once per call by a first pass) instead
    /// of the staged one. Default `false` (A/B timing).
    pub coop_presplit: bool,
    /// Decode runs the GEMV with a fused SwiGLU or conv-step epilogue
    /// where it applies. Default `true`; `false`: the GEMV and the SwiGLU
    /// or conv step run as two dispatches (A/B timing).
    pub fused_gemv: bool,
    /// The attention kernel for t > 1. Default `None`: the tensor-core
    /// kernel for bidirectional calls where the device has cooperative
    /// matrices, else rows where it applies, else tiled. `Some(Rows)`
    /// still falls back to tiled where rows does not apply; `Some(Coop)`
    /// is the default choice.
    pub attn_kernel: Option<AttnKernel>,
    /// The tiled-attention block `(query rows, keys)` to try first (see
    /// [`valid_attn_block`]), for tuning on a new GPU. Default `None`: the
    /// usual order.
    pub attn_block: Option<(u32, u32)>,
    /// The rows-attention plan `(rows, splits, keys per split)` to try
    /// first (see [`valid_attn_rows`]), for tuning. Default `None`: the
    /// usual list.
    pub attn_rows: Option<(u32, u32, u32)>,
    /// Ops recorded per GPU submit, in [`OPS_PER_SUBMIT_RANGE`]. Default
    /// [`DEFAULT_OPS_PER_SUBMIT`] (64).
    pub ops_per_submit: u64,
    /// The first submit after a wait goes out after this many ops (capped
    /// at `ops_per_submit`), in [`FIRST_SUBMIT_RANGE`], so the device starts
    /// a decode step or an image while the host records the rest; 0: no
    /// early submit. Default [`DEFAULT_FIRST_SUBMIT`] (16).
    pub first_submit: u64,
    /// Log the final WGSL source of each pipeline at `info` when it is
    /// compiled. Default `false`.
    pub dump_wgsl: bool,
    /// Quantize float matmul weights at upload (`upload_weight`) to this
    /// ggml block format (Q8_0, Q4_0, Q4_K or Q6_K; rows that are not whole
    /// blocks of it take Q8_0, or keep their dtype: `quant::block_dtype_for`),
    /// as the CPU's `--weights q*` do. Default `None`: weights keep their
    /// dtype (block weights from a GGUF stay blocks either way).
    pub quantize: Option<DType>,
}

impl Default for WgpuOptions {
    fn default() -> Self {
        WgpuOptions {
            adapter: None,
            subgroups: true,
            coop: true,
            coop_presplit: false,
            fused_gemv: true,
            attn_kernel: None,
            attn_block: None,
            attn_rows: None,
            ops_per_submit: DEFAULT_OPS_PER_SUBMIT,
            first_submit: DEFAULT_FIRST_SUBMIT,
            dump_wgsl: false,
            quantize: None,
        }
    }
}

/// Whether `(query rows, keys)` is a tiled-attention block the kernel takes:
/// query rows a multiple of 4 in 4..=256, keys in 1..=256.
pub fn valid_attn_block((q, k): (u32, u32)) -> bool {
    (4..=256).contains(&q) && q.is_multiple_of(4) && (1..=256).contains(&k)
}

/// Whether `(rows, splits, keys per split)` is a well-formed rows-attention
/// plan: rows and splits at least 1, keys a multiple of 8 (plans the kernel
/// cannot run for a head width, or that do not fit the device, are passed
/// over when the plan is chosen).
pub fn valid_attn_rows((r, s, ks): (u32, u32, u32)) -> bool {
    r >= 1 && s >= 1 && ks.is_multiple_of(8)
}

impl WgpuOptions {
    /// Checks every field's range: [`TensorError::Gpu`] (`configuration`)
    /// naming the first one out of it.
    pub fn validate(&self) -> Result<()> {
        let bad = |detail: String| {
            Err(TensorError::Gpu {
                what: "configuration",
                detail,
            })
        };
        if !OPS_PER_SUBMIT_RANGE.contains(&self.ops_per_submit) {
            return bad(format!(
                "ops per submit {}: want a number in {OPS_PER_SUBMIT_RANGE:?}",
                self.ops_per_submit
            ));
        }
        if !FIRST_SUBMIT_RANGE.contains(&self.first_submit) {
            return bad(format!(
                "first submit {}: want a number in {FIRST_SUBMIT_RANGE:?}",
                self.first_submit
            ));
        }
        if let Some((q, k)) = self.attn_block.filter(|&b| !valid_attn_block(b)) {
            return bad(format!(
                "attention block {q}x{k}: want <query rows>x<keys>, query rows a multiple \
                 of 4 in 4..=256, keys in 1..=256"
            ));
        }
        if let Some(d) = self.quantize.filter(|d| !d.is_block()) {
            return bad(format!(
                "quantize to {d}: want a block format (q8_0, q4_0, q4_k, q6_k)"
            ));
        }
        if let Some((r, s, ks)) = self.attn_rows.filter(|&p| !valid_attn_rows(p)) {
            return bad(format!(
                "attention rows plan {r}x{s}x{ks}: want <rows>x<splits>x<keys per split>, \
                 rows and splits at least 1, keys a multiple of 8"
            ));
        }
        Ok(())
    }

    /// Ops of the first submit after a wait: [`WgpuOptions::first_submit`]
    /// capped at `ops_per_submit`, or `ops_per_submit` for 0.
    pub fn first_submit_ops(&self) -> u64 {
        match self.first_submit {
            0 => self.ops_per_submit,
            n => n.min(self.ops_per_submit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_are_configuration_errors() {
        let d = WgpuOptions::default();
        d.validate().expect("defaults");
        assert_eq!(d.first_submit_ops(), 16);
        let no_early = WgpuOptions {
            first_submit: 0,
            ops_per_submit: 100,
            ..WgpuOptions::default()
        };
        assert_eq!(no_early.first_submit_ops(), 100);
        let capped = WgpuOptions {
            first_submit: 4096,
            ops_per_submit: 8,
            ..WgpuOptions::default()
        };
        capped.validate().expect("in range");
        assert_eq!(capped.first_submit_ops(), 8);
        for bad in [
            WgpuOptions {
                ops_per_submit: 7,
                ..WgpuOptions::default()
            },
            WgpuOptions {
                ops_per_submit: 4097,
                ..WgpuOptions::default()
            },
            WgpuOptions {
                first_submit: 4097,
                ..WgpuOptions::default()
            },
            WgpuOptions {
                attn_block: Some((6, 16)),
                ..WgpuOptions::default()
            },
            WgpuOptions {
                attn_rows: Some((32, 0, 8)),
                ..WgpuOptions::default()
            },
        ] {
            let e = bad.validate().expect_err("out of range");
            assert!(
                matches!(
                    e,
                    TensorError::Gpu {
                        what: "configuration",
                        ..
                    }
                ),
                "{e}"
            );
        }
    }

    #[test]
    fn attention_overrides_are_checked_as_the_kernels_need() {
        assert!(valid_attn_block((32, 15)));
        assert!(valid_attn_block((4, 1)) && valid_attn_block((256, 256)));
        assert!(!valid_attn_block((2, 16)) && !valid_attn_block((260, 16)));
        assert!(!valid_attn_block((32, 0)) && !valid_attn_block((32, 257)));
        assert!(valid_attn_rows((32, 4, 16)));
        assert!(!valid_attn_rows((0, 4, 16)) && !valid_attn_rows((32, 4, 12)));
    }
}
