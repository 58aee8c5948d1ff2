//! The query-block attention path (prefill, the vision tower): per kv
//! head, the item's queries transposed into vector lanes, so scores,
//! softmax and `p·v` run as small register-blocked matrix products with no
//! horizontal sums. The bf16 dot-product kernel (`bf16.rs`) shares the
//! gather, tile softmax, leftover `p·v` and scatter below.

use super::{AttnDims, Inputs, Item, KT};
use crate::cpu::elementwise::exp::exp_v;
use crate::cpu::simd::Simd;

/// Query-block path of one kv head `g` (query heads `ga..gb`): the
/// queries `qi = (r − r0) · nh + (i − ga)` of the item are transposed once
/// into `qt = [hd, nqp]` (`nqp`: `nq` rounded up to whole vectors, zero
/// lanes), so a vector holds one feature of `LANES` queries. Per key tile
/// the scores come out as `st = [n, nqp]` from FMA chains over `hd` with
/// the key element broadcast (no horizontal sums); max, `exp` and the
/// running sums are per-lane vector ops over the keys; `p·v` ([`pv_t`])
/// accumulates into `acc = [hd, nqp]`, transposed the same way, with the
/// value element broadcast. Causal rows that see fewer keys of the tile
/// than the block's last row get `−inf` scores there, so `p = 0`.
#[inline(always)]
pub(super) fn group<S: Simd>(
    s: S,
    inp: Inputs<'_>,
    it: Item,
    (g, ga, gb): (usize, usize, usize),
    out: &mut [f32],
    scratch: &mut [f32],
) {
    let Inputs { q, k, v, a } = inp;
    let AttnDims {
        t,
        h_kv,
        hd,
        kv_len,
        causal,
        scale,
        ..
    } = a;
    let Item { r0, r1, .. } = it;
    let nh = gb - ga;
    let nq = (r1 - r0) * nh;
    let nqp = nq.next_multiple_of(S::LANES);
    let (qt, rest) = scratch.split_at_mut(hd * nqp);
    let (st, rest) = rest.split_at_mut(KT * nqp);
    let (ms, rest) = rest.split_at_mut(nqp);
    let (ls, rest) = rest.split_at_mut(nqp);
    let (cr, rest) = rest.split_at_mut(nqp);
    // Accumulators transposed like the queries: acc[c · nqp + qi].
    let acc = &mut rest[..hd * nqp];
    let seen = |r: usize| if causal { kv_len - t + r + 1 } else { kv_len };
    let kstride = h_kv * hd;

    gather_q(q, a, it, (ga, gb), nqp, qt);
    ms.fill(f32::NEG_INFINITY);
    ls.fill(0.0);
    acc.fill(0.0);
    let last = seen(r1 - 1);
    for j0 in (0..last).step_by(KT) {
        let nmax = last.min(j0 + KT) - j0;
        // Keys of query `qi` in this tile (its row's).
        let nk = |qi: usize| seen(r0 + qi / nh).min(j0 + KT).saturating_sub(j0);
        let kp = k[(j0 * h_kv + g) * hd..].as_ptr();
        let vp = v[(j0 * h_kv + g) * hd..].as_ptr();
        scores_t(s, (qt, nqp, hd), (kp, kstride, nmax), scale, st);
        softmax_tile(s, (st, nqp, nq, nmax), causal.then_some(&nk), (ms, ls, cr));
        // p·v over the keys every query of the item sees in this tile;
        // the causal diagonal's masked keys have p = 0 exactly, so they
        // join the vector pass unless their value rows hold a non-finite
        // value (0 · inf would reach rows that must not see them).
        let lo = nk(0);
        let vec_keys = if lo == nmax || rows_finite(vp, kstride, hd, lo, nmax) {
            nmax
        } else {
            lo
        };
        let pt = PvTile {
            st: st.as_ptr(),
            nqp,
            vp,
            kstride,
            hd,
        };
        pv_t(s, pt, vec_keys, cr.as_ptr(), acc.as_mut_ptr());
        pv_rest(pt, nq, vec_keys, &nk, acc);
    }
    scatter_out(s, a, it, (ga, gb), (acc, ls, nqp), out);
}

