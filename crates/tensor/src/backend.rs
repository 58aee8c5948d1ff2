//! The [`Backend`] trait: a small set of coarse, model-shaped ops. The model
//! is generic over it; the runtime picks one implementation in one `match`.
//!
//! Ops write into caller-owned outputs (`out: &mut Tensor<Self>`) so that a
//! decode loop reuses buffers allocated once per session, and a GPU backend
//! can chain a whole forward pass on the device: only [`Backend::download_f32`]
//! and [`Backend::sync`] wait for the device.

use crate::{DType, Result, Shape, Tensor, TensorError};

/// Host bytes of one tensor, little-endian, at any alignment (e.g. a slice of
/// an mmap'd safetensors file). Backends copy it into storage they own.
#[derive(Clone, Copy, Debug)]
pub struct HostData<'a> {
    pub dtype: DType,
    pub bytes: &'a [u8],
}

impl<'a> HostData<'a> {
    pub fn new(dtype: DType, bytes: &'a [u8]) -> Self {
        HostData { dtype, bytes }
    }

    pub fn f32(v: &'a [f32]) -> Self {
        HostData::new(DType::F32, bytemuck::cast_slice(v))
    }

    pub fn bf16(v: &'a [half::bf16]) -> Self {
        HostData::new(DType::BF16, bytemuck::cast_slice(v))
    }

    pub fn f16(v: &'a [half::f16]) -> Self {
        HostData::new(DType::F16, bytemuck::cast_slice(v))
    }

    /// Checks that the byte length matches `shape`.
    pub fn check(&self, shape: &Shape) -> Result<()> {
        let expected = self.dtype.bytes_for(shape.elem_count());
        if self.bytes.len() != expected {
            return Err(TensorError::ByteLength {
                dtype: self.dtype,
                shape: shape.clone(),
                expected,
                got: self.bytes.len(),
            });
        }
        Ok(())
    }
}

/// A compute backend: owns device storage and runs the model's ops on it.
pub trait Backend: Sized + Send + Sync {
    /// Device memory of one tensor.
    type Storage: Send + Sync;

    /// Human-readable description (ISA and threads, or GPU adapter).
    fn describe(&self) -> String;

