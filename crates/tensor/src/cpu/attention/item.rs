//! One work item of the f32 attention (`kernels/attention.md`): a block of
//! query rows × a range of heads, run on a tier by `Simd::vectorize`. Items
//! of several rows (prefill, the vision tower) take the query-block path
//! ([`super::blocked`]: queries transposed into vector lanes, so scores,
//! softmax and `p·v` are small register-blocked matrix products with no
//! horizontal sums); decode (one row) takes the per-query path
//! ([`super::per_query`]). Only `[rows × heads, hd]` accumulators are kept,
//! never `t × kv_len` scores.

use super::{AttnDims, Inputs, Item, KT, blocked, per_query};
use crate::cpu::dispatch::SimdOp;
use crate::cpu::simd::Simd;

/// One work item: `out` is its `[r1 − r0, hb − ha, hd]` chunk; `scratch`
/// is grown once to the item's need and reused (no allocation in steady
/// state). The safe entry has checked every length.
pub(super) struct ItemOp<'a> {
    pub inp: Inputs<'a>,
    pub it: Item,
    pub out: &'a mut [f32],
    pub scratch: &'a mut Vec<f32>,
}

impl SimdOp for ItemOp<'_> {
    type Output = ();

    #[inline(always)]
    fn run<S: Simd>(self, s: S) {
        item(s, self)
    }
}

#[inline(always)]
fn item<S: Simd>(s: S, op: ItemOp<'_>) {
    let ItemOp {
        inp,
        it,
        out,
        scratch,
    } = op;
    let AttnDims { h, h_kv, hd, .. } = inp.a;
    let Item { r0, r1, ha, hb } = it;
    let group = h / h_kv;
    let (rows, nhi) = (r1 - r0, hb - ha);
    debug_assert!(out.len() == rows * nhi * hd);
    // Accumulator rows are padded to whole vectors so they load and store
    // without tails; only `out` needs partial stores.
    let hp = hd.next_multiple_of(S::LANES);
    let nq_max = rows * group.min(nhi);
    // Query-block path once a block fills half a vector of queries;
    // decode (one row) keeps the per-query path.
    let blocked = rows > 1 && 2 * nq_max >= S::LANES;
    let nqp = nq_max.next_multiple_of(S::LANES);
    let need = if blocked {
        (2 * hd + KT + 3) * nqp
    } else {
        KT + 2 * nq_max + nq_max * hp
    };
    if scratch.len() < need {
        scratch.resize(need, 0.0);
    }
    if blocked {
        for g in ha / group..=(hb - 1) / group {
            let (ga, gb) = (ha.max(g * group), hb.min((g + 1) * group));
            let nq = rows * (gb - ga);
            let nqp = nq.next_multiple_of(S::LANES);
            let need = (2 * hd + KT + 3) * nqp;
            blocked::group(s, inp, it, (g, ga, gb), out, &mut scratch[..need]);
        }
    } else {
        per_query::rows(s, inp, it, out, &mut scratch[..need]);
    }
}
