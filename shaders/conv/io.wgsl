// Shared bindings of the LFM2 short conv (kernels/short_conv.md):
// bcx [t, 3d] (B | C | X), w [d, l], state [l − 1, d] (the previous l − 1
// rows of bx = B ⊙ X), out [t, d].

// Rust mirror: tensor::wgpu::uniforms::ConvParams.
struct ConvParams {
    t: u32,
    d: u32,
    // Kernel length.
    l: u32,
    pad0: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: ConvParams;
@group(0) @binding(1) var<storage, read> bcx: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;

// Row s of seq = state ++ bx, channel c, reading the state through `state_at`.
fn bx_at(r: u32, c: u32) -> f32 {
    let d = params.d;
    return bcx[r * 3u * d + c] * bcx[r * 3u * d + 2u * d + c];
}
