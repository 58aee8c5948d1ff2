//! Static checks of the WGSL sources (STYLE.md §8), no GPU needed:
//! every registered shader parses and validates with naga under the
//! capabilities the device requests; every `.wgsl` file under `shaders/` is
//! registered; every uniform struct matches its Rust mirror byte for byte.
#![cfg(feature = "wgpu")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use tensor::wgpu::device::required_features;
use tensor::wgpu::shaders::{self, ShaderId};
use tensor::wgpu::uniforms;

/// What a device opened on the most capable adapter would be granted: the
/// features we request from an adapter that has them all, and every
/// downlevel flag.
fn richest() -> (wgpu::Features, wgpu::DownlevelFlags) {
    (
        required_features(wgpu::Features::all()),
        wgpu::DownlevelFlags::all(),
    )
}

/// The least a device must have for the backend to use `id`: exactly what
/// the shader declares. Validating with this proves the declaration complete.
fn minimal(id: ShaderId) -> (wgpu::Features, wgpu::DownlevelFlags) {
    (id.required_features(), id.required_downlevel())
}

#[test]
fn wgsl_validate_every_shader() {
    let mut failures = Vec::new();
    for id in ShaderId::ALL {
        // Both the richest device and a bare one (no optional features).
        for (features, downlevel) in [richest(), minimal(id)] {
            if let Err(e) = shaders::validate(id, features, downlevel) {
                failures.push(format!("{id} with {features:?}, {downlevel:?}:\n{e}"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "invalid shaders:\n{}",
        failures.join("\n")
    );
    println!("validated {} shaders", ShaderId::ALL.len());
}

#[test]
fn wgsl_validate_entry_points() {
    for id in ShaderId::ALL {
        let (module, _) = shaders::validate(id, richest().0, richest().1).expect("valid");
        let eps: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(
            eps,
            [id.entry_point()],
            "{id}: exactly one entry point, the registered one"
        );
        assert_eq!(
            module.entry_points[0].stage,
            naga::ShaderStage::Compute,
            "{id}"
        );
    }
}

fn wgsl_files(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            wgsl_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "wgsl") {
            let rel = path.strip_prefix(root).expect("under root");
            out.insert(rel.to_string_lossy().replace('\\', "/"));
        }
    }
}

#[test]
fn wgsl_registry_covers_every_file() {
    let root: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "shaders"]
        .iter()
        .collect();
    let mut on_disk = BTreeSet::new();
    wgsl_files(&root, &root, &mut on_disk);
    let registered: BTreeSet<String> = shaders::registered_files()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let missing: Vec<_> = on_disk.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "WGSL files no ShaderId uses (register them in wgpu/shaders.rs): {missing:?}"
    );
    let gone: Vec<_> = registered.difference(&on_disk).collect();
    assert!(
        gone.is_empty(),
        "registered files missing from shaders/: {gone:?}"
    );
    let labels: BTreeSet<_> = ShaderId::ALL.iter().map(|id| id.label()).collect();
    assert_eq!(labels.len(), ShaderId::ALL.len(), "labels are unique");
}

#[test]
fn wgsl_uniform_layouts_match_rust_mirrors() {
    let mirrors = uniforms::layouts();
    let mut used = BTreeSet::new();
    for id in ShaderId::ALL {
        let (module, _) = shaders::validate(id, richest().0, richest().1).expect("valid");
        for (_, var) in module.global_variables.iter() {
            if var.space != naga::AddressSpace::Uniform {
                continue;
            }
            let ty = &module.types[var.ty];
            let name = ty.name.as_deref().unwrap_or("<anonymous>");
            let naga::TypeInner::Struct { members, span } = &ty.inner else {
                panic!("{id}: uniform {name} should be a struct with a Rust mirror");
            };
            let mirror = mirrors.iter().find(|l| l.name == name).unwrap_or_else(|| {
                panic!("{id}: uniform struct {name} has no mirror in wgpu/uniforms.rs")
            });
            used.insert(name.to_string());
            assert_eq!(*span as usize, mirror.size, "{id}: size of {name}");
            let wgsl: Vec<(String, usize)> = members
                .iter()
                .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
                .collect();
            let rust: Vec<(String, usize)> = mirror
                .fields
                .iter()
                .map(|&(n, o)| (n.to_string(), o))
                .collect();
            assert_eq!(
                wgsl, rust,
                "{id}: fields and offsets of {name} (WGSL vs Rust)"
            );
        }
    }
    for m in &mirrors {
        assert!(
            used.contains(m.name),
            "mirror {} is bound by no shader",
            m.name
        );
    }
    println!("uniform mirrors checked: {used:?}");
}

