//! Test support for kernels: seeded inputs, the shared edge-shape lists and
//! the one tolerance table. Public so the model crate's tests use the same.

pub mod rng;
pub mod shapes;
pub mod tolerance;
