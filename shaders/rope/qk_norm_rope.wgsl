// LFM2's per-head q/k RMSNorm followed by NeoX RoPE, in one dispatch
// (backend.rs `qk_norm_rope`; kernels/rms_norm.md, kernels/rope.md). One
// workgroup per (row i, head) over the h query heads and then the h_kv key
// heads of each row; thread j handles the rotated pairs (j, j + hd/2),
// j = li, li + WG, …: the sum of squares is tree-reduced in workgroup
// memory, then each pair is normalised (`w ⊙ (x · inv)`, as rms_norm.wgsl)
// and rotated with the host's cos/sin of its position (as rope.wgsl). The
// reduction order differs from rms_norm.wgsl's, so results match the
// four-dispatch path within the norm's tolerance, not bit for bit.
// Prelude: norm/reduce.wgsl (WG, workgroup_sum).

// Rust mirror: tensor::wgpu::uniforms::QkNormRopeParams.
struct QkNormRopeParams {
    t: u32,
    h: u32,
    h_kv: u32,
    // Head width (even).
    hd: u32,
    eps: f32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

@group(0) @binding(0) var<uniform> params: QkNormRopeParams;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;          // [t, hd/2] (cos, sin)
@group(0) @binding(2) var<storage, read> q: array<f32>;                 // [t, h, hd]
@group(0) @binding(3) var<storage, read> k: array<f32>;                 // [t, h_kv, hd]
@group(0) @binding(4) var<storage, read> q_w: array<f32>;               // [hd]
@group(0) @binding(5) var<storage, read> k_w: array<f32>;               // [hd]
@group(0) @binding(6) var<storage, read_write> q_out: array<f32>;       // [t, h, hd]
@group(0) @binding(7) var<storage, read_write> k_out: array<f32>;       // [t, h_kv, hd]

// Element e of the input head (q when `is_q`, else k).
fn load_x(is_q: bool, e: u32) -> f32 {
    if (is_q) {
        return q[e];
    }
    return k[e];
}

fn weight(is_q: bool, c: u32) -> f32 {
    if (is_q) {
        return q_w[c];
    }
    return k_w[c];
}

fn store(is_q: bool, e: u32, v: f32) {
    if (is_q) {
        q_out[e] = v;
    } else {
        k_out[e] = v;
    }
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let heads = params.h + params.h_kv;
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let g = wid.y * nwg.x + wid.x;
    if (g >= params.t * heads) {
        return;
    }
    let i = g / heads;
    let head = g - i * heads;
    let is_q = head < params.h;
    let hd = params.hd;
    let half = hd / 2u;
    var base: u32;
    if (is_q) {
        base = (i * params.h + head) * hd;
    } else {
        base = (i * params.h_kv + head - params.h) * hd;
    }
    var acc = 0.0;
    for (var j = li; j < half; j += WG) {
        let a = load_x(is_q, base + j);
        let b = load_x(is_q, base + j + half);
        acc = fma(b, b, fma(a, a, acc));
    }
    let inv = 1.0 / sqrt(workgroup_sum(li, acc) / f32(hd) + params.eps);
    for (var j = li; j < half; j += WG) {
        let a = weight(is_q, j) * (load_x(is_q, base + j) * inv);
        let b = weight(is_q, j + half) * (load_x(is_q, base + j + half) * inv);
        let r = cs[i * half + j];
        store(is_q, base + j, a * r.x - b * r.y);
        store(is_q, base + j + half, b * r.x + a * r.y);
    }
}
