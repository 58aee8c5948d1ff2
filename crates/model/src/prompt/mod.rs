//! Prompt building: the chat template, `<image>` expansion and tokenization
//! (spec §7, §8, §10).
