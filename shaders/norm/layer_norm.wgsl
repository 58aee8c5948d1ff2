// LayerNorm (kernels/layer_norm.md): out = (x − mean)/sqrt(var + eps) ⊙ w + b
// per row with the biased variance, two passes (mean, then Σ(x − mean)²) in
// f32. Preludes: norm/params.wgsl,
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
        acc += x[base + c];
    }
    let mean = workgroup_sum(li, acc) / f32(d);
    var sq = 0.0;
    for (var c = li; c < d; c += WG) {
        let v = x[base + c] - mean;
        sq = fma(v, v, sq);
    }
    let inv = 1.0 / sqrt(workgroup_sum(li, sq) / f32(d) + params.eps);
    for (var c = li; c < d; c += WG) {
        out[base + c] = fma((x[base + c] - mean) * inv, w[c], b[c]);
    }
}
