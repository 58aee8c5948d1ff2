//! Test support for kernels: seeded inputs, the shared edge-shape lists and
//! the one tolerance table. Public so the model crate's tests use the same.

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
    if let Ok(list) = std::env::var("LFM_EXPECT_ISA") {
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let isa = Isa::from_name(name)
                .unwrap_or_else(|| panic!("LFM_EXPECT_ISA names unknown tier {name:?}"));
            assert!(
                available.contains(&isa),
                "LFM_EXPECT_ISA lists {name} but detection found only {available:?}: \
                 that tier's kernels would go untested"
            );
        }
    }
    available
}
