// Embedding gather (backend.rs `gather_rows`): one thread per output element
// over a 2D grid of workgroups. Preludes: gather/io.wgsl and one table_*.wgsl.

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let o = (wid.y * nwg.x + wid.x) * WG + li;
    if (o < params.n) {
        let row = o / params.d;
        let c = o - row * params.d;
        out[o] = load_table(ids[row] * params.d + c);
    }
}
