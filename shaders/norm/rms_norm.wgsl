// RMSNorm (kernels/rms_norm.md): out = w ⊙ (x · 1/sqrt(mean(x²) + eps)) per
// row, f32 statistics. Preludes: norm/params.wgsl,
// norm/reduce.wgsl, norm/io.wgsl.

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let row = wid.y * nwg.x + wid.x;
    if (row >= params.rows) {
        return;
    }
    let d = params.d;
    let base = row * d;
    var acc = 0.0;
    for (var c = li; c < d; c += WG) {
        let v = x[base + c];
        acc = fma(v, v, acc);
    }
    let total = workgroup_sum(li, acc);
    let inv = 1.0 / sqrt(total / f32(d) + params.eps);
    for (var c = li; c < d; c += WG) {
        out[base + c] = w[c] * (x[base + c] * inv);
    }
}
