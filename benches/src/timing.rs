//! Repeat-until-stable timing: one warm-up, then runs until `min_total`
//! has elapsed (at least `min_reps`, at most `max_reps`); reports the median.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct Budget {
    pub min_total: Duration,
    pub min_reps: usize,
    pub max_reps: usize,
}

impl Budget {
    pub const DEFAULT: Budget = Budget {
        min_total: Duration::from_millis(400),
        min_reps: 3,
        max_reps: 200,
    };
    pub const QUICK: Budget = Budget {
        min_total: Duration::from_millis(60),
        min_reps: 2,
        max_reps: 20,
    };
}

/// Median seconds of `f` (one warm-up call first). A single call slower
/// than `min_total` ends the loop after `min_reps` calls.
pub fn median_secs(budget: Budget, mut f: impl FnMut()) -> f64 {
    f();
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < budget.max_reps
        && (times.len() < budget.min_reps || start.elapsed() < budget.min_total)
    {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}
