// f16 embedding table [vocab, d], packed two per u32 and widened with
// unpack2x16float (exact), for gather/gather.wgsl.

@group(0) @binding(1) var<storage, read> table: array<u32>;

fn load_table(e: u32) -> f32 {
    return unpack2x16float(table[e >> 1u])[e & 1u];
}
