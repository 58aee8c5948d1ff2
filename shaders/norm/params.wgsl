// The uniform of the row normalisations (kernels/rms_norm.md,
// kernels/layer_norm.md). Rows are spread over a 2D grid of workgroups.

// Rust mirror: tensor::wgpu::uniforms::NormParams.
struct NormParams {
    rows: u32,
    // Row width.
    d: u32,
    eps: f32,
    pad0: u32,
}

@group(0) @binding(0) var<uniform> params: NormParams;
