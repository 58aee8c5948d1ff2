// ggml Q4_K (144 bytes per 256 weights: f16 d, f16 dmin, 12 bytes of
// six-bit scales and mins for 8 sub-blocks of 32, 128 bytes of nibbles;
// sub-block j = 2c + h is the low (h = 0) or high (h = 1) nibbles of bytes
// 32c .. 32c + 32; w = d·sc_j·q − dmin·m_j) for the block kernels
// (prelude: blocks/read.wgsl).

// Sub-block j's six-bit scale and min (ggml's get_scale_min_k4) from the
// 12 bytes at `s`.
fn q4k_scale_min(s: u32, j: u32) -> vec2<f32> {
    if (j < 4u) {
        return vec2<f32>(f32(blk_byte(s + j) & 63u), f32(blk_byte(s + j + 4u) & 63u));
    }
    let hi = blk_byte(s + j + 4u);
    let sc = (hi & 0xFu) | ((blk_byte(s + j - 4u) >> 6u) << 4u);
    let m = (hi >> 4u) | ((blk_byte(s + j) >> 6u) << 4u);
    return vec2<f32>(f32(sc), f32(m));
}

// Element `e` of the flattened weights (rows are whole blocks).
fn block_elem(e: u32) -> f32 {
    let base = (e / 256u) * 144u;
    let i = e % 256u;
    let j = i / 32u;
    let byte = blk_byte(base + 16u + 32u * (j / 2u) + i % 32u);
    let q = (byte >> ((j % 2u) * 4u)) & 0xFu;
    let dm = unpack2x16float(blk_word(base / 4u));
    let sm = q4k_scale_min(base + 4u, j);
    return dm.x * sm.x * f32(q) - dm.y * sm.y;
}
