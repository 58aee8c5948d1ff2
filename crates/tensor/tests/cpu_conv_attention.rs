//! Every CPU tier of `short_conv` and `attention` against their f64
//! references (`kernels/short_conv.md`, `kernels/attention.md`), on the
//! shared edge shapes, misaligned inputs and 1–3 threads. Tolerances:
//! `testing::tolerance::{SHORT_CONV, ATTENTION}`.

mod common;

use common::{pad_intact, padded, padded_out, pool};
use half::bf16;
use tensor::cpu::attention::{self, AttnDims, KT};
use tensor::cpu::conv;
use tensor::cpu::{Isa, IsaToken};
use tensor::testing::expect_avx512bf16;
use tensor::testing::tolerance::{
    ATTENTION, ATTENTION_BF16, ATTENTION_LARGE_LOGITS, AttnFailure, AttnStats, ErrorStats,
    SHORT_CONV, Tolerance,
};
use tensor::testing::{expected_isas_present, rng::Rng, shapes};

// ---------------------------------------------------------------- short conv

#[derive(Clone, Copy, Debug)]
struct ConvCase {
    isa: Isa,
    d: usize,
    l: usize,
    t: usize,
    /// Start offset (elements) of every input and output in a larger buffer.
    off: usize,
}

/// Runs one call in a buffer at `off`, sentinel padding around the outputs.
fn conv_call(
    isa: Isa,
    bcx: &[f32],
    w: &[f32],
    state: &mut [f32],
    d: usize,
    l: usize,
    off: usize,
) -> Vec<f32> {
    let t = bcx.len() / (3 * d);
    let tok = IsaToken::new(isa).unwrap();
    let (bb, wb, mut sb) = (padded(bcx, off), padded(w, off), padded(state, off));
    let mut ob = padded_out(t * d, off);
    let sl = state.len();
    conv::short_conv(
        tok,
        &bb[off..off + bcx.len()],
        &wb[off..off + w.len()],
        &mut sb[off..off + sl],
        &mut ob[off..off + t * d],
        d,
        l,
    );
    assert!(
        pad_intact(&ob, off, t * d) && pad_intact(&sb, off, sl),
        "{isa} d={d} l={l} t={t}: wrote outside out/state"
    );
    state.copy_from_slice(&sb[off..off + sl]);
    ob[off..off + t * d].to_vec()
}

fn conv_inputs(c: &ConvCase, tag: &str) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let mut rng = Rng::for_case(tag, &format!("{c:?}"));
    let bcx = rng.vec(c.t * 3 * c.d, 1.0);
    let w = rng.vec(c.d * c.l, 0.7);
    // A mid-sequence state (zeros only at sequence start).
    let state = rng.vec((c.l - 1) * c.d, 1.0);
    (bcx, w, state)
}

fn conv_run(c: ConvCase) -> ErrorStats {
    let (bcx, w, state0) = conv_inputs(&c, "short_conv");
    let mut state = state0.clone();
    let got = conv_call(c.isa, &bcx, &w, &mut state, c.d, c.l, c.off);
    let want = conv::reference::short_conv(&bcx, &w, &state0, c.d, c.l);
    let st = SHORT_CONV
        .check(&got, &want.out, &want.mag)
        .unwrap_or_else(|e| {
            panic!(
                "{c:?}: first bad index {} (row {}, channel {}): got {}, want {}, bound {:e}",
                e.index,
                e.index / c.d,
                e.index % c.d,
                e.got,
                e.want,
                e.bound
            )
        });
    if let Err(e) = Tolerance::Exact.check(&state, &want.state, &[]) {
        panic!(
            "{c:?}: state index {}: got {}, want {} (must be bit-exact)",
            e.index, e.got, e.want
        );
    }
    st
}