    /// Copies host data into a new tensor.
    fn upload(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>>;

    /// Copies a matmul weight `[n, k]` (PyTorch Linear layout) to the device.
    /// The backend may keep it in a private layout chosen for its kernels
    /// (the CPU prepacks panels for its ISA, once, here); such a tensor is
    /// accepted as `w` by [`Backend::matmul`] and by [`Backend::download_f32`],
    /// which returns it row-major.
    fn upload_weight(&self, data: HostData<'_>, shape: Shape) -> Result<Tensor<Self>> {
        self.upload(data, shape)
    }

    /// A new zero-filled tensor.
    fn zeros(&self, dtype: DType, shape: Shape) -> Result<Tensor<Self>>;

    /// Reads a tensor back to the host, widened to f32 (exact for all dtypes).
    fn download_f32(&self, t: &Tensor<Self>) -> Result<Vec<f32>>;

    /// Like [`Backend::download_f32`], into a reused buffer (resized to the
    /// tensor): a decode loop reads its logits without allocating.
    fn download_f32_into(&self, t: &Tensor<Self>, out: &mut Vec<f32>) -> Result<()> {
        *out = self.download_f32(t)?;
        Ok(())
    }

    /// Waits until all submitted work has finished.
    fn sync(&self) -> Result<()>;

    /// `out[m, n] = x[m, k] · w[n, k]ᵀ (+ bias[n])`.
    ///
    /// - `x`: f32, any shape whose last dimension is `k` (rows = product of the rest).
    /// - `w`: `[n, k]` f32, bf16 or f16, PyTorch Linear layout; best uploaded
    ///   with [`Backend::upload_weight`] (a plain upload works, but the CPU
    ///   then repacks it on every call).
    /// - `bias`: f32 `[n]`.
    /// - `out`: f32 with `x`'s leading dims and last dim `n`; overwritten.
    ///
    /// Accumulation is f32. Tolerance class: matmul (`kernels/matmul.md`).
    fn matmul(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        bias: Option<&Tensor<Self>>,
        out: &mut Tensor<Self>,
    ) -> Result<()>;

    // ---- Text-model ops (LFM2). Kernel specs: `kernels/<op>.md`. A backend
    // that lacks one returns `TensorError::Unsupported`. All activations f32.

    /// RMSNorm over the last dimension `d`:
    /// `out[r, :] = w ⊙ (x[r, :] · 1/sqrt(mean(x[r, :]²) + eps))`, stats in f32.
    /// `x`, `out`: f32 `[.., d]` (same shape); `w`: f32 `[d]`.
    /// Used for the per-head q/k norms too (`x` viewed as `[t·h, hd]`).
    fn rms_norm(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (x, w, eps, out);
        Err(unsupported::<Self>("rms_norm"))
    }

    /// The residual add followed by the next RMSNorm: `x += y`, then
    /// `out = rms_norm(x, w, eps)` (shapes as in [`Backend::add_assign`] and
    /// [`Backend::rms_norm`]). The default runs the two ops; a backend may
    /// fuse them (wgpu does: one dispatch instead of two).
    fn add_rms_norm(
        &self,
        x: &mut Tensor<Self>,
        y: &Tensor<Self>,
        w: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.add_assign(x, y)?;
        self.rms_norm(x, w, eps, out)
    }

    /// NeoX (half-split) rotary embedding, in place. `x`: f32 `[t, h, hd]`
    /// (`hd` even); row `i` has position `pos0 + i`. For pair `j < hd/2`:
    /// `inv = theta^(−2j/hd)` and `a = pos · inv`, both computed in f32 as
    /// transformers does; `(x_j, x_{j+hd/2}) ← (x_j·cos a − x_{j+hd/2}·sin a,
    /// x_{j+hd/2}·cos a + x_j·sin a)`.
    fn rope(&self, x: &mut Tensor<Self>, pos0: usize, theta: f32) -> Result<()> {
        let _ = (x, pos0, theta);
        Err(unsupported::<Self>("rope"))
    }

    /// The input side of an LFM2 attention layer from the stacked
    /// projection: `qkv` f32 `[t, (h + 2·h_kv)·hd]`, each row `q | k | v`
    /// (h, h_kv and h_kv heads of `hd`). Writes
    /// `q_out` (f32 `[t, h, hd]`) = `rope(rms_norm(q, q_w, eps), pos0, theta)`,
    /// appends `rope(rms_norm(k, k_w, eps), pos0, theta)` to `k_cache` and `v`
    /// to `v_cache` at rows `pos0 .. pos0 + t` (f32 `[s, h_kv, hd]`, or any
    /// shape of `s·h_kv` rows of `hd`; `pos0 + t ≤ s`); `q_w`, `k_w`: f32
    /// `[hd]`. The norm and the rotation are those of [`Backend::rms_norm`]
    /// and [`Backend::rope`] per head.
    #[allow(clippy::too_many_arguments)]
    fn qkv_norm_rope(
        &self,
        qkv: &Tensor<Self>,
        q_w: &Tensor<Self>,
        k_w: &Tensor<Self>,
        eps: f32,
        pos0: usize,
        theta: f32,
        q_out: &mut Tensor<Self>,
        k_cache: &mut Tensor<Self>,
        v_cache: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (qkv, q_w, k_w, eps, pos0, theta, q_out, k_cache, v_cache);
        Err(unsupported::<Self>("qkv_norm_rope"))
    }

    /// The LFM2 short-conv core for one sequence, prefill (`t > 1`) or decode
    /// (`t = 1`) alike. `bcx`: f32 `[t, 3d]`, the in_proj output, whose rows
    /// are the chunks `B | C | X` in that order. With `bx = B ⊙ X`, the
    /// depthwise causal conv of kernel length `l` over the sequence
    /// `state ++ bx`: `conv[t, c] = Σ_{i<l} w[c, i] · seq[t + i, c]` (the last
    /// tap multiplies the current token), and `out[t, c] = C[t, c] · conv[t, c]`.
    /// `w`: f32 `[d, l]` (the checkpoint's `[d, 1, l]`); `state`: f32
    /// `[l − 1, d]`, the previous `l − 1` rows of `bx` (zeros at sequence
    /// start), replaced by the last `l − 1` rows of `state ++ bx`; `out`: f32 `[t, d]`.
    fn short_conv(
        &self,
        bcx: &Tensor<Self>,
        w: &Tensor<Self>,
        state: &mut Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (bcx, w, state, out);
        Err(unsupported::<Self>("short_conv"))
    }

    /// The short-conv block's first half: `bcx = x · in_projᵀ` (as
    /// [`Backend::matmul`], `in_proj` `[3d, k]`) then
    /// `short_conv(bcx, w, state, out)` (as [`Backend::short_conv`]). `bcx`:
    /// the caller's f32 `[t, 3d]` scratch, which a backend that fuses the two
    /// may leave unwritten. The default runs the two ops; wgpu fuses the
    /// decode step (t = 1: one GEMV whose subgroups reduce the B, C and X
    /// rows of a channel and step its conv).
    fn matmul_short_conv(
        &self,
        x: &Tensor<Self>,
        in_proj: &Tensor<Self>,
        w: &Tensor<Self>,
        bcx: &mut Tensor<Self>,
        state: &mut Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.matmul(x, in_proj, None, bcx)?;
        self.short_conv(bcx, w, state, out)
    }

    /// Multi-head attention with grouped KV heads, for one sequence.
    /// `q`: f32 `[t, h, hd]`; `k`, `v`: f32 `[s, h_kv, hd]` with `h % h_kv = 0`,
    /// of which rows `0..kv_len` are used (a KV cache may be longer); query
    /// head `i` reads kv head `i / (h / h_kv)`. Causal: query row `r` sits at
    /// position `kv_len − t + r` and sees keys `0..=kv_len − t + r`;
    /// non-causal: every query sees all `kv_len` keys.
    /// `out[r, i, :] = softmax(scale · q[r, i, :] · kᵀ) · v`, softmax in f32;
    /// `out`: f32 `[t, h, hd]`. Long `kv_len` must not materialise `t × kv_len`.
    fn attention(
        &self,
        q: &Tensor<Self>,
        k: &Tensor<Self>,
        v: &Tensor<Self>,
        kv_len: usize,
        causal: bool,
        scale: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (q, k, v, kv_len, causal, scale, out);
        Err(unsupported::<Self>("attention"))
    }

    /// SwiGLU gate: `out = silu(gate) ⊙ up` elementwise, `silu(g) = g / (1 + e^−g)`.
    /// All f32 of one shape.
    fn silu_mul(
        &self,
        gate: &Tensor<Self>,
        up: &Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (gate, up, out);
        Err(unsupported::<Self>("silu_mul"))
    }

    /// Residual add in place: `x += y`, f32, same shape.
    fn add_assign(&self, x: &mut Tensor<Self>, y: &Tensor<Self>) -> Result<()> {
        let _ = (x, y);
        Err(unsupported::<Self>("add_assign"))
    }

    /// Embedding gather: `out[i, :] = table[ids[i], :]` widened to f32.
    /// `table`: `[vocab, d]` f32/bf16/f16, plain or from `upload_weight` (the
    /// tied LM head shares it); `out`: f32 `[ids.len(), d]`. An id ≥ vocab is
    /// an `OutOfRange` error.
    fn gather_rows(&self, table: &Tensor<Self>, ids: &[u32], out: &mut Tensor<Self>) -> Result<()> {
        let _ = (table, ids, out);
        Err(unsupported::<Self>("gather_rows"))
    }

    /// Copies `src` (f32 `[t, w]`) into rows `row0..row0 + t` of `dst` (f32
    /// `[s, w]`): appending to a KV cache. Rows past `s` are an `OutOfRange` error.
    fn copy_rows(&self, src: &Tensor<Self>, dst: &mut Tensor<Self>, row0: usize) -> Result<()> {
        let _ = (src, dst, row0);
        Err(unsupported::<Self>("copy_rows"))
    }

    /// Copies columns `col0..col0 + c` of every row of `src` (f32 `[rows,
    /// c_src]`) into `out` (f32 `[rows, c]`): splitting a fused projection
    /// (e.g. q | k | v) into its parts. Past `c_src` is an `OutOfRange` error.
    fn copy_cols(&self, src: &Tensor<Self>, col0: usize, out: &mut Tensor<Self>) -> Result<()> {
        let _ = (src, col0, out);
        Err(unsupported::<Self>("copy_cols"))
    }

    /// SwiGLU over a stacked gate | up projection: `gu` f32 `[t, 2f]`, `out`
    /// f32 `[t, f]`, `out[r, c] = silu(gu[r, c]) · gu[r, f + c]` with the
    /// arithmetic of [`Backend::silu_mul`] (one matmul for w1 | w3 instead of
    /// two, and no split).
    fn swiglu(&self, gu: &Tensor<Self>, out: &mut Tensor<Self>) -> Result<()> {
        let _ = (gu, out);
        Err(unsupported::<Self>("swiglu"))
    }

    /// The MLP's first half: `gu = x · w13ᵀ` (`w13` the stacked w1 | w3,
    /// `[2f, k]`, as for [`Backend::matmul`]) then `out = swiglu(gu)` (as
    /// [`Backend::swiglu`]). `gu`: the caller's f32 `[m, 2f]` scratch, which a
    /// backend that fuses the two may leave unwritten; `out`: f32 `[m, f]`.
    /// The default runs the two ops; wgpu fuses them for m = 1 (one GEMV
    /// whose subgroups reduce a gate and an up row each).
    fn matmul_swiglu(
        &self,
        x: &Tensor<Self>,
        w13: &Tensor<Self>,
        gu: &mut Tensor<Self>,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        self.matmul(x, w13, None, gu)?;
        self.swiglu(gu, out)
    }

    // ---- Vision ops (SigLIP2 + connector).

    /// LayerNorm over the last dimension `d` with biased variance:
    /// `out = (x − mean) / sqrt(var + eps) ⊙ w + b`. `x`, `out`: f32 `[.., d]`;
    /// `w`, `b`: f32 `[d]`.
    fn layer_norm(
        &self,
        x: &Tensor<Self>,
        w: &Tensor<Self>,
        b: &Tensor<Self>,
        eps: f32,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (x, w, b, eps, out);
        Err(unsupported::<Self>("layer_norm"))
    }

    /// GELU, elementwise, f32: `Tanh` is `0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))`
    /// (`gelu_pytorch_tanh`), `Erf` is `0.5·z·(1 + erf(z/√2))` (exact GELU).
    fn gelu(&self, x: &Tensor<Self>, kind: Gelu, out: &mut Tensor<Self>) -> Result<()> {
        let _ = (x, kind, out);
        Err(unsupported::<Self>("gelu"))
    }

    /// Pixel unshuffle by 2 of one crop's features `x` `[h·w, d]` (row-major
    /// over an `h × w` grid, both even) into `out` `[(h/2)·(w/2), 4d]`: output
    /// token `(a, b)` is the concatenation of `x[2a, 2b]`, `x[2a, 2b+1]`,
    /// `x[2a+1, 2b]`, `x[2a+1, 2b+1]` (spec §5).
    fn pixel_unshuffle(
        &self,
        x: &Tensor<Self>,
        h: usize,
        w: usize,
        out: &mut Tensor<Self>,
    ) -> Result<()> {
        let _ = (x, h, w, out);
        Err(unsupported::<Self>("pixel_unshuffle"))
    }

    /// Copies rows `row0..row0 + out.rows` of `src` (f32 `[s, w]`) into `out`
    /// (f32 `[t, w]`): e.g. the last position's hidden state for the head.
    fn slice_rows(&self, src: &Tensor<Self>, row0: usize, out: &mut Tensor<Self>) -> Result<()> {
        let _ = (src, row0, out);
        Err(unsupported::<Self>("slice_rows"))
    }
}

/// The two GELU forms LFM2-VL uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Gelu {
    /// `gelu_pytorch_tanh` (the vision MLP).
    Tanh,
    /// The exact erf GELU (the projector).
    Erf,
}

