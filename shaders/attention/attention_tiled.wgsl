// Tiled (flash-attention style) multi-head attention with grouped KV heads
// for t > 1: prefill and the vision tower (kernels/attention.md; the host
// takes decode.wgsl or attention.wgsl for decode). Preludes:
// attention/params.wgsl, attention/io.wgsl.
//
// A workgroup owns a block of BQ = 4·QG query rows of one head and walks
// the keys its rows see in blocks of BKV, staging each K block and then
// each V block in workgroup memory (f32); scores exist only as one
// BQ × BKV tile, never t × kv_len. Per key block:
//   1. K block → kvs (zeros past kv_len and past hd). Barrier.
//   2. Scores: tile (qt, kt) = the 4 rows qt + QG·a × the RK keys
//      kt + KG·b, as vec4 FMA chains over the head's vec4s, q and k read
//      from workgroup memory; scale · q·k → ss. Barrier.
//   3. V block → kvs (by threads VS.., a separate warp where there are
//      enough), while thread li < BQ updates row li's running max m and
//      sum l over the row's visible keys: corr = e^(m_old − m_new) → cs,
//      p = e^(s − m_new) → ss in place. Barrier.
//   4. P·V: thread (qg, dg) keeps rows qg + QG·a (a < 4) × head vec4s
//      dg + NDG·i (i < DV) in registers (one Acc per row): acc = acc·corr +
//      Σ p·v over the keys its rows see. Barrier.
// Finally out = acc / l. A row's invisible keys (causal) never touch its
// accumulators, so a NaN in a v row it cannot see does not reach it.
//
// Layout for bank-conflict-free vec4 reads: rows of a tile are interleaved
// across groups (group qt owns rows qt, qt + QG, …, not 4·qt … 4·qt + 3),
// so a warp's reads of "row a" hit consecutive rows, and staged rows are
// H4S vec4s apart (H4S = H4 + 1 when H4 is even and the memory allows).
// ss holds one vec4 per (key, query group): lane a is row qg + QG·a, so the
// P·V phase reads its 4 probabilities with one load.
//
// Per-thread state is vec4s and structs of vec4s, indexed only by
// constants (no private arrays); branches on DV and RK fold away, as they
// are pipeline constants. Workgroup memory: 16·((BQ + BKV)·H4S + BKV·QG +
// QG) bytes (within the device's limit; the host picks the tiles).

// Query groups: BQ = 4·QG rows per workgroup.
override QG: u32 = 8u;
// Keys per block.
override BKV: u32 = 16u;
// vec4s per head row, ceil(hd / 4), and the stride of staged rows (≥ H4).
override H4: u32 = 16u;
override H4S: u32 = 17u;
// Output vec4s per thread per row (1 to 4) in the P·V phase.
override DV: u32 = 2u;
// Keys per score tile (1 or 2).
override RK: u32 = 2u;

override BQ: u32 = 4u * QG;
// Threads per query group in the P·V phase; threads per workgroup (at
// least one per row for the row statistics: only hd ≤ 12 needs the extra
// threads, idle in the P·V phase).
override NDG: u32 = (H4 + DV - 1u) / DV;
override WG: u32 = max(QG * NDG, BQ);
// Key groups of the score phase.
override KG: u32 = BKV / RK;
// The first thread that stages V: BQ when the threads past the row
// statistics fill at least a warp (they load V while the first BQ threads
// update the row statistics), else 0 (every thread stages).
override VS: u32 = select(0u, BQ, WG >= BQ + 32u);

var<workgroup> qs: array<vec4<f32>, BQ * H4S>;    // [BQ rows][H4S]
var<workgroup> kvs: array<vec4<f32>, BKV * H4S>;  // [BKV keys][H4S]: K, then V
var<workgroup> ss: array<vec4<f32>, BKV * QG>;    // [BKV keys][QG]: scores, then p
var<workgroup> cs: array<vec4<f32>, QG>;          // [QG]: corr, at the end 1 / l

