// The f32 bindings of attention.wgsl and attention_tiled.wgsl (prelude:
// attention/params.wgsl).

@group(0) @binding(1) var<storage, read> q: array<f32>;          // [t, h, hd]
@group(0) @binding(2) var<storage, read> k: array<f32>;          // [s, h_kv, hd]
@group(0) @binding(3) var<storage, read> v: array<f32>;          // [s, h_kv, hd]
@group(0) @binding(4) var<storage, read_write> out: array<f32>;  // [t, h, hd]
