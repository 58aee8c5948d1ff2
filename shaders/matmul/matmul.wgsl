// Tiled GEMM: y[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n]), f32 accumulation
// (kernels/matmul.md). Preludes: matmul/io.wgsl and one weights_*.wgsl.
//
// One workgroup computes a TILE × TILE tile of y with KS k-slices of P × P
// threads (P = TILE / TM). Thread (tx, ty) of a slice owns a TM × TM block
// of outputs held in 4 × 4 `Block`s of vec4 registers: rows 4·ty.. and, when
// TM = 8, TILE/2 + 4·ty..; columns likewise from tx. The split layout keeps
// the workgroup-memory reads of a warp on few, distinct vec4s.
//
// Each step along k stages an x tile [TILE, BK] and a w tile [TILE, BK] per
// slice in workgroup memory, k-major, as vec4s of 4 consecutive rows. Every
// thread stages LD vec4s of each (BK = LD · BKL, BKL = 4 · P² / TILE): 4
// rows at one k, consecutive threads reading consecutive k; the second
// (LD = 2) at k + BKL. The next step's values are loaded into registers
// before the current step is computed, so the global loads overlap the
// FMAs. Per k inside a step a thread reads TM/4 vec4s of x and TM/4 of w
// and does TM² FMAs (as vec4 FMAs).
//
// Buffering: with NB = 1 the slice's tiles are staged in place, with two
// barriers per step (reads of the previous step done; this step staged).
// With NB = 2 there are two copies of them: step i + 1 is stored into the
// other copy while step i is computed, one barrier per step.
//
// Bank conflicts: the 8 threads of a quarter warp store vec4s of 8 distinct
// k rows of the tiles (BKL = 8; 4 rows × 2 row groups for BKL = 4). NB = 1
// pads each k row by PAD vec4s so they hit distinct banks; NB = 2 instead
// XORs the vec4 index within the k row with SW(k) = (k · PAD) mod 8, keeping
// each tile copy a power of two bytes (the reads of 8 consecutive tx or ty
// stay on 8 distinct vec4s of one aligned group of 8).
//
// Edges: rows of x past m and of w past n are clamped to the last row (they
// only feed outputs that are never stored); columns past k read as zero in
// both x and w. Slice s takes k-steps s, s + KS, ..., all slices running the
// same number of steps (surplus steps stage zeros); with KS > 1 the slices'
// blocks are summed through workgroup memory and slice 0 writes y.
//
// Tiles are numbered row-major over (m tiles, n tiles) and spread over a 2D
// grid of workgroups (the host keeps each dimension ≤ 65535); surplus
// workgroups of the last grid row exit at once.
//
// No private array is indexed: accumulators, staged values and row offsets
// are named struct fields and vector components.

// Set through pipeline override constants (wgpu/matmul/mod.rs GemmVariant):
// tile side, outputs per thread per side (4 or 8), k-slices (a power of
// two), vec4s of x and of w staged per thread per step (1 or 2), staging
// buffers (1 or 2).
override TILE: u32 = 128u;
override TM: u32 = 8u;
override KS: u32 = 1u;
override LD: u32 = 1u;
override NB: u32 = 1u;

// Threads per side of a slice, per slice and per workgroup.
override P: u32 = TILE / TM;
override SLICE: u32 = P * P;
override WG: u32 = KS * SLICE;
// k columns covered by one vec4 of x and of w per thread; the k-step.
override BKL: u32 = 4u * SLICE / TILE;
override BK: u32 = LD * BKL;
// Bank spread of consecutive k rows: padding vec4s per k row (NB = 1) or
// the XOR step of the swizzle (NB = 2).
override PAD: u32 = max(1u, 8u / BKL);
// vec4s per staged k row: TILE / 4, plus the padding with NB = 1.
override S: u32 = TILE / 4u + PAD * (2u - NB);
// vec4s of one staged tile, and of one buffer (x and w of every slice).
override TILE_LEN: u32 = BK * S;
override BUF_LEN: u32 = KS * 2u * TILE_LEN;
// vec4s the k-slice reduction stages at most (half the slices' blocks).
override RED_LEN: u32 = (KS / 2u) * SLICE * 4u;
override SMEM_LEN: u32 = max(NB * BUF_LEN, RED_LEN);

// Buffer b, slice s: x tile at b·BUF_LEN + s·2·TILE_LEN, w tile right after
// it, each [BK, S]: smem[base + q·S + (i ^ SW(q))] = (x or w)[row0 + 4i ..
// 4i + 3, k0 + q] (SW = 0 with NB = 1). Reused by the k-slice reduction
// once the k loop is done.
var<workgroup> smem: array<vec4<f32>, SMEM_LEN>;