fn unsupported<B: Backend>(op: &'static str) -> TensorError {
    TensorError::Unsupported {
        op,
        backend: std::any::type_name::<B>()
            .rsplit("::")
            .next()
            .unwrap_or("?"),
    }
}

/// Shape checks shared by every backend's matmul; returns `(m, n, k)`.
pub fn matmul_dims<B: Backend>(
    x: &Tensor<B>,
    w: &Tensor<B>,
    bias: Option<&Tensor<B>>,
    out: &Tensor<B>,
) -> Result<(usize, usize, usize)> {
    const OP: &str = "matmul";
    if x.dtype() != DType::F32 {
        return Err(TensorError::UnsupportedDType {
            op: OP,
            what: "x",
            dtype: x.dtype(),
        });
    }
    if out.dtype() != DType::F32 {
        return Err(TensorError::UnsupportedDType {
            op: OP,
            what: "out",
            dtype: out.dtype(),
        });
    }
    let k = x.shape().last();
    let m = x.shape().rows();
    if w.shape().rank() != 2 || w.shape().dims()[1] != k || x.shape().rank() == 0 {
        return Err(TensorError::ShapeMismatch {
            op: OP,
            what: "w",
            expected: Shape::from([w.shape().dims().first().copied().unwrap_or(0), k]),
            got: w.shape().clone(),
        });
    }
    let n = w.shape().dims()[0];
    let mut want = x.shape().dims().to_vec();
    *want.last_mut().expect("rank checked above") = n;
    if out.shape().dims() != want.as_slice() {
        return Err(TensorError::ShapeMismatch {
            op: OP,
            what: "out",
            expected: Shape::from(want),
            got: out.shape().clone(),
        });
    }
    if let Some(b) = bias {
        if b.dtype() != DType::F32 {
            return Err(TensorError::UnsupportedDType {
                op: OP,
                what: "bias",
                dtype: b.dtype(),
            });
        }
        if b.shape().dims() != [n] {
            return Err(TensorError::ShapeMismatch {
                op: OP,
                what: "bias",
                expected: Shape::from([n]),
                got: b.shape().clone(),
            });
        }
    }
    Ok((m, n, k))
}
