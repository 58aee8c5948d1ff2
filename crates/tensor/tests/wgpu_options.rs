//! The wgpu backend's options are its own: two backends in one process
//! differ as their `WgpuOptions` say (nothing is read from the
//! environment), and options out of range are configuration errors before
//! any device is opened. Skips without an adapter unless `LFM_REQUIRE_GPU=1`.
#![cfg(feature = "wgpu")]

use tensor::testing::rng::Rng;
use tensor::wgpu::{WgpuBackend, WgpuOptions, gpu_or_skip, gpu_with_or_skip};
use tensor::{Backend, DType, HostData, Shape, TensorError, quant};

/// `quantize` turns float matmul weights into the block format at
/// `upload_weight` (the CPU's quantize-at-load bytes: decoding them gives
/// back exactly the decoded host quantization), Q8_0 where rows are not
/// whole blocks of the format, the float dtype where not whole 32-blocks;
/// plain `upload` and block data pass through.
#[test]
fn wgpu_quantize_option_quantizes_weights_at_upload() {
    let Some(shared) = gpu_or_skip() else { return };
    for target in [DType::Q8_0, DType::Q4_0, DType::Q4K, DType::Q6K] {
        let opts = WgpuOptions {
            quantize: Some(target),
            ..shared.options().clone()
        };
        let be = gpu_with_or_skip(opts).expect("the adapter opened once already");
        for (k, want) in [(512, target), (96, DType::Q8_0), (48, DType::F32)] {
            let want = if k % target.block_elems() == 0 {
                target
            } else {
                want
            };
            let w = Rng::for_case("wgpu_quantize", &format!("{target} {k}")).vec(3 * k, 1.0);
            let t = be
                .upload_weight(HostData::f32(&w), Shape::from([3, k]))
                .expect("upload_weight");
            assert_eq!(t.dtype(), want, "{target} k={k}");
            let got = be.download_f32(&t).expect("download");
            let exact = match want {
                DType::F32 => w.clone(),
                d => quant::dequantize_vec(d, &quant::quantize_rows(d, &w, k).expect("q"))
                    .expect("decode"),
            };
            assert_eq!(got, exact, "{target} k={k}");
            let plain = be
                .upload(HostData::f32(&w), Shape::from([3, k]))
                .expect("upload");
            assert_eq!(plain.dtype(), DType::F32, "upload keeps the dtype");
        }
    }
}

#[test]
fn wgpu_backends_in_one_process_keep_their_own_options() {
    let Some(shared) = gpu_or_skip() else { return };
    assert_eq!(shared.options(), &tensor::testing::env::wgpu_options());
    let plain = WgpuOptions {
        subgroups: false,
        coop: false,
        coop_presplit: true,
        fused_gemv: false,
        ops_per_submit: 8,
        first_submit: 0,
        ..tensor::testing::env::wgpu_options()
    };
    let other = gpu_with_or_skip(plain.clone()).expect("the adapter opened once already");
    assert_eq!(other.options(), &plain);
    let dev = other.device();
    assert!(
        !dev.features.contains(wgpu::Features::SUBGROUP),
        "{:?}",
        dev.features
    );
    assert_eq!(dev.subgroup_size, None);
    assert_eq!(dev.coop_fragment, None);
    assert!(!dev.coop_attention);
    assert_eq!(tensor::wgpu::matmul::coop::coop_gemm(&other), None);
    // The shared backend keeps the defaults: subgroups and cooperative
    // matrices wherever its adapter has them.
    assert!(shared.options().subgroups && shared.options().coop);
    assert!(!shared.options().coop_presplit && shared.options().fused_gemv);
}

#[test]
fn wgpu_options_out_of_range_are_configuration_errors() {
    for bad in [
        WgpuOptions {
            ops_per_submit: 7,
            ..WgpuOptions::default()
        },
        WgpuOptions {
            first_submit: 5000,
            ..WgpuOptions::default()
        },
        WgpuOptions {
            attn_block: Some((30, 16)),
            ..WgpuOptions::default()
        },
        WgpuOptions {
            attn_rows: Some((32, 4, 10)),
            ..WgpuOptions::default()
        },
        WgpuOptions {
            quantize: Some(tensor::DType::BF16),
            ..WgpuOptions::default()
        },
    ] {
        let e = WgpuBackend::new(bad.clone())
            .err()
            .unwrap_or_else(|| panic!("{bad:?} opened"));
        assert!(
            matches!(
                e,
                TensorError::Gpu {
                    what: "configuration",
                    ..
                }
            ),
            "{bad:?}: {e}"
        );
    }
}

#[test]
fn wgpu_adapter_option_names_the_adapter() {
    let Some(shared) = gpu_or_skip() else { return };
    let e = WgpuBackend::new(WgpuOptions {
        adapter: Some("no adapter has this name".into()),
        ..WgpuOptions::default()
    })
    .err()
    .expect("no such adapter");
    assert!(matches!(e, TensorError::NoAdapter(_)), "{e}");
    assert!(e.to_string().contains(&shared.adapter_info().name), "{e}");
}
