//! Grouped-query attention (`kernels/attention.md`), causal over a KV cache
//! or bidirectional, with an online softmax.

use super::IsaToken;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct AttnDims {
    pub t: usize,
    pub h: usize,
    pub h_kv: usize,
    pub hd: usize,
    pub kv_len: usize,
    pub causal: bool,
    pub scale: f32,
}

/// `q`, `out`: `[t, h, hd]`; `k`, `v`: `[≥ kv_len, h_kv, hd]`.
pub fn attention(
    _isa: IsaToken,
    _pool: Option<&rayon::ThreadPool>,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    out: &mut [f32],
    a: AttnDims,
) {
    let AttnDims {
        t,
        h,
        h_kv,
        hd,
        kv_len,
        causal,
        scale,
    } = a;
    assert!(h_kv > 0 && h % h_kv == 0 && kv_len >= t || !causal);
    assert_eq!(q.len(), t * h * hd);
    assert_eq!(out.len(), t * h * hd);
    assert!(k.len() >= kv_len * h_kv * hd && v.len() >= kv_len * h_kv * hd);
    let group = h / h_kv;
    let mut acc = vec![0.0f32; hd];
    for r in 0..t {
        let last = if causal { kv_len - t + r + 1 } else { kv_len };
        for i in 0..h {
            let kvh = i / group;
            let qv = &q[(r * h + i) * hd..][..hd];
            let (mut m, mut sum) = (f32::NEG_INFINITY, 0.0f32);
            acc.fill(0.0);
            for j in 0..last {
                let kr = &k[(j * h_kv + kvh) * hd..][..hd];
                let s = scale * qv.iter().zip(kr).map(|(a, b)| a * b).sum::<f32>();
                let m_new = m.max(s);
                let corr = (m - m_new).exp();
                let p = (s - m_new).exp();
                sum = sum * corr + p;
                let vr = &v[(j * h_kv + kvh) * hd..][..hd];
                for (a, &vv) in acc.iter_mut().zip(vr) {
                    *a = *a * corr + p * vv;
                }
                m = m_new;
            }
            let o = &mut out[(r * h + i) * hd..][..hd];
            for (o, a) in o.iter_mut().zip(&acc) {
                *o = a / sum;
            }
        }
    }
}
