// The input side of an LFM2 attention layer in one dispatch (backend.rs
// `qkv_norm_rope`; kernels/rope.md, kernels/rms_norm.md): from the stacked
// projection `qkv` [t, (h + 2·h_kv)·hd] (each row q | k | v), the per-head
// RMSNorm and NeoX RoPE of the h query heads into q_out and of the h_kv key
// heads into the key cache, and the h_kv value heads copied into the value
// cache, both at rows kv_row0 + i·h_kv + head.
//
// One workgroup per (row i, head) over h + 2·h_kv heads per row. For a q or
// k head, thread j handles the rotated pairs (j, j + hd/2), j = li, li + WG,
// …: the sum of squares is tree-reduced in workgroup memory, then each pair
// is normalised (`w ⊙ (x · inv)`, as rms_norm.wgsl) and rotated with the
// host's cos/sin of its position (as rope.wgsl). The reduction order differs
// from rms_norm.wgsl's, so results match the unfused ops within the norm's
// tolerance, not bit for bit. A v head is copied (the branch is uniform per
// workgroup, so the norm's barriers stay in uniform control flow).
// Prelude: norm/reduce.wgsl (WG, workgroup_sum).

// Rust mirror: tensor::wgpu::uniforms::QkvNormRopeParams.
struct QkvNormRopeParams {
    t: u32,
    h: u32,
    h_kv: u32,
    // Head width (even).
    hd: u32,
    eps: f32,
    // The cache row (of hd) of row 0's first key head: pos0 · h_kv.
    kv_row0: u32,
    pad0: u32,
    pad1: u32,
}

@group(0) @binding(0) var<uniform> params: QkvNormRopeParams;
@group(0) @binding(1) var<storage, read> cs: array<vec2<f32>>;             // [t, hd/2] (cos, sin)
@group(0) @binding(2) var<storage, read> qkv: array<f32>;                  // [t, (h + 2·h_kv)·hd]
@group(0) @binding(4) var<storage, read> q_w: array<f32>;                  // [hd]
@group(0) @binding(5) var<storage, read> k_w: array<f32>;                  // [hd]
@group(0) @binding(6) var<storage, read_write> q_out: array<f32>;          // [t, h, hd]
@group(0) @binding(7) var<storage, read_write> k_cache: array<f32>;        // [s, h_kv, hd]
@group(0) @binding(8) var<storage, read_write> v_cache: array<f32>;        // [s, h_kv, hd]

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
        k_cache[e] = v;
    }
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let h = params.h;
    let h_kv = params.h_kv;
    let heads = h + 2u * h_kv;
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let g = wid.y * nwg.x + wid.x;
    if (g >= params.t * heads) {
        return;
    }
    let i = g / heads;
    let head = g - i * heads;
    let hd = params.hd;
    // This head in qkv (heads are consecutive within a row).
    let src = g * hd;
    if (head >= h + h_kv) {
        let dst = (params.kv_row0 + i * h_kv + head - h - h_kv) * hd;
        for (var j = li; j < hd; j += WG) {
            v_cache[dst + j] = qkv[src + j];
        }
        return;
    }
    let is_q = head < h;
    var dst: u32;
    if (is_q) {
        dst = (i * h + head) * hd;
    } else {
        dst = (params.kv_row0 + i * h_kv + head - h) * hd;
    }
    let half = hd / 2u;
    var acc = 0.0;
    for (var j = li; j < half; j += WG) {
        let a = qkv[src + j];
        let b = qkv[src + j + half];
        acc = fma(b, b, fma(a, a, acc));
    }
    let inv = 1.0 / sqrt(workgroup_sum(li, acc) / f32(hd) + params.eps);
    for (var j = li; j < half; j += WG) {
        let a = weight(is_q, j) * (qkv[src + j] * inv);
        let b = weight(is_q, j + half) * (qkv[src + j + half] * inv);
        let r = cs[i * half + j];
        store(is_q, dst + j, a * r.x - b * r.y);
        store(is_q, dst + j + half, b * r.x + a * r.y);
    }
}
