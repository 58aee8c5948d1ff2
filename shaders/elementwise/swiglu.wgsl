// SwiGLU over stacked gate | up rows (backend.rs `swiglu`,
// kernels/elementwise.md): out[r, c] = g / (1 + e^(−g)) · u with
// g = gu[r, c], u = gu[r, f + c], the arithmetic of silu_mul.wgsl. One
// thread per output element over a 2D grid of workgroups. No preludes.

// Rust mirror: tensor::wgpu::uniforms::SwigluParams.
struct SwigluParams {
    // Output elements: t · f.
    n: u32,
    // Half width of the gu rows.
    f: u32,
    pad0: u32,
    pad1: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: SwigluParams;
@group(0) @binding(1) var<storage, read> gu: array<f32>;         // [t, 2f]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [t, f]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i < params.n) {
        let row = i / params.f;
        let c = i - row * params.f;
        let base = 2u * row * params.f + c;
        let g = gu[base];
        out[i] = g / (1.0 + exp(-g)) * gu[base + params.f];
    }
}
