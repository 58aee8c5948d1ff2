//! Large buffers for the weight panels, first touched in parallel.
//!
//! A model's panels are hundreds of MiB to GiB of fresh anonymous memory:
//! each 4 KiB page costs a fault in which the kernel zeroes it, which
//! dominates model load when one thread writes the whole buffer, so the
//! pool's threads take those faults side by side. (No transparent huge
//! pages: slower load, measured in `benches/README.md` § CPU tuning.)

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// Elements written per parallel task of the first touch.
const TOUCH_CHUNK: usize = 1 << 18;

/// A `Vec` of `len` copies of `fill`, its pages first touched in parallel
/// on the current rayon pool.
pub fn filled_vec<E: Copy + Send + Sync>(len: usize, fill: E) -> Vec<E> {
    let mut v: Vec<E> = Vec::with_capacity(len);
    v.spare_capacity_mut()[..len]
        .par_chunks_mut(TOUCH_CHUNK)
        .for_each(|c| c.fill(MaybeUninit::new(fill)));
    // SAFETY: the loop above initialised elements 0..len ≤ capacity.
    unsafe { v.set_len(len) };
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filled_vec_holds_len_copies() {
        for len in [0, 1, TOUCH_CHUNK - 1, TOUCH_CHUNK, 3 * TOUCH_CHUNK + 5] {
            let v = filled_vec(len, 7u16);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 7));
        }
    }
}
