// The Q6_K dot product of the block GEMV (preludes: blocks/q6_k.wgsl, and
// blk_x4 from matmul/gemv_blocks.wgsl).

// Σ of the 32 weights of group `g` (quarter p of half h of block g / 8,
// with g % 8 = 4h + p) times x[xo .. xo + 32].
fn group_dot(g: u32, xo: u32) -> f32 {
    let base = (g / 8u) * 210u;
    let h = (g % 8u) / 4u;
    let p = g % 4u;
    let ql = base + 64u * h + 32u * (p % 2u);
    let qh = base + 128u + 32u * h;
    let ls = 4u * (p / 2u);
    let hs = 2u * p;
    var sums = vec2<f32>(0.0);
    for (var part = 0u; part < 2u; part++) {
        var acc = vec4<f32>(0.0);
        for (var t = 4u * part; t < 4u * part + 4u; t++) {
            let lo = (blk_u32(ql + 4u * t) >> ls) & 0x0F0F0F0Fu;
            let hi = (blk_u32(qh + 4u * t) >> hs) & 0x03030303u;
            let q = blk_u8x4(lo | (hi << 4u)) - 32.0;
            acc = fma(q, blk_x4(xo, t), acc);
        }
        sums[part] = (acc.x + acc.y) + (acc.z + acc.w);
    }
    let s0 = blk_i8(base + 192u + 8u * h + 2u * p);
    let s1 = blk_i8(base + 193u + 8u * h + 2u * p);
    return blk_half(base + 208u) * (f32(s0) * sums.x + f32(s1) * sums.y);
}
