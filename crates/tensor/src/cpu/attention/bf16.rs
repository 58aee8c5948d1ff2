//! Attention on bf16 dot products (`vdpbf16ps`) for the `bf16dot` weight
//! format (`kernels/attention.md`): the query-block path of `blocked.rs` with
//! `q`, `k`, `p` and `v` rounded to bf16 (nearest even) and every product
//! summed in f32, as a bf16 flash attention does. Softmax, the running
//! max and sums, and the output stay f32. Every item takes the query-block
//! path, one-row items too (the CPU backend keeps decode, `t = 1`, on the
//! f32 kernel).
//!
//! Per call, K is packed once into pair words over `hd`
//! (`kb[g][j][c/2]`) and V into pair words over keys (`vb[g][j/2][c]`),
//! zero-padded to whole pairs. Per query block, `q` goes into pair words
//! over `hd` with the queries in lanes (`qtp[c/2][q]`), so a tile's scores
//! are `blocked.rs`'s `scores_t` with half the steps: one `vdpbf16ps` per two
//! features, the key's pair word broadcast. After the f32 softmax, `p` is
//! packed into pair words over keys (`pp[j/2][q]`) and `p·v` is `pv_t`'s
//! transposed accumulation, one `vdpbf16ps` per two keys with the value
//! pair word broadcast.

use std::cell::Cell;

use half::bf16;

use rayon::prelude::*;

use super::blocked::{PvTile, gather_q, pv_rest, rows_finite, scatter_out, softmax_tile};
use super::{AttnDims, Item, KT};
use crate::cpu::dispatch::{Avx512, Avx512Bf16, Bf16Op};
use crate::cpu::matmul::bf16dot::pair;
use crate::cpu::simd::Simd;

thread_local! {
    /// The calling thread's packed K and V, grown once and reused.
    static PACK: Cell<Vec<u32>> = const { Cell::new(Vec::new()) };
}

/// f32 lanes of an AVX-512 vector.
const L: usize = 16;

/// The pair word of `lo` and `hi` rounded to bf16 (nearest even: the
/// scalar twin of `vcvtne2ps2bf16` for the tails; a denormal input the
/// vector rounding flushes to 0 may stay denormal here, and `vdpbf16ps`
/// reads both as 0).
fn pair_f32(lo: f32, hi: f32) -> u32 {
    pair(bf16::from_f32(lo), bf16::from_f32(hi))
}

/// One call's packed K and V (see the module docs) and the token that
/// runs on them.
#[derive(Clone, Copy)]
struct Bf16Attn<'a> {
    tok: Avx512Bf16,
    /// `[h_kv][kv_len][hd/2]` pair words over `hd`.
    kb: &'a [u32],
    /// `[h_kv][kv_len/2][hd]` pair words over keys.
    vb: &'a [u32],
}

/// Entry from [`super::attention_bf16`]: packs K and V, then runs the
/// work items.
pub(super) fn run(
    tok: Avx512Bf16,
    pool: Option<&rayon::ThreadPool>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    a: AttnDims,
) {
    let (hd, h_kv, kv_len) = (a.hd, a.h_kv, a.kv_len);
    let (hp2, kvp2) = (hd.div_ceil(2), kv_len.div_ceil(2));
    let (kn, vn) = (kv_len * hp2, kvp2 * hd);
    let mut pack = PACK.take();
    pack.resize(h_kv * (kn + vn), 0);
    {
        let (kb, vb) = pack.split_at_mut(h_kv * kn);
        let job = |(g, (kg, vg)): (usize, (&mut [u32], &mut [u32]))| {
            tok.dispatch(PackHead { k, v, a, g, kg, vg })
        };
        let (kc, vc) = (kn.max(1), vn.max(1));
        match pool.filter(|p| p.current_num_threads() > 1 && h_kv > 1) {
            Some(p) => p.install(|| {
                kb.par_chunks_mut(kc)
                    .zip(vb.par_chunks_mut(vc))
                    .enumerate()
                    .for_each(job)
            }),
            None => kb
                .chunks_mut(kc)
                .zip(vb.chunks_mut(vc))
                .enumerate()
                .for_each(job),
        }
    }
    let (kb, vb) = pack.split_at(h_kv * kn);
    let ctx = Bf16Attn { tok, kb, vb };
    super::drive(pool, out, a, &|it, out, scratch| {
        tok.dispatch(ItemBf16 {
            ctx,
            q,
            v,
            a,
            it,
            out,
            scratch,
        })
    });
    PACK.set(pack);
}

