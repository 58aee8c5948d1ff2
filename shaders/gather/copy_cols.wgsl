// Column copy (backend.rs `copy_cols`): out[r, c] = src[r, col0 + c], one
// thread per output element over a 2D grid of workgroups. Splits a fused
// projection (q | k | v) into its parts. No preludes.

// Rust mirror: tensor::wgpu::uniforms::CopyColsParams.
struct CopyColsParams {
    // Output elements: rows · c.
    n: u32,
    // Columns of src and of out.
    c_src: u32,
    c: u32,
    col0: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: CopyColsParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;        // [rows, c_src]
@group(0) @binding(2) var<storage, read_write> out: array<f32>;  // [rows, c]

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let o = (wid.y * nwg.x + wid.x) * WG + li;
    if (o < params.n) {
        let row = o / params.c;
        let c = o - row * params.c;
        out[o] = src[row * params.c_src + params.col0 + c];
    }
}
