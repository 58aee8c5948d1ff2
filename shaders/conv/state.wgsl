// Short-conv state update (kernels/short_conv.md): state ← the last l − 1 rows
// of seq = state ++ (B ⊙ X), i.e. new[j] = seq[t + j]. One thread per
// channel, j ascending: row t + j ≥ j + 1 of the old state is read before
// iteration t + j overwrites it, so the shift is safe in place. The products
// B·X are rounded exactly as in conv/short_conv.wgsl (bit-exact state).
// Prelude: conv/io.wgsl.

@group(0) @binding(3) var<storage, read_write> state: array<f32>;  // [l − 1, d]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let d = params.d;
    let c = (wid.y * nwg.x + wid.x) * WG + li;
    if (c >= d) {
        return;
    }
    let t = params.t;
    for (var j = 0u; j + 1u < params.l; j++) {
        let s = t + j;  // row of seq
        if (s + 1u < params.l) {
            state[j * d + c] = state[s * d + c];
        } else {
            state[j * d + c] = bx_at(s + 1u - params.l, c);
        }
    }
}
