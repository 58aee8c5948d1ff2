// The Q4_K dot product of the block GEMV (preludes: blocks/q4_k.wgsl, and
// blk_x4 from matmul/gemv_blocks.wgsl).

// Σ of the 32 weights of group `g` (sub-block g % 8 of block g / 8) times
// x[xo .. xo + 32].
fn group_dot(g: u32, xo: u32) -> f32 {
    let base = (g / 8u) * 144u;
    let j = g % 8u;
    let q0 = base + 16u + 32u * (j / 2u);
    let s = (j % 2u) * 4u;
    var acc = vec4<f32>(0.0);
    var xs = vec4<f32>(0.0);
    for (var t = 0u; t < 8u; t++) {
        let xv = blk_x4(xo, t);
        acc = fma(blk_nib4(blk_word((q0 >> 2u) + t), s), xv, acc);
        xs += xv;
    }
    let dm = unpack2x16float(blk_word(base / 4u));
    let sm = q4k_scale_min(base + 4u, j);
    return dm.x * sm.x * ((acc.x + acc.y) + (acc.z + acc.w))
        - dm.y * sm.y * ((xs.x + xs.y) + (xs.z + xs.w));
}