fn short_conv_shapes(isa: Isa) -> ErrorStats {
    let v = isa.lanes();
    let mut worst = ErrorStats::default();
    let mut ds: Vec<usize> = shapes::edge_lengths(v, 64)
        .into_iter()
        .filter(|&d| d > 0)
        .collect();
    ds.extend([127, 129]);
    for &d in &ds {
        // l = 9 shrinks the weight block below 64 channels; l = 40 sends
        // wide ISAs down the scalar path (l·LANES > the block's capacity).
        for l in [1usize, 2, 3, 4, 9, 40] {
            if l > 4 && d > 65 {
                continue;
            }
            let mut ts = vec![1, l.saturating_sub(1).max(1), l, l + 1, 31, 32, 33, 100];
            ts.dedup();
            for t in ts {
                let st = conv_run(ConvCase {
                    isa,
                    d,
                    l,
                    t,
                    off: 0,
                });
                worst.max_abs = worst.max_abs.max(st.max_abs);
                worst.max_rel = worst.max_rel.max(st.max_rel);
            }
        }
    }
    // Misaligned starts of every input and output.
    for off in shapes::misaligned_offsets(v) {
        for (d, l, t) in [(4 * v + 3, 3, 1), (2 * v + 1, 4, 5), (65, 3, 37)] {
            let st = conv_run(ConvCase { isa, d, l, t, off });
            worst.max_abs = worst.max_abs.max(st.max_abs);
            worst.max_rel = worst.max_rel.max(st.max_rel);
        }
    }
    worst
}

/// One prefill of `t` rows = two chunks (every split) = `t` single-token
/// decodes, outputs and final state bit for bit; `t = 0` changes nothing.
fn short_conv_chunks(isa: Isa) {
    let v = isa.lanes();
    for d in [1, v + 1, 65] {
        for l in 1..=4 {
            let t = 70; // spans three 32-row tiles
            let c = ConvCase {
                isa,
                d,
                l,
                t,
                off: 0,
            };
            let (bcx, w, state0) = conv_inputs(&c, "short_conv_chunks");
            let rows = |a: usize, b: usize| &bcx[a * 3 * d..b * 3 * d];
            let mut s_all = state0.clone();
            let all = conv_call(isa, &bcx, &w, &mut s_all, d, l, 0);
            let splits = [1, l.saturating_sub(2), l - 1, l, 33, t - 1];
            for t1 in splits {
                let mut st = state0.clone();
                let mut got = conv_call(isa, rows(0, t1), &w, &mut st, d, l, 0);
                got.extend(conv_call(isa, rows(t1, t), &w, &mut st, d, l, 0));
                assert_eq!(
                    (bits(&got), bits(&st)),
                    (bits(&all), bits(&s_all)),
                    "{isa} d={d} l={l}: chunks {t1} + {} differ from one prefill",
                    t - t1
                );
            }
            let mut st = state0.clone();
            let mut got = Vec::new();
            for r in 0..t {
                got.extend(conv_call(isa, rows(r, r + 1), &w, &mut st, d, l, 1));
            }
            assert_eq!(
                (bits(&got), bits(&st)),
                (bits(&all), bits(&s_all)),
                "{isa} d={d} l={l}: {t} decodes differ from one prefill"
            );
            let mut st = state0.clone();
            assert!(conv_call(isa, &[], &w, &mut st, d, l, 0).is_empty());
            assert_eq!(bits(&st), bits(&state0), "{isa}: t = 0 changed the state");
        }
    }
}

fn bits(x: &[f32]) -> Vec<u32> {
    x.iter().map(|v| v.to_bits()).collect()
}

/// NaN in one channel's input stays in that channel (and its state).
fn short_conv_nan(isa: Isa) {
    let (d, l, t) = (4 * isa.lanes() + 3, 3, 6);
    let c = ConvCase {
        isa,
        d,
        l,
        t,
        off: 0,
    };
    let (mut bcx, w, state0) = conv_inputs(&c, "short_conv_nan");
    let ch = d - 2; // in the scalar tail of wide ISAs
    bcx[2 * 3 * d + 2 * d + ch] = f32::NAN; // X of row 2
    bcx[3 * d + 1] = f32::INFINITY; // B of row 1, channel 1
    let mut st = state0.clone();
    let got = conv_call(isa, &bcx, &w, &mut st, d, l, 0);
    let want = conv::reference::short_conv(&bcx, &w, &state0, d, l);
    for (i, (&g, &r)) in got.iter().zip(&want.out).enumerate() {
        assert_eq!(g.is_nan(), r.is_nan(), "{isa}: NaN pattern differs at {i}");
        assert_eq!(
            g.is_infinite(),
            r.is_infinite(),
            "{isa}: inf differs at {i}"
        );
    }
    assert!(got[2 * d + ch].is_nan() && got[4 * d + ch].is_nan() && !got[5 * d + ch].is_nan());
}

