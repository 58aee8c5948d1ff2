// The first pass of the tensor-core attention: q (scaled by scale·log2 e),
// k and v into the f16 scratch of attention/coop_layout.wgsl, split into
// hi and lo halves, zero-padded (kernels/attention.md, "Cooperative
// matrices"). Preludes, in order: matmul/coop{8,16}.wgsl,
// common/split_f16.wgsl, attention/params.wgsl, attention/io.wgsl,
// attention/coop_layout.wgsl. One thread per padded element (its hi and
// lo): QN + 2·KN threads over a 2D grid; consecutive threads write
// consecutive halves. Rows of k and v past kv_len are never read.

override WG: u32 = 256u;

const LOG2E: f32 = 1.4426950408889634;

@group(0) @binding(5) var<storage, read_write> sc: array<f16>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let lay = coop_layout();
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    let hd = params.hd;
    if (i < lay.qn) {
        let head = i / (lay.tp * DP);
        let row = (i / DP) % lay.tp;
        let c = i % DP;
        var x = 0.0;
        if (row < params.t && c < hd) {
            x = q[(row * params.h + head) * hd + c] * (params.scale * LOG2E);
        }
        let s = split_f16(x);
        sc[i] = s.x;
        sc[lay.qn + i] = s.y;
        return;
    }
    let j = i - lay.qn;
    if (j >= 2u * lay.kn) {
        return;
    }
    // k below KN, v above.
    let is_v = j >= lay.kn;
    let jj = select(j, j - lay.kn, is_v);
    let hk = jj / (lay.kp * DP);
    let key = (jj / DP) % lay.kp;
    let c = jj % DP;
    var x = 0.0;
    if (key < params.kv_len && c < hd) {
        let at = (key * params.h_kv + hk) * hd + c;
        // (Not a select: it would load both.)
        if (is_v) {
            x = v[at];
        } else {
            x = k[at];
        }
    }
    let s = split_f16(x);
    let base = 2u * lay.qn + select(0u, 2u * lay.kn, is_v);
    sc[base + jj] = s.x;
    sc[base + lay.kn + jj] = s.y;
}