/// Packs kv head `g`: `kg` = its keys as pair words over `hd`, `vg` = its
/// values as pair words over keys (zero pads).
struct PackHead<'a> {
    k: &'a [f32],
    v: &'a [f32],
    a: AttnDims,
    g: usize,
    kg: &'a mut [u32],
    vg: &'a mut [u32],
}

impl Bf16Op for PackHead<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, tok: Avx512Bf16) {
        pack_head(tok, self)
    }
}

#[inline(always)]
fn pack_head(tok: Avx512Bf16, op: PackHead<'_>) {
    let PackHead { k, v, a, g, kg, vg } = op;
    let s = tok.avx512();
    let (hd, h_kv, kv_len) = (a.hd, a.h_kv, a.kv_len);
    let hp2 = hd.div_ceil(2);
    fn row(x: &[f32], j: usize, (h_kv, g, hd): (usize, usize, usize)) -> &[f32] {
        &x[(j * h_kv + g) * hd..][..hd]
    }
    let at = (h_kv, g, hd);
    for j in 0..kv_len {
        let (src, dst) = (row(k, j, at), &mut kg[j * hp2..][..hp2]);
        let mut c = 0;
        while c + 2 * L <= hd {
            // SAFETY: c + 32 ≤ hd = src.len(); c/2 + 16 ≤ hp2 = dst.len().
            unsafe {
                tok.round_pairs(
                    src.as_ptr().wrapping_add(c),
                    dst.as_mut_ptr().wrapping_add(c / 2),
                )
            };
            c += 2 * L;
        }
        for cp in c / 2..hp2 {
            dst[cp] = pair_f32(src[2 * cp], src.get(2 * cp + 1).copied().unwrap_or(0.0));
        }
    }
    // The partner of an odd last key: zeros.
    let zeros = if kv_len % 2 == 1 {
        vec![0.0f32; hd]
    } else {
        Vec::new()
    };
    for jp in 0..kv_len.div_ceil(2) {
        let ra = row(v, 2 * jp, at);
        let rb = if 2 * jp + 1 < kv_len {
            row(v, 2 * jp + 1, at)
        } else {
            &zeros
        };
        let dst = &mut vg[jp * hd..][..hd];
        let mut c = 0;
        while c + L <= hd {
            // SAFETY: c + 16 ≤ hd, the length of ra, rb and dst.
            let x = unsafe { s.load(ra.as_ptr().wrapping_add(c)) };
            // SAFETY: as above.
            let y = unsafe { s.load(rb.as_ptr().wrapping_add(c)) };
            // SAFETY: as above.
            unsafe {
                tok.store_pairs(dst.as_mut_ptr().wrapping_add(c), tok.interleave_pairs(x, y))
            };
            c += L;
        }
        for cc in c..hd {
            dst[cc] = pair_f32(ra[cc], rb[cc]);
        }
    }
}

/// One work item, every kv head's queries as one query block (a one-row
/// item too: lanes go unused, the rounding stays the same everywhere). `k`
/// is read from the packed copy; `v` (f32) serves only the rare per-query
/// leftovers.
struct ItemBf16<'a> {
    ctx: Bf16Attn<'a>,
    q: &'a [f32],
    v: &'a [f32],
    a: AttnDims,
    it: Item,
    out: &'a mut [f32],
    scratch: &'a mut Vec<f32>,
}

impl Bf16Op for ItemBf16<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self, tok: Avx512Bf16) {
        let _ = tok; // the same token as `ctx.tok`
        item_bf16(self)
    }
}

#[inline(always)]
fn item_bf16(op: ItemBf16<'_>) {
    let ItemBf16 {
        ctx,
        q,
        v,
        a,
        it,
        out,
        scratch,
    } = op;
    let group = a.h / a.h_kv;
    let nq_max = (it.r1 - it.r0) * group.min(it.hb - it.ha);
    let need = scratch_len(a.hd, nq_max.next_multiple_of(L));
    if scratch.len() < need {
        scratch.resize(need, 0.0);
    }
    for g in it.ha / group..=(it.hb - 1) / group {
        let (ga, gb) = (it.ha.max(g * group), it.hb.min((g + 1) * group));
        let nqp = ((it.r1 - it.r0) * (gb - ga)).next_multiple_of(L);
        let need = scratch_len(a.hd, nqp);
        group_bf16(ctx, v, a, it, (g, ga, gb), (q, out), &mut scratch[..need]);
    }
}

