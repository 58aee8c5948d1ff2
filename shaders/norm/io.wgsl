// Bindings of rms_norm and layer_norm (prelude: norm/reduce.wgsl).

@group(0) @binding(1) var<storage, read> x: array<f32>;        // [rows, d]
@group(0) @binding(2) var<storage, read> w: array<f32>;        // [d]
@group(0) @binding(3) var<storage, read> b: array<f32>;        // [d] (layer_norm only)
@group(0) @binding(4) var<storage, read_write> out: array<f32>; // [rows, d]
