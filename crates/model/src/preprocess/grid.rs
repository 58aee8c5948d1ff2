//! The tile-grid candidates and their choice (spec §6.4).
//!
//! transformers builds the candidates as a Python `set` of `(gw, gh)` tuples
//! and stable-sorts them by `gw·gh`, so the order among equal products is
//! CPython's set-iteration order, which decides ties in
//! [`find_closest_aspect_ratio`]. The default `(2, 10)` list is hard-coded
//! (spec §6.4); any other range is reproduced by emulating CPython's tuple
//! hash (xxHash-based, 3.8+, 64-bit) and its set table (open addressing with
//! 9 linear probes, then perturbation; resize at 3/5 fill to 4× the used
//! count), which the unit tests check against lists computed with CPython 3.11.

/// `(gw, gh)` candidates for `(min_tiles, max_tiles) = (2, 10)` in
/// transformers' order (spec §6.4).
pub const DEFAULT_TARGET_RATIOS: [(usize, usize); 26] = [
    (1, 2),
    (2, 1),
    (3, 1),
    (1, 3),
    (2, 2),
    (4, 1),
    (1, 4),
    (5, 1),
    (1, 5),
    (1, 6),
    (6, 1),
    (3, 2),
    (2, 3),
    (7, 1),
    (1, 7),
    (4, 2),
    (2, 4),
    (1, 8),
    (8, 1),
    (1, 9),
    (3, 3),
    (9, 1),
    (2, 5),
    (5, 2),
    (10, 1),
    (1, 10),
];

/// The `(gw, gh)` grids with `min_tiles ≤ gw·gh ≤ max_tiles`, in the order of
/// transformers' `sorted(set(ratios), key=lambda x: x[0] * x[1])`.
pub fn target_ratios(min_tiles: usize, max_tiles: usize) -> Vec<(usize, usize)> {
    if (min_tiles, max_tiles) == (2, 10) {
        return DEFAULT_TARGET_RATIOS.to_vec();
    }
    // The list comprehension of `_target_ratios`, duplicates included (they
    // do not change a set's order but are inserted all the same).
    let mut ratios = Vec::new();
    for n in min_tiles..=max_tiles {
        for w in 1..=n {
            for h in 1..=n {
                let p = w * h;
                if min_tiles <= p && p <= max_tiles {
                    ratios.push((w, h));
                }
            }
        }
    }
    let mut set = PySet::default();
    for &r in &ratios {
        set.add(r);
    }
    let mut order = set.iter_order();
    order.sort_by_key(|&(w, h)| w * h); // stable, like Python's sorted
    order
}

/// transformers' `find_closest_aspect_ratio`: the candidate whose `gw/gh` is
/// closest to `W/H`; on an exact tie the later candidate wins when the image
/// area exceeds half the grid's pixel area. Returns `(gw, gh)`.
pub fn find_closest_aspect_ratio(
    aspect_ratio: f64,
    target_ratios: &[(usize, usize)],
    width: usize,
    height: usize,
    tile_size: usize,
) -> (usize, usize) {
    let mut best_diff = f64::INFINITY;
    let mut best = (1, 1);
    let area = (width * height) as f64;
    for &(gw, gh) in target_ratios {
        let diff = (aspect_ratio - gw as f64 / gh as f64).abs();
        if diff < best_diff {
            best_diff = diff;
            best = (gw, gh);
        } else if diff == best_diff {
            let target_area = (tile_size * tile_size * gw * gh) as f64;
            if area > 0.5 * target_area {
                best = (gw, gh);
            }
        }
    }
    best
}

// ---------------------------------------------------------------------------
// CPython emulation
// ---------------------------------------------------------------------------

const XXPRIME_1: u64 = 11400714785074694791;
const XXPRIME_2: u64 = 14029467366897019727;
const XXPRIME_5: u64 = 2870177450012600261;

/// CPython's `hash((a, b))` for small non-negative ints (whose hash is the
/// value itself), as the 64-bit bit pattern.
fn py_tuple2_hash(a: usize, b: usize) -> u64 {
    let mut acc = XXPRIME_5;
    for lane in [a as u64, b as u64] {
        acc = acc.wrapping_add(lane.wrapping_mul(XXPRIME_2));
        acc = acc.rotate_left(31);
        acc = acc.wrapping_mul(XXPRIME_1);
    }
    acc = acc.wrapping_add(2 ^ (XXPRIME_5 ^ 3527539));
    if acc == u64::MAX { 1546275796 } else { acc }
}

const PYSET_MINSIZE: usize = 8;
const LINEAR_PROBES: usize = 9;
const PERTURB_SHIFT: u32 = 5;

