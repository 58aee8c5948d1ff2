// Bidirectional attention for t > 1 on cooperative matrices (tensor cores):
// FlashAttention-2 with both products, q·kᵀ and p·v, on CM × CM × CM f16
// fragments accumulated in f32 (kernels/attention.md, "Cooperative
// matrices"). The second of two passes: attention/coop_split.wgsl has
// written q, k and v, split into f16 halves, to the scratch `sc` (layout:
// attention/coop_layout.wgsl), and the fragments are loaded from there
// directly. Preludes, in order: matmul/coop{8,16}.wgsl (CM and the
// fragment types), common/split_f16.wgsl, attention/params.wgsl,
// attention/io.wgsl, attention/coop_layout.wgsl. The host takes it for bidirectional calls
// only (the vision tower): every row sees the same keys 0..kv_len, so p·v
// over a whole key block reads no v row that some row must not see.
//
// Precision: every operand is carried as two f16 halves (split_f16: hi ≈
// x, lo = f16(x − hi)), and a product a·b as al·bh + ah·bl + ah·bh (the
// lo·lo term is below 2⁻²²·|a·b|): the scores and the output stay within
// f32's tolerance class, as in matmul_coop.wgsl. Scores are in the log2
// domain (q pre-multiplied by scale·log2 e in f32, p = 2^(s − m)); p,
// carried as 2^15·p ∈ [0, 32768], is split the same way. Range: a q (after
// the scaling), k or v value beyond 65504 becomes ±inf and NaN a pair
// whose products are NaN: a bad q makes its row non-finite, a bad v its
// column of every row; a bad k makes a row's score with that key ±inf or
// NaN (NaN where q's halves there have opposite signs, or are 0):
// non-finite rows, except where it is −inf, which gives p = 0 there (the
// reference's p is e^(−|score|)). A row left with no finite score (l = 0)
// is NaN (1/0 = inf, as on IEEE hardware), not zeros.
//
// Layout: a workgroup of NS subgroups of SG threads owns BQ = NS·CM
// consecutive query rows of one head; subgroup sid owns rows sid·CM ..
// (sid + 1)·CM. Once: the output accumulator os = 0. Then per block of
// BKV = KF·CM keys (KF = 1 or 2):
//   1. Each subgroup: scores S = q·kᵀ for its rows, KF fragments of DF·3
//      products each (q and k fragments loaded from the scratch) → its ss
//      ([row][key], row-major). Barrier.
//   2. Softmax (SIMT): LPR = SG / CM lanes per row, each taking every
//      LPR-th key of the block (and of the row's DP columns below): the
//      row max over keys < kv_len (a select, never a product), m' = max(m,
//      that), α = 2^(m − m'), p = 2^(s − m')·2^15 (0 past kv_len; the
//      2^15 keeps small p out of f16's subnormals), l = l·α + Σp
//      (the lanes' partial max and sum combined with subgroupShuffleXor),
//      p split → ps; the row's accumulator in os scaled by α. Barrier.
//   3. Each subgroup: for each of its DF output fragments, load it from
//      os, add p·v (KF·3 products, v fragments from the scratch), store it
//      back. (The next block's barrier orders it before anyone rewrites
//      ss, ps or os.)
// At the end os / l → out (l = 0, only for kv_len = 0: zeros).
//
// NaN: a NaN score (a NaN in q or a visible k row) makes its row's p, l
// and output NaN; a NaN in a visible v row reaches every row's column
// (every row sees every key < kv_len), as the reference says.
//
// Cooperative operations need uniform control flow: every loop bound and
// condition is uniform; only pointers depend on the subgroup. Their
// pointers' indices are lets: naga 30's SPIR-V writer panics ("Expression
// ... is not cached") on an index computed inside the call's argument.
// Row strides in f16 elements DP and SP = BKV + 8, in f32 elements SS =
// BKV + 4 and SO = DP + 4: multiples of 16 bytes, as cooperative loads
// require, which also spread a fragment's rows over the banks.

// The device's subgroup size (wgpu/attention/coop.rs).
override SG: u32 = 32u;

override WG: u32 = SG * NS;
override SP: u32 = BKV + 8u;
override SS: u32 = BKV + 4u;
override SO: u32 = DP + 4u;
// Lanes per row in the softmax (the host checks SG % CM = 0).
override LPR: u32 = SG / CM;

// p is carried as 2^15 · p ∈ [0, 32768] (and l with it, so acc / l is
// unchanged): hi stays an f16 normal down to p = 2⁻²⁹ and each p is off
// by at most 2⁻²⁵ (lo's subnormal spacing) against l ≥ 2^15, where in
// [0, 1] every p below 2⁻²⁵ would be lost to f16's subnormal floor. A product, exact, not exp2(x + 15): WGSL's exp2
// bound grows with |x|.
const P_SCALE: f32 = 32768.0;

@group(0) @binding(5) var<storage, read> sc: array<f16>;

