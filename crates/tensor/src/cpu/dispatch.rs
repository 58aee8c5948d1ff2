//! Runtime ISA detection and kernel dispatch: decided once, at backend
//! construction. This is the only file that calls `is_*_feature_detected!`
//! and the only one with `#[target_feature]` wrappers.
//!
//! An [`Isa`] names a tier; the capability tokens ([`Avx2`], [`Avx512`],
//! [`Neon`]) prove at the type level that the host has it (memchr/pulp
//! style): only `try_new` makes one, and it checks the CPU.
//!
//! A kernel is a value: a [`SimdOp`] whose `run<S: Simd>` is its generic
//! body. [`IsaToken::dispatch`] holds the one `match` over tiers and calls
//! [`Simd::vectorize`], which enters the tier's one `#[target_feature]`
//! wrapper below (`on_avx2`, `on_avx512`, `on_neon`) so the inlined body
//! compiles to that tier's instructions (pulp's `WithSimd`). A body that
//! fans out to a thread pool calls `s.vectorize(…)` again on each thread,
//! since a closure run elsewhere is not inside the wrapper. The bf16
//! dot-product kernels, which need [`Avx512Bf16`]'s instructions rather
//! than a generic tier, are [`Bf16Op`]s run by [`Avx512Bf16::dispatch`];
//! the block formats' VNNI dot products likewise are [`VnniOp`]s run by
//! [`Avx512Vnni::dispatch`], and their NEON SDOT ones [`NeonDotOp`]s run by
//! [`NeonDot::dispatch`].

use super::simd::Simd;
use crate::{Result, TensorError};

/// A kernel whose body is generic over the SIMD tier: [`IsaToken::dispatch`]
/// (or [`Simd::vectorize`]) runs it on a tier's token, inside that tier's
/// `#[target_feature]` wrapper. `run` must be `#[inline(always)]`, and so
/// must everything it calls in a hot loop: only inlined code gets the
/// wrapper's features.
pub trait SimdOp {
    type Output;
    fn run<S: Simd>(self, s: S) -> Self::Output;
}

/// A kernel on the AVX512-BF16 instructions ([`Avx512Bf16::dispatch`]);
/// `run` must be `#[inline(always)]`, as for [`SimdOp`].
pub trait Bf16Op {
    type Output;
    fn run(self, tok: Avx512Bf16) -> Self::Output;
}

/// A kernel on the AVX512-VNNI instructions ([`Avx512Vnni::dispatch`]);
/// `run` must be `#[inline(always)]`, as for [`SimdOp`].
pub trait VnniOp {
    type Output;
    fn run(self, tok: Avx512Vnni) -> Self::Output;
}

/// A kernel on the NEON dot-product instructions (SDOT,
/// [`NeonDot::dispatch`]); `run` must be `#[inline(always)]`, as for
/// [`SimdOp`].
pub trait NeonDotOp {
    type Output;
    fn run(self, tok: NeonDot) -> Self::Output;
}

/// A SIMD tier of the CPU backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// Portable Rust, no intrinsics (the slow twin every tier is tested against).
    Scalar,
    /// x86-64 AVX2 + FMA + F16C (256-bit).
    Avx2,
    /// x86-64 AVX-512F (512-bit); also requires the AVX2 tier's features.
    Avx512,
    /// aarch64 Advanced SIMD (128-bit).
    Neon,
}

