//! The per-query attention path (decode: one query row): per query and
//! key tile, scores (`q·k`, four keys at a time, vectorised over `hd`) into
//! a stack buffer, tile max, `p = exp(s − m)` (vectorised, `exp_v`), then
//! `acc = acc·e^(m_old − m_new) + Σ p·v` (vectorised over `hd`). All the
//! item's queries that read one kv head walk its key tiles together, so a
//! tile of K and V is loaded from memory once and reused from L1.

use super::{AttnDims, Inputs, Item, KT};
use crate::cpu::elementwise::exp::exp_v;
use crate::cpu::simd::Simd;

/// The item's rows on the per-query path; `scratch` holds `KT + 2·nq +
/// nq·hp` f32 (`nq` = the item's queries of one kv head at most, `hp` =
/// `hd` rounded up to whole vectors).
#[inline(always)]
pub(super) fn rows<S: Simd>(
    s: S,
    inp: Inputs<'_>,
    it: Item,
    out: &mut [f32], // [r1 − r0, hb − ha, hd]
    scratch: &mut [f32],
) {
    let Inputs { q, k, v, a } = inp;
    let AttnDims {
        t,
        h,
        h_kv,
        hd,
        kv_len,
        causal,
        scale,
    } = a;
    let Item { r0, r1, ha, hb } = it;
    let group = h / h_kv;
    let (rows, nhi) = (r1 - r0, hb - ha);
    let hp = hd.next_multiple_of(S::LANES);
    let nq_max = rows * group.min(nhi);
    let (sb, rest) = scratch.split_at_mut(KT);
    let (ms, rest) = rest.split_at_mut(nq_max);
    let (ls, acc) = rest.split_at_mut(nq_max);
    // Keys 0..seen(r) are visible to query row r (non-decreasing in r).
    let seen = |r: usize| if causal { kv_len - t + r + 1 } else { kv_len };
    let kstride = h_kv * hd;

    for g in ha / group..=(hb - 1) / group {
        let (ga, gb) = (ha.max(g * group), hb.min((g + 1) * group));
        let nh = gb - ga;
        let nq = rows * nh;
        ms[..nq].fill(f32::NEG_INFINITY);
        ls[..nq].fill(0.0);
        acc[..nq * hp].fill(0.0);
        for j0 in (0..seen(r1 - 1)).step_by(KT) {
            // Key j0 of kv head g; the tile's rows follow at `kstride`.
            let kp = k[(j0 * h_kv + g) * hd..].as_ptr();
            let vp = v[(j0 * h_kv + g) * hd..].as_ptr();
            for r in r0..r1 {
                let n = seen(r).min(j0 + KT).saturating_sub(j0);
                if n == 0 {
                    continue;
                }
                for i in ga..gb {
                    let qi = (r - r0) * nh + (i - ga);
                    let qr = &q[(r * h + i) * hd..][..hd];
                    let tl = Tile {
                        kp,
                        vp,
                        kstride,
                        n,
                        hd,
                    };
                    tile(
                        s,
                        qr,
                        tl,
                        scale,
                        sb,
                        (&mut ms[qi], &mut ls[qi]),
                        &mut acc[qi * hp..(qi + 1) * hp],
                    );
                }
            }
        }
        for r in r0..r1 {
            for i in ga..gb {
                let qi = (r - r0) * nh + (i - ga);
                let dst = &mut out[((r - r0) * nhi + (i - ha)) * hd..][..hd];
                if seen(r) == 0 {
                    dst.fill(0.0);
                } else {
                    finish(s, &acc[qi * hp..(qi + 1) * hp], ls[qi], dst);
                }
            }
        }
    }
}

/// One key tile of one kv head: `n ≥ 1` rows at `kp`/`vp`, `kstride` apart.
/// The caller guarantees rows `0..n` hold `hd` readable f32 each.
#[derive(Clone, Copy)]
struct Tile {
    kp: *const f32,
    vp: *const f32,
    kstride: usize,
    n: usize,
    hd: usize,
}

