// The pieces the tensor-core GEMM's two kernels share (matmul_coop.wgsl:
// x staged per k-step; matmul_coop_presplit.wgsl: x split once by
// coop_split_x.wgsl and loaded from there): the subgroup grid, w's staging
// and the fragment write-out (kernels/matmul.md, "Cooperative matrices").
// Preludes before it: matmul/coop{8,16}.wgsl, common/split_f16.wgsl,
// common/bf16.wgsl where the weights are bf16, matmul/io.wgsl, and
// weights_bf16.wgsl or weights_f16.wgsl (load_w).

// Set through pipeline override constants (wgpu/matmul/coop.rs CoopGemm): the
// device's subgroup size, the subgroup grid of a workgroup (SGM × SGN) and
// the fragments each subgroup owns (FM × FN, each 1 or 2).
override SG: u32 = 32u;
override SGM: u32 = 2u;
override SGN: u32 = 2u;
override FM: u32 = 2u;
override FN: u32 = 2u;

override WG: u32 = SG * SGM * SGN;
override BM: u32 = FM * CM * SGM;
override BN: u32 = FN * CM * SGN;
const BK: u32 = 2u * CM;
// Staged row stride in f16 elements (a multiple of 8: 16 bytes).
const SA: u32 = BK + 8u;
// Scratch row stride in f32 elements (a multiple of 4: 16 bytes).
const SC: u32 = CM + 4u;

var<workgroup> ws: array<f16, BN * SA>;
var<workgroup> cs: array<f32, SGM * SGN * CM * SC>;

// Stages w's [BN, BK] tile of the k-step at k0 from row n0 (rows past n
// clamped to the last, columns past k zeros).
fn stage_w(n0: u32, k0: u32, li: u32) {
    let n = params.n;
    let k = params.k;
    for (var i = li; i < BN * BK; i += WG) {
        let r = i / BK;
        let c = i % BK;
        let col = k0 + c;
        var v = 0.0;
        if (col < k) {
            v = load_w(min(n0 + r, n - 1u) * k + col);
        }
        // Exact in f16 for bf16 and f16 weights in f16's normal range.
        ws[r * SA + c] = split_f16(v).x;
    }
}

// Writes fragment `c`, whose top-left output is (row0, col0), through the
// subgroup's scratch. Call from uniform control flow (it has barriers).
fn emit(c: FragC, row0: u32, col0: u32, sid: u32, lane: u32, sg: u32) {
    let base = sid * CM * SC;
    let stride = SC;
    coopStoreT(c, &cs[base], stride);
    workgroupBarrier();
    let m = params.m;
    let n = params.n;
    for (var i = lane; i < CM * CM; i += sg) {
        let row = row0 + i / CM;
        let col = col0 + i % CM;
        if (row < m && col < n) {
            y[row * n + col] = cs[base + (i / CM) * SC + i % CM] + bias_at(col);
        }
    }
    workgroupBarrier();
}

// c + (al + ah)·b: both halves of x's fragment times w's, the small
// product first.
fn mma_split(al: FragA, ah: FragA, b: FragB, c: FragC) -> FragC {
    return coopMultiplyAdd(ah, b, coopMultiplyAdd(al, b, c));
}

// Writes the subgroup's FM × FN fragments (c01, c10 and c11 only where
// they exist), the top-left one at output (r0, q0). Call from uniform
// control flow. (Nested conditions, not `&&`: naga's uniformity analysis
// takes a short-circuit for non-uniform control flow.)
fn emit_all(c00: FragC, c01: FragC, c10: FragC, c11: FragC, r0: u32, q0: u32, sid: u32, lane: u32, sg: u32) {
    emit(c00, r0, q0, sid, lane, sg);
    if (FN > 1u) {
        emit(c01, r0, q0 + CM, sid, lane, sg);
    }
    if (FM > 1u) {
        emit(c10, r0 + CM, q0, sid, lane, sg);
        if (FN > 1u) {
            emit(c11, r0 + CM, q0 + CM, sid, lane, sg);
        }
    }
}