impl Isa {
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Avx2, Isa::Avx512, Isa::Neon];

    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// f32 lanes per vector of the tier (its `Simd::LANES`).
    pub const fn lanes(self) -> usize {
        match self {
            Isa::Scalar => 1,
            Isa::Avx2 => 8,
            Isa::Avx512 => 16,
            Isa::Neon => 4,
        }
    }

    pub fn from_name(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|i| i.name() == s.trim().to_ascii_lowercase())
    }

    /// Whether this host can run the tier.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar => true,
            Isa::Avx2 => Avx2::try_new().is_some(),
            Isa::Avx512 => Avx512::try_new().is_some(),
            Isa::Neon => Neon::try_new().is_some(),
        }
    }

    /// Every tier this host can run, slowest first.
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The fastest tier this host can run.
    pub fn best() -> Isa {
        *Isa::available().last().expect("scalar is always available")
    }

    /// Parses a tier name and checks the host has it. Asking for a tier the
    /// host lacks (or an unknown name) is an error, never a silent fallback.
    pub fn require(name: &str) -> Result<Isa> {
        let available = || {
            Isa::available()
                .iter()
                .map(|i| i.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let isa = Isa::from_name(name).ok_or_else(|| TensorError::IsaUnavailable {
            requested: name.to_string(),
            reason: "a known tier (scalar, avx2, avx512, neon)",
            available: available(),
        })?;
        if !isa.is_available() {
            return Err(TensorError::IsaUnavailable {
                requested: name.to_string(),
                reason: "supported by this CPU",
                available: available(),
            });
        }
        Ok(isa)
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Token of the scalar tier (always available).
#[derive(Clone, Copy, Debug, Default)]
pub struct Scalar(());

impl Scalar {
    pub fn new() -> Self {
        Scalar(())
    }
}

/// Proof that the CPU has AVX2, FMA and F16C.
#[derive(Clone, Copy, Debug)]
pub struct Avx2(());

impl Avx2 {
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c")
            {
                return Some(Avx2(()));
            }
        }
        None
    }
}

/// Proof that the CPU has AVX-512F plus everything [`Avx2`] proves.
#[derive(Clone, Copy, Debug)]
pub struct Avx512(());

impl Avx512 {
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if Avx2::try_new().is_some() && is_x86_feature_detected!("avx512f") {
                return Some(Avx512(()));
            }
        }
        None
    }
}

/// Proof that the CPU has AVX512-BF16 (`vdpbf16ps`) and AVX512-BW plus
/// everything [`Avx512`] proves: not a tier of its own, only the bf16 dot-product
/// weight format's kernels (`cpu/matmul/bf16dot.rs`) need it.
#[derive(Clone, Copy, Debug)]
pub struct Avx512Bf16(Avx512);

impl Avx512Bf16 {
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            // rustc's `avx512bf16` implies `avx512bw`, which a VM may hide.
            if let Some(t) = Avx512::try_new()
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512bf16")
            {
                return Some(Avx512Bf16(t));
            }
        }
        None
    }

    /// The AVX-512 token this one contains.
    pub fn avx512(self) -> Avx512 {
        self.0
    }

    /// Runs `op` inside this feature's `#[target_feature]` wrapper.
    #[inline(always)]
    pub fn dispatch<O: Bf16Op>(self, op: O) -> O::Output {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the token proves the features the wrapper enables.
            unsafe { on_avx512bf16(self, op) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = op;
            unreachable!("an Avx512Bf16 token exists only on x86-64")
        }
    }
}

/// Proof that the CPU has AVX512-VNNI (`vpdpbusd`), AVX512-VL and AVX512-BW
/// plus everything [`Avx512`] proves: not a tier of its own, only the block
/// formats' GEMV dot products (`cpu/simd/avx2_qdot.rs`) use it, on the
/// avx512 tier.
#[derive(Clone, Copy, Debug)]
pub struct Avx512Vnni(Avx512);

impl Avx512Vnni {
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        {
            if let Some(t) = Avx512::try_new()
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vnni")
            {
                return Some(Avx512Vnni(t));
            }
        }
        None
    }

    /// The AVX-512 token this one contains.
    pub fn avx512(self) -> Avx512 {
        self.0
    }

    /// Runs `op` inside this feature's `#[target_feature]` wrapper.
    #[inline(always)]
    pub fn dispatch<O: VnniOp>(self, op: O) -> O::Output {
        #[cfg(target_arch = "x86_64")]
        {
            // SAFETY: the token proves the features the wrapper enables.
            unsafe { on_avx512vnni(self, op) }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            let _ = op;
            unreachable!("an Avx512Vnni token exists only on x86-64")
        }
    }
}

/// Proof that the CPU has NEON (Advanced SIMD).
#[derive(Clone, Copy, Debug)]
pub struct Neon(());

impl Neon {
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("neon") {
                return Some(Neon(()));
            }
        }
        None
    }
}

/// Proof that the CPU has the Armv8.2 dot-product extension (`dotprod`:
/// SDOT, four i8 products into each i32 lane) plus everything [`Neon`]
/// proves: not a tier of its own, only the block formats' GEMV dot
/// products (`cpu/simd/neon_qdot.rs`) use it, on the neon tier.
#[derive(Clone, Copy, Debug)]
pub struct NeonDot(Neon);

