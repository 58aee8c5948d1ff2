//! The one registry of WGSL sources (STYLE.md §8).
//!
//! Each [`ShaderId`] names one pipeline entry: a main file under `shaders/`
//! plus the prelude files prepended to it by plain string concatenation (the
//! weight dtype of a matmul is chosen by its `weights_*.wgsl` prelude). All
//! files are embedded at build time with `include_str!`. A test walks
//! `shaders/` and fails on any `.wgsl` file that no `ShaderId` uses, and
//! another parses and validates every assembled source with naga under the
//! capabilities the device requests ([`naga_capabilities`]).

use std::fmt;

/// One embedded WGSL file: its path relative to `shaders/` and its text.
#[derive(Clone, Copy, Debug)]
pub struct ShaderFile {
    pub path: &'static str,
    pub text: &'static str,
}

/// Embeds `shaders/<path>` and remembers the path (one literal, so the path
/// string and the included file cannot drift apart).
macro_rules! shader_file {
    ($path:literal) => {
        ShaderFile {
            path: $path,
            text: include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../shaders/",
                $path
            )),
        }
    };
}

const BF16: ShaderFile = shader_file!("common/bf16.wgsl");
const MATMUL_IO: ShaderFile = shader_file!("matmul/io.wgsl");
const WEIGHTS_BF16: ShaderFile = shader_file!("matmul/weights_bf16.wgsl");
const WEIGHTS_F16: ShaderFile = shader_file!("matmul/weights_f16.wgsl");
const WEIGHTS_F32: ShaderFile = shader_file!("matmul/weights_f32.wgsl");
const MATMUL: ShaderFile = shader_file!("matmul/matmul.wgsl");
const WEIGHTS_BLOCKS: ShaderFile = shader_file!("matmul/weights_blocks.wgsl");
const GEMV_BLOCKS: ShaderFile = shader_file!("matmul/gemv_blocks.wgsl");
const TABLE_BLOCKS: ShaderFile = shader_file!("gather/table_blocks.wgsl");
const BLOCKS_READ: ShaderFile = shader_file!("blocks/read.wgsl");
const BLOCKS_Q8_0: ShaderFile = shader_file!("blocks/q8_0.wgsl");
const BLOCKS_Q8_0_DOT: ShaderFile = shader_file!("blocks/q8_0_dot.wgsl");
const BLOCKS_Q4_0: ShaderFile = shader_file!("blocks/q4_0.wgsl");
const BLOCKS_Q4_0_DOT: ShaderFile = shader_file!("blocks/q4_0_dot.wgsl");
const BLOCKS_Q4_K: ShaderFile = shader_file!("blocks/q4_k.wgsl");
const BLOCKS_Q4_K_DOT: ShaderFile = shader_file!("blocks/q4_k_dot.wgsl");
const BLOCKS_Q6_K: ShaderFile = shader_file!("blocks/q6_k.wgsl");
const BLOCKS_Q6_K_DOT: ShaderFile = shader_file!("blocks/q6_k_dot.wgsl");
const COOP8: ShaderFile = shader_file!("matmul/coop8.wgsl");
const COOP16: ShaderFile = shader_file!("matmul/coop16.wgsl");
const SPLIT_F16: ShaderFile = shader_file!("common/split_f16.wgsl");
const MATMUL_COOP: ShaderFile = shader_file!("matmul/matmul_coop.wgsl");
const COOP_GEMM: ShaderFile = shader_file!("matmul/coop_gemm.wgsl");
const MATMUL_COOP_PRESPLIT: ShaderFile = shader_file!("matmul/matmul_coop_presplit.wgsl");
const COOP_SPLIT_X: ShaderFile = shader_file!("matmul/coop_split_x.wgsl");
const GEMV: ShaderFile = shader_file!("matmul/gemv.wgsl");
const GEMV_X8: ShaderFile = shader_file!("matmul/gemv_x8.wgsl");
const GEMV_X8_IO: ShaderFile = shader_file!("matmul/gemv_x8_io.wgsl");
const GEMV_X8_SG_CONV: ShaderFile = shader_file!("matmul/gemv_x8_sg_conv.wgsl");
const GEMV_X8_WG: ShaderFile = shader_file!("matmul/gemv_x8_wg.wgsl");
const GEMV_X8_SG: ShaderFile = shader_file!("matmul/gemv_x8_sg.wgsl");
const GEMV_X8_SG_SWIGLU: ShaderFile = shader_file!("matmul/gemv_x8_sg_swiglu.wgsl");
const EW_IO: ShaderFile = shader_file!("elementwise/io.wgsl");
const ADD: ShaderFile = shader_file!("elementwise/add.wgsl");
const SILU_MUL: ShaderFile = shader_file!("elementwise/silu_mul.wgsl");
const SWIGLU: ShaderFile = shader_file!("elementwise/swiglu.wgsl");
const GELU_TANH: ShaderFile = shader_file!("elementwise/gelu_tanh.wgsl");
const GELU_ERF: ShaderFile = shader_file!("elementwise/gelu_erf.wgsl");
const GATHER_IO: ShaderFile = shader_file!("gather/io.wgsl");
const TABLE_F32: ShaderFile = shader_file!("gather/table_f32.wgsl");
const TABLE_BF16: ShaderFile = shader_file!("gather/table_bf16.wgsl");
const TABLE_F16: ShaderFile = shader_file!("gather/table_f16.wgsl");
const GATHER: ShaderFile = shader_file!("gather/gather.wgsl");
const COPY_COLS: ShaderFile = shader_file!("gather/copy_cols.wgsl");
const PIXEL_UNSHUFFLE: ShaderFile = shader_file!("vision/pixel_unshuffle.wgsl");
const NORM_PARAMS: ShaderFile = shader_file!("norm/params.wgsl");
const NORM_REDUCE: ShaderFile = shader_file!("norm/reduce.wgsl");
const NORM_IO: ShaderFile = shader_file!("norm/io.wgsl");
const ADD_RMS_NORM: ShaderFile = shader_file!("norm/add_rms_norm.wgsl");
const RMS_NORM: ShaderFile = shader_file!("norm/rms_norm.wgsl");
const LAYER_NORM: ShaderFile = shader_file!("norm/layer_norm.wgsl");
const ROPE: ShaderFile = shader_file!("rope/rope.wgsl");
const QKV_NORM_ROPE: ShaderFile = shader_file!("rope/qkv_norm_rope.wgsl");
const CONV_IO: ShaderFile = shader_file!("conv/io.wgsl");
const SHORT_CONV: ShaderFile = shader_file!("conv/short_conv.wgsl");
const CONV_STATE: ShaderFile = shader_file!("conv/state.wgsl");
const CONV_STEP: ShaderFile = shader_file!("conv/step.wgsl");
const ATTENTION_PARAMS: ShaderFile = shader_file!("attention/params.wgsl");
const ATTENTION_IO: ShaderFile = shader_file!("attention/io.wgsl");
const ATTENTION_DECODE: ShaderFile = shader_file!("attention/decode.wgsl");
const ATTENTION: ShaderFile = shader_file!("attention/attention.wgsl");
const ATTENTION_TILED: ShaderFile = shader_file!("attention/attention_tiled.wgsl");
const ATTENTION_ROWS: ShaderFile = shader_file!("attention/rows.wgsl");
const ATTENTION_COOP: ShaderFile = shader_file!("attention/attention_coop.wgsl");
const ATTENTION_COOP_LAYOUT: ShaderFile = shader_file!("attention/coop_layout.wgsl");
const ATTENTION_COOP_SPLIT: ShaderFile = shader_file!("attention/coop_split.wgsl");

