//! Compute pipelines, compiled once and cached by `(ShaderId, override
//! constants)`.
//!
//! Each pipeline gets an explicit layout mirroring the one wgpu would derive
//! from the shader (the group-0 bindings its entry point uses, read by naga),
//! except that the uniform at binding 0 takes a *dynamic offset*: one bind
//! group serves every slot of the uniform ring.
//! Compilation runs inside a validation error scope, so a bad shader comes
//! back as [`TensorError::Shader`] instead of a panic. `LFM_DUMP_WGSL=1` logs
//! every final source at `info`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::shaders::ShaderId;
use crate::{Result, TensorError};

/// Most override constants one pipeline takes (tiled attention has six).
pub const MAX_CONSTANTS: usize = 8;

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
    let entries = layout_entries(id, &source)?;
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(id.label()),
        entries: &entries,
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(id.label()),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(id.label()),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(id.label()),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some(id.entry_point()),
        compilation_options: wgpu::PipelineCompilationOptions {
            constants: &constants,
            zero_initialize_workgroup_memory: false,
        },
        cache: None,
    });
    if let Some(e) = pollster::block_on(scope.pop()) {
        return Err(TensorError::Shader {
            shader: id.label(),
            detail: e.to_string(),
        });
    }
    tracing::debug!(shader = id.label(), constants = ?key.constants(), "compiled pipeline");
    Ok(CachedPipeline { pipeline, layout })
}

/// The group-0 layout entries of `id`'s entry point: the bindings it uses
/// (as wgpu's derived layout would list them), storage buffers read-only
/// unless written, and the uniform with a dynamic offset.
fn layout_entries(id: ShaderId, source: &str) -> Result<Vec<wgpu::BindGroupLayoutEntry>> {
    let bad = |detail: String| TensorError::Shader {
        shader: id.label(),
        detail,
    };
    let module = naga::front::wgsl::parse_str(source).map_err(|e| bad(e.emit_to_string(source)))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::empty(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| bad(e.emit_to_string(source)))?;
    let ep = module
        .entry_points
        .iter()
        .position(|e| e.name == id.entry_point())
        .ok_or_else(|| bad(format!("no entry point {}", id.entry_point())))?;
    let uses = info.get_entry_point(ep);
    let mut entries = Vec::new();
    for (handle, var) in module.global_variables.iter() {
        let Some(binding) = &var.binding else {
            continue;
        };
        if binding.group != 0 || uses[handle].is_empty() {
            continue;
        }
        let ty = match var.space {
            naga::AddressSpace::Uniform => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Uniform,
                has_dynamic_offset: true,
                min_binding_size: None,
            },
            naga::AddressSpace::Storage { access } => wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage {
                    read_only: !access.contains(naga::StorageAccess::STORE),
                },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            other => {
                return Err(bad(format!(
                    "binding {} in address space {other:?} (only buffers are supported)",
                    binding.binding
                )));
            }
        };
        entries.push(wgpu::BindGroupLayoutEntry {
            binding: binding.binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty,
            count: None,
        });
    }
    entries.sort_by_key(|e| e.binding);
    Ok(entries)
}
