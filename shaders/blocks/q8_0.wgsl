// ggml Q8_0 (34 bytes per 32 weights: f16 d, 32 i8 q; w = d·q) for the
// block kernels (prelude: blocks/read.wgsl).

// Element `e` of the flattened weights (rows are whole blocks).
fn block_elem(e: u32) -> f32 {
    let base = (e / 32u) * 34u;
    let q = blk_i8(base + 2u + e % 32u);
    return blk_half(base) * f32(q);
}
