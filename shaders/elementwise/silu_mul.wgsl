// SwiGLU gate (kernels/elementwise.md): out[i] = a[i] / (1 + e^(−a[i])) · b[i]
// with a = gate, b = up, evaluated in f32 in that order. Prelude:
// elementwise/io.wgsl.

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = element_index(wid, nwg, li);
    if (i < params.n) {
        let g = a[i];
        out[i] = g / (1.0 + exp(-g)) * b[i];
    }
}