// p hi at 0, lo at BQ·SP; subgroup sid's rows from sid·CM.
var<workgroup> ps: array<f16, 2u * BQ * SP>;
var<workgroup> ss: array<f32, BQ * SS>;
var<workgroup> os: array<f32, BQ * SO>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
    @builtin(subgroup_id) sid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let t = params.t;
    let h = params.h;
    let hd = params.hd;
    let kv_len = params.kv_len;
    let lay = coop_layout();
    let blocks_q = lay.tp / BQ;
    let tile = wid.y * nwg.x + wid.x;
    if (tile >= blocks_q * h) {
        return;
    }
    // Consecutive workgroups share a head (and its k and v in cache).
    let head = tile / blocks_q;
    let q0 = (tile % blocks_q) * BQ;
    let hk = head / (h / params.h_kv);

    for (var i = li; i < BQ * DP; i += WG) {
        os[(i / DP) * SO + i % DP] = 0.0;
    }

    // This lane's softmax row (of the subgroup's) and first column.
    let sr = lane % CM;
    let part = lane / CM;
    let row = sid * CM + sr;
    var m = NEG_BIG;
    var l = 0.0;
    // The subgroup's q rows, and the head's k and v, in the scratch.
    let qa = (head * lay.tp + q0 + sid * CM) * DP;
    let ka = 2u * lay.qn + hk * lay.kp * DP;
    let va = ka + 2u * lay.kn;
    let qlo = lay.qn;
    let kvlo = lay.kn;
    let sa = sid * CM * SS;
    let pa = sid * CM * SP;
    let plo = BQ * SP;
    let oa = sid * CM * SO;
    let dp = DP;
    let sp = SP;
    let ss_stride = SS;
    let so = SO;

    let blocks_kv = lay.kp / BKV;
    for (var b = 0u; b < blocks_kv; b++) {
        let kb0 = b * BKV;
        // 1. Scores of the subgroup's rows: key fragments 0 and (KF = 2) 1.
        var s0 = FragC();
        var s1 = FragC();
        for (var f = 0u; f < DF; f++) {
            let iqh = qa + f * CM;
            let iql = iqh + qlo;
            let ah = coopLoadT<FragA>(&sc[iqh], dp);
            let al = coopLoadT<FragA>(&sc[iql], dp);
            let ikh = ka + kb0 * DP + f * CM;
            let ikl = ikh + kvlo;
            let bh = coopLoad<FragB>(&sc[ikh], dp);
            let bl = coopLoad<FragB>(&sc[ikl], dp);
            s0 = coopMultiplyAdd(al, bh, s0);
            s0 = coopMultiplyAdd(ah, bl, s0);
            s0 = coopMultiplyAdd(ah, bh, s0);
            if (KF > 1u) {
                let ikh1 = ikh + CM * DP;
                let ikl1 = ikh1 + kvlo;
                let bh1 = coopLoad<FragB>(&sc[ikh1], dp);
                let bl1 = coopLoad<FragB>(&sc[ikl1], dp);
                s1 = coopMultiplyAdd(al, bh1, s1);
                s1 = coopMultiplyAdd(ah, bl1, s1);
                s1 = coopMultiplyAdd(ah, bh1, s1);
            }
        }
        // (The previous block's readers of ss, ps and os are done.)
        workgroupBarrier();
        coopStoreT(s0, &ss[sa], ss_stride);
        if (KF > 1u) {
            let is1 = sa + CM;
            coopStoreT(s1, &ss[is1], ss_stride);
        }
        workgroupBarrier();

        // 2. Online softmax of row `row`, this lane's keys part, part + LPR, ...
        let valid = min(BKV, kv_len - kb0);
        var mx = NEG_BIG;
        for (var c = part; c < BKV; c += LPR) {
            if (c < valid) {
                mx = max(mx, ss[row * SS + c]);
            }
        }
        for (var o = CM; o < SG; o <<= 1u) {
            mx = max(mx, subgroupShuffleXor(mx, o));
        }
        let m_new = max(m, mx);
        let alpha = exp2(m - m_new);
        var sum = 0.0;
        for (var c = part; c < BKV; c += LPR) {
            var p = 0.0;
            if (c < valid) {
                p = exp2(ss[row * SS + c] - m_new) * P_SCALE;
            }
            sum += p;
            let psp = split_f16(p);
            ps[row * SP + c] = psp.x;
            ps[plo + row * SP + c] = psp.y;
        }
        for (var o = CM; o < SG; o <<= 1u) {
            sum += subgroupShuffleXor(sum, o);
        }
        l = l * alpha + sum;
        m = m_new;
        for (var c = part; c < DP; c += LPR) {
            os[row * SO + c] *= alpha;
        }
        workgroupBarrier();

        // 3. The subgroup's output fragments += p·v.
        for (var f = 0u; f < DF; f++) {
            let io = oa + f * CM;
            var acc = coopLoadT<FragC>(&os[io], so);
            for (var j = 0u; j < KF; j++) {
                let iph = pa + j * CM;
                let ipl = iph + plo;
                let ivh = va + (kb0 + j * CM) * DP + f * CM;
                let ivl = ivh + kvlo;
                let ah = coopLoadT<FragA>(&ps[iph], sp);
                let al = coopLoadT<FragA>(&ps[ipl], sp);
                let bh = coopLoadT<FragB>(&sc[ivh], dp);
                let bl = coopLoadT<FragB>(&sc[ivl], dp);
                acc = coopMultiplyAdd(al, bh, acc);
                acc = coopMultiplyAdd(ah, bl, acc);
                acc = coopMultiplyAdd(ah, bh, acc);
            }
            coopStoreT(acc, &os[io], so);
        }
    }
    workgroupBarrier();

    // os / l → out for the lane's row (every lane of the row holds l).
    let qrow = q0 + row;
    if (qrow < t) {
        // Zeros where no key is seen; l = 0 otherwise (every score −inf,
        // from a value beyond f16's range) gives 0 · inf = NaN.
        let inv = select(1.0 / l, 0.0, kv_len == 0u);
        let base = (qrow * h + head) * hd;
        for (var c = part; c < hd; c += LPR) {
            out[base + c] = os[row * SO + c] * inv;
        }
    }
}
