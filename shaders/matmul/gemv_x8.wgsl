// GEMV for bf16 weights whose rows hold a multiple of 8 elements
// (kernels/matmul.md): y[n] = w[n, k] · x[k] (+ bias[n]), f32 accumulation.
// Preludes: common/bf16.wgsl, then the bindings: matmul/gemv_x8_io.wgsl
// (the plain GEMV's) or those of a fused kernel (`params.k`, `w`, `x`).
// This prelude holds each thread's share of a row's dot product; the main
// file reduces the shares: matmul/gemv_x8_wg.wgsl in workgroup memory (any
// adapter), matmul/gemv_x8_sg.wgsl with subgroupAdd, and the fused
// matmul/gemv_x8_sg_swiglu.wgsl and matmul/gemv_x8_sg_conv.wgsl likewise.
// The weights and x are read 16 bytes at a time (8 bf16 weights, 4 f32 of
// x), which is what lets a large GEMV keep enough bytes in flight to run at
// memory bandwidth (matmul/gemv.wgsl reads 4 bytes at a time).

// `acc` plus the products of the 8 weights `wv` (elements 8j..8j+8 of a
// row, unpacked with common/bf16.wgsl) with x elements 8j..8j+8.
fn dot8(wv: vec4<u32>, j: u32, acc: vec4<f32>) -> vec4<f32> {
    let w0 = vec4<f32>(bf16_lo(wv.x), bf16_hi(wv.x), bf16_lo(wv.y), bf16_hi(wv.y));
    let w1 = vec4<f32>(bf16_lo(wv.z), bf16_hi(wv.z), bf16_lo(wv.w), bf16_hi(wv.w));
    return fma(w1, x[2u * j + 1u], fma(w0, x[2u * j], acc));
}

// This thread's share of row `row`'s dot product: weight vectors
// lane, lane + stride, … of the row (`stride` threads share the row).
fn row_share(row: u32, lane: u32, stride: u32) -> f32 {
    let k8 = params.k / 8u;
    let base = row * k8;
    var acc = vec4<f32>(0.0);
    // Two independent 16-byte loads per iteration.
    var j = lane;
    for (; j + stride < k8; j += 2u * stride) {
        let w0 = w[base + j];
        let w1 = w[base + j + stride];
        acc = dot8(w0, j, acc);
        acc = dot8(w1, j + stride, acc);
    }
    if (j < k8) {
        acc = dot8(w[base + j], j, acc);
    }
    return (acc.x + acc.y) + (acc.z + acc.w);
}
