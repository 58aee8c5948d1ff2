//! Adapter and device selection, done once per backend (STYLE.md §1.3),
//! as the backend's [`WgpuOptions`] say.
//!
//! [`WgpuOptions::adapter`] picks the first adapter whose name contains the
//! substring (case-insensitive, e.g. `llvmpipe`); otherwise wgpu's
//! high-performance choice is taken. The adapter is logged at `info`. The
//! device is asked for optional features where the adapter has them
//! (timestamp queries for profiling; subgroups, unless
//! [`WgpuOptions::subgroups`] is off; cooperative matrices with
//! `shader-f16`, for the tensor-core GEMM and attention, where the adapter
//! multiplies 16 × 16 × 16 or 8 × 8 × 8 f16 fragments into f32 and has a
//! fixed subgroup size, unless [`WgpuOptions::coop`] is off; where the
//! device refuses them, one without is opened) and for WebGPU's default
//! limits, except the buffer-size limits, which are raised to the adapter's
//! so that large weight matrices (65536 × 1024 bf16 = 128 MiB) fit in one
//! binding, and the workgroup memory, which larger attention tiles use.

use super::options::WgpuOptions;
use crate::{Result, TensorError};

/// An opened device with the facts kernels size themselves by.
pub struct GpuDevice {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: wgpu::AdapterInfo,
    /// The limits granted to the device (not the adapter's).
    pub limits: wgpu::Limits,
    /// The features granted to the device.
    pub features: wgpu::Features,
    /// The adapter's downlevel capabilities (all set on a WebGPU-compliant adapter).
    pub downlevel: wgpu::DownlevelFlags,
    /// The subgroup size, where subgroups were granted and the adapter's
    /// size is fixed (min = max): the kernels that map rows to subgroups
    /// need it exact. `None`: they take their fallbacks.
    pub subgroup_size: Option<u32>,
    /// The side of the cooperative-matrix fragments the tensor-core kernels
    /// use (16 or 8: f16 × f16 + f32 of that square size), where the
    /// feature was granted. `None`: the GEMM stays on the f32 kernel and
    /// attention on the SIMT ones.
    pub coop_fragment: Option<u32>,
    /// Whether bidirectional attention runs on the cooperative matrices
    /// too (`attention_coop.wgsl`): set with `coop_fragment`, cleared where
    /// its start-up self-check fails.
    pub coop_attention: bool,
    /// The options the device was opened with; the backend reads its
    /// tuning from here.
    pub options: WgpuOptions,
}

impl GpuDevice {
    /// Opens the adapter chosen by [`WgpuOptions::adapter`] or the
    /// high-performance default. Errors with [`TensorError::NoAdapter`]
    /// when there is none, and as [`WgpuOptions::validate`] does on options
    /// out of range (before opening anything).
    pub fn open(options: WgpuOptions) -> Result<GpuDevice> {
        options.validate()?;
        let instance =
            wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let wanted = options.adapter.as_deref().filter(|s| !s.trim().is_empty());
        let adapter = match wanted {
            Some(want) => pick_by_name(&instance, want.trim())?,
            None => pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                ..Default::default()
            }))
            .map_err(|e| TensorError::NoAdapter(format!(": {e}")))?,
        };
        let info = adapter.get_info();
        tracing::info!(
            name = %info.name,
            backend = ?info.backend,
            device_type = ?info.device_type,
            driver = %info.driver,
            driver_info = %info.driver_info,
            vendor = format_args!("{:#06x}", info.vendor),
            device = format_args!("{:#06x}", info.device),
            "wgpu adapter"
        );

        let mut features = required_features(adapter.features());
        if !options.subgroups {
            features.remove(wgpu::Features::SUBGROUP);
        }
        let subgroup_size = (features.contains(wgpu::Features::SUBGROUP)
            && info.subgroup_min_size == info.subgroup_max_size)
            .then_some(info.subgroup_min_size);
        let coop_fragment = coop_fragment(&adapter.cooperative_matrix_properties())
            .filter(|_| subgroup_size.is_some())
            .filter(|_| features.contains(COOP_FEATURES))
            .filter(|_| options.coop);
        if coop_fragment.is_none() {
            // Only the tensor-core kernels need shader-f16.
            features.remove(
                wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16,
            );
        }
        let experimental_features = if coop_fragment.is_some() {
            // SAFETY: wgpu marks its cooperative-matrix support experimental
            // ("may contain UB-containing bugs"). We use it in two kernels,
            // `matmul_coop.wgsl` and `attention_coop.wgsl`, validated by
            // naga, on the configurations the adapter reports, tested
            // against the f64 references wherever an adapter has them and
            // self-checked at start-up; `WgpuOptions::coop` turns it off.
            unsafe { wgpu::ExperimentalFeatures::enabled() }
        } else {
            wgpu::ExperimentalFeatures::disabled()
        };
        let downlevel = adapter.get_downlevel_capabilities().flags;
        let limits = required_limits(&adapter.limits());
        let request = |features, experimental_features| {
            pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
                label: Some("lfm2vl"),
                required_features: features,
                required_limits: limits.clone(),
                memory_hints: wgpu::MemoryHints::Performance,
                experimental_features,
                ..Default::default()
            }))
        };
        let mut coop_fragment = coop_fragment;
        let opened = match request(features, experimental_features) {
            // The experimental feature is the likeliest cause: once more
            // without it (the f32 kernels then run).
            Err(e) if coop_fragment.is_some() => {
                tracing::warn!(error = %e, "device with cooperative matrices refused; opening one without");
                coop_fragment = None;
                features.remove(
                    wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX | wgpu::Features::SHADER_F16,
                );
                request(features, wgpu::ExperimentalFeatures::disabled())
            }
            other => other,
        };
        let (device, queue) = opened.map_err(|e| TensorError::Gpu {
            what: "request_device",
            detail: e.to_string(),
        })?;
        tracing::debug!(
            max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size,
            max_buffer_size = limits.max_buffer_size,
            ?features,
            subgroup_min_size = info.subgroup_min_size,
            subgroup_max_size = info.subgroup_max_size,
            ?coop_fragment,
            "wgpu device"
        );
        Ok(GpuDevice {
            device,
            queue,
            info,
            limits,
            features,
            downlevel,
            subgroup_size,
            coop_fragment,
            coop_attention: coop_fragment.is_some(),
            options,
        })
    }

    /// One line naming the adapter: `name (backend, device type, driver)`.
    pub fn describe(&self) -> String {
        let i = &self.info;
        let driver = if i.driver_info.is_empty() {
            i.driver.clone()
        } else {
            format!("{} {}", i.driver, i.driver_info)
        };
        format!(
            "{} ({:?}, {:?}, {})",
            i.name,
            i.backend,
            i.device_type,
            driver.trim()
        )
    }
}

