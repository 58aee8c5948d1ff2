// Weights w[n, k] in a ggml block format, the file's bytes as uploaded
// (rows are whole blocks, so element e of the flattened array is element
// e % QK of block e / QK). Loaders for matmul/matmul.wgsl; the format
// comes from the blocks/<format>.wgsl prelude after this one.

@group(0) @binding(1) var<storage, read> w: array<u32>;  // block bytes

// Word i of the block bytes (for blocks/read.wgsl).
fn blk_word(i: u32) -> u32 {
    return w[i];
}

// Weight element e of the flattened [n, k] array, decoded to f32 (exact).
fn load_w(e: u32) -> f32 {
    return block_elem(e);
}
