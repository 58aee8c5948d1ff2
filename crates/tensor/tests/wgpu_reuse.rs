//! Bind group reuse: a decode-like step (gather, norm, GEMV, rope, attention,
//! short conv, silu·mul, add, GEMM with bias, download) run repeatedly on the
//! same tensors creates its bind groups on the first step only, while the
//! positions, kv lengths and host data that change between steps still
//! reach the kernels. A new tensor gets a bind group of its own (no stale
//! entry), and entries of dropped tensors are evicted after a few syncs.
//! One test in this binary, so the shared backend's counters are its own.
//! Skips without an adapter unless `LFM_REQUIRE_GPU=1`.
#![cfg(feature = "wgpu")]

use tensor::cpu::rope;
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::{GPU_ROPE, Tolerance};
use tensor::wgpu::{WgpuBackend, gpu_or_skip};
use tensor::{Backend, DType, HostData, Shape, Tensor, op};

type T = Tensor<WgpuBackend>;

const D: usize = 64;
const H: usize = 2;
const HD: usize = 32;
const VOCAB: usize = 16;
const L: usize = 3;
const MAX_LEN: usize = 8;
const THETA: f32 = 10_000.0;

fn up(be: &WgpuBackend, v: &[f32], dims: &[usize]) -> T {
    be.upload(HostData::f32(v), Shape::from(dims.to_vec()))
        .expect("upload")
}

fn zeros(be: &WgpuBackend, dims: &[usize]) -> T {
    be.zeros(DType::F32, Shape::from(dims.to_vec()))
        .expect("zeros")
}

/// The session's weights and preallocated activations.
struct Session {
    embed: T,
    norm_w: T,
    wq: T,
    conv_w: T,
    head: T,
    bias: T,
    q0: T,
    k: T,
    v: T,
    state: T,
    x: T,
    normed: T,
    q: T,
    r: T,
    attn: T,
    bcx: T,
    conv_out: T,
    act: T,
    two: T,
    pair: T,
    logits: T,
}

impl Session {
    fn new(be: &WgpuBackend) -> Self {
        let mut rng = Rng::for_case("wgpu_reuse", "session");
        let mut v = |n: usize| rng.vec(n, 1.0);
        Session {
            embed: up(be, &v(VOCAB * D), &[VOCAB, D]),
            norm_w: up(be, &v(D), &[D]),
            wq: up(be, &v(H * HD * D), &[H * HD, D]),
            conv_w: up(be, &v(D * L), &[D, L]),
            head: up(be, &v(VOCAB * D), &[VOCAB, D]),
            bias: up(be, &v(VOCAB), &[VOCAB]),
            q0: up(be, &v(H * HD), &[1, H, HD]),
            k: up(be, &v(MAX_LEN * HD), &[MAX_LEN, 1, HD]),
            v: up(be, &v(MAX_LEN * HD), &[MAX_LEN, 1, HD]),
            state: zeros(be, &[L - 1, D]),
            x: zeros(be, &[1, D]),
            normed: zeros(be, &[1, D]),
            q: zeros(be, &[1, H * HD]),
            r: zeros(be, &[1, H, HD]),
            attn: zeros(be, &[1, H, HD]),
            bcx: up(be, &v(3 * D), &[1, 3 * D]),
            conv_out: zeros(be, &[1, D]),
            act: zeros(be, &[1, D]),
            two: zeros(be, &[2, D]),
            pair: zeros(be, &[2, VOCAB]),
            logits: zeros(be, &[1, VOCAB]),
        }
    }

