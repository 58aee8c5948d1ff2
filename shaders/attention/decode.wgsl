// Attention for one query row per (row, head) workgroup, hd a multiple of 4:
// the decode kernel (kernels/attention.md). Prelude: attention/params.wgsl.
// Keys go in tiles of WG, one key per thread for the scores (q · k with
// 16-byte loads); the tile's max and sum are tree-reduced in workgroup
// memory and the online softmax rescales the running sum and the output by
// e^(m_old − m_new). For the output, thread i owns the 4 head dims of quad
// i % hd4 and the tile's keys slice, slice + slices, … (slice = i / hd4):
// a tile costs each thread about WG / slices vector loads of v instead of
// WG scalar ones, and the slices' partial outputs are summed at the end.
// Keys past a row's causal limit are never read (a NaN there stays out).

// Threads per workgroup = keys per tile (a power of two ≥ 64: hd4 ≤ 64).
override WG: u32 = 128u;
const MAX_HD4: u32 = 64u;

@group(0) @binding(1) var<storage, read> q: array<vec4<f32>>;          // [t, h, hd / 4]
@group(0) @binding(2) var<storage, read> k: array<vec4<f32>>;          // [s, h_kv, hd / 4]
@group(0) @binding(3) var<storage, read> v: array<vec4<f32>>;          // [s, h_kv, hd / 4]
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;  // [t, h, hd / 4]

var<workgroup> qs: array<vec4<f32>, MAX_HD4>;
// The tile's probabilities.
var<workgroup> p: array<f32, WG>;
var<workgroup> red: array<f32, WG>;
// Partial outputs by (slice, quad).
var<workgroup> part: array<vec4<f32>, WG>;

// The max of every thread's `x` (all threads must call it).
fn wg_max(li: u32, x: f32) -> f32 {
    red[li] = x;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = max(red[li], red[li + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

// The sum of every thread's `x` (all threads must call it).
fn wg_sum(li: u32, x: f32) -> f32 {
    red[li] = x;
    workgroupBarrier();
    for (var s = WG / 2u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = red[li] + red[li + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let h = params.h;
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
    let hd4 = params.hd / 4u;
    let base = pair * hd4;
    for (var c = li; c < hd4; c += WG) {
        qs[c] = q[base + c];
    }
    workgroupBarrier();

    let kv4 = params.h_kv * hd4;  // vectors per key row
    let head4 = g * hd4;
    let slices = WG / hd4;
    let quad = li % hd4;
    let slice = li / hd4;
    var m = NEG_BIG;
    var l = 0.0;
    var acc = vec4<f32>(0.0);
    for (var j0 = 0u; j0 < n_keys; j0 += WG) {
        let j = j0 + li;
        var s = NEG_BIG;
        if (j < n_keys) {
            let kb = j * kv4 + head4;
            var dot = vec4<f32>(0.0);
            for (var c = 0u; c < hd4; c++) {
                dot = fma(qs[c], k[kb + c], dot);
            }
            s = ((dot.x + dot.y) + (dot.z + dot.w)) * params.scale;
        }
        let tmax = max(m, wg_max(li, s));
        let corr = exp(m - tmax);
        let e = select(0.0, exp(s - tmax), j < n_keys);
        p[li] = e;
        // Its barriers also publish p.
        l = fma(l, corr, wg_sum(li, e));
        acc = acc * corr;
        if (slice < slices) {
            let cnt = min(WG, n_keys - j0);
            var vb = (j0 + slice) * kv4 + head4 + quad;
            for (var i = slice; i < cnt; i += slices) {
                acc = fma(vec4<f32>(p[i]), v[vb], acc);
                vb += slices * kv4;
            }
        }
        m = tmax;
        // The next tile overwrites p.
        workgroupBarrier();
    }
    part[li] = acc;
    workgroupBarrier();
    if (li < hd4) {
        var sum = vec4<f32>(0.0);
        for (var s = 0u; s < slices; s++) {
            sum += part[s * hd4 + li];
        }
        out[base + li] = sum * select(0.0, 1.0 / l, l > 0.0);
    }
}