/// The online-softmax step of one query over one tile.
#[inline(always)]
fn tile<S: Simd>(
    s: S,
    qr: &[f32], // [hd]
    tl: Tile,
    scale: f32,
    sb: &mut [f32], // [KT] score buffer
    (m, lsum): (&mut f32, &mut f32),
    acc: &mut [f32], // [hd rounded up to LANES]
) {
    let lanes = S::LANES;
    let n = tl.n;
    scores(s, qr, tl, scale, sb);
    // Pad to whole vectors with −inf: e^(−inf − m) = 0 adds nothing.
    let np = n.next_multiple_of(lanes);
    sb[n..np].fill(f32::NEG_INFINITY);
    let sp = sb.as_mut_ptr();
    let mut mv = s.splat(f32::NEG_INFINITY);
    for c in (0..np).step_by(lanes) {
        // SAFETY: c + LANES ≤ np ≤ KT = sb.len() (KT is a multiple of LANES).
        mv = s.max(mv, unsafe { s.load(sp.wrapping_add(c)) });
    }
    let mt = s.reduce_max(mv);
    let m_old = *m;
    let m_new = if mt > m_old { mt } else { m_old };
    let mn = s.splat(m_new);
    let mut sum = s.zero();
    for c in (0..np).step_by(lanes) {
        // SAFETY: as above.
        let x = unsafe { s.load(sp.wrapping_add(c)) };
        let p = exp_v(s, s.sub(x, mn));
        sum = s.add(sum, p);
        // SAFETY: as above.
        unsafe { s.store(sp.wrapping_add(c), p) };
    }
    // e^(−inf) = 0 on the first tile; scalar, once per query and tile.
    let corr = if m_new == m_old {
        1.0
    } else {
        (m_old - m_new).exp()
    };
    *lsum = *lsum * corr + s.reduce_sum(sum);
    *m = m_new;
    pv(s, acc, corr, &sb[..n], tl);
}

/// `sb[j] = scale · q · k[j]` for the tile's `n` keys: four keys at a time
/// (four independent accumulators), `hd` in vectors plus one masked tail.
#[inline(always)]
fn scores<S: Simd>(s: S, qr: &[f32], tl: Tile, scale: f32, sb: &mut [f32]) {
    let lanes = S::LANES;
    let Tile {
        kp, kstride, n, hd, ..
    } = tl;
    let nfull = hd / lanes * lanes;
    let rem = hd - nfull;
    let qp = qr.as_ptr();
    debug_assert!(qr.len() == hd && n <= sb.len());
    let mut j = 0;
    while j + 4 <= n {
        let mut kr = [kp; 4];
        for (u, r) in kr.iter_mut().enumerate() {
            *r = kp.wrapping_add((j + u) * kstride);
        }
        let mut a = [s.zero(); 4];
        let mut c = 0;
        while c < nfull {
            // SAFETY: c + LANES ≤ nfull ≤ hd = qr.len().
            let qv = unsafe { s.load(qp.wrapping_add(c)) };
            for u in 0..4 {
                // SAFETY: key j + u < n is a tile row with hd ≥ c + LANES
                // readable f32 (caller of `tile`).
                a[u] = s.fma(qv, unsafe { s.load(kr[u].wrapping_add(c)) }, a[u]);
            }
            c += lanes;
        }
        if rem > 0 {
            // SAFETY: q[nfull..hd] is rem ≤ LANES readable f32.
            let qv = unsafe { s.load_partial(qp.wrapping_add(nfull), rem) };
            for u in 0..4 {
                // SAFETY: key row j + u holds hd = nfull + rem f32.
                let kv = unsafe { s.load_partial(kr[u].wrapping_add(nfull), rem) };
                a[u] = s.fma(qv, kv, a[u]);
            }
        }
        for u in 0..4 {
            sb[j + u] = scale * s.reduce_sum(a[u]);
        }
        j += 4;
    }
    while j < n {
        let kr = kp.wrapping_add(j * kstride);
        let mut a = s.zero();
        let mut c = 0;
        while c < nfull {
            // SAFETY: c + LANES ≤ nfull ≤ hd = qr.len().
            let qv = unsafe { s.load(qp.wrapping_add(c)) };
            // SAFETY: key j < n is a tile row with hd ≥ c + LANES f32.
            a = s.fma(qv, unsafe { s.load(kr.wrapping_add(c)) }, a);
            c += lanes;
        }
        if rem > 0 {
            // SAFETY: q[nfull..hd] is rem ≤ LANES readable f32.
            let qv = unsafe { s.load_partial(qp.wrapping_add(nfull), rem) };
            // SAFETY: key row j holds hd = nfull + rem f32.
            let kv = unsafe { s.load_partial(kr.wrapping_add(nfull), rem) };
            a = s.fma(qv, kv, a);
        }
        sb[j] = scale * s.reduce_sum(a);
        j += 1;
    }
}

