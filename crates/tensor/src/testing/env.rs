//! The test harness's switches, read from the environment: the one place in
//! `tensor` that reads it (the backends take options from their caller).
//! None of these changes what a backend computes; they make the tests
//! stricter, pick the adapter they run on, or replay a seed.

/// `LFM_TEST_SEED=N`: one seed for every case of the kernel tests, instead
/// of the per-case seed (`None` when unset or not a number).
pub fn test_seed() -> Option<u64> {
    std::env::var("LFM_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
}

/// `LFM_EXPECT_ISA=scalar,avx2,...`: the tiers (and `avx512bf16`) the
/// kernel tests must find on this host, as listed (empty when unset).
pub fn expected_isas() -> Vec<String> {
    std::env::var("LFM_EXPECT_ISA")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// `LFM_REQUIRE_GPU=1`: the GPU tests fail instead of skipping where no
/// adapter opens.
pub fn require_gpu() -> bool {
    std::env::var("LFM_REQUIRE_GPU").is_ok_and(|v| v == "1")
}

/// `LFM_REQUIRE_COOP=1`: the tensor-core kernels' tests fail instead of
/// skipping where the adapter has no cooperative matrices.
pub fn require_coop() -> bool {
    std::env::var("LFM_REQUIRE_COOP").is_ok_and(|v| v == "1")
}

/// The options the GPU tests open their backend with: the defaults, on the
/// adapter `LFM_WGPU_ADAPTER` names (as the runtime reads it: a substring
/// of the adapter's name; CI sets `llvmpipe`). The other `LFM_WGPU_*`
/// tuning variables are the runtime's (`runtime::options`): a test that
/// wants another setting builds its backend with it
/// ([`crate::wgpu::gpu_with_or_skip`]).
#[cfg(feature = "wgpu")]
pub fn wgpu_options() -> crate::wgpu::WgpuOptions {
    crate::wgpu::WgpuOptions {
        adapter: std::env::var("LFM_WGPU_ADAPTER")
            .ok()
            .filter(|s| !s.trim().is_empty()),
        ..Default::default()
    }
}