/// Zeroes `qt` (`[hd, nqp]`) and transposes the item's queries of heads
/// `ga..gb` into it: `qt[c · nqp + qi] = q[r, i, c]` with
/// `qi = (r − r0) · (gb − ga) + (i − ga)`.
#[inline(always)]
pub(super) fn gather_q(
    q: &[f32],
    a: AttnDims,
    it: Item,
    (ga, gb): (usize, usize),
    nqp: usize,
    qt: &mut [f32],
) {
    let (h, hd, nh) = (a.h, a.hd, gb - ga);
    qt.fill(0.0);
    for r in it.r0..it.r1 {
        for i in ga..gb {
            let qi = (r - it.r0) * nh + (i - ga);
            let qr = &q[(r * h + i) * hd..][..hd];
            for (c, &x) in qr.iter().enumerate() {
                qt[c * nqp + qi] = x;
            }
        }
    }
}

/// The online-softmax step of a query block over one key tile, per query
/// lane: `st = [nmax, nqp]` scores in, probabilities `p = e^(s − m')` out
/// (`mask`: causal, query `qi` sees the tile's first `mask(qi)` keys, the
/// rest get `−inf`, so `p = 0`); `m' = max(m, tile max)` into `ms`, the
/// rescale `e^(m − m')` into `cr` and `l = l · e^(m − m') + Σ p` into `ls`.
#[inline(always)]
pub(super) fn softmax_tile<S: Simd>(
    s: S,
    (st, nqp, nq, nmax): (&mut [f32], usize, usize, usize),
    mask: Option<&dyn Fn(usize) -> usize>,
    (ms, ls, cr): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let lanes = S::LANES;
    assert!(st.len() >= nmax * nqp && ms.len() >= nqp && ls.len() >= nqp && cr.len() >= nqp);
    if let Some(nk) = mask {
        for qi in 0..nq {
            for j in nk(qi)..nmax {
                st[j * nqp + qi] = f32::NEG_INFINITY;
            }
        }
    }
    let (stp, msp, lsp, crp) = (
        st.as_mut_ptr(),
        ms.as_mut_ptr(),
        ls.as_mut_ptr(),
        cr.as_mut_ptr(),
    );
    // Tile max per query lane, into `cr` for the update below.
    for qv in (0..nqp).step_by(lanes) {
        let mut mv = s.splat(f32::NEG_INFINITY);
        for j in 0..nmax {
            // SAFETY: j < nmax and qv + LANES ≤ nqp: inside st (asserted).
            mv = s.max(mv, unsafe { s.load(stp.wrapping_add(j * nqp + qv)) });
        }
        // SAFETY: qv + LANES ≤ nqp ≤ cr.len().
        unsafe { s.store(crp.wrapping_add(qv), mv) };
    }
    // Running max and correction per query lane: m_new = max(m_old, mt)
    // (a NaN tile max keeps m_old), corr = e^(m_old − m_new), which is
    // 0 on the first tile (m_old = −inf) and 1 where the max stays put,
    // also at ±inf (`min` maps the NaN of inf − inf to 0).
    for qv in (0..nqp).step_by(lanes) {
        // SAFETY: qv + LANES ≤ nqp, within ms and cr (asserted).
        let m_old = unsafe { s.load(msp.wrapping_add(qv)) };
        // SAFETY: as above.
        let m_new = s.max(unsafe { s.load(crp.wrapping_add(qv)) }, m_old);
        let d = s.min(s.sub(m_old, m_new), s.zero());
        // SAFETY: as above.
        unsafe { s.store(msp.wrapping_add(qv), m_new) };
        // SAFETY: as above.
        unsafe { s.store(crp.wrapping_add(qv), exp_v(s, d)) };
    }
    for qv in (0..nqp).step_by(lanes) {
        // SAFETY: qv + LANES ≤ nqp, within ms, ls and cr (asserted).
        let mn = unsafe { s.load(msp.wrapping_add(qv)) };
        let mut sum = s.zero();
        for j in 0..nmax {
            let sp = stp.wrapping_add(j * nqp + qv);
            // SAFETY: inside st, as above.
            let p = exp_v(s, s.sub(unsafe { s.load(sp) }, mn));
            sum = s.add(sum, p);
            // SAFETY: as above.
            unsafe { s.store(sp, p) };
        }
        // SAFETY: qv + LANES ≤ nqp, within ls and cr.
        let l = unsafe { s.load(lsp.wrapping_add(qv)) };
        // SAFETY: as above.
        let c = unsafe { s.load(crp.wrapping_add(qv)) };
        // SAFETY: as above.
        unsafe { s.store(lsp.wrapping_add(qv), s.add(s.mul(l, c), sum)) };
    }
}

