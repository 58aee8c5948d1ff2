// Weights w[n, k] as f32.
// Loaders for the matmul kernels; dot_w_word reads `x` from matmul/io.wgsl.

@group(0) @binding(1) var<storage, read> w: array<f32>;  // [n, k] f32

// Weight elements per storage word.
const W_PER_WORD: u32 = 1u;

// Weight element e of the flattened [n, k] array.
fn load_w(e: u32) -> f32 {
    return w[e];
}

// w[i]·x[xo]: the one element of word i times its x (xo = i − e0).
fn dot_w_word(i: u32, xo: u32) -> f32 {
    return w[i] * x[xo];
}
