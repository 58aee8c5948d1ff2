// bf16 unpack helpers (kernels/matmul.md).
//
// A bf16 value is the top 16 bits of an f32, so widening is exact: move the
// 16 bits into the high half of a u32 and bitcast. bf16 arrays are stored
// packed two per u32, little-endian: element e lives in word e / 2, in the
// low half when e is even and in the high half when e is odd. Rows of odd
// length therefore start mid-word, so kernels index elements globally.

// The even (low-half) element of a packed word.
fn bf16_lo(word: u32) -> f32 {
    return bitcast<f32>(word << 16u);
}

// The odd (high-half) element of a packed word.
fn bf16_hi(word: u32) -> f32 {
    return bitcast<f32>(word & 0xffff0000u);
}

// Both elements of a packed word: (element 2i, element 2i + 1).
fn bf16_unpack2(word: u32) -> vec2<f32> {
    return vec2<f32>(bf16_lo(word), bf16_hi(word));
}

// Element e of a packed array, given the word that holds it (word e / 2).
fn bf16_at(word: u32, e: u32) -> f32 {
    return bitcast<f32>((word >> ((e & 1u) * 16u)) << 16u);
}