// One row's output accumulators: head vec4s dg + NDG·i in c_i (c_i unused
// for i ≥ DV).
struct Acc {
    c0: vec4<f32>,
    c1: vec4<f32>,
    c2: vec4<f32>,
    c3: vec4<f32>,
}

fn acc_zero() -> Acc {
    let z = vec4<f32>(0.0);
    return Acc(z, z, z, z);
}

// x + p·y.
fn acc_fma(x: Acc, p: f32, y: Acc) -> Acc {
    let pp = vec4<f32>(p);
    var r = x;
    r.c0 = fma(pp, y.c0, x.c0);
    if (DV > 1u) {
        r.c1 = fma(pp, y.c1, x.c1);
    }
    if (DV > 2u) {
        r.c2 = fma(pp, y.c2, x.c2);
    }
    if (DV > 3u) {
        r.c3 = fma(pp, y.c3, x.c3);
    }
    return r;
}

fn acc_scale(x: Acc, s: f32) -> Acc {
    var r = x;
    r.c0 = x.c0 * s;
    if (DV > 1u) {
        r.c1 = x.c1 * s;
    }
    if (DV > 2u) {
        r.c2 = x.c2 * s;
    }
    if (DV > 3u) {
        r.c3 = x.c3 * s;
    }
    return r;
}

// The staged V row at kvs[base..], this thread's vec4s o.
fn v_row(base: u32, o: vec4<u32>) -> Acc {
    var r = acc_zero();
    r.c0 = kvs[base + o.x];
    if (DV > 1u) {
        r.c1 = kvs[base + o.y];
    }
    if (DV > 2u) {
        r.c2 = kvs[base + o.z];
    }
    if (DV > 3u) {
        r.c3 = kvs[base + o.w];
    }
    return r;
}

// Element i of q (src 0), k (1) or v (2).
fn at(src: u32, i: u32) -> f32 {
    switch src {
        case 0u: {
            return q[i];
        }
        case 1u: {
            return k[i];
        }
        default: {
            return v[i];
        }
    }
}

// Elements i..i + min(n, 4) of src as a vec4, zeros past n (n ≥ 1: the
// head dims left in the row).
fn ld4(src: u32, i: u32, n: u32) -> vec4<f32> {
    if (n >= 4u) {
        return vec4<f32>(at(src, i), at(src, i + 1u), at(src, i + 2u), at(src, i + 3u));
    }
    var x = vec4<f32>(at(src, i), 0.0, 0.0, 0.0);
    if (n > 1u) {
        x.y = at(src, i + 1u);
    }
    if (n > 2u) {
        x.z = at(src, i + 2u);
    }
    return x;
}

// Keys seen by query row r (rows past t are clamped to t − 1: a padded
// block computes copies of its last row and never stores them).
fn seen(r: u32) -> u32 {
    if (params.causal != 0u) {
        // kv_len ≥ t (checked on the host): row r sits at kv_len − t + r.
        return params.kv_len + min(r, params.t - 1u) + 1u - params.t;
    }
    return params.kv_len;
}

// Stages keys j0..j0 + BKV of k (src 1) or v (src 2), kv head g, into kvs,
// from the i-th of n threads: vec4s i, i + n, … as (row, col), stepped
// without a division.
fn stage_kv(src: u32, j0: u32, g: u32, i: u32, n: u32) {
    let hd = params.hd;
    let kv_stride = params.h_kv * hd;
    let step_r = n / H4;
    let step_c = n % H4;
    var row = i / H4;
    var col = i % H4;
    while (row < BKV) {
        let j = j0 + row;
        var x = vec4<f32>(0.0);
        if (j < params.kv_len) {
            x = ld4(src, j * kv_stride + g * hd + 4u * col, hd - 4u * col);
        }
        kvs[row * H4S + col] = x;
        col += step_c;
        row += step_r;
        if (col >= H4) {
            col -= H4;
            row += 1u;
        }
    }
}

