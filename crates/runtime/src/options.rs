//! The environment as a user-facing override: the one place in the runtime
//! that reads it. The backends take their options from their caller
//! (`tensor` never reads the environment); [`cpu_from_env`] and
//! [`wgpu_from_env`] build those options from the `LFM_*` variables, and
//! [`hf_hub_offline`] and [`hub_cache`] read the Hugging Face ones for
//! [`crate::source`]. Every variable, its effect and its default: README.md,
//! "Environment variables".
//!
//! Malformed values: an unknown or unavailable `LFM_ISA` tier and an
//! out-of-range `LFM_WGPU_OPS_PER_SUBMIT` / `LFM_WGPU_FIRST_SUBMIT` are
//! errors; a malformed attention override is ignored with a warning; a
//! malformed `LFM_THREADS` is ignored; the on/off switches act on their one
//! documented value and ignore any other.

use std::path::PathBuf;

use tensor::cpu::{CpuOptions, Isa};

/// Forces a CPU tier: `scalar`, `avx2`, `avx512` or `neon`.
pub const ISA: &str = "LFM_ISA";
/// CPU worker threads (a positive number).
pub const THREADS: &str = "LFM_THREADS";
/// A substring of the wgpu adapter's name (e.g. `llvmpipe`).
pub const WGPU_ADAPTER: &str = "LFM_WGPU_ADAPTER";
/// `1`: no subgroup operations.
pub const WGPU_NO_SUBGROUPS: &str = "LFM_WGPU_NO_SUBGROUPS";
/// `1`: no cooperative matrices (tensor cores).
pub const WGPU_NO_COOP: &str = "LFM_WGPU_NO_COOP";
/// `1`: the tensor-core GEMM's presplit variant by default.
pub const WGPU_COOP_PRESPLIT: &str = "LFM_WGPU_COOP_PRESPLIT";
/// `0`: no fused decode GEMVs.
pub const WGPU_FUSED_GEMV: &str = "LFM_WGPU_FUSED_GEMV";
/// `coop`, `rows` or `tiled`: the attention kernel for t > 1.
pub const WGPU_ATTN_KERNEL: &str = "LFM_WGPU_ATTN_KERNEL";
/// `<query rows>x<keys>`: the tiled-attention block to try first.
pub const WGPU_ATTN_BLOCK: &str = "LFM_WGPU_ATTN_BLOCK";
/// `<rows>x<splits>x<keys per split>`: the rows-attention plan to try first.
pub const WGPU_ATTN_ROWS: &str = "LFM_WGPU_ATTN_ROWS";
/// Ops recorded per GPU submit (8..=4096).
pub const WGPU_OPS_PER_SUBMIT: &str = "LFM_WGPU_OPS_PER_SUBMIT";
/// Ops of the first submit after a wait (0..=4096; 0: no early submit).
pub const WGPU_FIRST_SUBMIT: &str = "LFM_WGPU_FIRST_SUBMIT";
/// `1`: log the final WGSL source of each pipeline.
pub const DUMP_WGSL: &str = "LFM_DUMP_WGSL";

/// A variable's value, `None` when unset or not Unicode.
fn var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// The CPU backend's options from `LFM_ISA` and `LFM_THREADS` (the weight
/// format and profiling are the caller's: command-line flags). An unknown
/// tier, or one this host lacks, is [`tensor::TensorError::IsaUnavailable`].
pub fn cpu_from_env() -> tensor::Result<CpuOptions> {
    cpu_from(&var)
}

/// [`cpu_from_env`] with `isa`, when given (a command-line flag), in place
/// of `LFM_ISA`: the flag wins, and a malformed `LFM_ISA` is then not read.
pub fn cpu_from_env_or(isa: Option<&str>) -> tensor::Result<CpuOptions> {
    cpu_from(&flag_over(&var, ISA, isa))
}

/// `var` with variable `name` replaced by `flag` when the flag is given.
fn flag_over<'a>(
    var: &'a dyn Fn(&str) -> Option<String>,
    name: &'a str,
    flag: Option<&'a str>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |n| match flag {
        Some(f) if n == name => Some(f.to_string()),
        _ => var(n),
    }
}

/// [`cpu_from_env`] over any source of variables.
pub fn cpu_from(var: &dyn Fn(&str) -> Option<String>) -> tensor::Result<CpuOptions> {
    let isa = match var(ISA) {
        Some(s) if !s.trim().is_empty() => Some(Isa::require(&s)?),
        _ => None,
    };
    let threads = var(THREADS)
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&t| t > 0);
    Ok(CpuOptions {
        isa,
        threads,
        ..CpuOptions::default()
    })
}

