// The Q4_0 dot product of the block GEMV (preludes: blocks/q4_0.wgsl, and
// blk_x4 from matmul/gemv_blocks.wgsl).

// Σ of the 32 weights of group `g` (block g) times x[xo .. xo + 32].
fn group_dot(g: u32, xo: u32) -> f32 {
    let base = g * 18u;
    var acc = vec4<f32>(0.0);
    for (var j = 0u; j < 4u; j++) {
        let v = blk_u32(base + 2u + 4u * j);
        acc = fma(blk_nib4(v, 0u) - 8.0, blk_x4(xo, j), acc);
        acc = fma(blk_nib4(v, 4u) - 8.0, blk_x4(xo, 4u + j), acc);
    }
    return blk_half(base) * ((acc.x + acc.y) + (acc.z + acc.w));
}
