// Shared bindings of the matmul kernels (kernels/matmul.md):
// y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]), f32 accumulation.
// The weights (binding 1) and their loaders come from a weights_*.wgsl prelude.

// Rust mirror: tensor::wgpu::uniforms::MatmulParams.
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // 1 when `bias` holds n values to add, 0 when it is a placeholder.
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(2) var<storage, read> x: array<f32>;        // [m, k] row-major
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n] (or a placeholder)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [m, n] row-major

// The bias of output column `col`, or 0 without a bias.
fn bias_at(col: u32) -> f32 {
    if (params.has_bias != 0u) {
        return bias[col];
    }
    return 0.0;
}