/// The wgpu backend's options from the `LFM_WGPU_*` variables and
/// `LFM_DUMP_WGSL`. `LFM_WGPU_OPS_PER_SUBMIT` or `LFM_WGPU_FIRST_SUBMIT`
/// not a number in range is [`tensor::TensorError::Gpu`]
/// (`configuration`); a malformed attention override is logged and ignored.
#[cfg(feature = "wgpu")]
pub fn wgpu_from_env() -> tensor::Result<tensor::wgpu::WgpuOptions> {
    wgpu_from(&var)
}

/// [`wgpu_from_env`] over any source of variables.
#[cfg(feature = "wgpu")]
pub fn wgpu_from(
    var: &dyn Fn(&str) -> Option<String>,
) -> tensor::Result<tensor::wgpu::WgpuOptions> {
    use tensor::wgpu::options::{
        AttnKernel, DEFAULT_FIRST_SUBMIT, DEFAULT_OPS_PER_SUBMIT, FIRST_SUBMIT_RANGE,
        OPS_PER_SUBMIT_RANGE, WgpuOptions, valid_attn_block, valid_attn_rows,
    };
    let is = |name: &str, value: &str| var(name).is_some_and(|v| v == value);
    let number =
        |name: &'static str, range: std::ops::RangeInclusive<u64>, default: u64| match var(name) {
            Some(v) => v
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| tensor::TensorError::Gpu {
                    what: "configuration",
                    detail: format!("{name}={v:?}: want a number in {range:?}"),
                }),
            None => Ok(default),
        };
    let attn_kernel = var(WGPU_ATTN_KERNEL).and_then(|v| match v.trim() {
        "coop" => Some(AttnKernel::Coop),
        "rows" => Some(AttnKernel::Rows),
        "tiled" => Some(AttnKernel::Tiled),
        _ => {
            tracing::warn!("{WGPU_ATTN_KERNEL}={v:?} is not coop, rows or tiled: ignored");
            None
        }
    });
    let attn_block = var(WGPU_ATTN_BLOCK).and_then(|v| {
        let parsed = v
            .split_once('x')
            .and_then(|(q, k)| Some((q.trim().parse::<u32>().ok()?, k.trim().parse::<u32>().ok()?)))
            .filter(|&b| valid_attn_block(b));
        if parsed.is_none() {
            tracing::warn!("{WGPU_ATTN_BLOCK}={v:?} is not <query rows>x<keys>: ignored");
        }
        parsed
    });
    let attn_rows = var(WGPU_ATTN_ROWS).and_then(|v| {
        let n: Vec<Option<u32>> = v.split('x').map(|x| x.trim().parse().ok()).collect();
        let parsed = match n[..] {
            [Some(r), Some(s), Some(ks)] => Some((r, s, ks)).filter(|&p| valid_attn_rows(p)),
            _ => None,
        };
        if parsed.is_none() {
            tracing::warn!(
                "{WGPU_ATTN_ROWS}={v:?} is not <rows>x<splits>x<keys per split>: ignored"
            );
        }
        parsed
    });
    Ok(WgpuOptions {
        adapter: var(WGPU_ADAPTER)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty()),
        subgroups: !is(WGPU_NO_SUBGROUPS, "1"),
        coop: !is(WGPU_NO_COOP, "1"),
        coop_presplit: var(WGPU_COOP_PRESPLIT).is_some_and(|v| v.trim() == "1"),
        fused_gemv: !is(WGPU_FUSED_GEMV, "0"),
        attn_kernel,
        attn_block,
        attn_rows,
        ops_per_submit: number(
            WGPU_OPS_PER_SUBMIT,
            OPS_PER_SUBMIT_RANGE,
            DEFAULT_OPS_PER_SUBMIT,
        )?,
        first_submit: number(WGPU_FIRST_SUBMIT, FIRST_SUBMIT_RANGE, DEFAULT_FIRST_SUBMIT)?,
        dump_wgsl: is(DUMP_WGSL, "1"),
        // Set from the weight format (`--weights`, `engine::wgpu_options`).
        quantize: None,
    })
}

