// Short-conv decode step (t = 1, l ≥ 2; kernels/short_conv.md): the output
// of conv/short_conv.wgsl and the state update of conv/state.wgsl in one
// dispatch. One thread per channel c reads its l − 1 state rows and
// bx = B ⊙ X, writes out[c] = C · Σ_{i<l} w[c, i] · seq[i] with
// seq = state ++ bx, then shifts its own column of the state (row j ← row
// j + 1, the last row ← bx): no other thread touches column c. Same
// products and fma order as the two-dispatch path (bit-exact).
// Prelude: conv/io.wgsl.

@group(0) @binding(3) var<storage, read_write> state: array<f32>;  // [l − 1, d]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;    // [1, d]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let d = params.d;
    let l = params.l;
    let c = (wid.y * nwg.x + wid.x) * WG + li;
    if (c >= d) {
        return;
    }
    let bx = bx_at(0u, c);
    var acc = 0.0;
    for (var i = 0u; i + 1u < l; i++) {
        acc = fma(w[c * l + i], state[i * d + c], acc);
    }
    acc = fma(w[c * l + l - 1u], bx, acc);
    out[c] = bcx[d + c] * acc;
    for (var j = 0u; j + 2u < l; j++) {
        state[j * d + c] = state[(j + 1u) * d + c];
    }
    state[(l - 2u) * d + c] = bx;
}
