// bf16 embedding table [vocab, d], packed two per u32 (common/bf16.wgsl),
// for gather/gather.wgsl. Widening is exact.

@group(0) @binding(1) var<storage, read> table: array<u32>;

fn load_table(e: u32) -> f32 {
    return bf16_at(table[e >> 1u], e);
}
