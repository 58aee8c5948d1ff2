//! Deterministic inputs for kernel tests: `seed = hash(test name, case)`,
//! overridable with `LFM_TEST_SEED`.

use half::f16;

use crate::DType;

/// SplitMix64: tiny, fast, and good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded from the test name and case (or `LFM_TEST_SEED`).
    pub fn for_case(test: &str, case: &str) -> Rng {
        if let Some(seed) = super::env::test_seed() {
            return Rng(seed);
        }
        // FNV-1a: stable across Rust versions, unlike DefaultHasher.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in test.bytes().chain([0]).chain(case.bytes()) {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        Rng(h)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    /// `n` values uniform in [-scale, scale).
    pub fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform() * scale).collect()
    }

    /// `blocks` blocks of the block format `dtype` (Q8_0, Q4_0, Q4_K,
    /// Q6_K): random quant bytes, f16 scales in a sane range (outputs of
    /// order one against x of order one).
    pub fn blocks(&mut self, dtype: DType, blocks: usize) -> Vec<u8> {
        let bb = dtype.block_bytes();
        let mut bytes: Vec<u8> = (0..blocks * bb).map(|_| self.next_u64() as u8).collect();
        let mut scale = |s: f32| f16::from_f32(self.uniform() * s).to_bits().to_le_bytes();
        for b in bytes.chunks_exact_mut(bb) {
            match dtype {
                DType::Q8_0 => b[..2].copy_from_slice(&scale(0.01)),
                DType::Q4_0 => b[..2].copy_from_slice(&scale(0.1)),
                DType::Q4K => {
                    b[..2].copy_from_slice(&scale(0.02));
                    b[2..4].copy_from_slice(&scale(0.02));
                }
                DType::Q6K => b[bb - 2..].copy_from_slice(&scale(0.002)),
                other => panic!("{other} is not a block format"),
            }
        }
        bytes
    }
}