// ----------------------------------------------------------------- attention

/// Which attention kernel a case runs: the f32 kernel of a tier, or the
/// bf16 dot-product kernel (`attention_bf16`, AVX512-BF16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kern {
    isa: Isa,
    bf16: bool,
}

impl From<Isa> for Kern {
    fn from(isa: Isa) -> Kern {
        Kern { isa, bf16: false }
    }
}

impl std::fmt::Display for Kern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.bf16 {
            true => write!(f, "bf16 dot products"),
            false => write!(f, "{}", self.isa),
        }
    }
}

/// The bf16 dot-product kernel.
const BF16: Kern = Kern {
    isa: Isa::Avx512,
    bf16: true,
};

#[derive(Clone, Copy, Debug)]
struct AttnCase {
    isa: Isa,
    /// Runs `attention_bf16` (checked against the reference on q, k, v
    /// rounded to bf16, within `ATTENTION_BF16`).
    bf16: bool,
    t: usize,
    h: usize,
    h_kv: usize,
    hd: usize,
    kv_len: usize,
    causal: bool,
    threads: usize,
    /// q and k are uniform in ±`logit` (1: scores O(1); 100: up to ~1e4).
    logit: f32,
    /// Start offset (elements) of q, k, v and out in larger buffers.
    off: usize,
}

impl AttnCase {
    fn dims(&self) -> AttnDims {
        AttnDims {
            t: self.t,
            h: self.h,
            h_kv: self.h_kv,
            hd: self.hd,
            kv_len: self.kv_len,
            causal: self.causal,
            scale: 1.0 / (self.hd as f32).sqrt(),
        }
    }
}

/// KV rows past `kv_len` (a longer cache) hold NaN: reading one would
/// poison the output.
const NAN_ROWS: usize = 3;

fn attn_inputs(c: &AttnCase) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    // The f32 cases keep the seeds their tolerances were measured on.
    let key = format!("{c:?}").replace(" bf16: false,", "");
    let mut rng = Rng::for_case("attention", &key);
    let kvn = c.kv_len * c.h_kv * c.hd;
    let cap = (c.kv_len + NAN_ROWS) * c.h_kv * c.hd;
    let q = rng.vec(c.t * c.h * c.hd, c.logit);
    let mut k = rng.vec(cap, c.logit);
    let mut v = rng.vec(cap, 1.0);
    k[kvn..].fill(f32::NAN);
    v[kvn..].fill(f32::NAN);
    (q, k, v)
}

fn attn_call(
    c: &AttnCase,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    pools: &[Option<rayon::ThreadPool>],
) -> Vec<f32> {
    let off = c.off;
    let (qb, kb, vb) = (padded(q, off), padded(k, off), padded(v, off));
    let n = q.len();
    let mut ob = padded_out(n, off);
    let (pool, o) = (pools[c.threads - 1].as_ref(), &mut ob[off..off + n]);
    let (q, k, v) = (
        &qb[off..off + n],
        &kb[off..off + k.len()],
        &vb[off..off + v.len()],
    );
    match c.bf16 {
        #[cfg(target_arch = "x86_64")]
        true => {
            let tok = expect_avx512bf16().expect("bf16 cases run only where detected");
            attention::attention_bf16(tok, pool, q, k, v, o, c.dims())
        }
        _ => attention::attention(IsaToken::new(c.isa).unwrap(), pool, q, k, v, o, c.dims()),
    }
    assert!(pad_intact(&ob, off, n), "{c:?}: wrote outside out");
    ob[off..off + n].to_vec()
}

