// The Q8_0 dot product of the block GEMV (preludes: blocks/q8_0.wgsl, and
// blk_x4 from matmul/gemv_blocks.wgsl).

// Σ of the 32 weights of group `g` (block g) times x[xo .. xo + 32].
fn group_dot(g: u32, xo: u32) -> f32 {
    let base = g * 34u;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 8u; j++) {
        acc = fma(blk_i8x4(blk_u32(base + 2u + 4u * j)), blk_x4(xo, j), acc);
    }
    return blk_half(base) * ((acc.x + acc.y) + (acc.z + acc.w));
}