/// The slot table of a CPython `set` of 2-tuples (no deletions).
struct PySet {
    table: Vec<Option<(u64, (usize, usize))>>,
    used: usize,
}

impl Default for PySet {
    fn default() -> Self {
        PySet {
            table: vec![None; PYSET_MINSIZE],
            used: 0,
        }
    }
}

impl PySet {
    /// `set_add_entry`: probe for the key or a free slot; resize when full.
    fn add(&mut self, key: (usize, usize)) {
        let hash = py_tuple2_hash(key.0, key.1);
        let mask = self.table.len() - 1;
        let mut i = (hash as usize) & mask;
        let mut perturb = hash;
        loop {
            let probes = if i + LINEAR_PROBES <= mask {
                LINEAR_PROBES
            } else {
                0
            };
            for j in i..=i + probes {
                match self.table[j] {
                    None => {
                        self.table[j] = Some((hash, key));
                        self.used += 1;
                        // No deletions, so fill == used.
                        if self.used * 5 >= mask * 3 {
                            self.resize(self.used * 4);
                        }
                        return;
                    }
                    Some((h, k)) if h == hash && k == key => return,
                    Some(_) => {}
                }
            }
            perturb >>= PERTURB_SHIFT;
            i = (i
                .wrapping_mul(5)
                .wrapping_add(1)
                .wrapping_add(perturb as usize))
                & mask;
        }
    }