/// The override constants the host sets exist in the shaders.
#[test]
fn wgsl_matmul_constants_match_host() {
    use tensor::wgpu::attention::coop::AttnCoop;
    use tensor::wgpu::attention::{AttnRows, AttnTiles};
    use tensor::wgpu::matmul::coop::{COOP_GRIDS, CoopGemm};
    use tensor::wgpu::matmul::{GEMM_VARIANTS, GemvKind, gemv_constants};
    for id in ShaderId::ALL {
        let (module, _) = shaders::validate(id, richest().0, richest().1).expect("valid");
        let overrides: BTreeSet<&str> = module
            .overrides
            .iter()
            .filter_map(|(_, o)| o.name.as_deref())
            .collect();
        let set: Vec<&str> = if id.label().starts_with("gemv") {
            let kind = match id {
                ShaderId::GemvBf16X8SgF32
                | ShaderId::GemvSwigluBf16X8SgF32
                | ShaderId::GemvConvBf16X8SgF32 => GemvKind::X8Subgroup,
                ShaderId::GemvBf16X8F32 => GemvKind::X8,
                _ => GemvKind::Words,
            };
            gemv_constants(kind, 64).iter().map(|c| c.0).collect()
        } else if id == ShaderId::AttentionTiledF32F32 {
            let tiles = AttnTiles::new(64, &wgpu::Limits::default()).expect("fits");
            tiles.constants().iter().map(|c| c.0).collect()
        } else if id == ShaderId::AttentionRowsF32F32 {
            let plan = AttnRows::new(64, &wgpu::Limits::default()).expect("fits");
            plan.constants().iter().map(|c| c.0).collect()
        } else if id.label().starts_with("attention_coop") {
            let plan = AttnCoop::with_plan(64, 16, 2, 2).expect("plan");
            if id.label().contains("split") {
                plan.split_constants().iter().map(|c| c.0).collect()
            } else {
                plan.constants(32).iter().map(|c| c.0).collect()
            }
        } else if id.label().contains("split_x") {
            let c = CoopGemm {
                cm: 16,
                grid: COOP_GRIDS[0],
                presplit: true,
            };
            c.split_constants().iter().map(|c| c.0).collect()
        } else if id.label().starts_with("matmul_coop") {
            let c = CoopGemm {
                cm: 16,
                grid: COOP_GRIDS[0],
                presplit: false,
            };
            c.constants(32).iter().map(|c| c.0).collect()
        } else if !id.label().starts_with("matmul") {
            // The other ops (wgpu/ops.rs) set only the workgroup size.
            vec!["WG"]
        } else {
            GEMM_VARIANTS[0].constants().iter().map(|c| c.0).collect()
        };
        for name in set {
            assert!(
                overrides.contains(name),
                "{id}: host sets override {name}, shader has {overrides:?}"
            );
        }
    }
}

