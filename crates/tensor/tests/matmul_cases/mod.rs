//! The matmul cases shared by the WGSL matmul tests (`wgpu_matmul.rs`,
//! `wgpu_coop.rs`): a case runs one matmul through the backend's choice or
//! a forced kernel and checks it against the f64 reference with
//! `testing::tolerance::GPU_MATMUL`.

use half::{bf16, f16};
use tensor::cpu::matmul::reference;
use tensor::dtype::Element;
use tensor::testing::rng::Rng;
use tensor::testing::tolerance::{ErrorStats, GPU_MATMUL};
use tensor::wgpu::WgpuBackend;
use tensor::wgpu::matmul::coop::CoopGrid;
use tensor::wgpu::matmul::{
    GemmVariant, GemvKind, coop_presplit_with, coop_with, gemm_with, gemv_with,
};
use tensor::{Backend, DType, HostData, Shape, Tensor, op};

#[derive(Clone, Copy, Debug)]
pub struct Case {
    pub dtype: DType,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub bias: bool,
    /// Byte offset of the weights inside the host buffer they are uploaded
    /// from (odd offsets mimic safetensors inside an mmap).
    pub w_off: usize,
    /// The GEMM variant to force (`gemm_with`); `None`: the backend's choice.
    pub variant: Option<GemmVariant>,
    /// The GEMV kind to force (`gemv_with`, m = 1).
    pub gemv: Option<GemvKind>,
    /// The tensor-core GEMM's grid to force (`coop_with`).
    pub coop: Option<CoopGrid>,
    /// With `coop`: its presplit variant (`coop_presplit_with`).
    pub presplit: bool,
}

pub const BASE: Case = Case {
    dtype: DType::F32,
    m: 1,
    n: 1,
    k: 1,
    bias: false,
    w_off: 0,
    variant: None,
    gemv: None,
    coop: None,
    presplit: false,
};

/// Host bytes of `v` placed `off` bytes into a larger buffer.
pub fn bytes_at<E: Element>(v: &[E], off: usize) -> Vec<u8> {
    let mut b = vec![0xa5u8; off];
    b.extend_from_slice(bytemuck::cast_slice(v));
    b.extend_from_slice(&[0x5a; 3]);
    b
}

/// Uploads weights rounded to `E`; returns the tensor and the reference.
fn weights_and_reference<E: Element>(
    be: &WgpuBackend,
    c: &Case,
    wf: &[f32],
    x: &[f32],
    bias: Option<&[f32]>,
) -> (Tensor<WgpuBackend>, Vec<f32>, Vec<f64>) {
    let w: Vec<E> = wf.iter().map(|&v| E::from_f32(v)).collect();
    let host = bytes_at(&w, c.w_off);
    let len = w.len() * size_of::<E>();
    let t = be
        .upload(
            HostData::new(E::DTYPE, &host[c.w_off..c.w_off + len]),
            Shape::from([c.n, c.k]),
        )
        .expect("upload w");
    let (want, mag) = reference::matmul(x, &w, bias, c.m, c.n, c.k);
    (t, want, mag)
}

/// Uploads random block-format weights (`c.k` whole blocks per row);
/// returns the tensor and the reference on the decoded weights.
fn block_weights_and_reference(
    be: &WgpuBackend,
    c: &Case,
    rng: &mut Rng,
    x: &[f32],
    bias: Option<&[f32]>,
) -> (Tensor<WgpuBackend>, Vec<f32>, Vec<f64>) {
    let bytes = rng.blocks(c.dtype, c.n * c.k / c.dtype.block_elems());
    let wf = tensor::quant::dequantize_vec(c.dtype, &bytes).expect("decode");
    let mut host = vec![0xa5u8; c.w_off];
    host.extend_from_slice(&bytes);
    let t = be
        .upload(
            HostData::new(c.dtype, &host[c.w_off..c.w_off + bytes.len()]),
            Shape::from([c.n, c.k]),
        )
        .expect("upload w");
    let (want, mag) = reference::matmul(x, &wf, bias, c.m, c.n, c.k);
    (t, want, mag)
}

pub fn run(be: &WgpuBackend, c: Case) -> ErrorStats {
    let mut rng = Rng::for_case("matmul_wgpu", &format!("{c:?}"));
    let x = rng.vec(c.m * c.k, 1.0);
    let wf = rng.vec(c.n * c.k, 0.5);
    let bias = c.bias.then(|| rng.vec(c.n, 0.5));
    let b = bias.as_deref();
    let (w, want, mag) = match c.dtype {
        DType::F32 => weights_and_reference::<f32>(be, &c, &wf, &x, b),
        DType::BF16 => weights_and_reference::<bf16>(be, &c, &wf, &x, b),
        DType::F16 => weights_and_reference::<f16>(be, &c, &wf, &x, b),
        dtype if dtype.is_block() => block_weights_and_reference(be, &c, &mut rng, &x, b),
        other => panic!("no test weights for {other}"),
    };
    let xt = be
        .upload(HostData::f32(&x), Shape::from([c.m, c.k]))
        .expect("upload x");
    let bt = b.map(|b| {
        be.upload(HostData::f32(b), Shape::from([c.n]))
            .expect("upload bias")
    });
    // Start from garbage: the kernel must overwrite every output.
    let garbage = vec![f32::NAN; c.m * c.n];
    let mut out = be
        .upload(HostData::f32(&garbage), Shape::from([c.m, c.n]))
        .expect("upload out");
    let op = op::Matmul {
        x: &xt,
        w: &w,
        bias: bt.as_ref(),
        out: &mut out,
    };
    match (c.variant, c.gemv, c.coop) {
        (Some(v), _, _) => gemm_with(be, op, v),
        (None, Some(kind), _) => gemv_with(be, op, kind),
        (None, None, Some(grid)) if c.presplit => coop_presplit_with(be, op, grid),
        (None, None, Some(grid)) => coop_with(be, op, grid),
        (None, None, None) => be.matmul(op),
    }
    .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let got = be
        .download_f32(&out)
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    match GPU_MATMUL.check(&got, &want, &mag) {
        Ok(st) => st,
        Err(e) => panic!(
            "{c:?}: first bad index {} (row {}, col {}): got {}, want {}, bound {:e}",
            e.index,
            e.index / c.n.max(1),
            e.index % c.n.max(1),
            e.got,
            e.want,
            e.bound
        ),
    }
}

#[derive(Default)]
pub struct Worst(pub ErrorStats, pub usize);

impl Worst {
    pub fn add(&mut self, st: ErrorStats) {
        self.0.max_abs = self.0.max_abs.max(st.max_abs);
        self.0.max_rel = self.0.max_rel.max(st.max_rel);
        self.1 += 1;
    }
    pub fn report(&self, what: &str, be: &WgpuBackend) {
        println!(
            "{what} on {}: {} cases, worst |x-r| = {:.3e}, worst |x-r|/Σ|ab| = {:.3e}",
            be.describe(),
            self.1,
            self.0.max_abs,
            self.0.max_rel
        );
    }
}

pub const DTYPES: [DType; 3] = [DType::F32, DType::BF16, DType::F16];
