// Attention for t > 1 with one query row per thread (FlashAttention-2 on
// SIMT cores), hd a multiple of 4 and ≤ 128 (kernels/attention.md).
// Prelude: attention/params.wgsl; q, k, v, out are bound as vec4s.
//
// A workgroup of WG = R·S threads owns R consecutive query rows of one
// head. Thread li serves row lr = li % R and key split sp = li / R: it
// keeps the row's q (pre-scaled by scale·log2 e) and its own output
// accumulator in registers, with its own running max m (log2 domain) and
// sum l. The workgroup walks the keys its rows see in blocks of BKV = S·KS:
//   1. K and V block → kv (coalesced vec4 loads; zeros past the block's
//      last row's keys). Barrier.
//   2. Split sp takes keys sp·KS .. (sp + 1)·KS of the block, in sub-blocks
//      of 8: 8 scores q·k (k read from workgroup memory: with R ≥ 32 a warp
//      is one split, so all its threads read the same address, a
//      broadcast), their max, one rescale of the accumulator by
//      2^(m_old − m_new), then Σ p·v (v broadcast likewise). Barrier.
// Keys a row must not see (causal) get p = 0 and their v rows are never
// read by that row, so a NaN there never reaches it. At the end the S
// splits of a row are merged through workgroup memory (max of their m,
// each rescaled, summed; S − 1 rounds) and split 0 stores acc / l.
//
// Per-thread state is structs of vec4s read and written with constant
// indices only (no private arrays, which NVIDIA would put in local
// memory); the segments past H4 are guarded by conditions on pipeline
// constants, which fold away. Workgroup memory: 16·KVN bytes,
// KVN = max(2·BKV·H4, R·H4 + WG) vec4s.

// Query rows per workgroup.
override R: u32 = 32u;
// Key splits per row (threads per row).
override S: u32 = 4u;
// Keys per split and block, a multiple of 8.
override KS: u32 = 8u;
// vec4s per head row, hd / 4 (1 to 32).
override H4: u32 = 16u;

override WG: u32 = R * S;
override BKV: u32 = S * KS;
// Staged block: K at 0.., V at BKV·H4.. ([key][H4]). After the key loop:
// split partial outputs at 0.. ([H4][R]) and (m, l) per thread at R·H4...
override KVN: u32 = max(2u * BKV * H4, R * H4 + WG);

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;          // [t, h, hd / 4]
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;          // [s, h_kv, hd / 4]
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;          // [s, h_kv, hd / 4]
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;  // [t, h, hd / 4]

var<workgroup> kv: array<vec4<f32>, KVN>;

const LOG2E: f32 = 1.4426950408889634;

// 8 vec4s: a segment of a head row (32 dims).
struct V8 {
    a: vec4<f32>,
    b: vec4<f32>,
    c: vec4<f32>,
    d: vec4<f32>,
    e: vec4<f32>,
    f: vec4<f32>,
    g: vec4<f32>,
    h: vec4<f32>,
}

// A head row of up to 32 vec4s: segment i holds vec4s 8i .. 8i + 7.
struct Row {
    s0: V8,
    s1: V8,
    s2: V8,
    s3: V8,
}

// vec4s used of segment i (0 to 8): a pipeline constant.
fn seg_len(i: u32) -> u32 {
    return min(8u, H4 - min(H4, 8u * i));
}

fn v8_zero() -> V8 {
    let z = vec4<f32>(0.0);
    return V8(z, z, z, z, z, z, z, z);
}

fn row_zero() -> Row {
    return Row(v8_zero(), v8_zero(), v8_zero(), v8_zero());
}

// Σ x_i · kv[b + i] over the segment's n vec4s (n ≥ 1), lane-wise.
fn v8_dot(x: V8, b: u32, n: u32) -> vec4<f32> {
    var d = x.a * kv[b];
    if (n > 1u) {
        d = fma(x.b, kv[b + 1u], d);
    }
    if (n > 2u) {
        d = fma(x.c, kv[b + 2u], d);
    }
    if (n > 3u) {
        d = fma(x.d, kv[b + 3u], d);
    }
    if (n > 4u) {
        d = fma(x.e, kv[b + 4u], d);
    }
    if (n > 5u) {
        d = fma(x.f, kv[b + 5u], d);
    }
    if (n > 6u) {
        d = fma(x.g, kv[b + 6u], d);
    }
    if (n > 7u) {
        d = fma(x.h, kv[b + 7u], d);
    }
    return d;
}

