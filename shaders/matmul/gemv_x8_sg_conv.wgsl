// GEMV with the short-conv decode step as its epilogue (backend.rs
// `matmul_short_conv`, kernels/matmul.md, kernels/short_conv.md): w is the
// in_proj [3d, k] bf16 (k a multiple of 8) whose rows are B | C | X; for
// channel c one subgroup reduces rows c, d + c and 2d + c with subgroupAdd
// (prelude: matmul/gemv_x8.wgsl, whose row_share3 accumulates each row in
// the unfused GEMV's order with the three rows' loads interleaved, so B, C
// and X are the values the two-dispatch path would store, up to how the
// adapter orders a vector subgroupAdd), then lane 0 does conv/step.wgsl's
// work for c: out[c] = C · Σ_{i<l} conv_w[c, i] · seq[i] with
// seq = state ++ B·X, and shifts its own column of the state: the same
// products and fma order as the unfused path (bit-exact on lavapipe,
// where the test asserts it). Chosen only
// on adapters whose subgroup size is fixed (min = max = SG, set by the
// host), like matmul/gemv_x8_sg.wgsl.

// Rust mirror: tensor::wgpu::uniforms::GemvConvParams.
struct GemvConvParams {
    // Channels.
    d: u32,
    // Row length of in_proj (a multiple of 8).
    k: u32,
    // Conv kernel length (≥ 2).
    l: u32,
    pad0: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;
override SG: u32 = 32u;

@group(0) @binding(0) var<uniform> params: GemvConvParams;
@group(0) @binding(1) var<storage, read> w: array<vec4<u32>>;         // [3d, k / 8] bf16 ×8
@group(0) @binding(2) var<storage, read> x: array<vec4<f32>>;         // [k / 4]
@group(0) @binding(3) var<storage, read> conv_w: array<f32>;          // [d, l]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;       // [d]
@group(0) @binding(5) var<storage, read_write> state: array<f32>;     // [l − 1, d]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let group = wid.y * nwg.x + wid.x;
    let c = group * (WG / SG) + sg_id;
    let d = params.d;
    // Uniform per subgroup: every lane of a subgroup has the same channel.
    if (c < d) {
        let bcx = subgroupAdd(row_share3(vec3<u32>(c, d + c, 2u * d + c), lane, SG));
        let b = bcx.x;
        let cc = bcx.y;
        let xx = bcx.z;
        if (lane == 0u) {
            let l = params.l;
            let bx = b * xx;
            var acc = 0.0;
            for (var i = 0u; i + 1u < l; i++) {
                acc = fma(conv_w[c * l + i], state[i * d + c], acc);
            }
            acc = fma(conv_w[c * l + l - 1u], bx, acc);
            out[c] = cc * acc;
            for (var j = 0u; j + 2u < l; j++) {
                state[j * d + c] = state[(j + 1u) * d + c];
            }
            state[(l - 2u) * d + c] = bx;
        }
    }
}