/// f32 scratch of one query block: `acc [hd, nqp]`, scores `[KT, nqp]`,
/// three per-lane vectors, then (as u32 pair words) `qtp [⌈hd/2⌉, nqp]`
/// and `pp [KT/2, nqp]`.
fn scratch_len(hd: usize, nqp: usize) -> usize {
    (hd + KT + 3 + hd.div_ceil(2) + KT / 2) * nqp
}

/// `blocked.rs`'s query-block path for kv head `g` (query heads `ga..gb`) on
/// bf16 pair words; `v` (f32) serves only the rare per-query leftovers
/// ([`pv_rest`]).
#[inline(always)]
fn group_bf16(
    ctx: Bf16Attn<'_>,
    v: &[f32],
    a: AttnDims,
    it: Item,
    (g, ga, gb): (usize, usize, usize),
    (q, out): (&[f32], &mut [f32]),
    scratch: &mut [f32],
) {
    let AttnDims {
        t,
        h_kv,
        hd,
        kv_len,
        causal,
        scale,
        ..
    } = a;
    let (tok, s) = (ctx.tok, ctx.tok.avx512());
    let nh = gb - ga;
    let nq = (it.r1 - it.r0) * nh;
    let nqp = nq.next_multiple_of(L);
    let (hp2, kvp2) = (hd.div_ceil(2), kv_len.div_ceil(2));
    let (acc, rest) = scratch.split_at_mut(hd * nqp);
    let (st, rest) = rest.split_at_mut(KT * nqp);
    let (ms, rest) = rest.split_at_mut(nqp);
    let (ls, rest) = rest.split_at_mut(nqp);
    let (cr, rest) = rest.split_at_mut(nqp);
    let (qtp, pp) = bytemuck::cast_slice_mut::<f32, u32>(rest).split_at_mut(hp2 * nqp);
    let seen = |r: usize| if causal { kv_len - t + r + 1 } else { kv_len };

    // q transposed into acc (f32), then into pair words over hd.
    gather_q(q, a, it, (ga, gb), nqp, acc);
    for cp in 0..hp2 {
        for qv in (0..nqp).step_by(L) {
            let lo = &acc[2 * cp * nqp + qv..][..L];
            // SAFETY: a whole vector of acc row 2cp (row 2cp + 1 if any).
            let x = unsafe { s.load(lo.as_ptr()) };
            let y = match acc.get((2 * cp + 1) * nqp + qv..(2 * cp + 1) * nqp + qv + L) {
                // SAFETY: as above.
                Some(hi) => unsafe { s.load(hi.as_ptr()) },
                None => s.zero(),
            };
            let dst = &mut qtp[cp * nqp + qv..][..L];
            // SAFETY: dst holds 16 words.
            unsafe { tok.store_pairs(dst.as_mut_ptr(), tok.interleave_pairs(x, y)) };
        }
    }
    ms.fill(f32::NEG_INFINITY);
    ls.fill(0.0);
    acc.fill(0.0);
    let kb = &ctx.kb[g * kv_len * hp2..][..kv_len * hp2];
    let vb = &ctx.vb[g * kvp2 * hd..][..kvp2 * hd];
    let last = seen(it.r1 - 1);
    for j0 in (0..last).step_by(KT) {
        let nmax = last.min(j0 + KT) - j0;
        let nk = |qi: usize| seen(it.r0 + qi / nh).min(j0 + KT).saturating_sub(j0);
        scores_bf16(
            tok,
            (qtp, nqp, hp2),
            &kb[j0 * hp2..(j0 + nmax) * hp2],
            scale,
            st,
        );
        softmax_tile(s, (st, nqp, nq, nmax), causal.then_some(&nk), (ms, ls, cr));
        // p into pair words over keys (a zero partner past nmax).
        let np2 = nmax.div_ceil(2);
        for jp in 0..np2 {
            for qv in (0..nqp).step_by(L) {
                // SAFETY: key 2jp < nmax ≤ KT, qv + 16 ≤ nqp: inside st.
                let x = unsafe { s.load(st.as_ptr().wrapping_add(2 * jp * nqp + qv)) };
                let y = if 2 * jp + 1 < nmax {
                    // SAFETY: as above, key 2jp + 1 < nmax.
                    unsafe { s.load(st.as_ptr().wrapping_add((2 * jp + 1) * nqp + qv)) }
                } else {
                    s.zero()
                };
                let dst = &mut pp[jp * nqp + qv..][..L];
                // SAFETY: dst holds 16 words.
                unsafe { tok.store_pairs(dst.as_mut_ptr(), tok.interleave_pairs(x, y)) };
            }
        }
        // Masked keys (and a pair's partner past nmax) have p = 0; their
        // value rows join the vector pass only if finite (0 · inf = NaN).
        let lo = nk(0);
        let hi = (2 * np2).min(kv_len - j0);
        let vp = v[(j0 * h_kv + g) * hd..].as_ptr();
        let kstride = h_kv * hd;
        let pairs = if lo >= hi || rows_finite(vp, kstride, hd, lo, hi) {
            np2
        } else {
            lo / 2
        };
        pv_bf16(
            tok,
            (pp, nqp),
            &vb[j0 / 2 * hd..][..np2 * hd],
            hd,
            pairs,
            cr,
            acc,
        );
        let pt = PvTile {
            st: st.as_ptr(),
            nqp,
            vp,
            kstride,
            hd,
        };
        pv_rest(pt, nq, 2 * pairs, &nk, acc);
    }
    scatter_out(s, a, it, (ga, gb), (acc, ls, nqp), out);
}

