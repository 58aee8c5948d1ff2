// Multi-head attention with grouped KV heads (kernels/attention.md), causal
// over a KV cache or bidirectional: the decode kernel (t = 1; the host takes
// attention_tiled.wgsl for t > 1, decode.wgsl where hd % 4 = 0).
// Preludes: attention/params.wgsl, attention/io.wgsl.
// One workgroup per (query row r, head i);
// keys are processed in tiles of WG, one key per thread, with an online
// softmax: per tile, every thread scores its key against q (kept in
// workgroup memory), the tile's max updates the running max m, the running
// sum and the output accumulators are rescaled by e^(m_old − m_new), and
// thread c accumulates output dims c, c + WG, … over the tile's
// probabilities. Never materialises t × kv_len. hd ≤ MAX_HD and
// hd ≤ HD_PER_THREAD·WG (checked on the host).

// Threads per workgroup = keys per tile.
override WG: u32 = 64u;
// Largest head width and output dims per thread.
const MAX_HD: u32 = 256u;
const HD_PER_THREAD: u32 = 4u;

var<workgroup> qs: array<f32, MAX_HD>;
var<workgroup> p: array<f32, WG>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let h = params.h;
    let hd = params.hd;
    // Uniform per workgroup, so the early return keeps barriers uniform.
    let pair = wid.y * nwg.x + wid.x;
    if (pair >= params.t * h) {
        return;
    }
    let r = pair / h;
    let head = pair - r * h;
    let g = head / (h / params.h_kv);
    var n_keys = params.kv_len;
    if (params.causal != 0u) {
        n_keys = params.kv_len - params.t + r + 1u;
    }
    let base = pair * hd;
    for (var c = li; c < hd; c += WG) {
        qs[c] = q[base + c];
    }
    workgroupBarrier();

    var m = NEG_BIG;
    var lsum = 0.0;
    var acc = array<f32, HD_PER_THREAD>(0.0, 0.0, 0.0, 0.0);
    let kv_stride = params.h_kv * hd;
    for (var j0 = 0u; j0 < n_keys; j0 += WG) {
        let j = j0 + li;
        var s = NEG_BIG;
        if (j < n_keys) {
            let kb = j * kv_stride + g * hd;
            var dot = 0.0;
            for (var c = 0u; c < hd; c++) {
                dot = fma(qs[c], k[kb + c], dot);
            }
            s = dot * params.scale;
        }
        p[li] = s;
        workgroupBarrier();
        let cnt = min(WG, n_keys - j0);
        var tmax = m;
        for (var i = 0u; i < cnt; i++) {
            tmax = max(tmax, p[i]);
        }
        workgroupBarrier();
        let corr = exp(m - tmax);
        p[li] = select(0.0, exp(s - tmax), j < n_keys);
        workgroupBarrier();
        var tsum = 0.0;
        for (var i = 0u; i < cnt; i++) {
            tsum += p[i];
        }
        lsum = fma(lsum, corr, tsum);
        for (var rr = 0u; rr < HD_PER_THREAD; rr++) {
            let c = li + rr * WG;
            if (c < hd) {
                var a = acc[rr] * corr;
                var vb = j0 * kv_stride + g * hd + c;
                for (var i = 0u; i < cnt; i++) {
                    a = fma(p[i], v[vb], a);
                    vb += kv_stride;
                }
                acc[rr] = a;
            }
        }
        m = tmax;
        // The next tile overwrites p.
        workgroupBarrier();
    }
    let inv = select(0.0, 1.0 / lsum, lsum > 0.0);
    for (var rr = 0u; rr < HD_PER_THREAD; rr++) {
        let c = li + rr * WG;
        if (c < hd) {
            out[base + c] = acc[rr] * inv;
        }
    }
}