    /// `set_table_resize` + `set_insert_clean`, re-inserting in slot order.
    fn resize(&mut self, minused: usize) {
        let mut size = PYSET_MINSIZE;
        while size <= minused {
            size <<= 1;
        }
        let old = std::mem::replace(&mut self.table, vec![None; size]);
        let mask = size - 1;
        for (hash, key) in old.into_iter().flatten() {
            let mut i = (hash as usize) & mask;
            let mut perturb = hash;
            'probe: loop {
                if self.table[i].is_none() {
                    self.table[i] = Some((hash, key));
                    break 'probe;
                }
                if i + LINEAR_PROBES <= mask {
                    for j in i + 1..=i + LINEAR_PROBES {
                        if self.table[j].is_none() {
                            self.table[j] = Some((hash, key));
                            break 'probe;
                        }
                    }
                }
                perturb >>= PERTURB_SHIFT;
                i = (i
                    .wrapping_mul(5)
                    .wrapping_add(1)
                    .wrapping_add(perturb as usize))
                    & mask;
            }
        }
    }

    /// Iteration order: table slot order.
    fn iter_order(&self) -> Vec<(usize, usize)> {
        self.table.iter().flatten().map(|&(_, k)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emulated(min: usize, max: usize) -> Vec<(usize, usize)> {
        // Bypass the hard-coded fast path.
        let mut ratios = Vec::new();
        for n in min..=max {
            for w in 1..=n {
                for h in 1..=n {
                    if min <= w * h && w * h <= max {
                        ratios.push((w, h));
                    }
                }
            }
        }
        let mut set = PySet::default();
        for &r in &ratios {
            set.add(r);
        }
        let mut order = set.iter_order();
        order.sort_by_key(|&(w, h)| w * h);
        order
    }

    #[test]
    fn grid_tie_order_default_matches_spec() {
        assert_eq!(emulated(2, 10), DEFAULT_TARGET_RATIOS.to_vec());
        assert_eq!(target_ratios(2, 10), DEFAULT_TARGET_RATIOS.to_vec());
    }

    /// `(min_tiles, max_tiles, expected order)`.
    type RangeCase = (usize, usize, &'static [(usize, usize)]);

    #[test]
    fn grid_tie_order_other_ranges_match_cpython() {
        // Computed with CPython 3.11:
        // sorted(set((w,h) for n in range(a,b+1) for w in range(1,n+1)
        //        for h in range(1,n+1) if a<=w*h<=b), key=lambda x: x[0]*x[1])
        #[rustfmt::skip]
        let cases: [RangeCase; 7] = [
            (1, 1, &[(1, 1)]),
            (2, 4, &[(1, 2), (2, 1), (3, 1), (1, 3), (4, 1), (1, 4), (2, 2)]),
            (1, 6, &[(1, 1), (1, 2), (2, 1), (3, 1), (1, 3), (4, 1), (1, 4), (2, 2), (1, 5), (5, 1), (6, 1), (2, 3), (1, 6), (3, 2)]),
            (4, 12, &[(2, 2), (4, 1), (1, 4), (5, 1), (1, 5), (1, 6), (6, 1), (3, 2), (2, 3), (7, 1), (1, 7), (4, 2), (2, 4), (1, 8), (8, 1), (1, 9), (3, 3), (9, 1), (2, 5), (5, 2), (10, 1), (1, 10), (11, 1), (1, 11), (12, 1), (3, 4), (4, 3), (1, 12), (6, 2), (2, 6)]),
            (1, 10, &[(1, 1), (1, 2), (2, 1), (3, 1), (1, 3), (2, 2), (4, 1), (1, 4), (5, 1), (1, 5), (1, 6), (6, 1), (3, 2), (2, 3), (7, 1), (1, 7), (4, 2), (2, 4), (1, 8), (8, 1), (1, 9), (3, 3), (9, 1), (2, 5), (5, 2), (10, 1), (1, 10)]),
            (3, 20, &[(3, 1), (1, 3), (2, 2), (4, 1), (1, 4), (5, 1), (1, 5), (1, 6), (6, 1), (3, 2), (2, 3), (7, 1), (1, 7), (4, 2), (2, 4), (1, 8), (8, 1), (1, 9), (3, 3), (9, 1), (2, 5), (5, 2), (10, 1), (1, 10), (11, 1), (1, 11), (12, 1), (3, 4), (4, 3), (1, 12), (6, 2), (2, 6), (13, 1), (1, 13), (14, 1), (2, 7), (1, 14), (7, 2), (1, 15), (5, 3), (15, 1), (3, 5), (1, 16), (2, 8), (16, 1), (8, 2), (4, 4), (1, 17), (17, 1), (9, 2), (1, 18), (18, 1), (3, 6), (2, 9), (6, 3), (1, 19), (19, 1), (5, 4), (20, 1), (4, 5), (10, 2), (2, 10), (1, 20)]),
            (2, 30, &[(1, 2), (2, 1), (3, 1), (1, 3), (2, 2), (4, 1), (1, 4), (5, 1), (1, 5), (6, 1), (3, 2), (2, 3), (1, 6), (7, 1), (1, 7), (4, 2), (2, 4), (1, 8), (8, 1), (9, 1), (3, 3), (1, 9), (1, 10), (5, 2), (10, 1), (2, 5), (1, 11), (11, 1), (6, 2), (1, 12), (2, 6), (12, 1), (3, 4), (4, 3), (13, 1), (1, 13), (14, 1), (1, 14), (7, 2), (2, 7), (1, 15), (5, 3), (3, 5), (15, 1), (8, 2), (16, 1), (4, 4), (1, 16), (2, 8), (1, 17), (17, 1), (18, 1), (3, 6), (9, 2), (1, 18), (6, 3), (2, 9), (1, 19), (19, 1), (20, 1), (5, 4), (2, 10), (1, 20), (4, 5), (10, 2), (7, 3), (1, 21), (3, 7), (21, 1), (2, 11), (11, 2), (22, 1), (1, 22), (1, 23), (23, 1), (1, 24), (24, 1), (6, 4), (3, 8), (4, 6), (2, 12), (8, 3), (12, 2), (5, 5), (1, 25), (25, 1), (1, 26), (2, 13), (13, 2), (26, 1), (9, 3), (27, 1), (3, 9), (1, 27), (1, 28), (7, 4), (14, 2), (2, 14), (4, 7), (28, 1), (29, 1), (1, 29), (3, 10), (15, 2), (1, 30), (2, 15), (10, 3), (5, 6), (30, 1), (6, 5)]),
        ];
        for (min, max, want) in cases {
            assert_eq!(
                target_ratios(min, max),
                want.to_vec(),
                "range ({min}, {max})"
            );
        }
    }

    #[test]
    fn grid_tie_break_prefers_area() {
        // 1024x1024 with tile 512: (2,2) and (3,3) tie exactly (diff 0); (3,3)
        // needs area > 0.5·9·512², which 1024² is not, so (2,2) stays.
        let r = find_closest_aspect_ratio(1.0, &DEFAULT_TARGET_RATIOS, 1024, 1024, 512);
        assert_eq!(r, (2, 2));
        // A much larger square takes the later (3,3).
        let r = find_closest_aspect_ratio(1.0, &DEFAULT_TARGET_RATIOS, 1100, 1100, 512);
        assert_eq!(r, (3, 3));
        // Wide image: 1080x1920 → (gw 4? no: 16/9≈1.78) closest of the list.
        let r = find_closest_aspect_ratio(1920.0 / 1080.0, &DEFAULT_TARGET_RATIOS, 1920, 1080, 512);
        assert_eq!(r, (4, 2));
    }
}
