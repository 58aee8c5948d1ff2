//! Runtime: picks the CPU or wgpu backend, runs prefill/decode, sampling and
//! streaming. Generation lands with the runtime issue.

pub use model;
