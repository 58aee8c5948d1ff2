//! The LFM2 short-conv core (`kernels/short_conv.md`): `B ⊙ X`, a causal
//! depthwise conv over a carried state, gated by `C`.

use super::IsaToken;

/// `bcx`: `[t, 3d]` (B | C | X); `w`: `[d, l]`; `state`: `[l − 1, d]`
/// (updated); `out`: `[t, d]`.
pub fn short_conv(
    _isa: IsaToken,
    bcx: &[f32],
    w: &[f32],
    state: &mut [f32],
    out: &mut [f32],
    d: usize,
    l: usize,
) {
    assert!(l >= 1 && d > 0);
    let t = out.len() / d;
    assert_eq!(bcx.len(), t * 3 * d);
    assert_eq!(w.len(), d * l);
    assert_eq!(state.len(), (l - 1) * d);
    // seq = state ++ bx, [(l − 1) + t, d].
    let mut seq = state.to_vec();
    for r in 0..t {
        let row = &bcx[r * 3 * d..(r + 1) * 3 * d];
        seq.extend((0..d).map(|c| row[c] * row[2 * d + c]));
    }
    for r in 0..t {
        let cgate = &bcx[r * 3 * d + d..r * 3 * d + 2 * d];
        for c in 0..d {
            let mut acc = 0.0f32;
            for i in 0..l {
                acc += w[c * l + i] * seq[(r + i) * d + c];
            }
            out[r * d + c] = cgate[c] * acc;
        }
    }
    let keep = seq.len() - (l - 1) * d;
    state.copy_from_slice(&seq[keep..]);
}