fn attn_run(c: AttnCase, pools: &[Option<rayon::ThreadPool>]) -> AttnStats {
    let (q, k, v) = attn_inputs(&c);
    let got = attn_call(&c, &q, &k, &v, pools);
    let want = attn_reference(&c, &q, &k, &v);
    attn_check(&c, &got, &want)
}

/// The f64 reference, on q, k, v rounded to bf16 for the bf16 kernel (its
/// remaining error: `p` rounded to bf16, f32 sums).
fn attn_reference(c: &AttnCase, q: &[f32], k: &[f32], v: &[f32]) -> attention::reference::AttnRef {
    if !c.bf16 {
        return attention::reference::attention(q, k, v, c.dims());
    }
    let r = |x: &[f32]| -> Vec<f32> { x.iter().map(|&x| bf16::from_f32(x).to_f32()).collect() };
    attention::reference::attention(&r(q), &r(k), &r(v), c.dims())
}

/// `got` against the reference within the case's tolerance; panics with
/// the first bad element otherwise.
fn attn_check(c: &AttnCase, got: &[f32], want: &attention::reference::AttnRef) -> AttnStats {
    let tol = match (c.bf16, c.logit > 1.0) {
        (true, _) => ATTENTION_BF16,
        (false, true) => ATTENTION_LARGE_LOGITS,
        (false, false) => ATTENTION,
    };
    match tol.check(got, &want.out, &want.mag) {
        Ok(st) => st,
        Err(AttnFailure::Element(e)) => {
            let (hd, h) = (c.hd, c.h);
            panic!(
                "{c:?}: first bad index {} (row {}, head {}, col {}): got {}, want {}, bound {:e}",
                e.index,
                e.index / (h * hd),
                e.index / hd % h,
                e.index % hd,
                e.got,
                e.want,
                e.bound
            )
        }
        Err(AttnFailure::Nmse { nmse, bound }) => {
            panic!("{c:?}: NMSE {nmse:e} over {bound:e}")
        }
    }
}

fn worse(w: &mut AttnStats, st: AttnStats) {
    w.max_abs = w.max_abs.max(st.max_abs);
    w.max_score_rel = w.max_score_rel.max(st.max_score_rel);
    w.nmse = w.nmse.max(st.nmse);
}

fn base(k: Kern) -> AttnCase {
    AttnCase {
        isa: k.isa,
        bf16: k.bf16,
        t: 1,
        h: 2,
        h_kv: 1,
        hd: 8,
        kv_len: 1,
        causal: true,
        threads: 1,
        logit: 1.0,
        off: 0,
    }
}

/// GQA ratios × head dims × rows × (prefill, KV offset) × (causal, not).
fn attention_shapes(isa: Kern) -> AttnStats {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = AttnStats::default();
    for group in 1..=4 {
        for hd in [1, 7, 8, 16, 17, 64, 72] {
            for t in [1, 2, 17, 65] {
                for kv_len in [t, t + 29] {
                    for causal in [true, false] {
                        let c = AttnCase {
                            t,
                            h: 2 * group,
                            h_kv: 2,
                            hd,
                            kv_len,
                            causal,
                            ..base(isa)
                        };
                        worse(&mut worst, attn_run(c, &pools));
                    }
                }
            }
        }
    }
    worst
}

/// Several key tiles, tile ± 1, up to ~1000 keys; decode and a prefill chunk.
fn attention_long_kv(isa: Kern) -> AttnStats {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = AttnStats::default();
    for kv_len in [KT - 1, KT, KT + 1, 2 * KT + 1, 1000] {
        for t in [1, 17] {
            for hd in [7, 64, 72] {
                for causal in [true, false] {
                    let c = AttnCase {
                        t,
                        h: 4,
                        h_kv: 2,
                        hd,
                        kv_len,
                        causal,
                        ..base(isa)
                    };
                    worse(&mut worst, attn_run(c, &pools));
                }
            }
        }
    }
    worst
}

