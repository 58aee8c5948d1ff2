//! The wgpu backend (WGSL kernels). Work in progress.
