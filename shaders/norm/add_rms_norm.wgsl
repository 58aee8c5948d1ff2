// Residual add fused with the next RMSNorm (kernels/rms_norm.md):
// x ← x + y, then out = w ⊙ (x · 1/sqrt(mean(x²) + eps)) per row. The same
// arithmetic, striding and reduction as elementwise/add.wgsl followed by
// norm/rms_norm.wgsl, in one dispatch. Each thread re-reads only the
// elements it wrote. Preludes: norm/params.wgsl, norm/reduce.wgsl.

@group(0) @binding(1) var<storage, read_write> x: array<f32>;  // [rows, d]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [d]
@group(0) @binding(3) var<storage, read> y: array<f32>;        // [rows, d]
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // [rows, d]

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
        let v = x[base + c] + y[base + c];
        x[base + c] = v;
        acc = fma(v, v, acc);
    }
    let total = workgroup_sum(li, acc);
    let inv = 1.0 / sqrt(total / f32(d) + params.eps);
    for (var c = li; c < d; c += WG) {
        out[base + c] = w[c] * (x[base + c] * inv);
    }
}
