// Bidirectional attention for t > 1 on cooperative matrices (tensor cores):
// FlashAttention-2 with both products, q·kᵀ and p·v, on CM × CM × CM f16
// fragments accumulated in f32 (kernels/attention.md, "Cooperative
// matrices"). Preludes, in order: matmul/coop{8,16}.wgsl (CM and the
// fragment types), common/split_f16.wgsl, attention/params.wgsl,
// attention/io.wgsl. The host
// takes it for bidirectional calls only (the vision tower): every row
// sees the same keys 0..kv_len, so p·v over a whole key block reads no v
// row that some row must not see (see "NaN" below).
//
// Precision: every operand is carried as two f16 halves, hi = f16(x) and
// lo = f16(x − hi), and a product a·b as al·bh + ah·bl + ah·bh (the lo·lo
// term is below 2⁻²²·|a·b|): the scores and the output stay within f32's
// tolerance class, as in matmul_coop.wgsl. Scores are in the log2 domain
// (q pre-multiplied by scale·log2 e in f32, p = 2^(s − m)); p ∈ [0, 1] and
// v are split the same way (split_f16). A value f16 cannot carry (|x|
// above 65504) becomes ±inf and NaN a pair that makes its products NaN,
// so what it feeds is non-finite, never silently wrong.
//
// Layout: a workgroup of NS subgroups of SG threads owns BQ = NS·CM
// consecutive query rows of one head; subgroup sid owns rows sid·CM ..
// (sid + 1)·CM. Head rows are padded with zeros to DP = DF·CM. Once: the
// block's q (scaled, split) → qs; the output accumulator os = 0. Then per
// block of BKV = KF·CM keys:
//   1. K and V → ks, vs (split, [key][DP], zeros past kv_len). Barrier.
//   2. Each subgroup: scores S = q·kᵀ for its rows, KF fragments of
//      DF·3 products each → its ss ([row][key], row-major). Barrier.
//   3. Softmax (SIMT): LPR = SG / CM lanes per row, each taking every
//      LPR-th key of the block (and of the row's DP columns below): the
//      row max over keys < kv_len (a select, never a product), m' = max(m,
//      that), α = 2^(m − m'), p = 2^(s − m') (0 past kv_len), l = l·α + Σp
//      (the lanes' partial max and sum combined with subgroupShuffleXor),
//      p split → ps; the row's accumulator in os scaled by α. Barrier.
//   4. Each subgroup: for each of its DF output fragments, load it from
//      os, add p·v (KF·3 products), store it back. (The next block's first
//      barrier orders it before anyone rewrites ks, vs, ps or os.)
// At the end os / l → out (l = 0, only for kv_len = 0: zeros).
//
// NaN: a NaN score (a NaN in q or a visible k row) makes its row's p, l
// and output NaN; a NaN in a visible v row reaches every row's column
// (every row sees every key < kv_len), as the reference says. Rows of k
// and v past kv_len are never read.
//
// Cooperative operations need uniform control flow: every loop bound is
// uniform; only pointers depend on the subgroup. Their pointers' indices
// are lets: naga 30's SPIR-V writer panics ("Expression ... is not
// cached") on an index computed inside the call's argument. Rows stride in f16
// elements SD = DP + 8 and SP = BKV + 8, in f32 elements SS = BKV + 4 and
// SO = DP + 4: multiples of 16 bytes, as cooperative loads require, which
// also spread a fragment's rows over the banks.

// Set through pipeline override constants (wgpu/attention_coop.rs): the
// device's subgroup size, subgroups per workgroup, key fragments per
// block and head-width fragments.
override SG: u32 = 32u;
override NS: u32 = 2u;
override KF: u32 = 2u;
override DF: u32 = 4u;

override WG: u32 = SG * NS;
override BQ: u32 = NS * CM;
override BKV: u32 = KF * CM;
override DP: u32 = DF * CM;
override SD: u32 = DP + 8u;
override SP: u32 = BKV + 8u;
override SS: u32 = BKV + 4u;
override SO: u32 = DP + 4u;
// Lanes per row in the softmax (the host checks SG % CM = 0).
override LPR: u32 = SG / CM;

const LOG2E: f32 = 1.4426950408889634;

// q hi at 0, lo at BQ·SD; k and v hi at 0, lo at BKV·SD; p hi at 0, lo at
// NS·CM·SP (per subgroup: CM rows from sid·CM).
var<workgroup> qs: array<f16, 2u * BQ * SD>;
var<workgroup> ks: array<f16, 2u * BKV * SD>;
var<workgroup> vs: array<f16, 2u * BKV * SD>;
var<workgroup> ps: array<f16, 2u * BQ * SP>;
var<workgroup> ss: array<f32, BQ * SS>;
var<workgroup> os: array<f32, BQ * SO>;