fn hsum(x: vec4<f32>) -> f32 {
    return (x.x + x.y) + (x.z + x.w);
}

// Scores of tile (qt, kt): rows qt + QG·a × keys kt (and kt + KG if RK = 2).
fn score_tile(qt: u32, kt: u32) {
    let qb = qt * H4S;
    let qa = QG * H4S;
    let kb0 = kt * H4S;
    let kb1 = (kt + KG) * H4S;
    let z = vec4<f32>(0.0);
    var x0 = z;
    var x1 = z;
    var x2 = z;
    var x3 = z;
    var y0 = z;
    var y1 = z;
    var y2 = z;
    var y3 = z;
    for (var c = 0u; c < H4; c++) {
        let q0 = qs[qb + c];
        let q1 = qs[qb + qa + c];
        let q2 = qs[qb + 2u * qa + c];
        let q3 = qs[qb + 3u * qa + c];
        let k0 = kvs[kb0 + c];
        x0 = fma(q0, k0, x0);
        x1 = fma(q1, k0, x1);
        x2 = fma(q2, k0, x2);
        x3 = fma(q3, k0, x3);
        if (RK > 1u) {
            let k1 = kvs[kb1 + c];
            y0 = fma(q0, k1, y0);
            y1 = fma(q1, k1, y1);
            y2 = fma(q2, k1, y2);
            y3 = fma(q3, k1, y3);
        }
    }
    let sc = params.scale;
    ss[kt * QG + qt] = sc * vec4<f32>(hsum(x0), hsum(x1), hsum(x2), hsum(x3));
    if (RK > 1u) {
        ss[(kt + KG) * QG + qt] = sc * vec4<f32>(hsum(y0), hsum(y1), hsum(y2), hsum(y3));
    }
}

// Writes row r's vec4s d4 (those below H4, dims below hd) of y.
fn store_row(r: u32, head: u32, y: Acc, d4: vec4<u32>) {
    if (r >= params.t) {
        return;
    }
    let base = (r * params.h + head) * params.hd;
    store4(base, d4.x, y.c0);
    if (DV > 1u) {
        store4(base, d4.y, y.c1);
    }
    if (DV > 2u) {
        store4(base, d4.z, y.c2);
    }
    if (DV > 3u) {
        store4(base, d4.w, y.c3);
    }
}