// x + p · kv[b..b + n].
fn v8_fma(x: V8, p: f32, b: u32, n: u32) -> V8 {
    let pp = vec4<f32>(p);
    var r = x;
    r.a = fma(pp, kv[b], x.a);
    if (n > 1u) {
        r.b = fma(pp, kv[b + 1u], x.b);
    }
    if (n > 2u) {
        r.c = fma(pp, kv[b + 2u], x.c);
    }
    if (n > 3u) {
        r.d = fma(pp, kv[b + 3u], x.d);
    }
    if (n > 4u) {
        r.e = fma(pp, kv[b + 4u], x.e);
    }
    if (n > 5u) {
        r.f = fma(pp, kv[b + 5u], x.f);
    }
    if (n > 6u) {
        r.g = fma(pp, kv[b + 6u], x.g);
    }
    if (n > 7u) {
        r.h = fma(pp, kv[b + 7u], x.h);
    }
    return r;
}

fn v8_scale(x: V8, s: f32) -> V8 {
    return V8(x.a * s, x.b * s, x.c * s, x.d * s, x.e * s, x.f * s, x.g * s, x.h * s);
}

// Workgroup vec4s b + R·i (i < n) added to x: the [H4][R] merge layout.
fn v8_add_merged(x: V8, b: u32, n: u32) -> V8 {
    var r = x;
    r.a = x.a + kv[b];
    if (n > 1u) {
        r.b = x.b + kv[b + R];
    }
    if (n > 2u) {
        r.c = x.c + kv[b + 2u * R];
    }
    if (n > 3u) {
        r.d = x.d + kv[b + 3u * R];
    }
    if (n > 4u) {
        r.e = x.e + kv[b + 4u * R];
    }
    if (n > 5u) {
        r.f = x.f + kv[b + 5u * R];
    }
    if (n > 6u) {
        r.g = x.g + kv[b + 6u * R];
    }
    if (n > 7u) {
        r.h = x.h + kv[b + 7u * R];
    }
    return r;
}

fn v8_put_merged(x: V8, b: u32, n: u32) {
    kv[b] = x.a;
    if (n > 1u) {
        kv[b + R] = x.b;
    }
    if (n > 2u) {
        kv[b + 2u * R] = x.c;
    }
    if (n > 3u) {
        kv[b + 3u * R] = x.d;
    }
    if (n > 4u) {
        kv[b + 4u * R] = x.e;
    }
    if (n > 5u) {
        kv[b + 5u * R] = x.f;
    }
    if (n > 6u) {
        kv[b + 6u * R] = x.g;
    }
    if (n > 7u) {
        kv[b + 7u * R] = x.h;
    }
}

// Global q vec4s b .. b + n, times s.
fn v8_load_q(b: u32, n: u32, s: f32) -> V8 {
    var r = v8_zero();
    r.a = q[b] * s;
    if (n > 1u) {
        r.b = q[b + 1u] * s;
    }
    if (n > 2u) {
        r.c = q[b + 2u] * s;
    }
    if (n > 3u) {
        r.d = q[b + 3u] * s;
    }
    if (n > 4u) {
        r.e = q[b + 4u] * s;
    }
    if (n > 5u) {
        r.f = q[b + 5u] * s;
    }
    if (n > 6u) {
        r.g = q[b + 6u] * s;
    }
    if (n > 7u) {
        r.h = q[b + 7u] * s;
    }
    return r;
}

fn v8_store(x: V8, b: u32, n: u32) {
    out[b] = x.a;
    if (n > 1u) {
        out[b + 1u] = x.b;
    }
    if (n > 2u) {
        out[b + 2u] = x.c;
    }
    if (n > 3u) {
        out[b + 3u] = x.d;
    }
    if (n > 4u) {
        out[b + 4u] = x.e;
    }
    if (n > 5u) {
        out[b + 5u] = x.f;
    }
    if (n > 6u) {
        out[b + 6u] = x.g;
    }
    if (n > 7u) {
        out[b + 7u] = x.h;
    }
}

// q · the staged row at kv[b..b + H4].
fn row_dot(x: Row, b: u32) -> f32 {
    var d = v8_dot(x.s0, b, seg_len(0u));
    if (H4 > 8u) {
        d += v8_dot(x.s1, b + 8u, seg_len(1u));
    }
    if (H4 > 16u) {
        d += v8_dot(x.s2, b + 16u, seg_len(2u));
    }
    if (H4 > 24u) {
        d += v8_dot(x.s3, b + 24u, seg_len(3u));
    }
    return (d.x + d.y) + (d.z + d.w);
}