/// A compute pipeline's WGSL source: `{op}_{in}_{out}` (STYLE.md §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ShaderId {
    /// Tiled GEMM, bf16 weights packed two per u32.
    MatmulBf16F32,
    /// Tiled GEMM, f16 weights packed two per u32.
    MatmulF16F32,
    /// Tiled GEMM, f32 weights.
    MatmulF32F32,
    /// Cooperative-matrix GEMM on 8 × 8 × 8 f16 fragments, bf16 weights.
    MatmulCoop8Bf16F32,
    /// Cooperative-matrix GEMM on 16 × 16 × 16 f16 fragments, bf16 weights.
    MatmulCoop16Bf16F32,
    /// Cooperative-matrix GEMM on 8 × 8 × 8 f16 fragments, f16 weights.
    MatmulCoop8F16F32,
    /// Cooperative-matrix GEMM on 16 × 16 × 16 f16 fragments, f16 weights.
    MatmulCoop16F16F32,
    /// Presplit cooperative-matrix GEMM (x's halves from the split pass),
    /// 8 × 8 × 8 fragments, bf16 weights.
    MatmulCoopPresplit8Bf16F32,
    /// Presplit cooperative-matrix GEMM, 16 × 16 × 16, bf16 weights.
    MatmulCoopPresplit16Bf16F32,
    /// Presplit cooperative-matrix GEMM, 8 × 8 × 8, f16 weights.
    MatmulCoopPresplit8F16F32,
    /// Presplit cooperative-matrix GEMM, 16 × 16 × 16, f16 weights.
    MatmulCoopPresplit16F16F32,
    /// The presplit GEMM's first pass: x (f32) into f16 halves, laid out
    /// for 8 × 8 × 8 fragments.
    CoopSplitX8F32F16,
    /// The presplit GEMM's first pass for 16 × 16 × 16 fragments.
    CoopSplitX16F32F16,
    /// GEMV (m = 1), bf16 weights packed two per u32.
    GemvBf16F32,
    /// GEMV (m = 1), f16 weights packed two per u32.
    GemvF16F32,
    /// GEMV (m = 1), f32 weights.
    GemvF32F32,
    /// GEMV (m = 1), bf16 weights with rows of 8k elements, 16-byte loads,
    /// reduction in workgroup memory.
    GemvBf16X8F32,
    /// As `GemvBf16X8F32`, one subgroup per row reduced with `subgroupAdd`
    /// (adapters with the `SUBGROUP` feature and a fixed subgroup size).
    GemvBf16X8SgF32,
    /// As `GemvBf16X8SgF32` over stacked w1 | w3 rows with the SwiGLU
    /// epilogue: one subgroup per output reduces its gate and up rows.
    GemvSwigluBf16X8SgF32,
    /// As `GemvBf16X8SgF32` over the short conv's in_proj (B | C | X rows)
    /// with the conv decode step as its epilogue.
    GemvConvBf16X8SgF32,
    /// Tiled GEMM, ggml Q8_0 weights as stored (decoded per element).
    MatmulQ80F32,
    /// Tiled GEMM, ggml Q4_0 weights as stored (decoded per element).
    MatmulQ40F32,
    /// Tiled GEMM, ggml Q4_K weights as stored (decoded per element).
    MatmulQ4KF32,
    /// Tiled GEMM, ggml Q6_K weights as stored (decoded per element).
    MatmulQ6KF32,
    /// GEMV (m = 1), ggml Q8_0 weights as stored, groups of 32 weights.
    GemvQ80F32,
    /// GEMV (m = 1), ggml Q4_0 weights as stored, groups of 32 weights.
    GemvQ40F32,
    /// GEMV (m = 1), ggml Q4_K weights as stored, groups of 32 weights.
    GemvQ4KF32,
    /// GEMV (m = 1), ggml Q6_K weights as stored, groups of 32 weights.
    GemvQ6KF32,
    /// Embedding gather from a ggml Q8_0 table.
    GatherQ80F32,
    /// Embedding gather from a ggml Q4_0 table.
    GatherQ40F32,
    /// Embedding gather from a ggml Q4_K table.
    GatherQ4KF32,
    /// Embedding gather from a ggml Q6_K table.
    GatherQ6KF32,
    /// `x += y` in place (f32).
    AddF32F32,
    /// `silu(gate) ⊙ up` (f32).
    SiluMulF32F32,
    /// `silu(gate) ⊙ up` over stacked `gate | up` rows (f32).
    SwigluF32F32,
    /// `gelu_pytorch_tanh` (f32).
    GeluTanhF32F32,
    /// Exact (erf) GELU (f32).
    GeluErfF32F32,
    /// Embedding gather from an f32 table.
    GatherF32F32,
    /// Embedding gather from a bf16 table packed two per u32.
    GatherBf16F32,
    /// Embedding gather from an f16 table packed two per u32.
    GatherF16F32,
    /// Column copy (f32).
    CopyColsF32F32,
    /// Pixel unshuffle by 2 (f32).
    PixelUnshuffleF32F32,
    /// RMSNorm over rows (f32).
    RmsNormF32F32,
    /// Residual add then RMSNorm, one dispatch (f32).
    AddRmsNormF32F32,
    /// LayerNorm over rows (f32).
    LayerNormF32F32,
    /// NeoX rotary embedding in place, host cos/sin table (f32).
    RopeF32F32,
    /// Per-head q/k RMSNorm then RoPE from stacked q | k | v, k and v into
    /// the caches, one dispatch (f32).
    QkvNormRopeF32F32,
    /// Short-conv output over `state ++ B⊙X` (f32).
    ShortConvF32F32,
    /// Short-conv state update (f32).
    ConvStateF32F32,
    /// Short-conv decode step: output and state shift (f32).
    ConvStepF32F32,
    /// GQA attention, one workgroup per (row, head): decode (f32).
    AttentionF32F32,
    /// GQA attention, one workgroup per (row, head), hd % 4 = 0, 16-byte
    /// loads and keys split over slices: decode (f32).
    AttentionDecodeF32F32,
    /// GQA attention, flash-style query blocks × key blocks: t > 1 (f32).
    AttentionTiledF32F32,
    /// GQA attention, one query row per thread, key blocks in workgroup
    /// memory, hd % 4 = 0 and hd ≤ 128: t > 1 (f32).
    AttentionRowsF32F32,
    /// Bidirectional attention on cooperative matrices, 8 × 8 × 8 f16
    /// fragments: t > 1 (f32 out; q, k, v from the split pass's scratch).
    AttentionCoop8F32F32,
    /// Bidirectional attention on cooperative matrices, 16 × 16 × 16.
    AttentionCoop16F32F32,
    /// The tensor-core attention's first pass: q, k, v (f32) into f16
    /// halves in its scratch, laid out for 8 × 8 × 8 fragments.
    AttentionCoopSplit8F32F16,
    /// The first pass for 16 × 16 × 16 fragments.
    AttentionCoopSplit16F32F16,
}

