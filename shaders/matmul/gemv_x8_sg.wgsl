// GEMV main, one subgroup per row reduced with subgroupAdd: no workgroup
// memory, no barriers (prelude: matmul/gemv_x8.wgsl; kernels/matmul.md).
// Chosen only on adapters whose subgroup size is fixed (min = max = SG, set
// by the host), so a workgroup holds exactly WG / SG rows and the host's
// grid covers every row once. The row comes from the subgroup_id builtin,
// not from an assumed mapping of invocations to subgroups.

override SG: u32 = 32u;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) sg_id: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let group = wid.y * nwg.x + wid.x;
    let row = group * (WG / SG) + sg_id;
    // Uniform per subgroup: every lane of a subgroup has the same row.
    if (row < params.n) {
        let dot = subgroupAdd(row_share(row, lane, SG));
        if (lane == 0u) {
            store_row(row, dot);
        }
    }
}