/// The keys a vector `p·v` pass left out (`from..nk(qi)` per query: only
/// where a causal diagonal's value row is not finite), one query at a
/// time in f32: `acc[c · nqp + qi] += p · v[j, c]`.
#[inline(always)]
pub(super) fn pv_rest(
    pt: PvTile,
    nq: usize,
    from: usize,
    nk: &dyn Fn(usize) -> usize,
    acc: &mut [f32],
) {
    let PvTile {
        st,
        nqp,
        vp,
        kstride,
        hd,
    } = pt;
    for qi in 0..nq {
        for j in from..nk(qi) {
            // SAFETY: j < nk(qi) ≤ nmax ≤ KT, qi < nqp: inside the scores.
            let p = unsafe { *st.wrapping_add(j * nqp + qi) };
            // SAFETY: key j < nmax is a tile row of hd readable f32.
            let vr = unsafe { std::slice::from_raw_parts(vp.wrapping_add(j * kstride), hd) };
            for (c, &x) in vr.iter().enumerate() {
                acc[c * nqp + qi] += p * x;
            }
        }
    }
}

/// `out = acc / l` per query lane (vectorised, in place in `acc =
/// [hd, nqp]`), then scattered from the lanes back to the item's rows of
/// heads `ga..gb` (rows that see no key get zeros).
#[inline(always)]
pub(super) fn scatter_out<S: Simd>(
    s: S,
    a: AttnDims,
    it: Item,
    (ga, gb): (usize, usize),
    (acc, ls, nqp): (&mut [f32], &[f32], usize),
    out: &mut [f32],
) {
    let (hd, nh, nhi) = (a.hd, gb - ga, it.hb - it.ha);
    assert!(acc.len() >= hd * nqp && ls.len() >= nqp);
    let (ap, lsp) = (acc.as_mut_ptr(), ls.as_ptr());
    for c in 0..hd {
        for qv in (0..nqp).step_by(S::LANES) {
            let p = ap.wrapping_add(c * nqp + qv);
            // SAFETY: c < hd, qv + LANES ≤ nqp: inside acc (asserted).
            let x = unsafe { s.load(p) };
            // SAFETY: qv + LANES ≤ nqp ≤ ls.len().
            let l = unsafe { s.load(lsp.wrapping_add(qv)) };
            // SAFETY: as the load from p.
            unsafe { s.store(p, s.div(x, l)) };
        }
    }
    let seen = |r: usize| {
        if a.causal {
            a.kv_len - a.t + r + 1
        } else {
            a.kv_len
        }
    };
    for r in it.r0..it.r1 {
        for i in ga..gb {
            let qi = (r - it.r0) * nh + (i - ga);
            let dst = &mut out[((r - it.r0) * nhi + (i - it.ha)) * hd..][..hd];
            if seen(r) == 0 {
                dst.fill(0.0);
            } else {
                for (c, d) in dst.iter_mut().enumerate() {
                    *d = acc[c * nqp + qi];
                }
            }
        }
    }
}

/// Whether value rows `lo..hi` of a tile (`hd` f32 each, `kstride` apart)
/// are all finite. The caller guarantees the rows are readable.
pub(super) fn rows_finite(vp: *const f32, kstride: usize, hd: usize, lo: usize, hi: usize) -> bool {
    (lo..hi).all(|j| {
        // SAFETY: rows lo..hi < nmax are tile rows of hd readable f32.
        let row = unsafe { std::slice::from_raw_parts(vp.wrapping_add(j * kstride), hd) };
        row.iter().all(|x| x.is_finite())
    })
}

