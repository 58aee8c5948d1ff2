// GEMV for decode (m = 1) on block-format weights: y[n] = w[n, k] · x[k]
// (+ bias[n]), f32 x and accumulation (kernels/matmul.md § Block formats
// on wgpu). Preludes: matmul/io.wgsl, matmul/weights_blocks.wgsl,
// blocks/read.wgsl, blocks/<format>.wgsl and blocks/<format>_dot.wgsl.
//
// Every format is read in groups of 32 weights (a Q8_0/Q4_0 block, a k-quant
// sub-block): TPR threads per row stride over the row's k / 32 groups, each
// group's integers unpacked from 4-byte reads and scaled once. The partial
// sums are reduced in workgroup memory; WG / TPR rows per workgroup, row
// groups spread over a 2D grid.

override WG: u32 = 256u;
override TPR: u32 = 32u;

var<workgroup> partial: array<f32, WG>;

// x[xo + 4j .. xo + 4j + 4] (for the blocks/<format>_dot.wgsl preludes).
fn blk_x4(xo: u32, j: u32) -> vec4<f32> {
    let i = xo + 4u * j;
    return vec4<f32>(x[i], x[i + 1u], x[i + 2u], x[i + 3u]);
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let groups = params.k / 32u;
    let group = wid.y * nwg.x + wid.x;
    let lane = li % TPR;
    let row = group * (WG / TPR) + li / TPR;
    var acc = 0.0;
    if (row < params.n) {
        for (var g = lane; g < groups; g += TPR) {
            acc += group_dot(row * groups + g, 32u * g);
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < params.n) {
        y[row] = partial[li] + bias_at(row);
    }
}