impl ShaderId {
    /// Every registered shader.
    pub const ALL: [ShaderId; 58] = [
        ShaderId::MatmulBf16F32,
        ShaderId::MatmulF16F32,
        ShaderId::MatmulF32F32,
        ShaderId::MatmulCoop8Bf16F32,
        ShaderId::MatmulCoop16Bf16F32,
        ShaderId::MatmulCoop8F16F32,
        ShaderId::MatmulCoop16F16F32,
        ShaderId::MatmulCoopPresplit8Bf16F32,
        ShaderId::MatmulCoopPresplit16Bf16F32,
        ShaderId::MatmulCoopPresplit8F16F32,
        ShaderId::MatmulCoopPresplit16F16F32,
        ShaderId::CoopSplitX8F32F16,
        ShaderId::CoopSplitX16F32F16,
        ShaderId::GemvBf16F32,
        ShaderId::GemvF16F32,
        ShaderId::GemvF32F32,
        ShaderId::GemvBf16X8F32,
        ShaderId::GemvBf16X8SgF32,
        ShaderId::GemvSwigluBf16X8SgF32,
        ShaderId::GemvConvBf16X8SgF32,
        ShaderId::MatmulQ80F32,
        ShaderId::MatmulQ40F32,
        ShaderId::MatmulQ4KF32,
        ShaderId::MatmulQ6KF32,
        ShaderId::GemvQ80F32,
        ShaderId::GemvQ40F32,
        ShaderId::GemvQ4KF32,
        ShaderId::GemvQ6KF32,
        ShaderId::GatherQ80F32,
        ShaderId::GatherQ40F32,
        ShaderId::GatherQ4KF32,
        ShaderId::GatherQ6KF32,
        ShaderId::AddF32F32,
        ShaderId::SiluMulF32F32,
        ShaderId::SwigluF32F32,
        ShaderId::GeluTanhF32F32,
        ShaderId::GeluErfF32F32,
        ShaderId::GatherF32F32,
        ShaderId::GatherBf16F32,
        ShaderId::GatherF16F32,
        ShaderId::CopyColsF32F32,
        ShaderId::PixelUnshuffleF32F32,
        ShaderId::RmsNormF32F32,
        ShaderId::AddRmsNormF32F32,
        ShaderId::LayerNormF32F32,
        ShaderId::RopeF32F32,
        ShaderId::QkvNormRopeF32F32,
        ShaderId::ShortConvF32F32,
        ShaderId::ConvStateF32F32,
        ShaderId::ConvStepF32F32,
        ShaderId::AttentionF32F32,
        ShaderId::AttentionDecodeF32F32,
        ShaderId::AttentionTiledF32F32,
        ShaderId::AttentionRowsF32F32,
        ShaderId::AttentionCoop8F32F32,
        ShaderId::AttentionCoop16F32F32,
        ShaderId::AttentionCoopSplit8F32F16,
        ShaderId::AttentionCoopSplit16F32F16,
    ];