/// `st[j · nqp + qi] = scale · qt[:, qi] · k[j]` for keys `j < n` and every
/// query lane: eight keys × one vector of queries per block, `hd` long FMA
/// chains with the key element broadcast.
#[inline(always)]
fn scores_t<S: Simd>(
    s: S,
    (qt, nqp, hd): (&[f32], usize, usize), // qt: [hd, nqp]
    (kp, kstride, n): (*const f32, usize, usize),
    scale: f32,
    st: &mut [f32], // [≥ n, nqp]
) {
    const KB: usize = 8;
    let lanes = S::LANES;
    debug_assert!(qt.len() == hd * nqp && st.len() >= n * nqp);
    let (qp, sp) = (qt.as_ptr(), st.as_mut_ptr());
    let sc = s.splat(scale);
    let mut j = 0;
    while j + KB <= n {
        let kr: [*const f32; KB] = std::array::from_fn(|u| kp.wrapping_add((j + u) * kstride));
        let mut qv = 0;
        // AVX-512 (32 registers): two query vectors share each broadcast.
        while lanes >= 16 && qv + 2 * lanes <= nqp {
            let mut a = [s.zero(); KB];
            let mut b = [s.zero(); KB];
            for c in 0..hd {
                let x0p = qp.wrapping_add(c * nqp + qv);
                // SAFETY: c < hd, qv + 2·LANES ≤ nqp: inside qt.
                let x0 = unsafe { s.load(x0p) };
                // SAFETY: as above.
                let x1 = unsafe { s.load(x0p.wrapping_add(lanes)) };
                for u in 0..KB {
                    // SAFETY: key j + u < n is a tile row of hd readable f32.
                    let kv = s.splat(unsafe { *kr[u].wrapping_add(c) });
                    a[u] = s.fma(x0, kv, a[u]);
                    b[u] = s.fma(x1, kv, b[u]);
                }
            }
            for u in 0..KB {
                let dp = sp.wrapping_add((j + u) * nqp + qv);
                // SAFETY: j + u < n, qv + 2·LANES ≤ nqp: inside st.
                unsafe { s.store(dp, s.mul(a[u], sc)) };
                // SAFETY: as above.
                unsafe { s.store(dp.wrapping_add(lanes), s.mul(b[u], sc)) };
            }
            qv += 2 * lanes;
        }
        while qv < nqp {
            let mut a = [s.zero(); KB];
            for c in 0..hd {
                // SAFETY: c < hd, qv + LANES ≤ nqp: inside qt.
                let x = unsafe { s.load(qp.wrapping_add(c * nqp + qv)) };
                for u in 0..KB {
                    // SAFETY: key j + u < n is a tile row of hd readable f32.
                    let kv = s.splat(unsafe { *kr[u].wrapping_add(c) });
                    a[u] = s.fma(x, kv, a[u]);
                }
            }
            for (u, &au) in a.iter().enumerate() {
                // SAFETY: j + u < n, qv + LANES ≤ nqp: inside st.
                unsafe { s.store(sp.wrapping_add((j + u) * nqp + qv), s.mul(au, sc)) };
            }
            qv += lanes;
        }
        j += KB;
    }
    while j < n {
        let kr = kp.wrapping_add(j * kstride);
        for qv in (0..nqp).step_by(lanes) {
            let mut a = s.zero();
            for c in 0..hd {
                // SAFETY: as above.
                let x = unsafe { s.load(qp.wrapping_add(c * nqp + qv)) };
                // SAFETY: key j < n is a tile row of hd readable f32.
                a = s.fma(x, s.splat(unsafe { *kr.wrapping_add(c) }), a);
            }
            // SAFETY: as above.
            unsafe { s.store(sp.wrapping_add(j * nqp + qv), s.mul(a, sc)) };
        }
        j += 1;
    }
}

/// Probabilities `st = [KT, nqp]` and the value rows of one tile.
#[derive(Clone, Copy)]
pub(super) struct PvTile {
    pub st: *const f32,
    pub nqp: usize,
    pub vp: *const f32,
    pub kstride: usize,
    pub hd: usize,
}