// Stages keys kb0 .. kb0 + BKV of kv head hk, split, into ks and vs.
fn stage_kv(kb0: u32, hk: u32, li: u32) {
    let hd = params.hd;
    let kv_len = params.kv_len;
    let row = params.h_kv * hd;
    let lo = BKV * SD;
    for (var i = li; i < BKV * DP; i += WG) {
        let r = i / DP;
        let c = i % DP;
        let key = kb0 + r;
        var kx = 0.0;
        var vx = 0.0;
        if (key < kv_len && c < hd) {
            let at = key * row + hk * hd + c;
            kx = k[at];
            vx = v[at];
        }
        let ksp = split_f16(kx);
        let vsp = split_f16(vx);
        ks[r * SD + c] = ksp.x;
        ks[lo + r * SD + c] = ksp.y;
        vs[r * SD + c] = vsp.x;
        vs[lo + r * SD + c] = vsp.y;
    }
}

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
    let blocks_q = (t + BQ - 1u) / BQ;
    let tile = wid.y * nwg.x + wid.x;
    if (tile >= blocks_q * h) {
        return;
    }
    // Consecutive workgroups share a head (and its K and V in cache).
    let head = tile / blocks_q;
    let q0 = (tile % blocks_q) * BQ;
    let hk = head / (h / params.h_kv);
    let qscale = params.scale * LOG2E;

    // The block's q, scaled and split; the accumulator zeroed.
    for (var i = li; i < BQ * DP; i += WG) {
        let r = i / DP;
        let c = i % DP;
        var x = 0.0;
        if (q0 + r < t && c < hd) {
            x = q[((q0 + r) * h + head) * hd + c] * qscale;
        }
        let xs = split_f16(x);
        qs[r * SD + c] = xs.x;
        qs[BQ * SD + r * SD + c] = xs.y;
        os[r * SO + c] = 0.0;
    }

    // This lane's softmax row (of the subgroup's) and first column.
    let sr = lane % CM;
    let part = lane / CM;
    let row = sid * CM + sr;
    var m = NEG_BIG;
    var l = 0.0;
    let qa = sid * CM * SD;
    let sa = sid * CM * SS;
    let pa = sid * CM * SP;
    let oa = sid * CM * SO;
    // Offsets of the lo halves.
    let q_lo = BQ * SD;
    let kv_lo = BKV * SD;
    let p_lo = BQ * SP;
    let sd = SD;
    let sp = SP;
    let ss_stride = SS;
    let so = SO;

    let blocks_kv = (kv_len + BKV - 1u) / BKV;
    for (var b = 0u; b < blocks_kv; b++) {
        let kb0 = b * BKV;
        // 1. The previous block's fragment loads are done: stage this one.
        workgroupBarrier();
        stage_kv(kb0, hk, li);
        workgroupBarrier();

        // 2. Scores of the subgroup's rows, one key fragment at a time.
        for (var j = 0u; j < KF; j++) {
            var s = FragC();
            for (var f = 0u; f < DF; f++) {
                let iqh = qa + f * CM;
                let iql = iqh + q_lo;
                let ikh = j * CM * SD + f * CM;
                let ikl = ikh + kv_lo;
                let ah = coopLoadT<FragA>(&qs[iqh], sd);
                let al = coopLoadT<FragA>(&qs[iql], sd);
                let bh = coopLoad<FragB>(&ks[ikh], sd);
                let bl = coopLoad<FragB>(&ks[ikl], sd);
                s = coopMultiplyAdd(al, bh, s);
                s = coopMultiplyAdd(ah, bl, s);
                s = coopMultiplyAdd(ah, bh, s);
            }
            let is = sa + j * CM;
            coopStoreT(s, &ss[is], ss_stride);
        }
        workgroupBarrier();

        // 3. Online softmax of row `row`, this lane's keys part, part + LPR, ...
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
                p = exp2(ss[row * SS + c] - m_new);
            }
            sum += p;
            let psp = split_f16(p);
            ps[row * SP + c] = psp.x;
            ps[BQ * SP + row * SP + c] = psp.y;
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

        // 4. The subgroup's output fragments += p·v.
        for (var f = 0u; f < DF; f++) {
            let io = oa + f * CM;
            var acc = coopLoadT<FragC>(&os[io], so);
            for (var j = 0u; j < KF; j++) {
                let iph = pa + j * CM;
                let ipl = iph + p_lo;
                let ivh = j * CM * SD + f * CM;
                let ivl = ivh + kv_lo;
                let ah = coopLoadT<FragA>(&ps[iph], sp);
                let al = coopLoadT<FragA>(&ps[ipl], sp);
                let bh = coopLoadT<FragB>(&vs[ivh], sd);
                let bl = coopLoadT<FragB>(&vs[ivl], sd);
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
        let inv = select(1.0 / l, 0.0, l == 0.0);
        let base = (qrow * h + head) * hd;
        for (var c = part; c < hd; c += LPR) {
            out[base + c] = os[row * SO + c] * inv;
        }
    }
}
