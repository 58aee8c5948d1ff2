// Short-conv output (kernels/short_conv.md): one thread per (row r, channel c),
// out[r, c] = C[r, c] · Σ_{i<l} w[c, i] · seq[r + i, c] with
// seq = state ++ (B ⊙ X). Reads the old state; conv/state.wgsl updates it
// afterwards in a second dispatch. Prelude: conv/io.wgsl.

@group(0) @binding(3) var<storage, read> state: array<f32>;      // [l − 1, d]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [t, d]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let d = params.d;
    let l = params.l;
    let o = (wid.y * nwg.x + wid.x) * WG + li;
    if (o >= params.t * d) {
        return;
    }
    let r = o / d;
    let c = o - r * d;
    var acc = 0.0;
    for (var i = 0u; i < l; i++) {
        let s = r + i;  // row of seq
        var v: f32;
        if (s + 1u < l) {
            v = state[s * d + c];
        } else {
            v = bx_at(s + 1u - l, c);
        }
        acc = fma(w[c * l + i], v, acc);
    }
    out[o] = bcx[r * 3u * d + d + c] * acc;
}
