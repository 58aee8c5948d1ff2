// GEMV with the SwiGLU epilogue (backend.rs `matmul_swiglu`,
// kernels/matmul.md): w holds the stacked w1 | w3 rows ([2f, k] bf16, k a
// multiple of 8) and y[c] = silu(g) · u with g = w[c] · x and u = w[f + c] · x,
// the arithmetic of elementwise/swiglu.wgsl; params.n = f. One subgroup per
// output: it reduces both dot products with subgroupAdd (prelude:
// matmul/gemv_x8.wgsl, whose row_share2 accumulates each row in the unfused
// GEMV's order with the two rows' loads interleaved, so g and u are the
// values the two-dispatch path would store, up to how the adapter orders a
// vector subgroupAdd). Chosen only on adapters
// whose subgroup size is fixed (min = max = SG, set by the host), like
// matmul/gemv_x8_sg.wgsl.

override SG: u32 = 32u;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let group = wid.y * nwg.x + wid.x;
    let c = group * (WG / SG) + sg_id;
    let f = params.n;
    // Uniform per subgroup: every lane of a subgroup has the same output.
    if (c < f) {
        let gu = subgroupAdd(row_share2(vec2<u32>(c, c + f), lane, SG));
        let g = gu.x;
        let u = gu.y;
        if (lane == 0u) {
            y[c] = g / (1.0 + exp(-g)) * u;
        }
    }
}
