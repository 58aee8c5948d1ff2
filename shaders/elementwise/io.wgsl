// Shared bindings of the elementwise kernels (kernels/elementwise.md,
// kernels/gelu.md): one thread per element over a 2D grid of workgroups.
// A kernel binds only the arrays it uses (wgpu derives the layout from use).

// Rust mirror: tensor::wgpu::uniforms::ElementwiseParams.
struct ElementwiseParams {
    // Number of elements.
    n: u32,
    pad0: u32,
    pad1: u32,
    pad2: u32,
}

// Threads per workgroup.
override WG: u32 = 256u;

@group(0) @binding(0) var<uniform> params: ElementwiseParams;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

// The element of this thread: workgroups are linearised as wid.y · nwg.x + wid.x.
fn element_index(wid: vec3<u32>, nwg: vec3<u32>, li: u32) -> u32 {
    return (wid.y * nwg.x + wid.x) * WG + li;
}
