// f32 embedding table [vocab, d] for gather/gather.wgsl.

@group(0) @binding(1) var<storage, read> table: array<f32>;

fn load_table(e: u32) -> f32 {
    return table[e];
}
