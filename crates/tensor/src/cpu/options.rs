//! The CPU backend's options: [`CpuOptions`], given to
//! [`super::CpuBackend::new`].
//!
//! `tensor` never reads the environment (except in `testing/`): `LFM_ISA`
//! and `LFM_THREADS` (README.md, "Environment variables") are parsed by the
//! caller, `runtime::options::cpu_from_env`.

use super::{Isa, WeightFormat};

/// How the CPU backend is built. Every field has the default of
/// [`CpuOptions::default`], named in its doc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuOptions {
    /// The SIMD tier the kernels run on. Default `None`: the best this
    /// host has ([`Isa::best`]). A tier the host lacks is an error
    /// ([`crate::TensorError::IsaUnavailable`]), never a silent fallback.
    pub isa: Option<Isa>,
    /// Worker threads (1: kernels run on the calling thread; 0 counts as
    /// 1). Default `None`: one per core the OS offers
    /// ([`std::thread::available_parallelism`]).
    pub threads: Option<usize>,
    /// How matmul weights are stored on upload. Default
    /// [`WeightFormat::Native`] (the checkpoint's dtype).
    pub weights: WeightFormat,
    /// Per-op timing ([`super::CpuBackend::profile`]). Default `false`.
    pub profiling: bool,
}

impl CpuOptions {
    /// The tier these options run on: [`CpuOptions::isa`] or the best.
    pub fn isa_or_best(&self) -> Isa {
        self.isa.unwrap_or_else(Isa::best)
    }

    /// The worker threads these options ask for: [`CpuOptions::threads`] or
    /// one per core.
    pub fn threads_or_all(&self) -> usize {
        self.threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TensorError;
    use crate::cpu::CpuBackend;

    #[test]
    fn defaults_take_the_best_tier_and_every_core() {
        let be = CpuBackend::new(CpuOptions::default()).expect("backend");
        assert_eq!(be.isa(), Isa::best());
        assert_eq!(
            be.threads(),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        assert_eq!(be.weight_format, WeightFormat::Native);
        assert!(be.profile.is_none());
    }

    #[test]
    fn each_field_reaches_the_backend() {
        let be = CpuBackend::new(CpuOptions {
            isa: Some(Isa::Scalar),
            threads: Some(2),
            weights: WeightFormat::Int8,
            profiling: true,
        })
        .expect("backend");
        assert_eq!((be.isa(), be.threads()), (Isa::Scalar, 2));
        assert_eq!(be.weight_format, WeightFormat::Int8);
        assert!(be.profile.is_some(), "profiling on");
        let one = CpuBackend::new(CpuOptions {
            threads: Some(0),
            ..CpuOptions::default()
        })
        .expect("backend");
        assert_eq!(one.threads(), 1);
    }

    #[test]
    fn an_unavailable_tier_is_an_error() {
        let Some(missing) = Isa::ALL.into_iter().find(|i| !i.is_available()) else {
            return; // every tier runs here
        };
        let e = CpuBackend::new(CpuOptions {
            isa: Some(missing),
            ..CpuOptions::default()
        })
        .err()
        .expect("unavailable tier");
        assert!(matches!(e, TensorError::IsaUnavailable { .. }), "{e}");
    }
}