/// `st[j · nqp + q] = scale · Σ_c qtp[c, q] · kb[j, c]` over pair words:
/// eight keys × two query vectors (16 accumulators) per block, one
/// `vdpbf16ps` per two features with the key's pair word broadcast.
#[inline(always)]
fn scores_bf16(
    tok: Avx512Bf16,
    (qtp, nqp, hp2): (&[u32], usize, usize),
    kb: &[u32], // [n, hp2]: the tile's keys
    scale: f32,
    st: &mut [f32],
) {
    const KB: usize = 8;
    let s = tok.avx512();
    let n = kb.len() / hp2.max(1);
    assert!(qtp.len() >= hp2 * nqp && st.len() >= n * nqp);
    let (qp, sp, sc) = (qtp.as_ptr(), st.as_mut_ptr(), s.splat(scale));
    let mut j = 0;
    while j < n {
        let kbn = KB.min(n - j);
        let mut qv = 0;
        while qv < nqp {
            let nv = if qv + 2 * L <= nqp { 2 } else { 1 };
            if kbn == KB && nv == 2 {
                score_block::<KB, 2>(tok, (qp, nqp, hp2), &kb[j * hp2..], qv, (sp, j, sc));
            } else {
                for u in 0..kbn {
                    for w in 0..nv {
                        let kr = &kb[(j + u) * hp2..];
                        score_block::<1, 1>(tok, (qp, nqp, hp2), kr, qv + w * L, (sp, j + u, sc));
                    }
                }
            }
            qv += nv * L;
        }
        j += kbn;
    }
}

/// `KB` keys × `QV` query vectors of [`scores_bf16`]. The caller checked
/// `qtp` (`hp2 · nqp` words), `kb` (`KB · hp2` words from the block's
/// first key) and `st` (rows `j..j + KB`).
#[inline(always)]
fn score_block<const KB: usize, const QV: usize>(
    tok: Avx512Bf16,
    (qp, nqp, hp2): (*const u32, usize, usize),
    kb: &[u32],
    qv: usize,
    (sp, j, sc): (*mut f32, usize, <Avx512 as Simd>::V),
) {
    let s = tok.avx512();
    assert!(kb.len() >= KB * hp2);
    let kr: [*const u32; KB] = std::array::from_fn(|u| kb.as_ptr().wrapping_add(u * hp2));
    let mut a = [[s.zero(); QV]; KB];
    for cp in 0..hp2 {
        let mut x = [tok.splat_pair(0); QV];
        for (w, xw) in x.iter_mut().enumerate() {
            // SAFETY: cp < hp2, qv + (w + 1)·16 ≤ nqp: inside qtp.
            *xw = unsafe { tok.load_pairs(qp.wrapping_add(cp * nqp + qv + w * L)) };
        }
        for (au, &ku) in a.iter_mut().zip(&kr) {
            // SAFETY: key row u < KB holds hp2 > cp words (asserted).
            let kw = tok.splat_pair(unsafe { *ku.wrapping_add(cp) });
            for (w, aw) in au.iter_mut().enumerate() {
                *aw = tok.dot_pairs(*aw, x[w], kw);
            }
        }
    }
    for (u, au) in a.iter().enumerate() {
        for (w, &aw) in au.iter().enumerate() {
            // SAFETY: row j + u < n, qv + (w + 1)·16 ≤ nqp: inside st.
            unsafe { s.store(sp.wrapping_add((j + u) * nqp + qv + w * L), s.mul(aw, sc)) };
        }
    }
}

