// gelu_pytorch_tanh (kernels/gelu.md): 0.5·z·(1 + tanh(u)) with
// u = √(2/π)·(z + 0.044715·z³), evaluated as z / (1 + e^(−2u)) (exactly equal,
// since 1 + tanh(u) = 2 / (1 + e^(−2u))): no cancellation for negative z and
// no tanh, whose WGSL accuracy is poor near 0 on some drivers. e^(−2u)
// overflowing to +inf (z ≲ −9.5) gives −0. Prelude: elementwise/io.wgsl.

// −2·√(2/π) and −2·√(2/π)·0.044715.
const TANH_A: f32 = -1.5957692;
const TANH_B: f32 = -0.071354814;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let i = element_index(wid, nwg, li);
    if (i < params.n) {
        let z = a[i];
        let v = z * (TANH_A + TANH_B * (z * z));
        out[i] = z / (1.0 + exp(v));
    }
}
