//! Test support for kernels: seeded inputs, the shared edge-shape lists,
//! the one tolerance table and the harness's environment switches
//! ([`env`](mod@env)). Public so the model crate's tests use the same.

pub mod env;
pub mod rng;
pub mod shapes;
pub mod tolerance;

use crate::cpu::Isa;

/// The CPU tiers the kernel tests must exercise on this host.
///
/// CI sets `LFM_EXPECT_ISA` (e.g. `scalar,avx2,avx512`) from `/proc/cpuinfo`,
/// independently of our detection code; a listed tier that our detection
/// does not report is a failure, so a tier the host advertises can never be
/// silently skipped.
#[track_caller]
pub fn expected_isas_present() -> Vec<Isa> {
    let available = Isa::available();
    for name in env::expected_isas() {
        if name == AVX512BF16 || name == DOTPROD {
            continue; // features, not tiers: see expect_avx512bf16, expect_neon_dotprod
        }
        let isa = Isa::from_name(&name)
            .unwrap_or_else(|| panic!("LFM_EXPECT_ISA names unknown tier {name:?}"));
        assert!(
            available.contains(&isa),
            "LFM_EXPECT_ISA lists {name} but detection found only {available:?}: \
             that tier's kernels would go untested"
        );
    }
    available
}

/// The name `LFM_EXPECT_ISA` lists when the host advertises the Armv8.2
/// dot-product extension (`asimddp`).
const DOTPROD: &str = "dotprod";

/// Whether this host has NEON's dot-product extension (the SDOT bodies of
/// the block formats need it). Panics if `LFM_EXPECT_ISA` lists `dotprod`
/// and detection does not find it, so those bodies cannot go untested.
#[track_caller]
pub fn expect_neon_dotprod() -> bool {
    let found = crate::cpu::dispatch::NeonDot::try_new().is_some();
    let listed = env::expected_isas().iter().any(|n| n == DOTPROD);
    assert!(
        found || !listed,
        "LFM_EXPECT_ISA lists {DOTPROD} but detection does not find it: \
         the SDOT block dot products would go untested"
    );
    found
}

/// The name `LFM_EXPECT_ISA` lists when the host advertises AVX512-BF16.
const AVX512BF16: &str = "avx512bf16";

/// The AVX512-BF16 token, if this host has the feature (the bf16 dot-product
/// weights' kernels need it). Panics if `LFM_EXPECT_ISA` lists `avx512bf16`
/// and detection does not find it, so those kernels cannot go untested.
#[track_caller]
pub fn expect_avx512bf16() -> Option<crate::cpu::dispatch::Avx512Bf16> {
    let tok = crate::cpu::dispatch::Avx512Bf16::try_new();
    let listed = env::expected_isas().iter().any(|n| n == AVX512BF16);
    assert!(
        tok.is_some() || !listed,
        "LFM_EXPECT_ISA lists {AVX512BF16} but detection does not find it: \
         the bf16 dot-product kernels would go untested"
    );
    tok
}