/// 1–3 threads on each way of cutting the work (rows; heads of one row).
fn attention_threads(isa: Kern) -> AttnStats {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = AttnStats::default();
    for threads in 1..=3 {
        for (t, h, h_kv, hd, kv_len, causal) in [
            (1, 16, 8, 64, 300, true),
            (1, 32, 8, 72, 257, true),
            (2, 6, 2, 17, 400, true),
            (3, 12, 3, 16, 200, false),
            (65, 6, 2, 17, 65, true),
            (100, 4, 4, 64, 130, true),
            (129, 4, 1, 8, 129, false),
        ] {
            let c = AttnCase {
                t,
                h,
                h_kv,
                hd,
                kv_len,
                causal,
                threads,
                ..base(isa)
            };
            worse(&mut worst, attn_run(c, &pools));
        }
    }
    worst
}

/// The models' long calls, fewer heads: a 512 × 512 tile through the
/// vision tower (1024 rows, bidirectional) and a 512-token prompt (causal,
/// GQA), on 1–3 threads: many work items, many key tiles per item. One
/// reference per shape (slow under qemu) serves every thread count.
fn attention_model_lengths(isa: Kern) -> AttnStats {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = AttnStats::default();
    for (t, h, h_kv, hd, causal) in [
        (1024, 2, 2, 64, false),
        (1024, 1, 1, 72, false),
        (512, 4, 2, 64, true),
    ] {
        let c = AttnCase {
            t,
            h,
            h_kv,
            hd,
            kv_len: t,
            causal,
            ..base(isa)
        };
        let (q, k, v) = attn_inputs(&c);
        let want = attention::reference::attention(&q, &k, &v, c.dims());
        for threads in 1..=3 {
            let c = AttnCase { threads, ..c };
            let got = attn_call(&c, &q, &k, &v, &pools);
            worse(&mut worst, attn_check(&c, &got, &want));
        }
    }
    worst
}

/// q and k up to ±100: scores up to ~1e4, where a softmax without the
/// running max would overflow.
fn attention_large_logits(isa: Kern) -> AttnStats {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = AttnStats::default();
    for (t, kv_len) in [(1, 17), (1, 300), (17, 17), (17, 300), (65, 65), (65, 1000)] {
        for (causal, hd) in [(true, 64), (false, 64), (true, 72), (false, 72)] {
            let c = AttnCase {
                t,
                h: 4,
                h_kv: 2,
                hd,
                kv_len,
                causal,
                logit: 100.0,
                ..base(isa)
            };
            worse(&mut worst, attn_run(c, &pools));
        }
    }
    worst
}

/// Misaligned starts of q, k, v and out.
fn attention_misaligned(isa: Kern) -> AttnStats {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let mut worst = AttnStats::default();
    let v = isa.isa.lanes();
    for off in shapes::misaligned_offsets(v) {
        for hd in [v + 1, 64] {
            let c = AttnCase {
                t: 5,
                h: 6,
                h_kv: 3,
                hd,
                kv_len: 40,
                off,
                ..base(isa)
            };
            worse(&mut worst, attn_run(c, &pools));
        }
    }
    worst
}

