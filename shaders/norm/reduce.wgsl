// The workgroup reduction of the row normalisations (kernels/rms_norm.md,
// kernels/layer_norm.md; also rope/qkv_norm_rope.wgsl): one workgroup of WG
// threads per row; the threads stride over the row and reduce their
// partial sums in workgroup memory. The uniform: norm/params.wgsl.

// Threads per workgroup (a power of two).
override WG: u32 = 256u;

var<workgroup> partial: array<f32, WG>;

// The sum of every thread's `v` (all threads of the workgroup must call it).
fn workgroup_sum(li: u32, v: f32) -> f32 {
    partial[li] = v;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    let total = partial[0];
    // Nobody may overwrite partial[0] before everyone has read it.
    workgroupBarrier();
    return total;
}
