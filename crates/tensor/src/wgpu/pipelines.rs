//! Compute pipelines, compiled once and cached by `(ShaderId, override
//! constants)`.
//!
//! Pipelines use the layout wgpu derives from the shader (`layout: None`);
//! bind groups are built against `pipeline.get_bind_group_layout(0)`.
//! Compilation runs inside a validation error scope, so a bad shader comes
//! back as [`TensorError::Shader`] instead of a panic. `LFM_DUMP_WGSL=1` logs
//! every final source at `info`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shaders::ShaderId;
use crate::{Result, TensorError};

/// Most override constants one pipeline takes (the GEMM has three).
pub const MAX_CONSTANTS: usize = 4;

/// Cache key: the shader and its override constants (`name = value`, sorted
/// by name so that equal sets compare equal). A fixed array, so building a
/// key for a lookup allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    pub shader: ShaderId,
    len: u8,
    constants: [(&'static str, u32); MAX_CONSTANTS],
}

impl PipelineKey {
    /// The key of `shader` with `constants` (at most [`MAX_CONSTANTS`]).
    pub fn new(shader: ShaderId, constants: &[(&'static str, u32)]) -> Result<Self> {
        if constants.len() > MAX_CONSTANTS {
            return Err(TensorError::Gpu {
                what: "pipeline key",
                detail: format!(
                    "{shader}: {} override constants, over the {MAX_CONSTANTS} a key holds",
                    constants.len()
                ),
            });
        }
        let mut fixed = [("", 0u32); MAX_CONSTANTS];
        fixed[..constants.len()].copy_from_slice(constants);
        fixed[..constants.len()].sort_unstable();
        Ok(PipelineKey {
            shader,
            // Fits: at most MAX_CONSTANTS.
            len: constants.len() as u8,
            constants: fixed,
        })
    }

    /// The override constants, sorted by name.
    pub fn constants(&self) -> &[(&'static str, u32)] {
        &self.constants[..usize::from(self.len)]
    }
}

/// A compiled pipeline and the layout of its bind group 0.
pub struct CachedPipeline {
    pub pipeline: wgpu::ComputePipeline,
    pub layout: wgpu::BindGroupLayout,
}

/// The cache. Pipelines are shared (`Arc`), so a lookup holds the lock only
/// for the map access and compilation.
#[derive(Default)]
pub struct PipelineCache {
    map: Mutex<HashMap<PipelineKey, Arc<CachedPipeline>>>,
}

impl PipelineCache {
    /// The cached pipeline for `key`, compiled on first use.
    pub fn get(&self, device: &wgpu::Device, key: &PipelineKey) -> Result<Arc<CachedPipeline>> {
        let mut map = self.map.lock().map_err(|_| TensorError::Gpu {
            what: "pipeline cache",
            detail: "lock poisoned".into(),
        })?;
        if let Some(p) = map.get(key) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(compile(device, key)?);
        map.insert(*key, Arc::clone(&p));
        Ok(p)
    }

    /// Number of compiled pipelines.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn compile(device: &wgpu::Device, key: &PipelineKey) -> Result<CachedPipeline> {
    let id = key.shader;
    let source = id.source();
    if std::env::var("LFM_DUMP_WGSL").is_ok_and(|v| v == "1") {
        tracing::info!(shader = id.label(), constants = ?key.constants(), "WGSL source:\n{source}");
    }
    let constants: Vec<(&str, f64)> = key
        .constants()
        .iter()
        .map(|&(k, v)| (k, f64::from(v)))
        .collect();
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(id.label()),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(id.label()),
        layout: None,
        module: &module,
        entry_point: Some(id.entry_point()),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    let layout = pipeline.get_bind_group_layout(0);
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(TensorError::Shader {
            shader: id.label(),
            detail: e.to_string(),
        });
    }
    tracing::debug!(shader = id.label(), constants = ?key.constants(), "compiled pipeline");
    Ok(CachedPipeline { pipeline, layout })
}