/// kv_len = 0 gives zeros; NaN and Inf reach exactly the outputs the
/// reference says (checked by NaN/inf pattern and value).
fn attention_special(isa: Kern) {
    let pools: Vec<_> = (1..=3).map(pool).collect();
    let c = AttnCase {
        t: 3,
        h: 4,
        h_kv: 2,
        hd: 9,
        kv_len: 0,
        causal: false,
        ..base(isa)
    };
    let (q, k, v) = attn_inputs(&c);
    assert!(
        attn_call(&c, &q, &k, &v, &pools).iter().all(|&x| x == 0.0),
        "{isa}: kv_len = 0 must give zeros"
    );
    let c = AttnCase {
        t: 6,
        kv_len: 10,
        causal: true,
        ..c
    };
    let (hd, h, h_kv) = (c.hd, c.h, c.h_kv);
    type Poke = fn(&mut [f32], &mut [f32], &mut [f32], usize, usize, usize);
    let pokes: [(&str, Poke); 5] = [
        ("NaN in q row 2 head 1", |q, _, _, hd, h, _| {
            q[(2 * h + 1) * hd + 3] = f32::NAN
        }),
        ("NaN in k row 6 head 0", |_, k, _, hd, _, hk| {
            k[6 * hk * hd + 2] = f32::NAN
        }),
        ("NaN in v row 7 head 1", |_, _, v, hd, _, hk| {
            v[(7 * hk + 1) * hd + 4] = f32::NAN
        }),
        ("+inf in k row 5 head 1", |_, k, _, hd, _, hk| {
            k[(5 * hk + 1) * hd] = f32::INFINITY
        }),
        ("-inf in v row 4 head 0", |_, _, v, hd, _, hk| {
            v[4 * hk * hd + 1] = f32::NEG_INFINITY
        }),
    ];
    for (what, poke) in pokes {
        let (mut q, mut k, mut v) = attn_inputs(&c);
        poke(&mut q, &mut k, &mut v, hd, h, h_kv);
        let got = attn_call(&c, &q, &k, &v, &pools);
        let want = attn_reference(&c, &q, &k, &v);
        assert!(
            want.out.iter().any(|x| !x.is_finite()),
            "{what}: the case should reach the output"
        );
        let tol = if c.bf16 { ATTENTION_BF16 } else { ATTENTION };
        if let Err(e) = tol.check(&got, &want.out, &want.mag) {
            panic!("{isa} {what}: {e:?}");
        }
    }
}

macro_rules! isa_tests {
    ($isa:expr => $($name:ident: $body:ident $(-> $what:literal)?;)*) => {$(
        #[test]
        fn $name() {
            expected_isas_present();
            if !$isa.is_available() {
                println!("skip: {} not available on this host", $isa);
                return;
            }
            #[allow(clippy::let_unit_value)]
            let _st = $body($isa.into());
            $(println!("{} {}: {:?}", $what, $isa, _st);)?
        }
    )*};
}

isa_tests! { Isa::Scalar =>
    short_conv_scalar_shapes: short_conv_shapes -> "short_conv shapes";
    short_conv_scalar_chunks: short_conv_chunks;
    short_conv_scalar_nan: short_conv_nan;
    attention_scalar_shapes: attention_shapes -> "attention shapes";
    attention_scalar_long_kv: attention_long_kv -> "attention long kv";
    attention_scalar_threads: attention_threads -> "attention threads";
    attention_scalar_model_lengths: attention_model_lengths -> "attention model lengths";
    attention_scalar_large_logits: attention_large_logits -> "attention large logits";
    attention_scalar_misaligned: attention_misaligned -> "attention misaligned";
    attention_scalar_special: attention_special;
}
isa_tests! { Isa::Avx2 =>
    short_conv_avx2_shapes: short_conv_shapes -> "short_conv shapes";
    short_conv_avx2_chunks: short_conv_chunks;
    short_conv_avx2_nan: short_conv_nan;
    attention_avx2_shapes: attention_shapes -> "attention shapes";
    attention_avx2_long_kv: attention_long_kv -> "attention long kv";
    attention_avx2_threads: attention_threads -> "attention threads";
    attention_avx2_model_lengths: attention_model_lengths -> "attention model lengths";
    attention_avx2_large_logits: attention_large_logits -> "attention large logits";
    attention_avx2_misaligned: attention_misaligned -> "attention misaligned";
    attention_avx2_special: attention_special;
}
isa_tests! { Isa::Avx512 =>
    short_conv_avx512_shapes: short_conv_shapes -> "short_conv shapes";
    short_conv_avx512_chunks: short_conv_chunks;
    short_conv_avx512_nan: short_conv_nan;
    attention_avx512_shapes: attention_shapes -> "attention shapes";
    attention_avx512_long_kv: attention_long_kv -> "attention long kv";
    attention_avx512_threads: attention_threads -> "attention threads";
    attention_avx512_model_lengths: attention_model_lengths -> "attention model lengths";
    attention_avx512_large_logits: attention_large_logits -> "attention large logits";
    attention_avx512_misaligned: attention_misaligned -> "attention misaligned";
    attention_avx512_special: attention_special;
}
isa_tests! { Isa::Neon =>
    short_conv_neon_shapes: short_conv_shapes -> "short_conv shapes";
    short_conv_neon_chunks: short_conv_chunks;
    short_conv_neon_nan: short_conv_nan;
    attention_neon_shapes: attention_shapes -> "attention shapes";
    attention_neon_long_kv: attention_long_kv -> "attention long kv";
    attention_neon_threads: attention_threads -> "attention threads";
    attention_neon_model_lengths: attention_model_lengths -> "attention model lengths";
    attention_neon_large_logits: attention_large_logits -> "attention large logits";
    attention_neon_misaligned: attention_misaligned -> "attention misaligned";
    attention_neon_special: attention_special;
}