    /// Pipeline and shader-module label, e.g. `"matmul_bf16_f32"`.
    pub const fn label(self) -> &'static str {
        match self {
            ShaderId::MatmulBf16F32 => "matmul_bf16_f32",
            ShaderId::MatmulF16F32 => "matmul_f16_f32",
            ShaderId::MatmulF32F32 => "matmul_f32_f32",
            ShaderId::MatmulCoop8Bf16F32 => "matmul_coop8_bf16_f32",
            ShaderId::MatmulCoop16Bf16F32 => "matmul_coop16_bf16_f32",
            ShaderId::MatmulCoop8F16F32 => "matmul_coop8_f16_f32",
            ShaderId::MatmulCoop16F16F32 => "matmul_coop16_f16_f32",
            ShaderId::MatmulCoopPresplit8Bf16F32 => "matmul_coop8_presplit_bf16_f32",
            ShaderId::MatmulCoopPresplit16Bf16F32 => "matmul_coop16_presplit_bf16_f32",
            ShaderId::MatmulCoopPresplit8F16F32 => "matmul_coop8_presplit_f16_f32",
            ShaderId::MatmulCoopPresplit16F16F32 => "matmul_coop16_presplit_f16_f32",
            ShaderId::CoopSplitX8F32F16 => "coop8_split_x_f32_f16",
            ShaderId::CoopSplitX16F32F16 => "coop16_split_x_f32_f16",
            ShaderId::GemvBf16F32 => "gemv_bf16_f32",
            ShaderId::GemvF16F32 => "gemv_f16_f32",
            ShaderId::GemvF32F32 => "gemv_f32_f32",
            ShaderId::GemvBf16X8F32 => "gemv_bf16x8_f32",
            ShaderId::GemvBf16X8SgF32 => "gemv_bf16x8_sg_f32",
            ShaderId::GemvSwigluBf16X8SgF32 => "gemv_swiglu_bf16x8_sg_f32",
            ShaderId::GemvConvBf16X8SgF32 => "gemv_conv_bf16x8_sg_f32",
            ShaderId::MatmulQ80F32 => "matmul_q8_0_f32",
            ShaderId::MatmulQ40F32 => "matmul_q4_0_f32",
            ShaderId::MatmulQ4KF32 => "matmul_q4_k_f32",
            ShaderId::MatmulQ6KF32 => "matmul_q6_k_f32",
            ShaderId::GemvQ80F32 => "gemv_q8_0_f32",
            ShaderId::GemvQ40F32 => "gemv_q4_0_f32",
            ShaderId::GemvQ4KF32 => "gemv_q4_k_f32",
            ShaderId::GemvQ6KF32 => "gemv_q6_k_f32",
            ShaderId::GatherQ80F32 => "gather_q8_0_f32",
            ShaderId::GatherQ40F32 => "gather_q4_0_f32",
            ShaderId::GatherQ4KF32 => "gather_q4_k_f32",
            ShaderId::GatherQ6KF32 => "gather_q6_k_f32",
            ShaderId::AddF32F32 => "add_f32_f32",
            ShaderId::SiluMulF32F32 => "silu_mul_f32_f32",
            ShaderId::SwigluF32F32 => "swiglu_f32_f32",
            ShaderId::GeluTanhF32F32 => "gelu_tanh_f32_f32",
            ShaderId::GeluErfF32F32 => "gelu_erf_f32_f32",
            ShaderId::GatherF32F32 => "gather_f32_f32",
            ShaderId::GatherBf16F32 => "gather_bf16_f32",
            ShaderId::GatherF16F32 => "gather_f16_f32",
            ShaderId::CopyColsF32F32 => "copy_cols_f32_f32",
            ShaderId::PixelUnshuffleF32F32 => "pixel_unshuffle_f32_f32",
            ShaderId::RmsNormF32F32 => "rms_norm_f32_f32",
            ShaderId::AddRmsNormF32F32 => "add_rms_norm_f32_f32",
            ShaderId::LayerNormF32F32 => "layer_norm_f32_f32",
            ShaderId::RopeF32F32 => "rope_f32_f32",
            ShaderId::QkvNormRopeF32F32 => "qkv_norm_rope_f32_f32",
            ShaderId::ShortConvF32F32 => "short_conv_f32_f32",
            ShaderId::ConvStateF32F32 => "conv_state_f32_f32",
            ShaderId::ConvStepF32F32 => "conv_step_f32_f32",
            ShaderId::AttentionF32F32 => "attention_f32_f32",
            ShaderId::AttentionDecodeF32F32 => "attention_decode_f32_f32",
            ShaderId::AttentionTiledF32F32 => "attention_tiled_f32_f32",
            ShaderId::AttentionRowsF32F32 => "attention_rows_f32_f32",
            ShaderId::AttentionCoop8F32F32 => "attention_coop8_f32_f32",
            ShaderId::AttentionCoop16F32F32 => "attention_coop16_f32_f32",
            ShaderId::AttentionCoopSplit8F32F16 => "attention_coop8_split_f32_f16",
            ShaderId::AttentionCoopSplit16F32F16 => "attention_coop16_split_f32_f16",
        }
    }

    /// The compute entry point.
    pub const fn entry_point(self) -> &'static str {
        "main"
    }

    /// The files of this shader in concatenation order: preludes, then main.
    pub const fn files(self) -> &'static [ShaderFile] {
        match self {
            ShaderId::MatmulBf16F32 => &[BF16, MATMUL_IO, WEIGHTS_BF16, MATMUL],
            ShaderId::MatmulF16F32 => &[MATMUL_IO, WEIGHTS_F16, MATMUL],
            ShaderId::MatmulF32F32 => &[MATMUL_IO, WEIGHTS_F32, MATMUL],
            ShaderId::MatmulCoop8Bf16F32 => &[
                COOP8,
                SPLIT_F16,
                BF16,
                MATMUL_IO,
                WEIGHTS_BF16,
                COOP_GEMM,
                MATMUL_COOP,
            ],
            ShaderId::MatmulCoopPresplit8Bf16F32 => &[
                COOP8,
                SPLIT_F16,
                BF16,
                MATMUL_IO,
                WEIGHTS_BF16,
                COOP_GEMM,
                MATMUL_COOP_PRESPLIT,
            ],
            ShaderId::MatmulCoop8F16F32 => &[
                COOP8,
                SPLIT_F16,
                MATMUL_IO,
                WEIGHTS_F16,
                COOP_GEMM,
                MATMUL_COOP,
            ],
            ShaderId::MatmulCoopPresplit8F16F32 => &[
                COOP8,
                SPLIT_F16,
                MATMUL_IO,
                WEIGHTS_F16,
                COOP_GEMM,
                MATMUL_COOP_PRESPLIT,
            ],
            ShaderId::CoopSplitX8F32F16 => &[COOP8, SPLIT_F16, MATMUL_IO, COOP_SPLIT_X],
            ShaderId::MatmulCoop16Bf16F32 => &[
                COOP16,
                SPLIT_F16,
                BF16,
                MATMUL_IO,
                WEIGHTS_BF16,
                COOP_GEMM,
                MATMUL_COOP,
            ],
            ShaderId::MatmulCoopPresplit16Bf16F32 => &[
                COOP16,
                SPLIT_F16,
                BF16,
                MATMUL_IO,
                WEIGHTS_BF16,
                COOP_GEMM,
                MATMUL_COOP_PRESPLIT,
            ],
            ShaderId::MatmulCoop16F16F32 => &[
                COOP16,
                SPLIT_F16,
                MATMUL_IO,
                WEIGHTS_F16,
                COOP_GEMM,
                MATMUL_COOP,
            ],
            ShaderId::MatmulCoopPresplit16F16F32 => &[
                COOP16,
                SPLIT_F16,
                MATMUL_IO,
                WEIGHTS_F16,
                COOP_GEMM,
                MATMUL_COOP_PRESPLIT,
            ],
            ShaderId::CoopSplitX16F32F16 => &[COOP16, SPLIT_F16, MATMUL_IO, COOP_SPLIT_X],
            ShaderId::GemvBf16F32 => &[BF16, MATMUL_IO, WEIGHTS_BF16, GEMV],
            ShaderId::GemvF16F32 => &[MATMUL_IO, WEIGHTS_F16, GEMV],
            ShaderId::GemvF32F32 => &[MATMUL_IO, WEIGHTS_F32, GEMV],
            ShaderId::GemvBf16X8F32 => &[BF16, GEMV_X8_IO, GEMV_X8, GEMV_X8_WG],
            ShaderId::GemvBf16X8SgF32 => &[BF16, GEMV_X8_IO, GEMV_X8, GEMV_X8_SG],
            ShaderId::GemvSwigluBf16X8SgF32 => &[BF16, GEMV_X8_IO, GEMV_X8, GEMV_X8_SG_SWIGLU],
            ShaderId::GemvConvBf16X8SgF32 => &[BF16, GEMV_X8, GEMV_X8_SG_CONV],
            ShaderId::MatmulQ80F32 => {
                &[MATMUL_IO, WEIGHTS_BLOCKS, BLOCKS_READ, BLOCKS_Q8_0, MATMUL]
            }
            ShaderId::MatmulQ40F32 => {
                &[MATMUL_IO, WEIGHTS_BLOCKS, BLOCKS_READ, BLOCKS_Q4_0, MATMUL]
            }
            ShaderId::MatmulQ4KF32 => {
                &[MATMUL_IO, WEIGHTS_BLOCKS, BLOCKS_READ, BLOCKS_Q4_K, MATMUL]
            }
            ShaderId::MatmulQ6KF32 => {
                &[MATMUL_IO, WEIGHTS_BLOCKS, BLOCKS_READ, BLOCKS_Q6_K, MATMUL]
            }
            ShaderId::GemvQ80F32 => &[
                MATMUL_IO,
                WEIGHTS_BLOCKS,
                BLOCKS_READ,
                BLOCKS_Q8_0,
                BLOCKS_Q8_0_DOT,
                GEMV_BLOCKS,
            ],
            ShaderId::GemvQ40F32 => &[
                MATMUL_IO,
                WEIGHTS_BLOCKS,
                BLOCKS_READ,
                BLOCKS_Q4_0,
                BLOCKS_Q4_0_DOT,
                GEMV_BLOCKS,
            ],
            ShaderId::GemvQ4KF32 => &[
                MATMUL_IO,
                WEIGHTS_BLOCKS,
                BLOCKS_READ,
                BLOCKS_Q4_K,
                BLOCKS_Q4_K_DOT,
                GEMV_BLOCKS,
            ],
            ShaderId::GemvQ6KF32 => &[
                MATMUL_IO,
                WEIGHTS_BLOCKS,
                BLOCKS_READ,
                BLOCKS_Q6_K,
                BLOCKS_Q6_K_DOT,
                GEMV_BLOCKS,
            ],
            ShaderId::GatherQ80F32 => &[GATHER_IO, TABLE_BLOCKS, BLOCKS_READ, BLOCKS_Q8_0, GATHER],
            ShaderId::GatherQ40F32 => &[GATHER_IO, TABLE_BLOCKS, BLOCKS_READ, BLOCKS_Q4_0, GATHER],
            ShaderId::GatherQ4KF32 => &[GATHER_IO, TABLE_BLOCKS, BLOCKS_READ, BLOCKS_Q4_K, GATHER],
            ShaderId::GatherQ6KF32 => &[GATHER_IO, TABLE_BLOCKS, BLOCKS_READ, BLOCKS_Q6_K, GATHER],
            ShaderId::AddF32F32 => &[EW_IO, ADD],
            ShaderId::SiluMulF32F32 => &[EW_IO, SILU_MUL],
            ShaderId::SwigluF32F32 => &[SWIGLU],
            ShaderId::GeluTanhF32F32 => &[EW_IO, GELU_TANH],
            ShaderId::GeluErfF32F32 => &[EW_IO, GELU_ERF],
            ShaderId::GatherF32F32 => &[GATHER_IO, TABLE_F32, GATHER],
            ShaderId::GatherBf16F32 => &[BF16, GATHER_IO, TABLE_BF16, GATHER],
            ShaderId::GatherF16F32 => &[GATHER_IO, TABLE_F16, GATHER],
            ShaderId::CopyColsF32F32 => &[COPY_COLS],
            ShaderId::PixelUnshuffleF32F32 => &[PIXEL_UNSHUFFLE],
            ShaderId::RmsNormF32F32 => &[NORM_PARAMS, NORM_REDUCE, NORM_IO, RMS_NORM],
            ShaderId::AddRmsNormF32F32 => &[NORM_PARAMS, NORM_REDUCE, ADD_RMS_NORM],
            ShaderId::LayerNormF32F32 => &[NORM_PARAMS, NORM_REDUCE, NORM_IO, LAYER_NORM],
            ShaderId::RopeF32F32 => &[ROPE],
            ShaderId::QkvNormRopeF32F32 => &[NORM_REDUCE, QKV_NORM_ROPE],
            ShaderId::ShortConvF32F32 => &[CONV_IO, SHORT_CONV],
            ShaderId::ConvStateF32F32 => &[CONV_IO, CONV_STATE],
            ShaderId::ConvStepF32F32 => &[CONV_IO, CONV_STEP],
            ShaderId::AttentionF32F32 => &[ATTENTION_PARAMS, ATTENTION_IO, ATTENTION],
            ShaderId::AttentionDecodeF32F32 => &[ATTENTION_PARAMS, ATTENTION_DECODE],
            ShaderId::AttentionTiledF32F32 => &[ATTENTION_PARAMS, ATTENTION_IO, ATTENTION_TILED],
            ShaderId::AttentionRowsF32F32 => &[ATTENTION_PARAMS, ATTENTION_ROWS],
            ShaderId::AttentionCoop8F32F32 => &[
                COOP8,
                SPLIT_F16,
                ATTENTION_PARAMS,
                ATTENTION_IO,
                ATTENTION_COOP_LAYOUT,
                ATTENTION_COOP,
            ],
            ShaderId::AttentionCoopSplit8F32F16 => &[
                COOP8,
                SPLIT_F16,
                ATTENTION_PARAMS,
                ATTENTION_IO,
                ATTENTION_COOP_LAYOUT,
                ATTENTION_COOP_SPLIT,
            ],
            ShaderId::AttentionCoop16F32F32 => &[
                COOP16,
                SPLIT_F16,
                ATTENTION_PARAMS,
                ATTENTION_IO,
                ATTENTION_COOP_LAYOUT,
                ATTENTION_COOP,
            ],
            ShaderId::AttentionCoopSplit16F32F16 => &[
                COOP16,
                SPLIT_F16,
                ATTENTION_PARAMS,
                ATTENTION_IO,
                ATTENTION_COOP_LAYOUT,
                ATTENTION_COOP_SPLIT,
            ],
        }
    }

    /// The wgpu features the shader needs beyond core WebGPU.
    pub const fn required_features(self) -> wgpu::Features {
        match self {
            ShaderId::GemvBf16X8SgF32
            | ShaderId::GemvSwigluBf16X8SgF32
            | ShaderId::GemvConvBf16X8SgF32 => wgpu::Features::SUBGROUP,
            ShaderId::MatmulCoop8Bf16F32
            | ShaderId::MatmulCoop16Bf16F32
            | ShaderId::MatmulCoop8F16F32
            | ShaderId::MatmulCoop16F16F32
            | ShaderId::MatmulCoopPresplit8Bf16F32
            | ShaderId::MatmulCoopPresplit16Bf16F32
            | ShaderId::MatmulCoopPresplit8F16F32
            | ShaderId::MatmulCoopPresplit16F16F32
            | ShaderId::CoopSplitX8F32F16
            | ShaderId::CoopSplitX16F32F16
            | ShaderId::AttentionCoop8F32F32
            | ShaderId::AttentionCoop16F32F32
            | ShaderId::AttentionCoopSplit8F32F16
            | ShaderId::AttentionCoopSplit16F32F16 => wgpu::Features::SUBGROUP
                .union(wgpu::Features::SHADER_F16)
                .union(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
            _ => wgpu::Features::empty(),
        }
    }

    /// The adapter capabilities (downlevel flags) the shader needs: the f16
    /// variants widen with `unpack2x16float`, which naga gates on
    /// `SHADER_F16_IN_F32` (present on every Vulkan, Metal and DX12 adapter;
    /// it needs no `shader-f16` feature).
    pub const fn required_downlevel(self) -> wgpu::DownlevelFlags {
        match self {
            ShaderId::MatmulF16F32
            | ShaderId::MatmulCoop8F16F32
            | ShaderId::MatmulCoop16F16F32
            | ShaderId::MatmulCoopPresplit8F16F32
            | ShaderId::MatmulCoopPresplit16F16F32
            | ShaderId::GemvF16F32
            | ShaderId::GatherF16F32
            | ShaderId::MatmulQ80F32
            | ShaderId::MatmulQ40F32
            | ShaderId::MatmulQ4KF32
            | ShaderId::MatmulQ6KF32
            | ShaderId::GemvQ80F32
            | ShaderId::GemvQ40F32
            | ShaderId::GemvQ4KF32
            | ShaderId::GemvQ6KF32
            | ShaderId::GatherQ80F32
            | ShaderId::GatherQ40F32
            | ShaderId::GatherQ4KF32
            | ShaderId::GatherQ6KF32 => wgpu::DownlevelFlags::SHADER_F16_IN_F32,
            _ => wgpu::DownlevelFlags::empty(),
        }
    }

    /// The final source handed to the device: every file, in order, each
    /// behind a `// ---- shaders/<path> ----` marker so that compiler errors
    /// can be traced back to a file.
    pub fn source(self) -> String {
        let files = self.files();
        let mut s = String::with_capacity(files.iter().map(|f| f.text.len() + 64).sum());
        for f in files {
            s.push_str("// ---- shaders/");
            s.push_str(f.path);
            s.push_str(" ----\n");
            s.push_str(f.text);
            if !f.text.ends_with('\n') {
                s.push('\n');
            }
        }
        s
    }
}

