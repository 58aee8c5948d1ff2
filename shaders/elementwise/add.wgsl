// Residual add in place (kernels/elementwise.md): out[i] += a[i], one IEEE
// f32 addition (bit-exact). Prelude: elementwise/io.wgsl.

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = element_index(wid, nwg, li);
    if (i < params.n) {
        out[i] = out[i] + a[i];
    }
}