    /// One decode-like step at `pos`; returns the logits.
    fn step(&mut self, be: &WgpuBackend, pos: usize) -> Vec<f32> {
        let s = self;
        be.gather_rows(op::GatherRows {
            table: &s.embed,
            ids: &[(pos % VOCAB) as u32],
            out: &mut s.x,
        })
        .expect("gather_rows");
        be.rms_norm(op::RmsNorm {
            x: &s.x,
            w: &s.norm_w,
            eps: 1e-5,
            out: &mut s.normed,
        })
        .expect("rms_norm");
        be.matmul(op::Matmul {
            x: &s.normed,
            w: &s.wq,
            bias: None,
            out: &mut s.q,
        })
        .expect("gemv");
        be.copy_rows(op::CopyRows {
            src: &s.q0,
            dst: &mut s.r,
            row0: 0,
        })
        .expect("copy_rows");
        be.rope(op::Rope {
            x: &mut s.r,
            pos0: pos,
            theta: THETA,
        })
        .expect("rope");
        let scale = 1.0 / (HD as f32).sqrt();
        be.attention(op::Attention {
            q: &s.r,
            k: &s.k,
            v: &s.v,
            kv_len: pos + 1,
            causal: true,
            scale,
            out: &mut s.attn,
        })
        .expect("attention");
        be.short_conv(op::ShortConv {
            bcx: &s.bcx,
            w: &s.conv_w,
            state: &mut s.state,
            out: &mut s.conv_out,
        })
        .expect("short_conv");
        be.silu_mul(op::SiluMul {
            gate: &s.normed,
            up: &s.conv_out,
            out: &mut s.act,
        })
        .expect("silu_mul");
        be.add_assign(op::AddAssign {
            x: &mut s.x,
            y: &s.act,
        })
        .expect("add_assign");
        be.matmul(op::Matmul {
            x: &s.x,
            w: &s.head,
            bias: Some(&s.bias),
            out: &mut s.logits,
        })
        .expect("gemv with bias");
        be.copy_rows(op::CopyRows {
            src: &s.x,
            dst: &mut s.two,
            row0: 1,
        })
        .expect("copy_rows");
        be.matmul(op::Matmul {
            x: &s.two,
            w: &s.head,
            bias: Some(&s.bias),
            out: &mut s.pair,
        })
        .expect("gemm");
        be.download_f32(&s.logits).expect("download")
    }
}

#[test]
fn wgpu_decode_steps_reuse_bind_groups() {
    let Some(be) = gpu_or_skip() else { return };
    let mut s = Session::new(&be);
    // Bind groups from before the first step: the backend's start-up
    // self-check of the tensor-core GEMM, where the adapter has one.
    let base = be.bind_group_count();
    let _ = s.step(&be, 0);
    let pipelines = be.pipeline_count();
    let first = be.bind_group_count();
    // One per dispatch: gather, norm, GEMV, rope, attention, the one-dispatch
    // short-conv step, silu·mul, add, GEMV with bias, GEMM.
    assert_eq!(
        first - base,
        10,
        "first step created {} bind groups",
        first - base
    );
    for pos in 1..MAX_LEN {
        let logits = s.step(&be, pos);
        assert!(
            logits.iter().all(|v| v.is_finite()),
            "pos {pos}: {logits:?}"
        );
        assert_eq!(
            be.bind_group_count(),
            first,
            "step at pos {pos} created bind groups"
        );
        assert_eq!(be.pipeline_count(), pipelines);
        // The rope table of this step (host data at the same ring offset as
        // before) reached the kernel through the cached bind group.
        let q0 = be.download_f32(&s.q0).expect("download");
        let (want, scale) = rope::reference::rope(&q0, H, HD, pos, THETA);
        let got = be.download_f32(&s.r).expect("download");
        GPU_ROPE
            .check(&got, &want, &scale)
            .unwrap_or_else(|e| panic!("rope at pos {pos}: {e:?}"));
    }

    // A tensor allocated after another was dropped gets its own bind group
    // and its own results, never a stale entry.
    let before = be.bind_group_count();
    for round in 0..3 {
        let vals: Vec<f32> = (0..D).map(|i| (i + round * D) as f32).collect();
        let y = up(&be, &vals, &[1, D]);
        let mut sum = zeros(&be, &[1, D]);
        be.add_assign(op::AddAssign { x: &mut sum, y: &y })
            .expect("add_assign");
        let got = be.download_f32(&sum).expect("download");
        Tolerance::Exact
            .check(&got, &vals, &[])
            .unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        drop((y, sum));
    }
    assert_eq!(be.bind_group_count(), before + 3);

    // Entries of dropped tensors go after a few epochs; the session's stay.
    let cached = be.cached_bind_group_count();
    let session = first - base;
    assert!(cached >= session + 3, "{cached} cached after the rounds");
    for _ in 0..12 {
        let _ = s.step(&be, MAX_LEN - 1);
    }
    assert_eq!(
        be.cached_bind_group_count(),
        session,
        "the cache should hold exactly the session's bind groups"
    );
    assert_eq!(be.bind_group_count(), before + 3);
}
