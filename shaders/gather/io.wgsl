// Shared bindings of the embedding gather (backend.rs `gather_rows`):
// out[i, c] = table[ids[i], c] widened to f32. The table (binding 1) and its
// loader `load_table` come from a table_*.wgsl prelude.

// Rust mirror: tensor::wgpu::uniforms::GatherParams.
struct GatherParams {
    // Row width d.
    d: u32,
    // Output elements: ids · d.
    n: u32,
    pad0: u32,
    pad1: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: GatherParams;
@group(0) @binding(2) var<storage, read> ids: array<u32>;       // [t], each < vocab (checked on the host)
@group(0) @binding(3) var<storage, read_write> out: array<f32>; // [t, d]