fn store4(base: u32, c: u32, x: vec4<f32>) {
    if (c >= H4) {
        return;
    }
    let d = 4u * c;
    let n = params.hd - d;
    out[base + d] = x.x;
    if (n > 1u) {
        out[base + d + 1u] = x.y;
    }
    if (n > 2u) {
        out[base + d + 2u] = x.z;
    }
    if (n > 3u) {
        out[base + d + 3u] = x.w;
    }
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = params.t;
    let h = params.h;
    let hd = params.hd;
    let nblk = (t + BQ - 1u) / BQ;
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let item = wid.y * nwg.x + wid.x;
    if (item >= nblk * h) {
        return;
    }
    // The last blocks (causal: the most keys) are dispatched first.
    let ib = item / h;
    let head = item - ib * h;
    let r0 = (nblk - 1u - ib) * BQ;
    let g = head / (h / params.h_kv);
    // The keys seen by the block's last row: the keys the block walks.
    let n_keys = seen(min(r0 + BQ, t) - 1u);

    for (var e = li; e < BQ * H4; e += WG) {
        let lr = e / H4;
        let c = e - lr * H4;
        let r = r0 + lr;
        var x = vec4<f32>(0.0);
        if (r < t) {
            x = ld4(0u, (r * h + head) * hd + 4u * c, hd - 4u * c);
        }
        qs[lr * H4S + c] = x;
    }

    // Row statistics (li < BQ): row li = g1 + QG·a1, lane a1 of ss[…·QG + g1].
    let a1 = li / QG;
    let g1 = li - a1 * QG;
    let seen1 = seen(r0 + li);
    var m = NEG_BIG;
    var l = 0.0;
    // P·V (pv): query group qg, head vec4s d4 (o: clamped for the loads; a
    // vec4 past H4 is computed from a duplicate and never stored).
    let qg = min(li / NDG, QG - 1u);
    let pv = li < QG * NDG;
    let dg = li - (li / NDG) * NDG;
    let d4 = vec4<u32>(dg, dg + NDG, dg + 2u * NDG, dg + 3u * NDG);
    let o = min(d4, vec4<u32>(H4 - 1u));
    let seen4 = vec4<u32>(
        seen(r0 + qg),
        seen(r0 + qg + QG),
        seen(r0 + qg + 2u * QG),
        seen(r0 + qg + 3u * QG),
    );
    var y0 = acc_zero();
    var y1 = acc_zero();
    var y2 = acc_zero();
    var y3 = acc_zero();

    for (var j0 = 0u; j0 < n_keys; j0 += BKV) {
        stage_kv(1u, j0, g, li, WG);
        workgroupBarrier();

        for (var tile = li; tile < QG * KG; tile += WG) {
            let qt = tile / KG;
            score_tile(qt, tile - qt * KG);
        }
        workgroupBarrier();

        if (li >= VS) {
            stage_kv(2u, j0, g, li - VS, WG - VS);
        }
        if (li < BQ) {
            // Row li's visible keys in this block (seen1 ≤ kv_len).
            let nv = min(BKV, seen1 - min(seen1, j0));
            var mx = m;
            for (var jj = 0u; jj < nv; jj++) {
                mx = max(mx, ss[jj * QG + g1][a1]);
            }
            let corr = exp(m - mx);
            var sum = 0.0;
            for (var jj = 0u; jj < nv; jj++) {
                let i = jj * QG + g1;
                let p = exp(ss[i][a1] - mx);
                ss[i][a1] = p;
                sum += p;
            }
            l = fma(l, corr, sum);
            m = mx;
            cs[g1][a1] = corr;
        }
        workgroupBarrier();

        let corr = cs[qg];
        y0 = acc_scale(y0, corr.x);
        y1 = acc_scale(y1, corr.y);
        y2 = acc_scale(y2, corr.z);
        y3 = acc_scale(y3, corr.w);
        // Keys all four rows see, then those only the later rows see
        // (seen4 rises with a; row 0 sees none of them, row 3 all).
        let n_all = select(0u, min(BKV, seen4.x - min(seen4.x, j0)), pv);
        let n_any = select(0u, min(BKV, seen4.w - min(seen4.w, j0)), pv);
        for (var jj = 0u; jj < n_all; jj++) {
            let p = ss[jj * QG + qg];
            let vr = v_row(jj * H4S, o);
            y0 = acc_fma(y0, p.x, vr);
            y1 = acc_fma(y1, p.y, vr);
            y2 = acc_fma(y2, p.z, vr);
            y3 = acc_fma(y3, p.w, vr);
        }
        for (var jj = n_all; jj < n_any; jj++) {
            let p = ss[jj * QG + qg];
            let vr = v_row(jj * H4S, o);
            let j = j0 + jj;
            if (j < seen4.y) {
                y1 = acc_fma(y1, p.y, vr);
            }
            if (j < seen4.z) {
                y2 = acc_fma(y2, p.z, vr);
            }
            y3 = acc_fma(y3, p.w, vr);
        }
        // The next block overwrites kvs, ss and cs.
        workgroupBarrier();
    }

    if (li < BQ) {
        cs[g1][a1] = select(0.0, 1.0 / l, l > 0.0);
    }
    workgroupBarrier();
    if (!pv) {
        return;
    }
    let inv = cs[qg];
    store_row(r0 + qg, head, acc_scale(y0, inv.x), d4);
    store_row(r0 + qg + QG, head, acc_scale(y1, inv.y), d4);
    store_row(r0 + qg + 2u * QG, head, acc_scale(y2, inv.z), d4);
    store_row(r0 + qg + 3u * QG, head, acc_scale(y3, inv.w), d4);
}