/// `acc[c, q] = acc[c, q] · corr[q] + Σ_{j < n} st[j, q] · v[j, c]` for
/// every feature `c < hd` and query lane `q < nqp`, with `acc` and `st`
/// transposed (queries in the lanes, `nqp` apart) and `corr` at `cr`:
/// blocks of [`PV_CB`] features × one or two query vectors stay in
/// registers over the keys, fed by one `p` load per query vector and one
/// broadcast `v` element per feature (no horizontal sums, as in
/// [`scores_t`]).
#[inline(always)]
fn pv_t<S: Simd>(s: S, pt: PvTile, n: usize, cr: *const f32, acc: *mut f32) {
    let lanes = S::LANES;
    let mut qv = 0;
    // AVX-512 (32 registers): two query vectors share each broadcast.
    while lanes >= 16 && qv + 2 * lanes <= pt.nqp {
        pv_t_lanes::<S, 2>(s, pt, n, qv, cr, acc);
        qv += 2 * lanes;
    }
    while qv < pt.nqp {
        pv_t_lanes::<S, 1>(s, pt, n, qv, cr, acc);
        qv += lanes;
    }
}

/// Features per register block of [`pv_t`].
const PV_CB: usize = 8;

/// [`pv_t`] for the `QV` query vectors from lane `qv`.
#[inline(always)]
fn pv_t_lanes<S: Simd, const QV: usize>(
    s: S,
    pt: PvTile,
    n: usize,
    qv: usize,
    cr: *const f32,
    acc: *mut f32,
) {
    let lanes = S::LANES;
    let mut corr = [s.zero(); QV];
    for (w, cw) in corr.iter_mut().enumerate() {
        // SAFETY: qv + QV·LANES ≤ nqp, the length of cr.
        *cw = unsafe { s.load(cr.wrapping_add(qv + w * lanes)) };
    }
    let mut c = 0;
    while c + PV_CB <= pt.hd {
        pv_t_block::<S, QV, PV_CB>(s, pt, n, (c, qv), corr, acc);
        c += PV_CB;
    }
    while c < pt.hd {
        pv_t_block::<S, QV, 1>(s, pt, n, (c, qv), corr, acc);
        c += 1;
    }
}

/// Features `c..c + CB` × query vectors `qv..qv + QV·LANES` of [`pv_t`].
#[inline(always)]
fn pv_t_block<S: Simd, const QV: usize, const CB: usize>(
    s: S,
    pt: PvTile,
    n: usize,
    (c, qv): (usize, usize),
    corr: [S::V; QV],
    acc: *mut f32,
) {
    let lanes = S::LANES;
    let PvTile {
        st,
        nqp,
        vp,
        kstride,
        ..
    } = pt;
    let mut a = [[s.zero(); QV]; CB];
    for (u, au) in a.iter_mut().enumerate() {
        for (w, aw) in au.iter_mut().enumerate() {
            // SAFETY: c + u < hd, qv + (w + 1)·LANES ≤ nqp: inside acc.
            let x = unsafe { s.load(acc.wrapping_add((c + u) * nqp + qv + w * lanes)) };
            *aw = s.mul(x, corr[w]);
        }
    }
    for j in 0..n {
        let mut p = [s.zero(); QV];
        for (w, pw) in p.iter_mut().enumerate() {
            // SAFETY: j < n ≤ KT, qv + (w + 1)·LANES ≤ nqp: inside st.
            *pw = unsafe { s.load(st.wrapping_add(j * nqp + qv + w * lanes)) };
        }
        let vr = vp.wrapping_add(j * kstride + c);
        for (u, au) in a.iter_mut().enumerate() {
            // SAFETY: value row j < n holds hd ≥ c + CB f32.
            let x = s.splat(unsafe { *vr.wrapping_add(u) });
            for (w, aw) in au.iter_mut().enumerate() {
                *aw = s.fma(p[w], x, *aw);
            }
        }
    }
    for (u, au) in a.iter().enumerate() {
        for (w, &aw) in au.iter().enumerate() {
            // SAFETY: as the load above.
            unsafe { s.store(acc.wrapping_add((c + u) * nqp + qv + w * lanes), aw) };
        }
    }
}
