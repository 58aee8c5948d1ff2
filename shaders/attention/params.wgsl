// The uniform of the attention kernels (kernels/attention.md): q, out
// [t, h, hd]; k, v [s, h_kv, hd] with s ≥ kv_len (rows past kv_len are
// never read). All f32, row-major. Bindings: attention/io.wgsl (f32) or the
// kernel's own (decode.wgsl reads vec4s).

// Rust mirror: tensor::wgpu::uniforms::AttnParams.
struct AttnParams {
    t: u32,
    h: u32,
    h_kv: u32,
    hd: u32,
    // Keys used: rows 0..kv_len of k and v.
    kv_len: u32,
    // 1: query row r sits at position kv_len − t + r and sees keys up to it.
    causal: u32,
    scale: f32,
    pad0: u32,
}

// Below every score (a finite stand-in for −inf, so e^(m − x) stays 0, not NaN).
const NEG_BIG: f32 = -3.0e38;

@group(0) @binding(0) var<uniform> params: AttnParams;
