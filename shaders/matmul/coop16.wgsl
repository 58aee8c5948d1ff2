// Cooperative-matrix fragments of 16 × 16 × 16 for the tensor-core kernels
// (matmul/matmul_coop.wgsl, attention/attention_coop.wgsl;
// kernels/matmul.md): f16 inputs, f32 accumulator. This prelude comes
// first: the enable directives must precede every declaration.
enable f16;
enable wgpu_cooperative_matrix;

// Fragment side: rows and columns of every fragment, and its k depth.
const CM: u32 = 16u;
alias FragA = coop_mat16x16<f16, A>;
alias FragB = coop_mat16x16<f16, B>;
alias FragC = coop_mat16x16<f32, C>;