// x + p · the staged row at kv[b..b + H4].
fn row_fma(x: Row, p: f32, b: u32) -> Row {
    var r = x;
    r.s0 = v8_fma(x.s0, p, b, seg_len(0u));
    if (H4 > 8u) {
        r.s1 = v8_fma(x.s1, p, b + 8u, seg_len(1u));
    }
    if (H4 > 16u) {
        r.s2 = v8_fma(x.s2, p, b + 16u, seg_len(2u));
    }
    if (H4 > 24u) {
        r.s3 = v8_fma(x.s3, p, b + 24u, seg_len(3u));
    }
    return r;
}

fn row_scale(x: Row, s: f32) -> Row {
    var r = x;
    r.s0 = v8_scale(x.s0, s);
    if (H4 > 8u) {
        r.s1 = v8_scale(x.s1, s);
    }
    if (H4 > 16u) {
        r.s2 = v8_scale(x.s2, s);
    }
    if (H4 > 24u) {
        r.s3 = v8_scale(x.s3, s);
    }
    return r;
}

// Row lr's vec4s in the merge layout kv[c·R + lr] (c < H4).
fn row_put_merged(x: Row, lr: u32) {
    v8_put_merged(x.s0, lr, seg_len(0u));
    if (H4 > 8u) {
        v8_put_merged(x.s1, 8u * R + lr, seg_len(1u));
    }
    if (H4 > 16u) {
        v8_put_merged(x.s2, 16u * R + lr, seg_len(2u));
    }
    if (H4 > 24u) {
        v8_put_merged(x.s3, 24u * R + lr, seg_len(3u));
    }
}

fn row_add_merged(x: Row, lr: u32) -> Row {
    var r = x;
    r.s0 = v8_add_merged(x.s0, lr, seg_len(0u));
    if (H4 > 8u) {
        r.s1 = v8_add_merged(x.s1, 8u * R + lr, seg_len(1u));
    }
    if (H4 > 16u) {
        r.s2 = v8_add_merged(x.s2, 16u * R + lr, seg_len(2u));
    }
    if (H4 > 24u) {
        r.s3 = v8_add_merged(x.s3, 24u * R + lr, seg_len(3u));
    }
    return r;
}

fn row_load_q(b: u32, s: f32) -> Row {
    var r = row_zero();
    r.s0 = v8_load_q(b, seg_len(0u), s);
    if (H4 > 8u) {
        r.s1 = v8_load_q(b + 8u, seg_len(1u), s);
    }
    if (H4 > 16u) {
        r.s2 = v8_load_q(b + 16u, seg_len(2u), s);
    }
    if (H4 > 24u) {
        r.s3 = v8_load_q(b + 24u, seg_len(3u), s);
    }
    return r;
}

fn row_store(x: Row, b: u32) {
    v8_store(x.s0, b, seg_len(0u));
    if (H4 > 8u) {
        v8_store(x.s1, b + 8u, seg_len(1u));
    }
    if (H4 > 16u) {
        v8_store(x.s2, b + 16u, seg_len(2u));
    }
    if (H4 > 24u) {
        v8_store(x.s3, b + 24u, seg_len(3u));
    }
}

fn hmax(x: vec4<f32>) -> f32 {
    return max(max(x.x, x.y), max(x.z, x.w));
}

