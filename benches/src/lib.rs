//! Benchmark helpers shared by the bench binaries: timing and the machine's
//! own limits (FMA peak per ISA and thread count, memory read bandwidth).

pub mod limits;
pub mod timing;