/// `id`'s module with the override `constants` applied (naga's
/// `process_overrides`, as the device's pipeline creation does).
fn with_overrides(
    id: ShaderId,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    constants: &[(&'static str, u32)],
) -> (naga::Module, naga::valid::ModuleInfo) {
    let constants: naga::back::PipelineConstants = constants
        .iter()
        .map(|&(name, value)| (name.to_string(), f64::from(value)))
        .collect();
    let (module, info) = naga::back::pipeline_constants::process_overrides(
        module,
        info,
        Some((naga::ShaderStage::Compute, id.entry_point())),
        &constants,
    )
    .unwrap_or_else(|e| panic!("{id} {constants:?}: {e}"));
    (module.into_owned(), info.into_owned())
}

/// The workgroup size and the bytes of workgroup memory of an applied module.
fn workgroup_of(module: &naga::Module) -> ([u32; 3], u32) {
    let mut layouter = naga::proc::Layouter::default();
    layouter.update(module.to_ctx()).expect("layout");
    let bytes = module
        .global_variables
        .iter()
        .filter(|(_, g)| g.space == naga::AddressSpace::WorkGroup)
        .map(|(_, g)| layouter[g.ty].size)
        .sum();
    (module.entry_points[0].workgroup_size, bytes)
}

/// Every GEMM variant, with its override constants applied: the workgroup
/// size is the host's `threads()` and the workgroup memory exactly the
/// host's `workgroup_bytes()` (what `GemmVariant::fits` checks against the
/// device). The variants `gemm_variant` picks fit WebGPU's default limits;
/// every variant fits a desktop GPU's 48 KiB.
#[test]
fn wgsl_matmul_variants_fit_their_limits() {
    use tensor::wgpu::matmul::{GEMM_VARIANTS, gemm_variant};
    let default = wgpu::Limits::default();
    let desktop = wgpu::Limits {
        max_compute_workgroup_storage_size: 48 << 10,
        ..wgpu::Limits::default()
    };
    let picked: Vec<_> = [(2, 64), (64, 1024), (1024, 768), (1024, 3072), (512, 65536)]
        .iter()
        .map(|&(m, n)| gemm_variant(m, n))
        .collect();
    for id in [
        ShaderId::MatmulBf16F32,
        ShaderId::MatmulF16F32,
        ShaderId::MatmulF32F32,
    ] {
        let (module, info) = shaders::validate(id, richest().0, richest().1).expect("valid");
        for v in GEMM_VARIANTS {
            let (module, _) = with_overrides(id, &module, &info, &v.constants());
            let (size, bytes) = workgroup_of(&module);
            assert_eq!(size, [v.threads(), 1, 1], "{id} {v:?}: workgroup size");
            assert_eq!(
                bytes,
                v.workgroup_bytes(),
                "{id} {v:?}: workgroup memory (shader vs host)"
            );
            assert!(v.fits(&desktop), "{id} {v:?}: {bytes} B");
            if picked.contains(&v) {
                assert!(v.fits(&default), "{id} {v:?}: {bytes} B, picked by default");
            }
            println!(
                "{id} {}: {} threads, k-step {}, {bytes} B workgroup memory, fits WebGPU defaults: {}",
                v.name(),
                v.threads(),
                v.bk(),
                v.fits(&default)
            );
        }
    }
}

/// Every tensor-core GEMM grid at both fragment sides, with its override
/// constants applied for 32- and 8-wide subgroups: the workgroup size and
/// memory are the host's `threads()` and `workgroup_bytes()` (what
/// `CoopGemm::fits` checks against the device).
#[test]
fn wgsl_coop_gemm_fits_its_limits() {
    use tensor::wgpu::matmul::coop::{COOP_GRIDS, CoopGemm};
    for (id, cm, presplit) in [
        (ShaderId::MatmulCoop16Bf16F32, 16, false),
        (ShaderId::MatmulCoop16F16F32, 16, false),
        (ShaderId::MatmulCoop8Bf16F32, 8, false),
        (ShaderId::MatmulCoop8F16F32, 8, false),
        (ShaderId::MatmulCoopPresplit16Bf16F32, 16, true),
        (ShaderId::MatmulCoopPresplit16F16F32, 16, true),
        (ShaderId::MatmulCoopPresplit8Bf16F32, 8, true),
        (ShaderId::MatmulCoopPresplit8F16F32, 8, true),
    ] {
        let (module, info) = shaders::validate(id, richest().0, richest().1).expect("valid");
        for grid in COOP_GRIDS {
            for sg in [32, 8] {
                let c = CoopGemm { cm, grid, presplit };
                let (module, _) = with_overrides(id, &module, &info, &c.constants(sg));
                let (size, bytes) = workgroup_of(&module);
                assert_eq!(size, [c.threads(sg), 1, 1], "{id} {c:?} sg {sg}");
                assert_eq!(bytes, c.workgroup_bytes(), "{id} {c:?}: workgroup memory");
            }
        }
    }
    // The presplit variants' first pass: its workgroup, no workgroup memory.
    for (id, cm) in [
        (ShaderId::CoopSplitX16F32F16, 16),
        (ShaderId::CoopSplitX8F32F16, 8),
    ] {
        let (module, info) = shaders::validate(id, richest().0, richest().1).expect("valid");
        for grid in COOP_GRIDS {
            let c = CoopGemm {
                cm,
                grid,
                presplit: true,
            };
            let (module, _) = with_overrides(id, &module, &info, &c.split_constants());
            assert_eq!(workgroup_of(&module), ([256, 1, 1], 0), "{id} {c:?}");
        }
    }
}

/// The tensor-core attention's plans at both fragment sides, with their
/// override constants applied for 32- and 8-wide subgroups (where the
/// fragment fits the subgroup): the workgroup size and memory are the
/// host's `threads()` and `shared_bytes()` (what `AttnCoop::fits` checks).
#[test]
fn wgsl_coop_attention_fits_its_limits() {
    use tensor::wgpu::attention::coop::AttnCoop;
    for (id, split, cm) in [
        (
            ShaderId::AttentionCoop16F32F32,
            ShaderId::AttentionCoopSplit16F32F16,
            16,
        ),
        (
            ShaderId::AttentionCoop8F32F32,
            ShaderId::AttentionCoopSplit8F32F16,
            8,
        ),
    ] {
        let (module, info) = shaders::validate(id, richest().0, richest().1).expect("valid");
        let (split_module, split_info) =
            shaders::validate(split, richest().0, richest().1).expect("valid");
        for hd in [1, 40, 64, 72, 128] {
            for (ns, kf) in AttnCoop::PLANS {
                let p = AttnCoop::with_plan(hd, cm, ns, kf).expect("plan");
                for sg in [32, 8].into_iter().filter(|&sg| sg >= cm) {
                    let (module, _) = with_overrides(id, &module, &info, &p.constants(sg));
                    let (size, bytes) = workgroup_of(&module);
                    assert_eq!(size, [p.threads(sg), 1, 1], "{id} hd {hd} {p:?} sg {sg}");
                    assert_eq!(bytes, p.shared_bytes(), "{id} hd {hd} {p:?}: memory");
                }
                let constants = p.split_constants();
                let (m, _) = with_overrides(split, &split_module, &split_info, &constants);
                let wg = constants.iter().find(|c| c.0 == "WG").expect("WG").1;
                assert_eq!(workgroup_of(&m), ([wg, 1, 1], 0), "{split} {p:?}");
            }
        }
    }
}

/// The tiled attention kernel's tile plans: every head width up to the
/// maximum gets one within WebGPU's default limits, and the model widths
/// get the large blocks (kernels/attention.md).
#[test]
fn wgsl_attention_tiles_fit_default_limits() {
    use tensor::wgpu::attention::{ATTN_MAX_HD, AttnTiles};
    let limits = wgpu::Limits::default();
    for hd in 1..=ATTN_MAX_HD {
        let p = AttnTiles::new(hd, &limits).unwrap_or_else(|| panic!("hd {hd}: no plan"));
        assert!(4 * p.h4 as usize >= hd && p.h4s >= p.h4, "hd {hd}: {p:?}");
        assert!(p.threads() <= limits.max_compute_invocations_per_workgroup);
        assert!(p.shared_bytes() <= u64::from(limits.max_compute_workgroup_storage_size));
        assert!(p.bkv.is_multiple_of(p.rk), "hd {hd}: {p:?}");
    }
    for (hd, bq, bkv, threads) in [(64, 32, 16, 64), (72, 32, 16, 72)] {
        let p = AttnTiles::new(hd, &limits).expect("plan");
        assert_eq!((p.bq(), p.bkv, p.threads()), (bq, bkv, threads), "hd {hd}");
    }
    // With a desktop GPU's 48 KiB, 64-row blocks are taken only where they
    // still give ATTN_MIN_GROUPS workgroups (AttnTiles::for_shape; measured:
    // benches/gpu/README.md).
    let big = wgpu::Limits {
        max_compute_workgroup_storage_size: 48 << 10,
        ..wgpu::Limits::default()
    };
    for (hd, t, h, bq) in [
        (64, 1024, 12, 32), // 450M vision tower: 192 workgroups of 64 rows
        (72, 1024, 16, 64), // 1.6B vision tower: 256
        (64, 512, 16, 32),  // 450M prefill of 512
        (64, 4096, 16, 64), // a long prefill
    ] {
        let p = AttnTiles::for_shape(hd, t, h, &big, None).expect("plan");
        assert_eq!(p.bq(), bq, "hd {hd} t {t} h {h}: {p:?}");
    }
}

/// The rows attention kernel: every plan at every head width it takes, with
/// its override constants applied, has the host's workgroup size and
/// workgroup memory (what `AttnRows::fits` checks); every such width gets a
/// plan within WebGPU's default limits, and the model widths the planned
/// ones (kernels/attention.md).
#[test]
fn wgsl_attention_rows_plans_match_host() {
    use tensor::wgpu::attention::AttnRows;
    let id = ShaderId::AttentionRowsF32F32;
    let default = wgpu::Limits::default();
    let big = wgpu::Limits {
        max_compute_workgroup_storage_size: 48 << 10,
        ..wgpu::Limits::default()
    };
    let (module, info) = shaders::validate(id, richest().0, richest().1).expect("valid");
    for hd in (4..=AttnRows::MAX_HD).step_by(4) {
        let small = AttnRows::new(hd, &default).unwrap_or_else(|| panic!("hd {hd}: no plan"));
        let mut plans = vec![small, AttnRows::new(hd, &big).expect("plan")];
        for (r, s, ks) in [(32, 4, 16), (8, 1, 8), (16, 2, 24)] {
            plans.extend(AttnRows::with_plan(hd, r, s, ks));
        }
        for p in plans {
            let (module, _) = with_overrides(id, &module, &info, &p.constants());
            let (size, bytes) = workgroup_of(&module);
            assert_eq!(size, [p.threads(), 1, 1], "hd {hd} {p:?}: workgroup size");
            assert_eq!(
                u64::from(bytes),
                p.shared_bytes(),
                "hd {hd} {p:?}: workgroup memory"
            );
        }
    }
    for hd in [1, 6, 65, 132, 256] {
        assert_eq!(AttnRows::new(hd, &big), None, "hd {hd}");
    }
    for (hd, limits, plan) in [
        (64, &default, (32, 4, 8)),
        (72, &default, (32, 2, 8)),
        (64, &big, (32, 4, 8)),
        (72, &big, (32, 4, 16)),
    ] {
        let p = AttnRows::new(hd, limits).expect("plan");
        assert_eq!((p.rows, p.splits, p.ks), plan, "hd {hd}: {p:?}");
    }
}

/// Writes naga's SPIR-V of `id` with the override `constants` applied, as
/// wgpu's Vulkan backend asks naga for it on a Vulkan 1.3 device (SPIR-V
/// 1.6, indices restricted, workgroup memory zeroed, loops bounded), twice:
/// with storage-buffer accesses unchecked (a device with
/// robustBufferAccess2, as NVIDIA's) to `{stem}.spv` and restricted to
/// `{stem}_restrict.spv`: naga's writer takes different paths for the
/// bounds checks, and can panic in them. Returns the number of files
/// written.
fn write_spv(
    id: ShaderId,
    module: &naga::Module,
    info: &naga::valid::ModuleInfo,
    constants: &[(&'static str, u32)],
    dir: &std::path::Path,
    stem: &str,
) -> usize {
    use naga::proc::{BoundsCheckPolicies, BoundsCheckPolicy as P};
    let stage = (naga::ShaderStage::Compute, id.entry_point());
    let (module, info) = with_overrides(id, module, info, constants);
    let pipeline = naga::back::spv::PipelineOptions {
        shader_stage: stage.0,
        entry_point: stage.1.into(),
    };
    let mut n = 0;
    for (buffer, suffix) in [(P::Unchecked, ""), (P::Restrict, "_restrict")] {
        let options = naga::back::spv::Options {
            lang_version: (1, 6),
            flags: naga::back::spv::WriterFlags::empty(),
            bounds_check_policies: BoundsCheckPolicies {
                index: P::Restrict,
                buffer,
                image_load: P::Restrict,
                binding_array: P::Unchecked,
            },
            zero_initialize_workgroup_memory:
                naga::back::spv::ZeroInitializeWorkgroupMemoryMode::Native,
            force_loop_bounding: true,
            ..Default::default()
        };
        let words = naga::back::spv::write_vec(&module, &info, &options, Some(&pipeline))
            .unwrap_or_else(|e| panic!("{id} {constants:?}: {e}"));
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        std::fs::write(dir.join(format!("{stem}{suffix}.spv")), bytes).expect("write spv");
        n += 1;
    }
    n
}

/// naga's SPIR-V of the tensor-core kernels on 32-wide subgroups, at both
/// fragment sides: the GEMM on every subgroup grid (bf16 and f16 weights;
/// the presplit variant and its first pass with bf16), the attention on every
/// plan at hd 64 and 72; written to `CARGO_TARGET_TMPDIR/spv/`:
/// `.ci/lavapipe-coop` runs `spirv-val` on it (no adapter in CI runs the
/// 16 × 16 variants an NVIDIA GPU takes).
#[test]
fn wgsl_coop_spirv_is_written() {
    use tensor::wgpu::matmul::coop::{COOP_GRIDS, CoopGemm};
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("spv");
    std::fs::create_dir_all(&dir).expect("spv dir");
    let mut written = 0;
    for (id, split, cm, presplit) in [
        (ShaderId::MatmulCoop16Bf16F32, None, 16, false),
        (ShaderId::MatmulCoop16F16F32, None, 16, false),
        (ShaderId::MatmulCoop8Bf16F32, None, 8, false),
        (ShaderId::MatmulCoop8F16F32, None, 8, false),
        (
            ShaderId::MatmulCoopPresplit16Bf16F32,
            Some(ShaderId::CoopSplitX16F32F16),
            16,
            true,
        ),
        (
            ShaderId::MatmulCoopPresplit8Bf16F32,
            Some(ShaderId::CoopSplitX8F32F16),
            8,
            true,
        ),
    ] {
        let (module, info) = shaders::validate(id, richest().0, richest().1).expect("valid");
        for grid in COOP_GRIDS {
            let c = CoopGemm { cm, grid, presplit };
            let stem = format!("{}_{}", id.label(), c.name());
            written += write_spv(id, &module, &info, &c.constants(32), &dir, &stem);
            if let Some(split) = split {
                let (module, info) =
                    shaders::validate(split, richest().0, richest().1).expect("valid");
                let stem = format!("{}_{}", split.label(), c.name());
                written += write_spv(split, &module, &info, &c.split_constants(), &dir, &stem);
            }
        }
    }
    // The tensor-core attention's two passes, every plan, at the towers'
    // head widths.
    use tensor::wgpu::attention::coop::AttnCoop;
    for cm in [16, 8] {
        for hd in [64, 72] {
            for (ns, kf) in AttnCoop::PLANS {
                let p = AttnCoop::with_plan(hd, cm, ns, kf).expect("plan");
                let (split, attend) = p.shaders();
                for (id, constants) in [(split, p.split_constants()), (attend, p.constants(32))] {
                    let (module, info) =
                        shaders::validate(id, richest().0, richest().1).expect("valid");
                    let stem = format!("{}_hd{hd}_{ns}x{kf}", id.label());
                    written += write_spv(id, &module, &info, &constants, &dir, &stem);
                }
            }
        }
    }
    assert_eq!(
        written,
        2 * (8 * COOP_GRIDS.len() + 2 * 2 * 2 * AttnCoop::PLANS.len())
    );
    println!("{written} SPIR-V modules in {}", dir.display());
}