impl fmt::Display for ShaderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Every embedded file (paths relative to `shaders/`), deduplicated and sorted.
pub fn registered_files() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = ShaderId::ALL
        .iter()
        .flat_map(|id| id.files().iter().map(|f| f.path))
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

/// The naga capabilities that a device granted `features`, on an adapter
/// with `downlevel` flags, validates shaders with: the mirror of wgpu's own
/// mapping (`wgpu-naga-bridge`) for the features and flags that matter to
/// compute shaders.
pub fn naga_capabilities(
    features: wgpu::Features,
    downlevel: wgpu::DownlevelFlags,
) -> naga::valid::Capabilities {
    use naga::valid::Capabilities as Caps;
    let mut caps = Caps::empty();
    caps.set(
        Caps::SHADER_FLOAT16_IN_FLOAT32,
        downlevel.contains(wgpu::DownlevelFlags::SHADER_F16_IN_F32),
    );
    caps.set(
        Caps::SHADER_FLOAT16,
        features.contains(wgpu::Features::SHADER_F16),
    );
    caps.set(Caps::SUBGROUP, features.contains(wgpu::Features::SUBGROUP));
    caps.set(
        Caps::COOPERATIVE_MATRIX,
        features.contains(wgpu::Features::EXPERIMENTAL_COOPERATIVE_MATRIX),
    );
    caps.set(
        Caps::SUBGROUP_BARRIER,
        features.contains(wgpu::Features::SUBGROUP_BARRIER),
    );
    caps
}

/// Parses and validates `id`'s final source with naga under the capabilities
/// of a device that was granted `features` on an adapter with `downlevel`.
pub fn validate(
    id: ShaderId,
    features: wgpu::Features,
    downlevel: wgpu::DownlevelFlags,
) -> Result<(naga::Module, naga::valid::ModuleInfo), crate::TensorError> {
    let src = id.source();
    let module = naga::front::wgsl::parse_str(&src).map_err(|e| crate::TensorError::Shader {
        shader: id.label(),
        detail: e.emit_to_string(&src),
    })?;
    let mut validator = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga_capabilities(features, downlevel),
    );
    let info = validator
        .validate(&module)
        .map_err(|e| crate::TensorError::Shader {
            shader: id.label(),
            detail: e.emit_to_string(&src),
        })?;
    Ok((module, info))
}
