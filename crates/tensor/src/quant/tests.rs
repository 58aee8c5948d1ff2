use super::blocks::*;
use super::*;
use crate::testing::rng::Rng;

fn random(rng: &mut Rng, n: usize, scale: f32) -> Vec<f32> {
    (0..n).map(|_| rng.uniform() * scale).collect()
}

#[test]
fn block_sizes_match_the_dtypes() {
    assert_eq!(DType::Q8_0.block_bytes(), size_of::<BlockQ8_0>());
    assert_eq!(DType::Q4_0.block_bytes(), size_of::<BlockQ4_0>());
    assert_eq!(DType::Q4K.block_bytes(), size_of::<BlockQ4K>());
    assert_eq!(DType::Q6K.block_bytes(), size_of::<BlockQ6K>());
    assert_eq!(
        (DType::Q4_0.block_elems(), DType::Q6K.block_elems()),
        (32, 256)
    );
    assert!(DType::Q4K.is_block() && !DType::BF16.is_block());
}

#[test]
fn q4_0_nibbles_hold_elements_j_and_j_plus_16() {
    let mut b = BlockQ4_0 {
        d: half::f16::from_f32(0.5).to_bits(),
        qs: [0; 16],
    };
    b.qs[0] = 0x9F; // element 0: 15 - 8 = 7; element 16: 9 - 8 = 1
    b.qs[15] = 0x08; // element 15: 0; element 31: -8
    let mut y = [0.0; 32];
    dequantize_q4_0(&b, &mut y);
    assert_eq!((y[0], y[16], y[15], y[31]), (3.5, 0.5, 0.0, -4.0));
    assert_eq!(y[1], -4.0); // nibble 0
}

