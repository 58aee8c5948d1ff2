// An f32 as two f16 halves, for the tensor-core kernels
// (matmul/matmul_coop.wgsl, attention/attention_coop.wgsl;
// kernels/matmul.md, "Cooperative matrices"). Needs `enable f16` (the
// matmul/coop{8,16}.wgsl prelude comes first).

const F16_MAX: f32 = 65504.0;
// The bits of f32 +inf.
const F32_INF: u32 = 0x7f800000u;

// v = hi + lo to within 2⁻²²·|v| + 2⁻²⁵ where |v| ≤ 65504 (f16's largest),
// with conversions that round to nearest (every device tested; WGSL only
// promises a neighbour, which doubles the bound). hi is v rounded to
// f16's 11 significant bits on the f32 bits (ties away from zero), not
// through f16(v): a compiler may fold f32(f16(v)) back to v (Mesa's
// lavapipe does), which would leave lo = 0. lo = f16(v − hi); below f16's
// normal range (|v| < 2⁻¹⁴) hi rounds again in f16(·) and lo takes up
// that rounding unless the compiler folds it away (then the absolute
// error stays under 1.5·2⁻²⁵).
// Beyond 65504: (±inf, 0). NaN: (+inf, −inf), so that the pair's products
// with any b, hi·b + lo·b, are NaN (inf − inf, or 0 · inf). No f16 NaN is
// produced: WGSL leaves conversions of non-finite values indeterminate
// (f16(+inf) is relied on, and checked by the kernels' tests).
fn split_f16(v: f32) -> vec2<f16> {
    if (abs(v) <= F16_MAX) {
        let r = bitcast<f32>((bitcast<u32>(v) + 0x1000u) & 0xffffe000u);
        let hi = f16(r);
        return vec2<f16>(hi, f16(v - f32(hi)));
    }
    let inf = f16(bitcast<f32>(F32_INF));
    if ((bitcast<u32>(v) & 0x7fffffffu) > F32_INF) {
        return vec2<f16>(inf, -inf);
    }
    return vec2<f16>(select(inf, -inf, v < 0.0), f16(0.0));
}
