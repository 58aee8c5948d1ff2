// GEMV for decode (m = 1): y[n] = w[n, k] · x[k] (+ bias[n]), f32
// accumulation (kernels/matmul.md). Preludes: matmul/io.wgsl and one
// weights_*.wgsl.
//
// Memory-bound: every weight is read once. A workgroup of WG threads handles
// WG / TPR rows with TPR threads per row. The threads of a row stride over the
// storage words that lie wholly inside the row (two bf16 per word); a bf16
// row of odd length starts or ends mid-word, and that head or tail element
// is added separately. The partial sums are reduced in workgroup memory.
// Row groups are spread over a 2D grid of workgroups (each dimension ≤ 65535).

// Threads per workgroup and threads per row (a power of two dividing WG).
override WG: u32 = 256u;
override TPR: u32 = 64u;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let n = params.n;
    let k = params.k;
    let group = wid.y * nwg.x + wid.x;
    let lane = li % TPR;
    let row = group * (WG / TPR) + li / TPR;

    var acc = 0.0;
    if (row < n) {
        let e0 = row * k;  // first element of the row
        let e1 = e0 + k;   // one past the last
        // Words lying wholly inside the row: [first, last).
        let first = (e0 + W_PER_WORD - 1u) / W_PER_WORD;
        let last = e1 / W_PER_WORD;
        for (var i = first + lane; i < last; i += TPR) {
            acc += dot_w_word(i, i * W_PER_WORD - e0);
        }
        // A packed row of odd length shares its first or last word with a
        // neighbour row: its head or tail element is taken on its own.
        if (lane == 0u && k > 0u) {
            if (first * W_PER_WORD > e0) {
                acc = fma(load_w(e0), x[0], acc);
            }
            if (last * W_PER_WORD < e1) {
                acc = fma(load_w(e1 - 1u), x[k - 1u], acc);
            }
        }
    }
    partial[li] = acc;
    workgroupBarrier();
    for (var s = TPR / 2u; s > 0u; s >>= 1u) {
        if (lane < s) {
            partial[li] += partial[li + s];
        }
        workgroupBarrier();
    }
    if (lane == 0u && row < n) {
        y[row] = partial[li] + bias_at(row);
    }
}
