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
    return share_sum(acc);
}

// Horizontal sum of a share's accumulator, in row_share's order.
fn share_sum(acc: vec4<f32>) -> f32 {
    return (acc.x + acc.y) + (acc.z + acc.w);
}

// The shares of rows r.x and r.y at once, for the fused kernels: each row
// accumulates in row_share's order (the same values), with the two rows'
// loads interleaved so that a subgroup keeps twice the bytes in flight.
fn row_share2(r: vec2<u32>, lane: u32, stride: u32) -> vec2<f32> {
    let k8 = params.k / 8u;
    let b = r * k8;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var j = lane;
    for (; j + stride < k8; j += 2u * stride) {
        let w00 = w[b.x + j];
        let w01 = w[b.x + j + stride];
        let w10 = w[b.y + j];
        let w11 = w[b.y + j + stride];
        a0 = dot8(w01, j + stride, dot8(w00, j, a0));
        a1 = dot8(w11, j + stride, dot8(w10, j, a1));
    }
    if (j < k8) {
        a0 = dot8(w[b.x + j], j, a0);
        a1 = dot8(w[b.y + j], j, a1);
    }
    return vec2<f32>(share_sum(a0), share_sum(a1));
}

// As row_share2 for three rows.
fn row_share3(r: vec3<u32>, lane: u32, stride: u32) -> vec3<f32> {
    let k8 = params.k / 8u;
    let b = r * k8;
    var a0 = vec4<f32>(0.0);
    var a1 = vec4<f32>(0.0);
    var a2 = vec4<f32>(0.0);
    var j = lane;
    for (; j + stride < k8; j += 2u * stride) {
        let w00 = w[b.x + j];
        let w01 = w[b.x + j + stride];
        let w10 = w[b.y + j];
        let w11 = w[b.y + j + stride];
        let w20 = w[b.z + j];
        let w21 = w[b.z + j + stride];
        a0 = dot8(w01, j + stride, dot8(w00, j, a0));
        a1 = dot8(w11, j + stride, dot8(w10, j, a1));
        a2 = dot8(w21, j + stride, dot8(w20, j, a2));
    }
    if (j < k8) {
        a0 = dot8(w[b.x + j], j, a0);
        a1 = dot8(w[b.y + j], j, a1);
        a2 = dot8(w[b.z + j], j, a2);
    }
    return vec3<f32>(share_sum(a0), share_sum(a1), share_sum(a2));
}
