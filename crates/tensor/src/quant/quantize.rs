//! Quantizers for the block formats (the `--weights q8_0|q4_0|q4_k|q6_k`
//! formats made at load from a safetensors checkpoint). Q8_0 and Q4_0
//! follow ggml's reference quantizers exactly; Q4_K and Q6_K use a one-pass
//! fit per sub-block (ggml searches each sub-block's scale (and min)
//! iteratively, for a somewhat smaller error; not yet measured side by
//! side). GGUF files keep ggml's own blocks, as stored.

use half::f16;

use super::blocks::{BlockQ4_0, BlockQ4K, BlockQ6K, BlockQ8_0, QK, QK_K};

fn f16_bits(v: f32) -> u16 {
    f16::from_f32(v).to_bits()
}

/// ggml's `quantize_row_q8_0_ref`: `d = max|x| / 127`, `q = round(x / d)`.
pub fn quantize_q8_0(x: &[f32]) -> BlockQ8_0 {
    let amax = x[..QK].iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut b = BlockQ8_0 {
        d: f16_bits(d),
        qs: [0; QK],
    };
    for (q, &v) in b.qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
    }
    b
}

/// ggml's `quantize_row_q4_0_ref`: `d = m / −8` with `m` the value of
/// largest magnitude (so it maps to nibble 0), `q = min(15, ⌊x / d + 8.5⌋)`.
pub fn quantize_q4_0(x: &[f32]) -> BlockQ4_0 {
    let max = x[..QK]
        .iter()
        .fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
    let d = max / -8.0;
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let mut b = BlockQ4_0 {
        d: f16_bits(d),
        qs: [0; QK / 2],
    };
    let q = |v: f32| ((v * id + 8.5) as i32).clamp(0, 15) as u8;
    for j in 0..QK / 2 {
        b.qs[j] = q(x[j]) | (q(x[j + QK / 2]) << 4);
    }
    b
}

/// Q4_K by a min/max fit: sub-block `s` gets `min_s = min(0, min x)` and
/// `scale_s = (max x − min_s) / 15`; the eight scales and mins are then
/// quantized to six bits against `d = max scale / 63` and
/// `dmin = max(−min) / 63`, and each weight to the nibble nearest
/// `(x + dmin·m) / (d·sc)`.
pub fn quantize_q4k(x: &[f32]) -> BlockQ4K {
    let x = &x[..QK_K];
    let mut scale = [0.0f32; 8];
    let mut neg_min = [0.0f32; 8];
    for (s, sub) in x.chunks_exact(32).enumerate() {
        let lo = sub.iter().fold(0.0f32, |a, &v| a.min(v));
        let hi = sub.iter().fold(lo, |a, &v| a.max(v));
        scale[s] = (hi - lo) / 15.0;
        neg_min[s] = -lo;
    }
    let max_scale = scale.iter().fold(0.0f32, |a, &v| a.max(v));
    let max_min = neg_min.iter().fold(0.0f32, |a, &v| a.max(v));
    // The f16 super-scales as the kernels will read them.
    let d = f16::from_f32(max_scale / 63.0).to_f32();
    let dmin = f16::from_f32(max_min / 63.0).to_f32();
    let six = |v: f32, by: f32| {
        if by > 0.0 {
            (v / by).round().clamp(0.0, 63.0) as u8
        } else {
            0
        }
    };
    let sc: [u8; 8] = std::array::from_fn(|s| six(scale[s], d));
    let m: [u8; 8] = std::array::from_fn(|s| six(neg_min[s], dmin));
    let mut b = BlockQ4K {
        d: f16_bits(d),
        dmin: f16_bits(dmin),
        scales: [0; 12],
        qs: [0; QK_K / 2],
    };
    for j in 0..4 {
        b.scales[j] = (sc[j] & 63) | ((sc[j + 4] >> 4) << 6);
        b.scales[j + 4] = (m[j] & 63) | ((m[j + 4] >> 4) << 6);
        b.scales[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
    }
    let mut q = [0u8; QK_K];
    for (s, (sub, qs)) in x.chunks_exact(32).zip(q.chunks_exact_mut(32)).enumerate() {
        let step = d * sc[s] as f32;
        let off = dmin * m[s] as f32;
        for (o, &v) in qs.iter_mut().zip(sub) {
            *o = if step > 0.0 {
                ((v + off) / step).round().clamp(0.0, 15.0) as u8
            } else {
                0
            };
        }
    }
    for (pair, qs) in b.qs.chunks_exact_mut(32).enumerate() {
        for (l, o) in qs.iter_mut().enumerate() {
            *o = q[64 * pair + l] | (q[64 * pair + 32 + l] << 4);
        }
    }
    b
}

/// Q6_K by a one-pass fit: sub-block `s` (16 weights) gets the scale
/// `m_s / −32` with `m_s` its value of largest magnitude (which maps to
/// −32 exactly, as Q4_0 does with −8); the 16 scales are quantized to
/// int8 against `d = max |scale| / 127`, and each weight to the six-bit
/// value nearest `x / (d·sc) + 32`.
pub fn quantize_q6k(x: &[f32]) -> BlockQ6K {
    let x = &x[..QK_K];
    let scale: [f32; QK_K / 16] = std::array::from_fn(|s| {
        let m = x[16 * s..16 * s + 16]
            .iter()
            .fold(0.0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        m / -32.0
    });
    let amax = scale.iter().fold(0.0f32, |a, v| a.max(v.abs()));
    let d = f16::from_f32(amax / 127.0).to_f32();
    let sc: [i8; QK_K / 16] = std::array::from_fn(|s| {
        if d > 0.0 {
            (scale[s] / d).round().clamp(-128.0, 127.0) as i8
        } else {
            0
        }
    });
    let mut q = [32u8; QK_K];
    for (s, (sub, qs)) in x.chunks_exact(16).zip(q.chunks_exact_mut(16)).enumerate() {
        let step = d * sc[s] as f32;
        if step != 0.0 {
            for (o, &v) in qs.iter_mut().zip(sub) {
                *o = ((v / step).round() + 32.0).clamp(0.0, 63.0) as u8;
            }
        }
    }
    let mut b = BlockQ6K {
        ql: [0; QK_K / 2],
        qh: [0; QK_K / 4],
        scales: sc,
        d: f16_bits(d),
    };
    // Element l of half h: quarter l / 32, lane l % 32 (`blocks::q6k_value`).
    for (half, q) in q.chunks_exact(128).enumerate() {
        let (ql, qh) = (&mut b.ql[64 * half..], &mut b.qh[32 * half..]);
        for i in 0..32 {
            let [q0, q1, q2, q3] = [q[i], q[i + 32], q[i + 64], q[i + 96]];
            ql[i] = (q0 & 0xF) | ((q2 & 0xF) << 4);
            ql[i + 32] = (q1 & 0xF) | ((q3 & 0xF) << 4);
            qh[i] = (q0 >> 4) | ((q1 >> 4) << 2) | ((q2 >> 4) << 4) | ((q3 >> 4) << 6);
        }
    }
    b
}
