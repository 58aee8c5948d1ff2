//! Benchmark helpers (timing, machine limits) shared by the bench binaries.
