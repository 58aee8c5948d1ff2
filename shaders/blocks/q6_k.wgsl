// ggml Q6_K (210 bytes per 256 weights: 128 bytes ql, 64 bytes qh, 16 i8
// scales, f16 d). Weight 128h + 32p + l (half h, quarter p, l < 32) is
// nibble p / 2 of ql[64h + 32(p % 2) + l] with bits 2p .. 2p + 2 of
// qh[32h + l] on top, minus 32, times scale[8h + 2p + l / 16] and d, for
// the block kernels (prelude: blocks/read.wgsl).

// Element `e` of the flattened weights (rows are whole blocks).
fn block_elem(e: u32) -> f32 {
    let base = (e / 256u) * 210u;
    let i = e % 256u;
    let h = i / 128u;
    let p = (i % 128u) / 32u;
    let l = i % 32u;
    let lo = (blk_byte(base + 64u * h + 32u * (p % 2u) + l) >> (4u * (p / 2u))) & 0xFu;
    let hi = (blk_byte(base + 128u + 32u * h + l) >> (2u * p)) & 3u;
    let sc = blk_i8(base + 192u + 8u * h + 2u * p + l / 16u);
    return blk_half(base + 208u) * f32(sc) * (f32(lo | (hi << 4u)) - 32.0);
}