#[test]
fn q8_0_and_q4_0_round_trip_within_half_a_step() {
    let mut rng = Rng::for_case("quant", "1");
    for dtype in [DType::Q8_0, DType::Q4_0] {
        let x = random(&mut rng, 32 * 9, 0.7);
        let bytes = quantize(dtype, &x).unwrap();
        assert_eq!(bytes.len(), dtype.bytes_for(x.len()));
        let y = dequantize_vec(dtype, &bytes).unwrap();
        for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
            let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            let qmax = if dtype == DType::Q8_0 { 127.0 } else { 8.0 };
            let step = amax / qmax;
            for (a, b) in xb.iter().zip(yb) {
                // Half a step, plus the f16 rounding of the scale (2^-11
                // relative) times the largest multiple of it. Q4_0's range
                // is −8..7 steps with the extreme at −8: a value beyond 7.5
                // steps on the other side is clipped, up to a whole step off.
                let clip = if dtype == DType::Q4_0 && a.abs() > 7.5 * step {
                    0.5
                } else {
                    0.0
                };
                assert!(
                    (a - b).abs() <= step * (0.5 + clip + qmax / 2048.0),
                    "{dtype}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn q4k_scales_and_mins_pack_and_unpack() {
    let mut rng = Rng::for_case("quant", "2");
    for _ in 0..50 {
        let sc: [u8; 8] = std::array::from_fn(|_| ((rng.next_u64() as u32) % 64) as u8);
        let m: [u8; 8] = std::array::from_fn(|_| ((rng.next_u64() as u32) % 64) as u8);
        let mut q = [0u8; 12];
        for j in 0..4 {
            q[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
            q[j + 4] = m[j] | ((m[j + 4] >> 4) << 6);
            q[j + 8] = (sc[j + 4] & 0xF) | ((m[j + 4] & 0xF) << 4);
        }
        for j in 0..8 {
            assert_eq!(scale_min_k4(j, &q), (sc[j], m[j]), "sub-block {j}");
        }
    }
}

#[test]
fn q4k_round_trip_error_is_a_fraction_of_each_sub_block_range() {
    let mut rng = Rng::for_case("quant", "3");
    let x = random(&mut rng, 256 * 4, 1.0);
    let y = dequantize_vec(DType::Q4K, &quantize(DType::Q4K, &x).unwrap()).unwrap();
    for (xs, ys) in x.chunks(32).zip(y.chunks(32)) {
        let lo = xs.iter().fold(0.0f32, |a, &v| a.min(v));
        let hi = xs.iter().fold(lo, |a, &v| a.max(v));
        // Half a step of 15 levels, plus the six-bit scale and min roundings
        // (each up to 1/126 of the block's largest): a step's worth at most.
        let err = xs
            .iter()
            .zip(ys)
            .fold(0.0f32, |a, (p, q)| a.max((p - q).abs()));
        assert!(
            err <= (hi - lo) / 15.0 + 0.1,
            "error {err}, range {}",
            hi - lo
        );
    }
    let rms = (x
        .iter()
        .zip(&y)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f32>()
        / x.len() as f32)
        .sqrt();
    assert!(rms < 0.12, "rms {rms}");
}

/// Q6_K's interleaving, packed the way ggml's quantizer writes it: element
/// `l` of each 128-half goes to `ql[l % 64]` (low or high nibble by
/// `l / 64`), its top two bits to `qh[l % 32]` at bit `2 · (l / 32)`.
#[test]
fn q6k_unpacks_what_ggml_packs() {
    let mut rng = Rng::for_case("quant", "4");
    let vals: Vec<u8> = (0..256)
        .map(|_| ((rng.next_u64() as u32) % 64) as u8)
        .collect();
    let mut b = BlockQ6K {
        ql: [0; 128],
        qh: [0; 64],
        scales: std::array::from_fn(|i| i as i8 - 8),
        d: half::f16::from_f32(0.25).to_bits(),
    };
    for half in 0..2 {
        let l0 = &vals[128 * half..];
        let (ql, qh) = (&mut b.ql[64 * half..], &mut b.qh[32 * half..]);
        for l in 0..32 {
            ql[l] = (l0[l] & 0xF) | ((l0[l + 64] & 0xF) << 4);
            ql[l + 32] = (l0[l + 32] & 0xF) | ((l0[l + 96] & 0xF) << 4);
            qh[l] = (l0[l] >> 4)
                | ((l0[l + 32] >> 4) << 2)
                | ((l0[l + 64] >> 4) << 4)
                | ((l0[l + 96] >> 4) << 6);
        }
    }
    let mut y = [0.0; 256];
    dequantize_q6k(&b, &mut y);
    for (i, (&v, &got)) in vals.iter().zip(&y).enumerate() {
        let want = 0.25 * b.scales[i / 16] as f32 * (v as i32 - 32) as f32;
        assert_eq!(got, want, "element {i}");
    }
}

#[test]
fn dequantize_checks_lengths_and_dtypes() {
    assert!(dequantize(DType::Q4_0, &[0u8; 18], &mut [0.0; 31]).is_err());
    assert!(dequantize(DType::Q4_0, &[0u8; 17], &mut [0.0; 32]).is_err());
    assert!(dequantize(DType::I8, &[0u8; 4], &mut [0.0; 4]).is_err());
    assert!(quantize(DType::I8, &[0.0; 256]).is_err());
    assert!(quantize(DType::Q6K, &[0.0; 255]).is_err());
    assert!(quantize(DType::Q8_0, &[0.0; 33]).is_err());
    // Unaligned bytes decode like aligned ones.
    let x: Vec<f32> = (0..64).map(|i| i as f32 / 9.0 - 3.0).collect();
    let q = quantize(DType::Q8_0, &x).unwrap();
    let mut shifted = vec![0u8; q.len() + 1];
    shifted[1..].copy_from_slice(&q);
    assert_eq!(
        dequantize_vec(DType::Q8_0, &shifted[1..]).unwrap(),
        dequantize_vec(DType::Q8_0, &q).unwrap()
    );
}

#[test]
fn q6k_round_trip_within_half_a_step_of_each_sub_block() {
    let mut rng = Rng::for_case("quant", "q6k");
    let mut x = random(&mut rng, 256 * 3, 1.0);
    x[256..272].fill(0.0); // an all-zero sub-block
    x[512..768].fill(0.0); // an all-zero block
    let bytes = quantize(DType::Q6K, &x).unwrap();
    assert_eq!(bytes.len(), DType::Q6K.bytes_for(x.len()));
    let y = dequantize_vec(DType::Q6K, &bytes).unwrap();
    for (blk, (xb, yb)) in x.chunks(256).zip(y.chunks(256)).enumerate() {
        let amax = xb.iter().fold(0.0f32, |a, v| a.max(v.abs()));
        for (xs, ys) in xb.chunks(16).zip(yb.chunks(16)) {
            let m = xs.iter().fold(0.0f32, |a, v| a.max(v.abs()));
            // The sub-block's step m/32, off by the int8 scale's rounding
            // (half of amax/32/127) and the f16 super-scale (2^-11): half
            // a step for in-range values, a whole one for the clipped +32.
            let step = m / 32.0 + amax / 32.0 / 254.0;
            for (a, b) in xs.iter().zip(ys) {
                let bound = step * if *a > 31.5 * m / 32.0 { 1.0 } else { 0.5 };
                assert!(
                    (a - b).abs() <= bound * 1.01 + 1e-7,
                    "block {blk}: {a} vs {b}"
                );
            }
        }
    }
    assert!(y[512..768].iter().all(|&v| v == 0.0));
}
