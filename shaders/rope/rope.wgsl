// NeoX rotary embedding in place (kernels/rope.md): x [t, h, hd], row i at
// position pos0 + i. The angles' cos and sin come from the host (`cs`,
// [t, hd/2] pairs): they are computed there with transformers' f32 roundings
// of inv_freq and pos·inv_freq and an accurate f64 sin/cos, since WGSL's
// sin/cos are only accurate to ~2⁻¹¹ absolute, and worse on large angles on
// some drivers. One thread per rotated pair (j, j + hd/2).

// Rust mirror: tensor::wgpu::uniforms::RopeParams.
struct RopeParams {
    t: u32,
    h: u32,
    // Head width (even).
    hd: u32,
    pad0: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: RopeParams;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;  // [t, hd/2] (cos, sin)
@group(0) @binding(2) var<storage, read_write> x: array<f32>;   // [t, h, hd]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let half = params.hd / 2u;
    let p = (wid.y * nwg.x + wid.x) * WG + li;
    if (p >= params.t * params.h * half) {
        return;
    }
    let head = p / half;           // (i, head) flattened
    let j = p - head * half;
    let i = head / params.h;
    let e = head * params.hd + j;
    let a = x[e];
    let b = x[e + half];
    let r = cs[i * half + j];
    x[e] = a * r.x - b * r.y;
    x[e + half] = b * r.x + a * r.y;
}
