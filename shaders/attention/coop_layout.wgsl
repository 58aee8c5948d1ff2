// The layout the tensor-core attention's two passes share
// (attention/coop_split.wgsl writes it, attention/attention_coop.wgsl
// reads it; kernels/attention.md, "Cooperative matrices"). Preludes before
// it: matmul/coop{8,16}.wgsl (CM), attention/params.wgsl.
//
// One f16 scratch buffer holds q (pre-scaled by scale·log2 e), k and v,
// each split into hi and lo halves (common/split_f16.wgsl), per head,
// rows padded to whole blocks and head rows to DP = DF·CM with zeros:
//   q hi [h][TP][DP] at 0,           q lo at QN = h·TP·DP,
//   k hi [h_kv][KP][DP] at 2·QN,     k lo at 2·QN + KN (KN = h_kv·KP·DP),
//   v hi at 2·QN + 2·KN,             v lo at 2·QN + 3·KN,
// with TP = t and KP = kv_len rounded up to BQ and BKV. Every fragment a
// kernel loads is then whole, 16-byte aligned and zero where the
// problem ends (DP is a multiple of 8 f16).

// Set through pipeline override constants (wgpu/attention/coop.rs):
// subgroups per workgroup, key fragments per block (1 or 2), head-width
// fragments.
override NS: u32 = 4u;
override KF: u32 = 2u;
override DF: u32 = 4u;

// Query rows per workgroup, keys per block, padded head width.
override BQ: u32 = NS * CM;
override BKV: u32 = KF * CM;
override DP: u32 = DF * CM;

struct CoopLayout {
    tp: u32,
    kp: u32,
    qn: u32,
    kn: u32,
}

fn coop_layout() -> CoopLayout {
    let tp = (params.t + BQ - 1u) / BQ * BQ;
    let kp = (params.kv_len + BKV - 1u) / BKV * BKV;
    return CoopLayout(tp, kp, params.h * tp * DP, params.h_kv * kp * DP);
}
