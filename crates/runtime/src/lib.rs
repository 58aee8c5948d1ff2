//! Runtime: picks the CPU or wgpu backend, runs prefill/decode, sampling and
//! streaming ([`engine`], [`session`]), and reports the compute this machine
//! offers ([`system_info`]).

pub mod bench;
pub mod bench_constrained;
pub mod bench_speculative;
pub mod bench_streams;
pub mod constraint;
pub mod engine;
pub mod error;
pub mod files;
pub mod options;
pub mod prompter;
pub mod sampling;
pub mod scheduler;
pub mod session;
pub mod source;
pub mod speculative;
pub mod stream;
pub mod synthetic;
pub mod tools;

pub use constraint::Constraint;
pub use engine::{BackendChoice, Engine, EngineOptions, Output, Progress, Request};
pub use error::{Result, RuntimeError};
pub use model;
pub use sampling::SamplingConfig;
use tensor::cpu::Isa;
pub use tools::ToolSet;

/// One line per compute option: CPU tiers (the chosen one marked) and, with
/// the `wgpu` feature, the GPU adapters wgpu can see.
pub fn system_info() -> Vec<String> {
    let mut out = Vec::new();
    let chosen = options::cpu_from_env().map(|o| o.isa_or_best());
    let tiers: Vec<String> = Isa::available()
        .into_iter()
        .map(|i| {
            if chosen.as_ref().ok() == Some(&i) {
                format!("{i}*")
            } else {
                i.to_string()
            }
        })
        .collect();
    out.push(format!(
        "cpu tiers: {} (* = used; LFM_ISA overrides)",
        tiers.join(", ")
    ));
    if let Err(e) = chosen {
        out.push(format!("cpu: {e}"));
    }
    out.push(format!(
        "cpu threads: {}",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    ));
    #[cfg(feature = "wgpu")]
    out.extend(
        tensor::wgpu::adapters()
            .into_iter()
            .map(|a| format!("gpu adapter: {a}")),
    );
    out
}
