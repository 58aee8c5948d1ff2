//! The slow twin of the short-conv kernel (`kernels/short_conv.md`): the
//! plainest loops over `seq = state ++ (B ⊙ X)`, accumulating in f64 from
//! the same f32 inputs the kernels see.

/// What the reference returns for one call.
#[derive(Clone, Debug)]
pub struct ConvRef {
    /// `[t, d]`: `C ⊙ Σᵢ w[:, i] ⊙ seq[r + i]`, in f64, rounded once.
    pub out: Vec<f32>,
    /// `[l − 1, d]`: the last `l − 1` rows of `seq`. Each is an f32 product
    /// `B·X` (exact in f64, then rounded once) or an old state row, so a
    /// correct kernel matches it bit for bit.
    pub state: Vec<f32>,
    /// `[t, d]`: `|C| · Σᵢ |w[:, i] · seq[r + i]|`, the scale of the
    /// tolerance (`testing::tolerance::SHORT_CONV`).
    pub mag: Vec<f64>,
}

/// `bcx`: `[t, 3d]` (B | C | X); `w`: `[d, l]`; `state`: `[l − 1, d]`.
pub fn short_conv(bcx: &[f32], w: &[f32], state: &[f32], d: usize, l: usize) -> ConvRef {
    assert!(d > 0 && l > 0);
    let t = bcx.len() / (3 * d);
    assert_eq!(bcx.len(), t * 3 * d);
    assert_eq!(w.len(), d * l);
    assert_eq!(state.len(), (l - 1) * d);
    let b = |r: usize, c: usize| bcx[r * 3 * d + c] as f64;
    let cg = |r: usize, c: usize| bcx[r * 3 * d + d + c] as f64;
    let x = |r: usize, c: usize| bcx[r * 3 * d + 2 * d + c] as f64;
    // seq = state ++ bx: [(l − 1) + t, d].
    let mut seq: Vec<f64> = state.iter().map(|&v| v as f64).collect();
    for r in 0..t {
        seq.extend((0..d).map(|c| b(r, c) * x(r, c)));
    }
    let mut out = vec![0.0f32; t * d];
    let mut mag = vec![0.0f64; t * d];
    for r in 0..t {
        for c in 0..d {
            let mut acc = 0.0f64;
            let mut abs = 0.0f64;
            for i in 0..l {
                let term = w[c * l + i] as f64 * seq[(r + i) * d + c];
                acc += term;
                abs += term.abs();
            }
            out[r * d + c] = (cg(r, c) * acc) as f32;
            mag[r * d + c] = cg(r, c).abs() * abs;
        }
    }
    let keep = seq.len() - (l - 1) * d;
    let state = seq[keep..].iter().map(|&v| v as f32).collect();
    ConvRef { out, state, mag }
}