/// `acc = acc · corr + Σⱼ p[j] · v[j]`, `hd` in blocks of four vectors held
/// in registers across the keys, then single vectors, then a masked tail.
#[inline(always)]
fn pv<S: Simd>(s: S, acc: &mut [f32], corr: f32, p: &[f32], tl: Tile) {
    let lanes = S::LANES;
    let Tile {
        vp, kstride, hd, ..
    } = tl;
    let nfull = hd / lanes * lanes;
    let rem = hd - nfull;
    debug_assert!(acc.len() == hd.next_multiple_of(lanes) && p.len() == tl.n);
    let ap = acc.as_mut_ptr();
    let cv = s.splat(corr);
    let mut c = 0;
    while c + 4 * lanes <= nfull {
        // No closures here: they would not inherit the target features.
        let mut a = [s.zero(); 4];
        for (u, au) in a.iter_mut().enumerate() {
            // SAFETY: c + 4·LANES ≤ nfull ≤ acc.len().
            *au = s.mul(cv, unsafe { s.load(ap.wrapping_add(c + u * lanes)) });
        }
        // Even and odd keys in two sets: eight FMA chains hide the latency.
        let mut b = [s.zero(); 4];
        let mut j = 0;
        while j + 2 <= p.len() {
            let (p0, p1) = (s.splat(p[j]), s.splat(p[j + 1]));
            let v0 = vp.wrapping_add(j * kstride + c);
            let v1 = v0.wrapping_add(kstride);
            for u in 0..4 {
                // SAFETY: value rows j, j + 1 < n hold hd ≥ c + 4·LANES f32.
                a[u] = s.fma(p0, unsafe { s.load(v0.wrapping_add(u * lanes)) }, a[u]);
                // SAFETY: as above.
                b[u] = s.fma(p1, unsafe { s.load(v1.wrapping_add(u * lanes)) }, b[u]);
            }
            j += 2;
        }
        if j < p.len() {
            let p0 = s.splat(p[j]);
            let v0 = vp.wrapping_add(j * kstride + c);
            for (u, au) in a.iter_mut().enumerate() {
                // SAFETY: value row j < n holds hd ≥ c + 4·LANES f32.
                *au = s.fma(p0, unsafe { s.load(v0.wrapping_add(u * lanes)) }, *au);
            }
        }
        for u in 0..4 {
            // SAFETY: as the load above.
            unsafe { s.store(ap.wrapping_add(c + u * lanes), s.add(a[u], b[u])) };
        }
        c += 4 * lanes;
    }
    while c < nfull {
        // SAFETY: c + LANES ≤ nfull ≤ acc.len().
        let mut a = s.mul(cv, unsafe { s.load(ap.wrapping_add(c)) });
        for (j, &pj) in p.iter().enumerate() {
            // SAFETY: value row j < n holds hd ≥ c + LANES f32.
            let x = unsafe { s.load(vp.wrapping_add(j * kstride + c)) };
            a = s.fma(s.splat(pj), x, a);
        }
        // SAFETY: as the load above.
        unsafe { s.store(ap.wrapping_add(c), a) };
        c += lanes;
    }
    if rem > 0 {
        // SAFETY: acc is padded to whole vectors: nfull + LANES ≤ acc.len().
        let mut a = s.mul(cv, unsafe { s.load(ap.wrapping_add(nfull)) });
        for (j, &pj) in p.iter().enumerate() {
            // SAFETY: value row j holds hd = nfull + rem f32.
            let x = unsafe { s.load_partial(vp.wrapping_add(j * kstride + nfull), rem) };
            a = s.fma(s.splat(pj), x, a);
        }
        // SAFETY: as the load above.
        unsafe { s.store(ap.wrapping_add(nfull), a) };
    }
}

/// `dst = acc / lsum` (IEEE division, as the reference).
#[inline(always)]
fn finish<S: Simd>(s: S, acc: &[f32], lsum: f32, dst: &mut [f32]) {
    let lanes = S::LANES;
    let hd = dst.len();
    let nfull = hd / lanes * lanes;
    let (ap, dp) = (acc.as_ptr(), dst.as_mut_ptr());
    let l = s.splat(lsum);
    let mut c = 0;
    while c < nfull {
        // SAFETY: c + LANES ≤ nfull ≤ acc.len().
        let a = unsafe { s.load(ap.wrapping_add(c)) };
        // SAFETY: c + LANES ≤ hd = dst.len().
        unsafe { s.store(dp.wrapping_add(c), s.div(a, l)) };
        c += lanes;
    }
    if nfull < hd {
        // SAFETY: acc is padded to whole vectors.
        let a = unsafe { s.load(ap.wrapping_add(nfull)) };
        // SAFETY: dst[nfull..hd] is hd − nfull < LANES writable f32.
        unsafe { s.store_partial(dp.wrapping_add(nfull), s.div(a, l), hd - nfull) };
    }
}
