// An embedding table [vocab, d] in a ggml block format, the file's bytes as
// uploaded, for gather/gather.wgsl; the format comes from the
// blocks/<format>.wgsl prelude after this one. Decoding is exact.

@group(0) @binding(1) var<storage, read> table: array<u32>;

// Word i of the block bytes (for blocks/read.wgsl).
fn blk_word(i: u32) -> u32 {
    return table[i];
}

fn load_table(e: u32) -> f32 {
    return block_elem(e);
}
