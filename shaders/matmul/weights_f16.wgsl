// Weights w[n, k] as f16, packed two per u32 and widened with
// Loaders for the matmul kernels; dot_w_word reads `x` from matmul/io.wgsl.
// unpack2x16float (core WGSL: no shader-f16 feature needed).

@group(0) @binding(1) var<storage, read> w: array<u32>;  // [n, k] f16, packed

// Weight elements per storage word.
const W_PER_WORD: u32 = 2u;

// Weight element e of the flattened [n, k] array, widened to f32 (exact).
fn load_w(e: u32) -> f32 {
    return unpack2x16float(w[e >> 1u])[e & 1u];
}

// Σ of w[e]·x[e − e0] over both elements of word i, where xo = 2i − e0 is
// the x index of the word's first element (both elements inside the row).
fn dot_w_word(i: u32, xo: u32) -> f32 {
    let v = unpack2x16float(w[i]);
    return fma(v.x, x[xo], v.y * x[xo + 1u]);
}
