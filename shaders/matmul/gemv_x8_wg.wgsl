// GEMV main, reduction in workgroup memory (prelude: matmul/gemv_x8.wgsl;
// kernels/matmul.md): TPR threads per row (a power of two dividing WG),
// WG / TPR rows per workgroup, row groups spread over a 2D grid.

override TPR: u32 = 64u;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let group = wid.y * nwg.x + wid.x;
    let lane = li % TPR;
    let row = group * (WG / TPR) + li / TPR;
    var share = 0.0;
    if (row < params.n) {
        share = row_share(row, lane, TPR);
    }
    partial[li] = share;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < params.n) {
        store_row(row, partial[li]);
    }
}