/// `acc[c, q] = acc[c, q] · cr[q] + Σ_{jp < pairs} pp[jp, q] · vb[jp, c]`
/// over pair words (two keys per `vdpbf16ps`): eight features × two query
/// vectors per register block, the value pair word broadcast.
#[inline(always)]
fn pv_bf16(
    tok: Avx512Bf16,
    (pp, nqp): (&[u32], usize),
    vb: &[u32], // [≥ pairs, hd]: the tile's key pairs
    hd: usize,
    pairs: usize,
    cr: &[f32],
    acc: &mut [f32],
) {
    const CB: usize = 8;
    let s = tok.avx512();
    assert!(pp.len() >= pairs * nqp && vb.len() >= pairs * hd);
    assert!(cr.len() >= nqp && acc.len() >= hd * nqp);
    // SAFETY: lane q < nqp ≤ cr.len().
    let corr = |q: usize| unsafe { s.load(cr.as_ptr().wrapping_add(q)) };
    let mut qv = 0;
    while qv + 2 * L <= nqp {
        let cv = [corr(qv), corr(qv + L)];
        let mut c = 0;
        while c + CB <= hd {
            pv_block::<CB, 2>(tok, (pp, nqp, qv), (vb, hd, pairs, c), cv, acc);
            c += CB;
        }
        for c in c..hd {
            pv_block::<1, 2>(tok, (pp, nqp, qv), (vb, hd, pairs, c), cv, acc);
        }
        qv += 2 * L;
    }
    if qv < nqp {
        let cv = [corr(qv)];
        let mut c = 0;
        while c + CB <= hd {
            pv_block::<CB, 1>(tok, (pp, nqp, qv), (vb, hd, pairs, c), cv, acc);
            c += CB;
        }
        for c in c..hd {
            pv_block::<1, 1>(tok, (pp, nqp, qv), (vb, hd, pairs, c), cv, acc);
        }
    }
}

/// `CB` features from `c` × `QV` query vectors from `qv` of [`pv_bf16`].
#[inline(always)]
fn pv_block<const CB: usize, const QV: usize>(
    tok: Avx512Bf16,
    (pp, nqp, qv): (&[u32], usize, usize),
    (vb, hd, pairs, c): (&[u32], usize, usize, usize),
    corr: [<Avx512 as Simd>::V; QV],
    acc: &mut [f32],
) {
    let s = tok.avx512();
    assert!(c + CB <= hd && qv + QV * L <= nqp);
    assert!(pp.len() >= pairs * nqp && vb.len() >= pairs * hd && acc.len() >= hd * nqp);
    let (ap, vp, ppp) = (acc.as_mut_ptr(), vb.as_ptr().wrapping_add(c), pp.as_ptr());
    let mut a = [[s.zero(); QV]; CB];
    for (u, au) in a.iter_mut().enumerate() {
        for (w, aw) in au.iter_mut().enumerate() {
            // SAFETY: c + u < hd, qv + (w + 1)·16 ≤ nqp: inside acc.
            *aw = s.mul(
                unsafe { s.load(ap.wrapping_add((c + u) * nqp + qv + w * L)) },
                corr[w],
            );
        }
    }
    for jp in 0..pairs {
        let mut p = [tok.splat_pair(0); QV];
        for (w, pw) in p.iter_mut().enumerate() {
            // SAFETY: jp < pairs, qv + (w + 1)·16 ≤ nqp: inside pp (asserted).
            *pw = unsafe { tok.load_pairs(ppp.wrapping_add(jp * nqp + qv + w * L)) };
        }
        let vr = vp.wrapping_add(jp * hd);
        for (u, au) in a.iter_mut().enumerate() {
            // SAFETY: jp < pairs, c + u < c + CB ≤ hd: inside vb (asserted).
            let x = tok.splat_pair(unsafe { *vr.wrapping_add(u) });
            for (w, aw) in au.iter_mut().enumerate() {
                *aw = tok.dot_pairs(*aw, p[w], x);
            }
        }
    }
    for (u, au) in a.iter().enumerate() {
        for (w, &aw) in au.iter().enumerate() {
            // SAFETY: as the load above.
            unsafe { s.store(ap.wrapping_add((c + u) * nqp + qv + w * L), aw) };
        }
    }
}