/// `HF_HUB_OFFLINE` is `1` or `true`: models come from the hub cache only.
pub fn hf_hub_offline() -> bool {
    var("HF_HUB_OFFLINE").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// The hub cache folder, as `huggingface_hub` computes it: `$HF_HUB_CACHE`,
/// else `$HF_HOME/hub`, else `$HOME/.cache/huggingface/hub` (`./.cache/...`
/// without a home).
pub fn hub_cache() -> PathBuf {
    if let Some(p) = std::env::var_os("HF_HUB_CACHE") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HF_HOME") {
        return PathBuf::from(home).join("hub");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("huggingface").join("hub")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn cpu_options_from_the_variables() {
        assert_eq!(cpu_from(&vars(&[])).unwrap(), CpuOptions::default());
        let o = cpu_from(&vars(&[(ISA, " Scalar "), (THREADS, " 3 ")])).unwrap();
        assert_eq!((o.isa, o.threads), (Some(Isa::Scalar), Some(3)));
        // Zero, junk and blank values leave the defaults.
        for t in ["0", "many", ""] {
            let o = cpu_from(&vars(&[(ISA, "  "), (THREADS, t)])).unwrap();
            assert_eq!((o.isa, o.threads), (None, None), "{t:?}");
        }
        let e = cpu_from(&vars(&[(ISA, "sse9")])).unwrap_err();
        assert!(
            matches!(e, tensor::TensorError::IsaUnavailable { .. }),
            "{e}"
        );
        // A flag in place of LFM_ISA wins, and the malformed variable is not read.
        let env = vars(&[(ISA, "sse9"), (THREADS, "3")]);
        let o = cpu_from(&flag_over(&env, ISA, Some("scalar"))).unwrap();
        assert_eq!((o.isa, o.threads), (Some(Isa::Scalar), Some(3)));
        assert!(cpu_from(&flag_over(&env, ISA, None)).is_err());
        if let Some(missing) = Isa::ALL.into_iter().find(|i| !i.is_available()) {
            let e = cpu_from(&vars(&[(ISA, missing.name())])).unwrap_err();
            assert!(e.to_string().contains("supported by this CPU"), "{e}");
        }
    }

    #[cfg(feature = "wgpu")]
    #[test]
    fn wgpu_options_from_the_variables() {
        use tensor::wgpu::options::{AttnKernel, WgpuOptions};
        assert_eq!(wgpu_from(&vars(&[])).unwrap(), WgpuOptions::default());
        let o = wgpu_from(&vars(&[
            (WGPU_ADAPTER, " llvmpipe "),
            (WGPU_NO_SUBGROUPS, "1"),
            (WGPU_NO_COOP, "1"),
            (WGPU_COOP_PRESPLIT, " 1"),
            (WGPU_FUSED_GEMV, "0"),
            (WGPU_ATTN_KERNEL, " rows"),
            (WGPU_ATTN_BLOCK, "32 x 15"),
            (WGPU_ATTN_ROWS, "32x4x16"),
            (WGPU_OPS_PER_SUBMIT, "4096"),
            (WGPU_FIRST_SUBMIT, "0"),
            (DUMP_WGSL, "1"),
        ]))
        .unwrap();
        let want = WgpuOptions {
            adapter: Some("llvmpipe".into()),
            subgroups: false,
            coop: false,
            coop_presplit: true,
            fused_gemv: false,
            attn_kernel: Some(AttnKernel::Rows),
            attn_block: Some((32, 15)),
            attn_rows: Some((32, 4, 16)),
            ops_per_submit: 4096,
            first_submit: 0,
            dump_wgsl: true,
            quantize: None,
        };
        assert_eq!(o, want);
        want.validate().expect("what the variables give is valid");
        // Switches act on their one value only; malformed overrides are
        // ignored.
        let o = wgpu_from(&vars(&[
            (WGPU_ADAPTER, "   "),
            (WGPU_NO_SUBGROUPS, "yes"),
            (WGPU_NO_COOP, "0"),
            (WGPU_COOP_PRESPLIT, "true"),
            (WGPU_FUSED_GEMV, "1"),
            (WGPU_ATTN_KERNEL, "fast"),
            (WGPU_ATTN_BLOCK, "30x16"),
            (WGPU_ATTN_ROWS, "32x4x12"),
            (DUMP_WGSL, "true"),
        ]))
        .unwrap();
        assert_eq!(o, WgpuOptions::default());
        for (name, value) in [
            (WGPU_OPS_PER_SUBMIT, "7"),
            (WGPU_OPS_PER_SUBMIT, "4097"),
            (WGPU_OPS_PER_SUBMIT, " 64"),
            (WGPU_FIRST_SUBMIT, "4097"),
            (WGPU_FIRST_SUBMIT, "-1"),
        ] {
            let e = wgpu_from(&vars(&[(name, value)])).unwrap_err();
            assert!(
                matches!(
                    e,
                    tensor::TensorError::Gpu {
                        what: "configuration",
                        ..
                    }
                ),
                "{name}={value}: {e}"
            );
            assert!(e.to_string().contains(name), "{e}");
        }
    }
}
