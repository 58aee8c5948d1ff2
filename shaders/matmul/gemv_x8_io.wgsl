// Bindings of the x8 GEMV (kernels/matmul.md) and its store: prelude of
// matmul/gemv_x8.wgsl for the plain GEMV and the SwiGLU epilogue.

// Rust mirror: tensor::wgpu::uniforms::MatmulParams (as in matmul/io.wgsl).
struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // 1 when `bias` holds n values to add, 0 when it is a placeholder.
    has_bias: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: MatmulParams;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;  // [n, k / 8] bf16 ×8
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;  // [k / 4]
@group(0) @binding(3) var<storage, read> bias: array<f32>;     // [n] (or a placeholder)
@group(0) @binding(4) var<storage, read_write> y: array<f32>;  // [n]

// y[row] from the row's full dot product.
fn store_row(row: u32, dot: f32) {
    var b = 0.0;
    if (params.has_bias != 0u) {
        b = bias[row];
    }
    y[row] = dot + b;
}