fn hsum(x: vec4<f32>) -> f32 {
    return (x.x + x.y) + (x.z + x.w);
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

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = params.t;
    let h = params.h;
    let nblk = (t + R - 1u) / R;
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let item = wid.y * nwg.x + wid.x;
    if (item >= nblk * h) {
        return;
    }
    // The last blocks (causal: the most keys) are dispatched first.
    let ib = item / h;
    let head = item - ib * h;
    let r0 = (nblk - 1u - ib) * R;
    let g = head / (h / params.h_kv);
    // The keys seen by the block's last row: the keys the block walks (and
    // stages; zeros past them).
    let n_keys = seen(min(r0 + R, t) - 1u);
    let kv_row = params.h_kv * H4;

    let sp = li / R;
    let lr = li - sp * R;
    let row = r0 + lr;
    let my_seen = seen(row);
    var qr = row_zero();
    if (row < t) {
        qr = row_load_q((row * h + head) * H4, params.scale * LOG2E);
    }
    var acc = row_zero();
    var m = NEG_BIG;
    var l = 0.0;
    // This split's first key of a block: K row at kb, V row at kb + BKV·H4.
    let kb = sp * KS * H4;
    let vb = BKV * H4 + kb;
    let lane = vec4<u32>(0u, 1u, 2u, 3u);

    for (var j0 = 0u; j0 < n_keys; j0 += BKV) {
        for (var e = li; e < BKV * H4; e += WG) {
            let jj = e / H4;
            let j = j0 + jj;
            var kx = vec4<f32>(0.0);
            var vx = vec4<f32>(0.0);
            if (j < n_keys) {
                let i = (j * kv_row + g * H4) + (e - jj * H4);
                kx = k[i];
                vx = v[i];
            }
            kv[e] = kx;
            kv[BKV * H4 + e] = vx;
        }
        workgroupBarrier();

        for (var sb = 0u; sb < KS; sb += 8u) {
            // The sub-block's first key; keys js + i with i < nv are seen.
            let js = j0 + sp * KS + sb;
            if (js < my_seen) {
                let nv = my_seen - js;
                let b = kb + sb * H4;
                let s0 = vec4<f32>(
                    row_dot(qr, b),
                    row_dot(qr, b + H4),
                    row_dot(qr, b + 2u * H4),
                    row_dot(qr, b + 3u * H4),
                );
                let s1 = vec4<f32>(
                    row_dot(qr, b + 4u * H4),
                    row_dot(qr, b + 5u * H4),
                    row_dot(qr, b + 6u * H4),
                    row_dot(qr, b + 7u * H4),
                );
                let vis0 = lane < vec4<u32>(nv);
                let vis1 = lane + vec4<u32>(4u) < vec4<u32>(nv);
                let x0 = select(vec4<f32>(NEG_BIG), s0, vis0);
                let x1 = select(vec4<f32>(NEG_BIG), s1, vis1);
                let mx = max(m, max(hmax(x0), hmax(x1)));
                let corr = exp2(m - mx);
                let p0 = select(vec4<f32>(0.0), exp2(x0 - vec4<f32>(mx)), vis0);
                let p1 = select(vec4<f32>(0.0), exp2(x1 - vec4<f32>(mx)), vis1);
                l = fma(l, corr, hsum(p0) + hsum(p1));
                m = mx;
                acc = row_scale(acc, corr);
                let c = vb + sb * H4;
                if (min(js + 8u, n_keys) <= my_seen) {
                    // Every key seen, or past n_keys (staged as zeros, p = 0).
                    acc = row_fma(acc, p0.x, c);
                    acc = row_fma(acc, p0.y, c + H4);
                    acc = row_fma(acc, p0.z, c + 2u * H4);
                    acc = row_fma(acc, p0.w, c + 3u * H4);
                    acc = row_fma(acc, p1.x, c + 4u * H4);
                    acc = row_fma(acc, p1.y, c + 5u * H4);
                    acc = row_fma(acc, p1.z, c + 6u * H4);
                    acc = row_fma(acc, p1.w, c + 7u * H4);
                } else {
                    // The causal diagonal: only the first nv keys (nv ≥ 1).
                    acc = row_fma(acc, p0.x, c);
                    if (nv > 1u) {
                        acc = row_fma(acc, p0.y, c + H4);
                    }
                    if (nv > 2u) {
                        acc = row_fma(acc, p0.z, c + 2u * H4);
                    }
                    if (nv > 3u) {
                        acc = row_fma(acc, p0.w, c + 3u * H4);
                    }
                    if (nv > 4u) {
                        acc = row_fma(acc, p1.x, c + 4u * H4);
                    }
                    if (nv > 5u) {
                        acc = row_fma(acc, p1.y, c + 5u * H4);
                    }
                    if (nv > 6u) {
                        acc = row_fma(acc, p1.z, c + 6u * H4);
                    }
                }
            }
        }
        // The next block (or the merge) overwrites kv.
        workgroupBarrier();
    }

    // Merge the S splits of each row: common max, rescale, sum.
    let ml = R * H4;
    kv[ml + li] = vec4<f32>(m, l, 0.0, 0.0);
    workgroupBarrier();
    var mm = NEG_BIG;
    for (var s = 0u; s < S; s++) {
        mm = max(mm, kv[ml + lr + s * R].x);
    }
    var lt = 0.0;
    for (var s = 0u; s < S; s++) {
        let e = kv[ml + lr + s * R];
        lt = fma(e.y, exp2(e.x - mm), lt);
    }
    acc = row_scale(acc, exp2(m - mm));
    for (var s = 1u; s < S; s++) {
        if (sp == s) {
            row_put_merged(acc, lr);
        }
        workgroupBarrier();
        if (sp == 0u) {
            acc = row_add_merged(acc, lr);
        }
        workgroupBarrier();
    }
    if (sp == 0u && row < t) {
        row_store(row_scale(acc, select(0.0, 1.0 / lt, lt > 0.0)), (row * h + head) * H4);
    }
}
