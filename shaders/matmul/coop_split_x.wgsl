// The first pass of the presplit tensor-core GEMM (matmul_coop_presplit.wgsl,
// kernels/matmul.md, "Cooperative matrices"): x [m, k] f32 into the f16
// scratch `sc` as hi and lo halves (common/split_f16.wgsl), rows padded
// with zeros to MP = m rounded up to BM = FM·CM·SGM and columns to KP = k
// rounded up to BK = 2·CM: hi [MP][KP] at 0, lo at MP·KP. Every fragment
// the GEMM loads is then whole, 16-byte aligned and zero past the problem.
// One thread per padded element, consecutive threads on consecutive
// columns. Preludes, in order: matmul/coop{8,16}.wgsl,
// common/split_f16.wgsl, matmul/io.wgsl.

override WG: u32 = 256u;
override SGM: u32 = 2u;
override FM: u32 = 2u;
override BM: u32 = FM * CM * SGM;
const BK: u32 = 2u * CM;

@group(0) @binding(5) var<storage, read_write> sc: array<f16>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let m = params.m;
    let k = params.k;
    let mp = (m + BM - 1u) / BM * BM;
    let kp = (k + BK - 1u) / BK * BK;
    let i = (wid.y * nwg.x + wid.x) * WG + li;
    if (i >= mp * kp) {
        return;
    }
    let r = i / kp;
    let c = i % kp;
    var v = 0.0;
    if (r < m && c < k) {
        v = x[r * k + c];
    }
    let s = split_f16(v);
    sc[i] = s.x;
    sc[mp * kp + i] = s.y;
}
