//! Every fuzz target on its committed seed corpus (`fuzz/corpus/<target>/`)
//! and on deterministic mutations of the seeds (bit flips, interesting
//! bytes, truncations, duplicated and deleted runs, splices of two seeds):
//! a fixed count per target, the same inputs on every run. Stable Rust, in
//! every `cargo test`; `cargo xtask fuzz TARGET` runs libFuzzer for real.
//! The seeds must also reach the parsers' success paths (a corpus of
//! rejected inputs would test only the first check): each target counts
//! how many seeds a reference parse accepts.

use std::path::PathBuf;

use fuzz_targets::TARGETS;

/// Mutated inputs per target.
const MUTATIONS: usize = 3000;

fn corpus(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|p| std::fs::read(p).expect("a seed"))
        .collect()
}

/// SplitMix64: the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut v = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let len = v.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                v[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                v[i] = [0, 0xff, 0x7f, 0x80, b'"', b'{', b'9'][rng.below(7)];
            }
            2 => v.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let (a, n) = (rng.below(len), 1 + rng.below(16));
                let run: Vec<u8> = v[a..(a + n).min(len)].to_vec();
                let at = rng.below(len + 1);
                v.splice(at..at, run);
            }
            4 if len > 0 => {
                let (a, n) = (rng.below(len), 1 + rng.below(16));
                v.drain(a..(a + n).min(len));
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let cut = rng.below(v.len() + 1);
                let from = rng.below(other.len() + 1);
                v.truncate(cut);
                v.extend_from_slice(&other[from..]);
            }
        }
    }
    v
}

#[test]
fn every_target_survives_its_corpus_and_mutations() {
    for (k, &(name, target)) in TARGETS.iter().enumerate() {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "{name}: no seeds");
        for s in &seeds {
            target(s);
        }
        let mut rng = Rng(0x5eed + k as u64);
        for _ in 0..MUTATIONS {
            target(&mutate(&mut rng, &seeds));
        }
    }
}

#[test]
fn seeds_reach_the_success_paths() {
    use model::preprocess::{DecodeLimits, decode_image};
    let ok = |name: &str, accept: &dyn Fn(&[u8]) -> bool| {
        let n = corpus(name).iter().filter(|s| accept(s)).count();
        assert!(n > 0, "{name}: no seed is accepted");
    };
    ok("config", &|s| {
        serde_json::from_slice(s)
            .ok()
            .and_then(|v| model::ModelConfig::from_value(v).ok())
            .is_some()
    });
    ok("gguf", &|s| model::weights::gguf::reader::parse(s).is_ok());
    ok("image", &|s| {
        decode_image(s, "seed", &DecodeLimits::default()).is_ok()
    });
    ok("chat", &|s| {
        serde_json::from_slice::<Vec<model::prompt::ChatMessage>>(s).is_ok()
    });
    ok("request", &|s| server::fuzzing::chat_body(s).is_ok());
    ok("tool_calls", &|s| {
        std::str::from_utf8(s)
            .ok()
            .and_then(|t| runtime::tools::split_calls(t).ok())
            .is_some_and(|(_, calls)| !calls.is_empty())
    });
}
