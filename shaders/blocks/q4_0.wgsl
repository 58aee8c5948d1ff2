// ggml Q4_0 (18 bytes per 32 weights: f16 d, 16 bytes of nibbles; weight i
// < 16 is byte i's low nibble, weight 16 + i its high one; w = d·(q − 8))
// for the block kernels (prelude: blocks/read.wgsl).

// Element `e` of the flattened weights (rows are whole blocks).
fn block_elem(e: u32) -> f32 {
    let base = (e / 32u) * 18u;
    let i = e % 32u;
    let q = (blk_byte(base + 2u + i % 16u) >> ((i / 16u) * 4u)) & 0xFu;
    return blk_half(base) * (f32(q) - 8.0);
}
