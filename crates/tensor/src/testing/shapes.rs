//! The shared edge-shape lists (STYLE.md §7): every kernel test draws its
//! lengths from here rather than choosing "nice" sizes.

/// Lengths around a vector width `v` and a tile size: 0, 1, 2, v−1, v, v+1,
/// 2v+1, 4v+3, tile−1, tile, tile+1, 17, 63, 65, 257 (deduplicated, sorted).
pub fn edge_lengths(v: usize, tile: usize) -> Vec<usize> {
    let mut l = vec![
        0,
        1,
        2,
        v.saturating_sub(1),
        v,
        v + 1,
        2 * v + 1,
        4 * v + 3,
        17,
        63,
        65,
        257,
    ];
    if tile > 0 {
        l.extend([tile - 1, tile, tile + 1]);
    }
    l.sort_unstable();
    l.dedup();
    l
}

/// Start offsets (in elements) for misaligned-input sweeps: 0 and 1..v.
pub fn misaligned_offsets(v: usize) -> Vec<usize> {
    (0..v.max(2)).collect()
}