macro_rules! bf16_tests {
    ($($name:ident: $body:ident;)*) => {$(
        #[test]
        fn $name() {
            if expect_avx512bf16().is_none() {
                println!("skip: AVX512-BF16 not available on this host");
                return;
            }
            println!("{BF16}: {:?}", $body(BF16));
        }
    )*};
}

bf16_tests! {
    attention_bf16_shapes: attention_shapes;
    attention_bf16_long_kv: attention_long_kv;
    attention_bf16_threads: attention_threads;
    attention_bf16_model_lengths: attention_model_lengths;
    attention_bf16_large_logits: attention_large_logits;
    attention_bf16_misaligned: attention_misaligned;
}

#[test]
fn attention_bf16_special() {
    if expect_avx512bf16().is_some() {
        attention_special(BF16);
    }
}

/// Rough timings of the real shapes on every tier (`cargo test --release -p
/// tensor --test cpu_conv_attention timing -- --ignored --nocapture`).
#[test]
#[ignore = "timing, not a check"]
fn conv_attention_timing() {
    use std::time::Instant;
    fn best<F: FnMut()>(mut f: F) -> f64 {
        f();
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t0 = Instant::now();
            let mut n = 0;
            while t0.elapsed().as_secs_f64() < 0.05 {
                f();
                n += 1;
            }
            best = best.min(t0.elapsed().as_secs_f64() / n as f64);
        }
        best * 1e6
    }
    let pools: Vec<_> = (1..=2).map(pool).collect();
    // LFM_TIMING=conv|attention narrows the run (e.g. under perf).
    let only = std::env::var("LFM_TIMING").unwrap_or_default();
    for isa in expected_isas_present() {
        let tok = IsaToken::new(isa).unwrap();
        for (t, kv_len) in [(512, 512), (1, 512), (1, 4096)] {
            if only == "conv" {
                break;
            }
            for threads in 1..=2 {
                let a = AttnDims {
                    t,
                    h: 16,
                    h_kv: 8,
                    hd: 64,
                    kv_len,
                    causal: true,
                    scale: 0.125,
                };
                let mut rng = Rng::for_case("timing", "");
                let q = rng.vec(t * 16 * 64, 1.0);
                let k = rng.vec(kv_len * 8 * 64, 1.0);
                let v = rng.vec(kv_len * 8 * 64, 1.0);
                let mut out = vec![0.0; q.len()];
                let p = pools[threads - 1].as_ref();
                let us = best(|| attention::attention(tok, p, &q, &k, &v, &mut out, a));
                println!(
                    "attention {isa} t={t} kv_len={kv_len} h=16 h_kv=8 hd=64 threads={threads}: {us:.1} µs"
                );
            }
        }
        for (t, d) in [(1, 2048), (512, 2048)] {
            if only == "attention" || (only == "conv" && t > 1) {
                break;
            }
            let mut rng = Rng::for_case("timing", "");
            let bcx = rng.vec(t * 3 * d, 1.0);
            let w = rng.vec(d * 3, 1.0);
            let mut state = rng.vec(2 * d, 1.0);
            let mut out = vec![0.0; t * d];
            let us = best(|| conv::short_conv(tok, &bcx, &w, &mut state, &mut out, d, 3));
            println!("short_conv {isa} t={t} d={d} l=3: {us:.2} µs");
        }
    }
}
