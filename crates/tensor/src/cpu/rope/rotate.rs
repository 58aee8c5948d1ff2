//! Generic rope body (`kernels/rope.md`): per row, the angle tables once
//! (`tables.rs`), then every head rotated with whole vectors over `j`.

use super::tables;
use crate::cpu::simd::Simd;

/// One call's geometry and scratch (`inv` filled, `cos_sin` scratch).
#[derive(Debug)]
pub(crate) struct Args<'a> {
    pub h: usize,
    pub hd: usize,
    pub pos0: usize,
    pub inv: &'a [f32],         // [hd/2]
    pub cos_sin: &'a mut [f32], // [hd] = cos [hd/2] ++ sin [hd/2]
}

#[inline(always)]
pub(super) fn rope_rows<S: Simd>(s: S, x: &mut [f32], a: Args<'_>) {
    let (h, hd) = (a.h, a.hd);
    let half = hd / 2;
    assert!(hd > 0 && hd.is_multiple_of(2) && h > 0 && x.len().is_multiple_of(h * hd));
    assert!(a.inv.len() == half && a.cos_sin.len() == hd);
    for (i, row) in x.chunks_exact_mut(h * hd).enumerate() {
        tables::cos_sin(a.pos0 + i, a.inv, a.cos_sin);
        let (cos, sin) = a.cos_sin.split_at(half);
        for head in row.chunks_exact_mut(hd) {
            rotate_head(s, head, cos, sin);
        }
    }
}

/// `(a, b) ← (a·c − b·s, b·c + a·s)` for `a = head[j]`, `b = head[j + half]`:
/// separate products, no FMA, so vector and scalar lanes agree bit for bit.
#[inline(always)]
fn rotate_head<S: Simd>(s: S, head: &mut [f32], cos: &[f32], sin: &[f32]) {
    let (half, l) = (cos.len(), S::LANES);
    assert!(head.len() == 2 * half && sin.len() == half);
    let (hp, cp, sp) = (head.as_mut_ptr(), cos.as_ptr(), sin.as_ptr());
    let mut j = 0;
    while j + l <= half {
        // SAFETY: j + LANES ≤ half: in bounds of cos, sin and both halves of head.
        let a = unsafe { s.load(hp.wrapping_add(j)) };
        // SAFETY: as above.
        let b = unsafe { s.load(hp.wrapping_add(half + j)) };
        // SAFETY: as above.
        let c = unsafe { s.load(cp.wrapping_add(j)) };
        // SAFETY: as above.
        let sn = unsafe { s.load(sp.wrapping_add(j)) };
        let ra = s.sub(s.mul(a, c), s.mul(b, sn));
        let rb = s.add(s.mul(b, c), s.mul(a, sn));
        // SAFETY: as above.
        unsafe { s.store(hp.wrapping_add(j), ra) };
        // SAFETY: as above.
        unsafe { s.store(hp.wrapping_add(half + j), rb) };
        j += l;
    }
    let (lo, hi) = head.split_at_mut(half);
    for j in j..half {
        let (a, b, c, sn) = (lo[j], hi[j], cos[j], sin[j]);
        lo[j] = a * c - b * sn;
        hi[j] = b * c + a * sn;
    }
}
