//! Compute pipelines, compiled once and cached by `(ShaderId, override
//! constants)`.
//!
//! Each pipeline gets an explicit layout mirroring the one wgpu would derive
//! from the shader (the group-0 bindings its entry point uses, read by naga),
//! except that the uniform at binding 0 takes a *dynamic offset*: one bind
//! group serves every slot of the uniform ring.
//! Compilation runs inside a validation error scope, so a bad shader comes
//! back as [`TensorError::Shader`] instead of a panic. With
//! [`super::WgpuOptions::dump_wgsl`] every final source is logged at `info`.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

use super::shaders::ShaderId;
use crate::{Result, TensorError};

/// Most override constants one pipeline takes (tiled attention has six).
pub const MAX_CONSTANTS: usize = 8;

/// Cache key: the shader and its override constants (`name = value`, in the
/// caller's order). A fixed array, so building a key for a lookup allocates
/// nothing. Every lookup of every dispatch builds, hashes and compares one
/// (twice: pipeline and bind-group caches), so names are compared and hashed
/// by identity (address and length of the `&'static str`), not by content:
/// the same constants in another order, or the same name from another
/// literal, only make a second, identical pipeline, never a wrong one (the
/// pipeline gets its constants by name).
#[derive(Clone, Copy, Debug)]
pub struct PipelineKey {
    pub shader: ShaderId,
    len: u8,
    constants: [(&'static str, u32); MAX_CONSTANTS],
}

impl PipelineKey {
    /// The names' identities and the values, for `Eq` and `Hash`.
    fn parts(&self) -> impl Iterator<Item = (usize, usize, u32)> + '_ {
        self.constants()
            .iter()
            .map(|&(name, value)| (name.as_ptr() as usize, name.len(), value))
    }
}

impl PartialEq for PipelineKey {
    fn eq(&self, other: &Self) -> bool {
        self.shader == other.shader && self.len == other.len && self.parts().eq(other.parts())
    }
}

impl Eq for PipelineKey {}

impl Hash for PipelineKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.shader.hash(state);
        self.len.hash(state);
        for (ptr, len, value) in self.parts() {
            state.write_usize(ptr);
            state.write_usize(len);
            state.write_u32(value);
        }
    }
}

/// A fast hasher for the caches' keys, which are the program's own (shader
/// ids, constants, buffer handles; no untrusted input): the multiply-rotate
/// mix of rustc's `FxHasher`, a few cycles per word where std's SipHash
/// spends tens.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl KeyHasher {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.mix(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.mix(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.mix(v);
    }

    fn write_usize(&mut self, v: usize) {
        self.mix(v as u64);
    }
}

/// `HashMap` with [`KeyHasher`].
pub type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

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
        Ok(PipelineKey {
            shader,
            // Fits: at most MAX_CONSTANTS.
            len: constants.len() as u8,
            constants: fixed,
        })
    }

    /// The override constants.
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
    map: Mutex<KeyMap<PipelineKey, Arc<CachedPipeline>>>,
    /// Log each final WGSL source when it is compiled.
    dump_wgsl: bool,
}

impl PipelineCache {
    /// An empty cache; `dump_wgsl` logs each final WGSL source at `info`.
    pub fn new(dump_wgsl: bool) -> Self {
        PipelineCache {
            map: Mutex::default(),
            dump_wgsl,
        }
    }

    /// The cached pipeline for `key`, compiled on first use.
    pub fn get(&self, device: &wgpu::Device, key: &PipelineKey) -> Result<Arc<CachedPipeline>> {
        let mut map = self.map.lock().map_err(|_| TensorError::Gpu {
            what: "pipeline cache",
            detail: "lock poisoned".into(),
        })?;
        if let Some(p) = map.get(key) {
            return Ok(Arc::clone(p));
        }
        let p = Arc::new(compile(device, key, self.dump_wgsl)?);
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

fn compile(device: &wgpu::Device, key: &PipelineKey, dump_wgsl: bool) -> Result<CachedPipeline> {
    let id = key.shader;
    let source = id.source();
    if dump_wgsl {
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::BuildHasher;

    fn hash(k: &PipelineKey) -> u64 {
        BuildHasherDefault::<KeyHasher>::default().hash_one(k)
    }

    #[test]
    fn pipeline_keys_compare_and_hash_by_shader_names_and_values() {
        const WG: &str = "WG";
        const TPR: &str = "TPR";
        let key = |s, c: &[(&'static str, u32)]| PipelineKey::new(s, c).expect("key");
        let a = key(ShaderId::GemvBf16F32, &[(WG, 256), (TPR, 64)]);
        assert_eq!(a, key(ShaderId::GemvBf16F32, &[(WG, 256), (TPR, 64)]));
        assert_eq!(
            hash(&a),
            hash(&key(ShaderId::GemvBf16F32, &[(WG, 256), (TPR, 64)]))
        );
        for other in [
            key(ShaderId::GemvF16F32, &[(WG, 256), (TPR, 64)]),
            key(ShaderId::GemvBf16F32, &[(WG, 256), (TPR, 32)]),
            key(ShaderId::GemvBf16F32, &[(WG, 256)]),
            key(ShaderId::GemvBf16F32, &[(TPR, 256), (WG, 64)]),
        ] {
            assert_ne!(a, other, "{other:?}");
            assert_ne!(hash(&a), hash(&other), "{other:?}");
        }
        assert_eq!(a.constants(), [(WG, 256), (TPR, 64)]);
        let too_many = [(WG, 1); MAX_CONSTANTS + 1];
        assert!(PipelineKey::new(ShaderId::GemvBf16F32, &too_many).is_err());
    }

    #[test]
    fn key_hasher_tells_byte_strings_apart() {
        let h = |b: &[u8]| {
            let mut s = KeyHasher::default();
            s.write(b);
            s.finish()
        };
        let cases: [&[u8]; 6] = [b"", b"a", b"a\0", b"ab", b"abcdefgh", b"abcdefgh\0"];
        for (i, x) in cases.iter().enumerate() {
            for y in &cases[i + 1..] {
                assert_ne!(h(x), h(y), "{x:?} vs {y:?}");
            }
        }
    }
}