/// The first adapter whose name contains `want` (case-insensitive).
fn pick_by_name(instance: &wgpu::Instance, want: &str) -> Result<wgpu::Adapter> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
    let needle = want.to_lowercase();
    adapters
        .into_iter()
        .find(|a| a.get_info().name.to_lowercase().contains(&needle))
        .ok_or_else(|| {
            TensorError::NoAdapter(format!(
                " whose name contains {want:?} (adapters: [{}])",
                names.join(", ")
            ))
        })
}

/// The features the tensor-core kernels need together (`matmul_coop.wgsl`,
/// `attention_coop.wgsl`).
pub const COOP_FEATURES: wgpu::Features = wgpu::Features::SUBGROUP
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX);

/// The optional features we ask for, where the adapter has them: timestamp
/// queries (for [`super::WgpuBackend::with_profiling`]; unused otherwise),
/// subgroups (kernels with a subgroup variant use it; each has a fallback),
/// and `shader-f16` with cooperative matrices (the tensor-core GEMM; the
/// device drops both where no fragment configuration suits it, or with
/// [`WgpuOptions::coop`] off). bf16 and f16 weights are unpacked from u32 with
/// core WGSL.
pub fn required_features(adapter: wgpu::Features) -> wgpu::Features {
    adapter
        & (wgpu::Features::TIMESTAMP_QUERY
            | wgpu::Features::SUBGROUP
            | wgpu::Features::SHADER_F16
            | wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX)
}

/// The fragment side the tensor-core kernels run with, among the adapter's
/// cooperative-matrix configurations: 16 where it multiplies 16 × 16 × 16
/// f16 fragments into f32 (NVIDIA), else 8 for 8 × 8 × 8 (Apple, lavapipe).
/// naga writes square fragments only.
pub fn coop_fragment(configs: &[wgpu::CooperativeMatrixProperties]) -> Option<u32> {
    use wgpu::CooperativeScalarType as T;
    [16, 8].into_iter().find(|&side| {
        configs.iter().any(|c| {
            c.m_size == side
                && c.n_size == side
                && c.k_size == side
                && c.ab_type == T::F16
                && c.cr_type == T::F32
        })
    })
}

/// WebGPU's default limits (clamped to what the adapter has), with the
/// buffer-size limits and the workgroup memory raised to the adapter's
/// (kernels size their tiles by the granted workgroup memory, e.g. tiled
/// attention's query blocks).
pub fn required_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    let mut l = wgpu::Limits::default().or_worse_values_from(adapter);
    l.max_storage_buffer_binding_size = adapter.max_storage_buffer_binding_size;
    l.max_buffer_size = adapter.max_buffer_size;
    l.max_compute_workgroup_storage_size = adapter.max_compute_workgroup_storage_size;
    l
}

/// Every adapter wgpu can see, one line each (`name (backend, type, driver)`,
/// plus the cooperative-matrix fragments the tensor-core GEMM would use
/// there), for `lfm2vl info`. Opens no device.
pub fn adapters() -> Vec<String> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
        .iter()
        .map(|a| {
            let i = a.get_info();
            let coop = coop_fragment(&a.cooperative_matrix_properties())
                .filter(|_| a.features().contains(COOP_FEATURES))
                .filter(|_| i.subgroup_min_size == i.subgroup_max_size)
                .map_or(String::new(), |s| {
                    format!("; cooperative matrices {s}x{s}x{s} f16->f32")
                });
            format!(
                "{} ({:?}, {:?}, {} {}{coop})",
                i.name, i.backend, i.device_type, i.driver, i.driver_info
            )
        })
        .collect()
}

/// The name of the first hardware GPU (discrete preferred, then integrated),
/// if any. Software adapters (lavapipe, WARP, SwiftShader) never count:
/// `--backend auto` must not pick one over the CPU backend.
pub fn hardware_gpu() -> Option<String> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let infos: Vec<wgpu::AdapterInfo> =
        pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()))
            .iter()
            .map(|a| a.get_info())
            .collect();
    [
        wgpu::DeviceType::DiscreteGpu,
        wgpu::DeviceType::IntegratedGpu,
    ]
    .into_iter()
    .find_map(|t| {
        infos
            .iter()
            .find(|i| i.device_type == t)
            .map(|i| i.name.clone())
    })
}
