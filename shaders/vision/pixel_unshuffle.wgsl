// Pixel unshuffle by 2 (backend.rs `pixel_unshuffle`, spec §5): x [h·w, d]
// over an h × w grid into out [(h/2)·(w/2), 4d]; output token (a, b) is the
// concatenation of x[2a, 2b], x[2a, 2b+1], x[2a+1, 2b], x[2a+1, 2b+1].
// One thread per output element over a 2D grid of workgroups.

// Rust mirror: tensor::wgpu::uniforms::PixelUnshuffleParams.
struct PixelUnshuffleParams {
    // Grid width w (even).
    w: u32,
    // Feature width d.
    d: u32,
    // Output elements: (h/2)·(w/2)·4d.
    n: u32,
    pad0: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: PixelUnshuffleParams;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let o = (wid.y * nwg.x + wid.x) * WG + li;
    if (o >= params.n) {
        return;
    }
    let d = params.d;
    let token = o / (4u * d);
    let rem = o - token * 4u * d;
    let q = rem / d;   // which of the four source tokens
    let c = rem - q * d;
    let half_w = params.w / 2u;
    let ta = token / half_w;
    let tb = token - ta * half_w;
    let src = (2u * ta + q / 2u) * params.w + 2u * tb + (q & 1u);
    out[o] = x[src * d + c];
}
