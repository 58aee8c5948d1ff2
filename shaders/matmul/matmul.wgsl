// Tiled GEMM: y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]), f32 accumulation
// (kernels/matmul.md). Preludes: matmul/io.wgsl and one weights_*.wgsl.
//
// One workgroup computes a BM × BN tile of y, BM = WG_Y · TM and
// BN = WG_X · TN. Each step along k stages an x tile [BM, BK] and a w tile
// [BN, BK] in workgroup memory (k-major, widened to f32, zero outside the
// matrix), then every thread accumulates its TM × TN register tile. Thread
// (tx, ty) owns rows ty + r·WG_Y and columns tx + c·WG_X, so neighbouring
// threads write neighbouring outputs.
//
// Tiles are numbered row-major over (m tiles, n tiles) and spread over a 2D
// grid of workgroups (the host keeps each dimension ≤ 65535); surplus
// workgroups of the last grid row exit at once.

// Register tile per thread (function-scope arrays need const sizes).
const TM: u32 = 4u;
const TN: u32 = 4u;

// Workgroup shape and k-step, set through pipeline override constants.
override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override BK: u32 = 16u;

override BM: u32 = WG_Y * TM;
override BN: u32 = WG_X * TN;
override XS_LEN: u32 = BM * BK;
override WS_LEN: u32 = BN * BK;

var<workgroup> xs: array<f32, XS_LEN>;  // [BK, BM]: xs[q·BM + i] = x[m0 + i, k0 + q]
var<workgroup> ws: array<f32, WS_LEN>;  // [BK, BN]: ws[q·BN + j] = w[n0 + j, k0 + q]

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
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
    let threads = WG_X * WG_Y;

    var acc: array<array<f32, TN>, TM>;
    for (var k0 = 0u; k0 < k; k0 += BK) {
        // Stage the tiles; consecutive threads read consecutive k.
        for (var t = li; t < XS_LEN; t += threads) {
            let i = t / BK;
            let q = t % BK;
            let row = m0 + i;
            let col = k0 + q;
            var v = 0.0;
            if (row < m && col < k) {
                v = x[row * k + col];
            }
            xs[q * BM + i] = v;
        }
        for (var t = li; t < WS_LEN; t += threads) {
            let j = t / BK;
            let q = t % BK;
            let row = n0 + j;
            let col = k0 + q;
            var v = 0.0;
            if (row < n && col < k) {
                v = load_w(row * k + col);
            }
            ws[q * BN + j] = v;
        }
        workgroupBarrier();

        for (var q = 0u; q < BK; q++) {
            var a: array<f32, TM>;
            var b: array<f32, TN>;
            for (var r = 0u; r < TM; r++) {
                a[r] = xs[q * BM + lid.y + r * WG_Y];
            }
            for (var c = 0u; c < TN; c++) {
                b[c] = ws[q * BN + lid.x + c * WG_X];
            }
            for (var r = 0u; r < TM; r++) {
                for (var c = 0u; c < TN; c++) {
                    acc[r][c] = fma(a[r], b[c], acc[r][c]);
                }
            }
        }
        workgroupBarrier();
    }

    for (var r = 0u; r < TM; r++) {
        let row = m0 + lid.y + r * WG_Y;
        for (var c = 0u; c < TN; c++) {
            let col = n0 + lid.x + c * WG_X;
            if (row < m && col < n) {
                y[row * n + col] = acc[r][c] + bias_at(col);
            }
        }
    }
}