// The swizzle of staged k row q (0 with NB = 1: rows are padded instead).
fn sw(q: u32) -> u32 {
    return ((q * PAD) & 7u) * (NB - 1u);
}

// A 4 × 4 block of outputs: field rJ is row J, one column per component.
struct Block {
    r0: vec4<f32>,
    r1: vec4<f32>,
    r2: vec4<f32>,
    r3: vec4<f32>,
}

// acc + a ⊗ b: a holds one k of 4 rows of x, b the same k of 4 rows of w.
fn outer(acc: Block, a: vec4<f32>, b: vec4<f32>) -> Block {
    return Block(
        fma(vec4<f32>(a.x), b, acc.r0),
        fma(vec4<f32>(a.y), b, acc.r1),
        fma(vec4<f32>(a.z), b, acc.r2),
        fma(vec4<f32>(a.w), b, acc.r3),
    );
}

// x[rows + col] for the 4 row offsets in `rows`, or zeros past column k.
fn load_x4(rows: vec4<u32>, col: u32, k: u32) -> vec4<f32> {
    if (col >= k) {
        return vec4<f32>();
    }
    return vec4<f32>(x[rows.x + col], x[rows.y + col], x[rows.z + col], x[rows.w + col]);
}

// w elements rows + col widened to f32, or zeros past column k (load_w
// indexes elements globally, so rows of odd k starting mid-word are fine).
fn load_w4(rows: vec4<u32>, col: u32, k: u32) -> vec4<f32> {
    if (col >= k) {
        return vec4<f32>();
    }
    return vec4<f32>(
        load_w(rows.x + col),
        load_w(rows.y + col),
        load_w(rows.z + col),
        load_w(rows.w + col),
    );
}

// Sums `acc` over the k-slices, halving the live slices per round through
// workgroup memory; slice 0 returns the total. Call from uniform control
// flow after the k loop (it starts with a barrier).
fn reduce_slices(acc: Block, s: u32, l: u32) -> Block {
    var v = acc;
    for (var h = KS / 2u; h > 0u; h /= 2u) {
        workgroupBarrier();
        if (s >= h && s < 2u * h) {
            let o = ((s - h) * SLICE + l) * 4u;
            smem[o] = v.r0;
            smem[o + 1u] = v.r1;
            smem[o + 2u] = v.r2;
            smem[o + 3u] = v.r3;
        }
        workgroupBarrier();
        if (s < h) {
            let o = (s * SLICE + l) * 4u;
            v = Block(v.r0 + smem[o], v.r1 + smem[o + 1u], v.r2 + smem[o + 2u], v.r3 + smem[o + 3u]);
        }
    }
    return v;
}

// y[row, col .. col + 3] = v + bias, skipping outputs outside [m, n].
fn store_row(v: vec4<f32>, row: u32, col: u32) {
    let n = params.n;
    if (row >= params.m) {
        return;
    }
    var b = vec4<f32>();
    if (params.has_bias != 0u) {
        let last = n - 1u;
        b = vec4<f32>(
            bias[min(col, last)],
            bias[min(col + 1u, last)],
            bias[min(col + 2u, last)],
            bias[min(col + 3u, last)],
        );
    }
    let r = v + b;
    let o = row * n + col;
    if (col + 3u < n) {
        y[o] = r.x;
        y[o + 1u] = r.y;
        y[o + 2u] = r.z;
        y[o + 3u] = r.w;
    } else {
        if (col < n) {
            y[o] = r.x;
        }
        if (col + 1u < n) {
            y[o + 1u] = r.y;
        }
        if (col + 2u < n) {
            y[o + 2u] = r.z;
        }
    }
}

// Stores block `c` whose top-left output is (row, col).
fn store_block(c: Block, row: u32, col: u32) {
    store_row(c.r0, row, col);
    store_row(c.r1, row + 1u, col);
    store_row(c.r2, row + 2u, col);
    store_row(c.r3, row + 3u, col);
}

