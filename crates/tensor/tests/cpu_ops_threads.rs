//! The CPU backend's row-wise and elementwise ops (rms_norm, layer_norm,
//! silu_mul, swiglu, gelu, add_assign, copy_cols) split large calls over
//! the pool's threads (`cpu/ops.rs` `par_rows`). Every element depends on
//! its own row only, so 1 and 3 threads must agree bit for bit, on shapes
//! above the split threshold with odd row lengths and counts.

use tensor::cpu::{CpuBackend, Isa};
use tensor::testing::rng::Rng;
use tensor::{Backend, DType, Gelu, HostData, Shape, Tensor, op};

/// Rows × columns above the split threshold (2^15 elements), both odd.
const ROWS: usize = 37;
const COLS: usize = 1031;

fn bits(be: &CpuBackend, t: &Tensor<CpuBackend>) -> Vec<u32> {
    be.download_f32(t)
        .unwrap()
        .iter()
        .map(|x| x.to_bits())
        .collect()
}

/// Every op on one backend, outputs as bits in a fixed order.
fn run_all(be: &CpuBackend) -> Vec<Vec<u32>> {
    let mut rng = Rng::for_case("cpu ops threads", "");
    let up =
        |v: &[f32], shape: [usize; 2]| be.upload(HostData::f32(v), Shape::from(shape)).unwrap();
    let x = up(&rng.vec(ROWS * COLS, 3.0), [ROWS, COLS]);
    let y = up(&rng.vec(ROWS * COLS, 3.0), [ROWS, COLS]);
    let w = up(&rng.vec(COLS, 1.0), [1, COLS]).reshape([COLS]).unwrap();
    let b = up(&rng.vec(COLS, 1.0), [1, COLS]).reshape([COLS]).unwrap();
    let gu = up(&rng.vec(ROWS * 2 * COLS, 3.0), [ROWS, 2 * COLS]);
    let zeros = |c: usize| be.zeros(DType::F32, Shape::from([ROWS, c])).unwrap();
    let mut outs = Vec::new();

    let mut o = zeros(COLS);
    be.rms_norm(op::RmsNorm {
        x: &x,
        w: &w,
        eps: 1e-5,
        out: &mut o,
    })
    .unwrap();
    outs.push(bits(be, &o));
    be.layer_norm(op::LayerNorm {
        x: &x,
        w: &w,
        b: &b,
        eps: 1e-6,
        out: &mut o,
    })
    .unwrap();
    outs.push(bits(be, &o));
    be.silu_mul(op::SiluMul {
        gate: &x,
        up: &y,
        out: &mut o,
    })
    .unwrap();
    outs.push(bits(be, &o));
    be.swiglu(op::Swiglu {
        gu: &gu,
        out: &mut o,
    })
    .unwrap();
    outs.push(bits(be, &o));
    for kind in [Gelu::Tanh, Gelu::Erf] {
        be.gelu(op::Gelu {
            x: &x,
            kind,
            out: &mut o,
        })
        .unwrap();
        outs.push(bits(be, &o));
    }
    let mut acc = up(&be.download_f32(&x).unwrap(), [ROWS, COLS]);
    be.add_assign(op::AddAssign { x: &mut acc, y: &y }).unwrap();
    outs.push(bits(be, &acc));
    let mut c = zeros(COLS - 2);
    be.copy_cols(op::CopyCols {
        src: &gu,
        col0: COLS + 1,
        out: &mut c,
    })
    .unwrap();
    outs.push(bits(be, &c));
    outs
}

#[test]
fn row_ops_agree_across_threads() {
    let isa = Isa::best();
    let one = run_all(&CpuBackend::with(isa, 1).unwrap());
    let three = run_all(&CpuBackend::with(isa, 3).unwrap());
    let names = [
        "rms_norm",
        "layer_norm",
        "silu_mul",
        "swiglu",
        "gelu tanh",
        "gelu erf",
        "add_assign",
        "copy_cols",
    ];
    for ((a, b), name) in one.iter().zip(&three).zip(names) {
        assert!(a == b, "{isa} {name}: 1 and 3 threads differ");
        assert!(a.iter().any(|&x| x != 0), "{name}: all zeros");
    }
}
