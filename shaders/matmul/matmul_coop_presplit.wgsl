// The presplit tensor-core GEMM: y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])
// as matmul_coop.wgsl (same grid, precision, edges and write-out), except
// that x was split into f16 halves once, by coop_split_x.wgsl, into the
// scratch `sc` ([MP][KP] hi, then lo; zero-padded), and each subgroup
// loads its A fragments from there directly: only w is staged per k-step
// (one barrier pair), and x is split once per call instead of once per
// n-tile. Preludes, in order: matmul/coop{8,16}.wgsl,
// common/split_f16.wgsl, common/bf16.wgsl where the weights are bf16,
// matmul/io.wgsl, weights_bf16.wgsl or weights_f16.wgsl, and
// matmul/coop_gemm.wgsl. Cooperative operations need uniform control
// flow: every loop bound is uniform and only the pointers depend on the
// subgroup; pointer indices are lets (naga 30's SPIR-V writer panics on an
// index computed inside the call).

@group(0) @binding(5) var<storage, read> sc: array<f16>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) sg: u32,
) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let tiles_n = (n + BN - 1u) / BN;
    let tile = wid.y * nwg.x + wid.x;
    if (tile >= tiles_n * ((m + BM - 1u) / BM)) {
        return;
    }
    let m0 = (tile / tiles_n) * BM;
    let n0 = (tile % tiles_n) * BN;
    // The subgroup's FM × FN fragments start at row fr and column fc of the
    // tile (fragments 01, 10 and 11 exist where FN, FM or both are 2: the
    // conditions are on pipeline constants, uniform).
    let fr = (sid / SGN) * FM * CM;
    let fc = (sid % SGN) * FN * CM;
    let sa = SA;
    // x's halves in the scratch: [MP][KP] rows, the tile's rows from m0.
    let kp = (k + BK - 1u) / BK * BK;
    let lo = (m + BM - 1u) / BM * BM * kp;
    let xa = (m0 + fr) * kp;

    var c00 = FragC();
    var c01 = FragC();
    var c10 = FragC();
    var c11 = FragC();
    let steps = (k + BK - 1u) / BK;
    for (var s = 0u; s < steps; s++) {
        // The previous step's fragment loads are done: stage this step's w.
        workgroupBarrier();
        stage_w(n0, s * BK, li);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += CM) {
            let ih0 = xa + s * BK + kk;
            let ih1 = ih0 + CM * kp;
            let il0 = ih0 + lo;
            let il1 = ih1 + lo;
            let ib0 = fc * SA + kk;
            let ib1 = ib0 + CM * SA;
            let ah0 = coopLoadT<FragA>(&sc[ih0], kp);
            let al0 = coopLoadT<FragA>(&sc[il0], kp);
            // The second fragment row and column exist only where FM or
            // FN is 2 (loading them otherwise would read past the tile).
            var ah1 = FragA();
            var al1 = FragA();
            if (FM > 1u) {
                ah1 = coopLoadT<FragA>(&sc[ih1], kp);
                al1 = coopLoadT<FragA>(&sc[il1], kp);
            }
            let b0 = coopLoad<FragB>(&ws[ib0], sa);
            var b1 = FragB();
            if (FN > 1u) {
                b1 = coopLoad<FragB>(&ws[ib1], sa);
            }
            c00 = mma_split(al0, ah0, b0, c00);
            if (FN > 1u) {
                c01 = mma_split(al0, ah0, b1, c01);
            }
            if (FM > 1u) {
                c10 = mma_split(al1, ah1, b0, c10);
                if (FN > 1u) {
                    c11 = mma_split(al1, ah1, b1, c11);
                }
            }
        }
    }

    emit_all(c00, c01, c10, c11, m0 + fr, n0 + fc, sid, lane, sg);
}
