// Cooperative-matrix GEMM: y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]) on the
// adapter's matrix units (tensor cores), f32 accumulation
// (kernels/matmul.md, "Cooperative matrices"). Preludes, in order:
// matmul/coop{8,16}.wgsl (CM and the fragment types), common/split_f16.wgsl,
// common/bf16.wgsl where the weights are bf16, matmul/io.wgsl,
// weights_bf16.wgsl or weights_f16.wgsl (load_w), and matmul/coop_gemm.wgsl
// (the grid, w's staging, the write-out).
//
// Precision: the fragments multiply f16 values. The weights (bf16 or f16)
// are narrowed to f16, exactly for |w| in [2⁻¹⁴, 65504] (a bf16 significand
// has 8 bits, an f16 one 11) and to within 2⁻²⁵ absolute below that. x is
// f32: it is split into hi ≈ x in f16 and lo = f16(x − hi) (split_f16) and
// both halves are multiplied, which carries x to within 2⁻²²·|x| + 2⁻²⁵
// (about f32's own rounding of a long sum). Range: a value f16 cannot carry
// (|x| or |w| above 65504, f16's largest, or NaN) becomes ±inf (NaN x: a
// pair whose products are NaN), so the outputs it feeds are non-finite
// instead of silently wrong; kernels/matmul.md says why the model's matmul
// inputs stay in range.
//
// Layout: SGM × SGN subgroups of SG threads; each owns an FM × FN block
// (1 or 2 each) of CM × CM fragments, so a workgroup computes a BM × BN
// tile (BM = FM·CM·SGM, BN = FN·CM·SGN). Each k-step of BK = 2·CM stages, in workgroup memory,
// x's hi and lo halves row-major ([BM, BK], row stride SA) and w's tile as
// [BN, BK] (stride SA), which is the k × n fragment B column-major. Two
// barriers per step. SA = BK + 8 keeps every fragment row 16-byte aligned
// (as cooperative loads require) and spreads a fragment's rows over the
// banks. Each thread stages elements li, li + WG, ... of each tile, so a
// subgroup reads consecutive k of one row.
//
// Edges: rows of x past m and of w past n are clamped to the last row (they
// only feed outputs that are never stored); columns past k stage zeros in
// both. The result leaves through a CM × CM f32 scratch per subgroup, one
// fragment at a time, written by the subgroup's threads with the bias and
// the bounds checks (coalesced along a row).
//
// Tiles are numbered row-major over (m tiles, n tiles) and spread over a 2D
// grid of workgroups (the host keeps each dimension ≤ 65535); surplus
// workgroups of the last grid row exit at once. Cooperative operations need
// uniform control flow: every loop bound is uniform and only the pointers
// depend on the subgroup.

var<workgroup> xh: array<f16, BM * SA>;
var<workgroup> xl: array<f16, BM * SA>;

// Stages x's [BM, BK] tile of the k-step at k0 from row m0 as hi and lo
// halves (rows past m clamped to the last, columns past k zeros).
fn stage_x(m0: u32, k0: u32, li: u32) {
    let m = params.m;
    let k = params.k;
    for (var i = li; i < BM * BK; i += WG) {
        let r = i / BK;
        let c = i % BK;
        let col = k0 + c;
        var v = 0.0;
        if (col < k) {
            v = x[min(m0 + r, m - 1u) * k + col];
        }
        let xs = split_f16(v);
        xh[r * SA + c] = xs.x;
        xl[r * SA + c] = xs.y;
    }
}

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

    var c00 = FragC();
    var c01 = FragC();
    var c10 = FragC();
    var c11 = FragC();
    let steps = (k + BK - 1u) / BK;
    for (var s = 0u; s < steps; s++) {
        // The previous step's fragment loads are done: stage this step.
        workgroupBarrier();
        stage_x(m0, s * BK, li);
        stage_w(n0, s * BK, li);
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk += CM) {
            let ia0 = fr * SA + kk;
            let ia1 = ia0 + CM * SA;
            let ib0 = fc * SA + kk;
            let ib1 = ib0 + CM * SA;
            let ah0 = coopLoadT<FragA>(&xh[ia0], sa);
            let al0 = coopLoadT<FragA>(&xl[ia0], sa);
            // The second fragment row and column exist only where FM or
            // FN is 2 (loading them otherwise would read past the tile).
            var ah1 = FragA();
            var al1 = FragA();
            if (FM > 1u) {
                ah1 = coopLoadT<FragA>(&xh[ia1], sa);
                al1 = coopLoadT<FragA>(&xl[ia1], sa);
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