// Stages one step at `tb` (x tile; w at tb + TILE_LEN): the thread's
// vec4s at its offsets o0 and (LD = 2) o1 in the tiles.
fn stage(tb: u32, o0: u32, o1: u32, x0: vec4<f32>, w0: vec4<f32>, x1: vec4<f32>, w1: vec4<f32>) {
    smem[tb + o0] = x0;
    smem[tb + TILE_LEN + o0] = w0;
    if (LD == 2u) {
        smem[tb + o1] = x1;
        smem[tb + TILE_LEN + o1] = w1;
    }
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let m = params.m;
    let n = params.n;
    let k = params.k;
    let tiles_n = (n + TILE - 1u) / TILE;
    let tile = wid.y * nwg.x + wid.x;
    if (tile >= tiles_n * ((m + TILE - 1u) / TILE)) {
        return;
    }
    let m0 = (tile / tiles_n) * TILE;
    let n0 = (tile % tiles_n) * TILE;

    let s = li / SLICE;  // k-slice
    let l = li % SLICE;  // thread within the slice
    let tx = l % P;
    let ty = l / P;
    let base = s * 2u * TILE_LEN;  // this slice's x tile in buffer 0; w follows

    // Staging role: k offsets q (and q + BKL) in the step, rows 4·rg .. 4·rg + 3.
    let q = l % BKL;
    let rg = l / BKL;
    let o0 = q * S + (rg ^ sw(q));
    let o1 = (q + BKL) * S + (rg ^ sw(q + BKL));
    let r = 4u * rg;
    let xr = vec4<u32>(
        min(m0 + r, m - 1u),
        min(m0 + r + 1u, m - 1u),
        min(m0 + r + 2u, m - 1u),
        min(m0 + r + 3u, m - 1u),
    ) * k;
    let wr = vec4<u32>(
        min(n0 + r, n - 1u),
        min(n0 + r + 1u, n - 1u),
        min(n0 + r + 2u, n - 1u),
        min(n0 + r + 3u, n - 1u),
    ) * k;

    let steps = (k + BK - 1u) / BK;
    let iters = (steps + KS - 1u) / KS;
    let stride = KS * BK;
    var col = s * BK + q;  // the first k column this thread stages next
    var xv0 = load_x4(xr, col, k);
    var wv0 = load_w4(wr, col, k);
    // LD = 1 never reads these; they stay zero.
    var xv1 = vec4<f32>();
    var wv1 = vec4<f32>();
    if (LD == 2u) {
        xv1 = load_x4(xr, col + BKL, k);
        wv1 = load_w4(wr, col + BKL, k);
    }
    if (NB == 2u) {
        // Step 0 into buffer 0; step 1 into registers.
        stage(base, o0, o1, xv0, wv0, xv1, wv1);
        col += stride;
        xv0 = load_x4(xr, col, k);
        wv0 = load_w4(wr, col, k);
        if (LD == 2u) {
            xv1 = load_x4(xr, col + BKL, k);
            wv1 = load_w4(wr, col + BKL, k);
        }
    }

    // TM = 4 uses c00 only; the other blocks are dead code there.
    var c00 = Block();
    var c01 = Block();
    var c10 = Block();
    var c11 = Block();
    for (var it = 0u; it < iters; it++) {
        // The tiles computed in this step.
        var tb = base;
        workgroupBarrier();
        if (NB == 2u) {
            // Step `it` is staged in buffer it % 2 and every read of the
            // other buffer (step it - 1) is done: stage step it + 1 there
            // (zeros past the last step; never read).
            tb = base + (it & 1u) * BUF_LEN;
            stage(base + ((it + 1u) & 1u) * BUF_LEN, o0, o1, xv0, wv0, xv1, wv1);
        } else {
            // The previous step's reads are done: stage this step.
            stage(base, o0, o1, xv0, wv0, xv1, wv1);
            workgroupBarrier();
        }
        // Prefetch the next step not yet in registers (zeros past k) while
        // this one computes.
        col += stride;
        xv0 = load_x4(xr, col, k);
        wv0 = load_w4(wr, col, k);
        if (LD == 2u) {
            xv1 = load_x4(xr, col + BKL, k);
            wv1 = load_w4(wr, col + BKL, k);
        }
        for (var kq = 0u; kq < BK; kq++) {
            let c = sw(kq);
            let xo = tb + kq * S + (ty ^ c);
            let wo = tb + TILE_LEN + kq * S + (tx ^ c);
            let a0 = smem[xo];
            let b0 = smem[wo];
            c00 = outer(c00, a0, b0);
            if (TM == 8u) {
                // P is a multiple of 8, so (ty + P) ^ c = (ty ^ c) + P.
                let a1 = smem[xo + P];
                let b1 = smem[wo + P];
                c01 = outer(c01, a0, b1);
                c10 = outer(c10, a1, b0);
                c11 = outer(c11, a1, b1);
            }
        }
    }

    if (KS > 1u) {
        c00 = reduce_slices(c00, s, l);
        if (TM == 8u) {
            c01 = reduce_slices(c01, s, l);
            c10 = reduce_slices(c10, s, l);
            c11 = reduce_slices(c11, s, l);
        }
    }
    if (s == 0u) {
        let row = m0 + 4u * ty;
        let col0 = n0 + 4u * tx;
        store_block(c00, row, col0);
        if (TM == 8u) {
            let h = TILE / 2u;
            store_block(c01, row, col0 + h);
            store_block(c10, row + h, col0);
            store_block(c11, row + h, col0 + h);
        }
    }
}
