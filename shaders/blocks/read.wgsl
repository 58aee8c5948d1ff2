// Byte-level reads of ggml block-format weights (kernels/matmul.md § Block
// formats on wgpu), stored on the device as uploaded: the file's bytes in
// an array<u32> read through `blk_word` (defined by the binding prelude:
// matmul/weights_blocks.wgsl or gather/table_blocks.wgsl). Blocks of 18,
// 34 and 210 bytes start on 2-byte boundaries only, so 4-byte reads take
// two words where they straddle one.

// Byte `o` of the weights.
fn blk_byte(o: u32) -> u32 {
    return (blk_word(o >> 2u) >> ((o & 3u) * 8u)) & 0xFFu;
}

// The f16 at even byte offset `o`, widened to f32 (exact).
fn blk_half(o: u32) -> f32 {
    return unpack2x16float(blk_word(o >> 2u) >> ((o & 2u) * 8u)).x;
}

// The four bytes at even byte offset `o`, little-endian.
fn blk_u32(o: u32) -> u32 {
    let lo = blk_word(o >> 2u);
    if ((o & 2u) == 0u) {
        return lo;
    }
    return (lo >> 16u) | (blk_word((o >> 2u) + 1u) << 16u);
}

// The four bytes of `v` as signed integers, lowest byte first.
fn blk_i8x4(v: u32) -> vec4<f32> {
    return vec4<f32>(vec4<i32>(
        bitcast<i32>(v << 24u) >> 24u,
        bitcast<i32>(v << 16u) >> 24u,
        bitcast<i32>(v << 8u) >> 24u,
        bitcast<i32>(v) >> 24u,
    ));
}

// The four bytes of `v` as unsigned integers, lowest byte first.
fn blk_u8x4(v: u32) -> vec4<f32> {
    return vec4<f32>(vec4<u32>(v & 0xFFu, (v >> 8u) & 0xFFu, (v >> 16u) & 0xFFu, v >> 24u));
}

// The four low nibbles (`s` = 0) or high nibbles (`s` = 4) of `v`'s bytes.
fn blk_nib4(v: u32, s: u32) -> vec4<f32> {
    return blk_u8x4((v >> s) & 0x0F0F0F0Fu);
}

// The signed byte `o`.
fn blk_i8(o: u32) -> i32 {
    return bitcast<i32>(blk_byte(o) << 24u) >> 24u;
}
