//! Image preprocessing: decode, smart resize, tiling, normalisation and
//! patchify, exactly as transformers' `Lfm2VlImageProcessor` (spec §6).