impl NeonDot {
    pub fn try_new() -> Option<Self> {
        #[cfg(target_arch = "aarch64")]
        {
            if let Some(t) = Neon::try_new()
                && std::arch::is_aarch64_feature_detected!("dotprod")
            {
                return Some(NeonDot(t));
            }
        }
        None
    }

    /// The NEON token this one contains.
    pub fn neon(self) -> Neon {
        self.0
    }

    /// Runs `op` inside this feature's `#[target_feature]` wrapper.
    #[inline(always)]
    pub fn dispatch<O: NeonDotOp>(self, op: O) -> O::Output {
        #[cfg(target_arch = "aarch64")]
        {
            // SAFETY: the token proves the features the wrapper enables.
            unsafe { on_neon_dotprod(self, op) }
        }
        #[cfg(not(target_arch = "aarch64"))]
        {
            let _ = op;
            unreachable!("a NeonDot token exists only on aarch64")
        }
    }
}

/// A chosen tier together with its proof: what the CPU backend holds and
/// what kernel entry points `match` on once per call (the tokens make every
/// arm safe, so no `unsafe fn` pointer table is needed).
#[derive(Clone, Copy, Debug)]
pub enum IsaToken {
    Scalar(Scalar),
    #[cfg(target_arch = "x86_64")]
    Avx2(Avx2),
    #[cfg(target_arch = "x86_64")]
    Avx512(Avx512),
    #[cfg(target_arch = "aarch64")]
    Neon(Neon),
}

impl IsaToken {
    /// The token of `isa`, or `None` if this host lacks it.
    pub fn new(isa: Isa) -> Option<IsaToken> {
        match isa {
            Isa::Scalar => Some(IsaToken::Scalar(Scalar::new())),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Avx2::try_new().map(IsaToken::Avx2),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Avx512::try_new().map(IsaToken::Avx512),
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => Neon::try_new().map(IsaToken::Neon),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    /// Runs `op` on this tier: the only `match` over tiers in the kernels.
    #[inline]
    pub fn dispatch<O: SimdOp>(self, op: O) -> O::Output {
        match self {
            IsaToken::Scalar(s) => s.vectorize(op),
            #[cfg(target_arch = "x86_64")]
            IsaToken::Avx2(s) => s.vectorize(op),
            #[cfg(target_arch = "x86_64")]
            IsaToken::Avx512(s) => s.vectorize(op),
            #[cfg(target_arch = "aarch64")]
            IsaToken::Neon(s) => s.vectorize(op),
        }
    }

    pub fn isa(self) -> Isa {
        match self {
            IsaToken::Scalar(_) => Isa::Scalar,
            #[cfg(target_arch = "x86_64")]
            IsaToken::Avx2(_) => Isa::Avx2,
            #[cfg(target_arch = "x86_64")]
            IsaToken::Avx512(_) => Isa::Avx512,
            #[cfg(target_arch = "aarch64")]
            IsaToken::Neon(_) => Isa::Neon,
        }
    }
}

// The one `#[target_feature]` wrapper of each tier (and of the AVX512-BF16,
// AVX512-VNNI and NEON dot-product features): the only place these feature strings are spelled out. Each is
// entered from the token's `vectorize`/`dispatch`, whose token proves the
// features.

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) fn on_avx2<O: SimdOp>(s: Avx2, op: O) -> O::Output {
    op.run(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma,f16c")]
pub(super) fn on_avx512<O: SimdOp>(s: Avx512, op: O) -> O::Output {
    op.run(s)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512bf16,avx2,fma,f16c")]
fn on_avx512bf16<O: Bf16Op>(tok: Avx512Bf16, op: O) -> O::Output {
    op.run(tok)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
fn on_avx512vnni<O: VnniOp>(tok: Avx512Vnni, op: O) -> O::Output {
    op.run(tok)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon")]
pub(super) fn on_neon<O: SimdOp>(s: Neon, op: O) -> O::Output {
    op.run(s)
}

#[cfg(target_arch = "aarch64")]
#[target_feature(enable = "neon,dotprod")]
fn on_neon_dotprod<O: NeonDotOp>(tok: NeonDot, op: O) -> O::Output {
    op.run(tok)
}
