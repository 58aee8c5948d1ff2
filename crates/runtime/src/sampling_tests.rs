//! The sampler's tests: the whole-vocabulary reference sampler, the
//! settings' rules, speculative judging (χ²) and the candidate set.

use super::*;

impl Sampler {
    /// The straightforward sampler: every step over the whole
    /// vocabulary. The reference of [`Sampler::sample`], which must give the
    /// same ids and leave the same logits.
    fn sample_reference(&mut self, logits: &mut [f32], history: &[u32]) -> u32 {
        let c = &self.cfg;
        if c.repetition_penalty != 1.0 {
            // Each id once, however often it occurs.
            self.seen.clear();
            self.seen.resize(logits.len(), false);
            for &id in history {
                let i = id as usize;
                if i < logits.len() && !self.seen[i] {
                    self.seen[i] = true;
                    let z = &mut logits[i];
                    *z = if *z < 0.0 {
                        *z * c.repetition_penalty
                    } else {
                        *z / c.repetition_penalty
                    };
                }
            }
        }
        if c.greedy || c.temperature <= 0.0 {
            return argmax(logits) as u32;
        }
        if c.temperature != 1.0 {
            logits.iter_mut().for_each(|z| *z /= c.temperature);
        }
        if c.top_k > 0 && c.top_k < logits.len() {
            let sorted = &mut self.kth;
            sorted.clear();
            sorted.extend_from_slice(logits);
            let k = c.top_k;
            sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
            let kth = sorted[k - 1];
            logits
                .iter_mut()
                .filter(|z| **z < kth)
                .for_each(|z| *z = f32::NEG_INFINITY);
        }
        if c.top_p < 1.0 {
            // Ascending by probability; drop the low tail whose mass is ≤ 1 − top_p,
            // always keeping the most likely token.
            self.order.clear();
            self.order
                .extend((0..logits.len()).filter(|&i| logits[i] > f32::NEG_INFINITY));
            self.order.sort_by(|&a, &b| logits[a].total_cmp(&logits[b]));
            softmax_dense(logits, &mut self.probs);
            let probs = &self.probs;
            let mut cum = 0.0f64;
            let last = self.order.len().saturating_sub(1);
            for (rank, &i) in self.order.iter().enumerate() {
                cum += probs[i];
                if cum <= 1.0 - c.top_p as f64 && rank < last {
                    logits[i] = f32::NEG_INFINITY;
                }
            }
        }
        if c.min_p > 0.0 {
            softmax_dense(logits, &mut self.probs);
            let probs = &self.probs;
            let top = probs.iter().cloned().fold(0.0, f64::max);
            let best = argmax(logits);
            for (i, z) in logits.iter_mut().enumerate() {
                if probs[i] < c.min_p as f64 * top && i != best {
                    *z = f32::NEG_INFINITY;
                }
            }
        }
        softmax_dense(logits, &mut self.probs);
        let mut u = self.rng.uniform();
        for (i, p) in self.probs.iter().enumerate() {
            if u < *p {
                return i as u32;
            }
            u -= p;
        }
        argmax(logits) as u32
    }
}

mod tests {
    use super::*;

    #[test]
    fn repetition_penalty_hits_each_id_once_with_sign_rule() {
        let mut z = vec![2.0, -2.0, 1.0, 0.5];
        let mut s = Sampler::new(SamplingConfig {
            repetition_penalty: 2.0,
            ..Default::default()
        });
        // id 0 twice, id 1 once: each penalised once; 2 and 3 untouched.
        let id = s.sample(&mut z, &[0, 1, 0]);
        assert_eq!(z, vec![1.0, -4.0, 1.0, 0.5]);
        assert_eq!(id, 0, "greedy picks the first of the tied maxima");
    }

    #[test]
    fn top_k_keeps_ties_and_min_p_is_relative_to_the_max() {
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 2,
            temperature: 1.0,
            ..Default::default()
        };
        let mut z = vec![1.0, 3.0, 3.0, 2.0, 0.0];
        let mut s = Sampler::new(cfg);
        s.sample(&mut z, &[]);
        assert_eq!(z[1], 3.0);
        assert_eq!(z[2], 3.0);
        assert!(
            z[0] == f32::NEG_INFINITY && z[3] == f32::NEG_INFINITY && z[4] == f32::NEG_INFINITY
        );

        // min_p 0.15 keeps logits within ln(1/0.15) ≈ 1.897 of the max.
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 0,
            min_p: 0.15,
            ..Default::default()
        };
        let mut z = vec![0.0, -1.8, -1.95, -5.0];
        Sampler::new(cfg).sample(&mut z, &[]);
        assert!(z[1] > f32::NEG_INFINITY && z[2] == f32::NEG_INFINITY && z[3] == f32::NEG_INFINITY);
    }

    #[test]
    fn invalid_settings_are_rejected() {
        let ok = SamplingConfig::model_card();
        assert!(ok.validate().is_ok());
        for bad in [
            SamplingConfig {
                repetition_penalty: 0.0,
                ..ok.clone()
            },
            SamplingConfig {
                repetition_penalty: -1.0,
                ..ok.clone()
            },
            SamplingConfig {
                temperature: f32::NAN,
                ..ok.clone()
            },
            SamplingConfig {
                temperature: -0.5,
                ..ok.clone()
            },
            SamplingConfig {
                top_p: 1.5,
                ..ok.clone()
            },
            SamplingConfig {
                min_p: -0.1,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn top_p_keeps_the_nucleus() {
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 0,
            top_p: 0.7,
            ..Default::default()
        };
        // probs ≈ [0.64, 0.24, 0.09, 0.03]: the nucleus for 0.7 is the top two.
        let mut z = vec![3.0, 2.0, 1.0, 0.0];
        Sampler::new(cfg).sample(&mut z, &[]);
        assert!(z[0] > f32::NEG_INFINITY && z[1] > f32::NEG_INFINITY);
        assert!(z[2] == f32::NEG_INFINITY && z[3] == f32::NEG_INFINITY);
    }

    #[test]
    fn a_seed_reproduces_a_run_and_frequencies_follow_the_distribution() {
        let cfg = SamplingConfig {
            greedy: false,
            top_k: 0,
            seed: 7,
            ..Default::default()
        };
        let base = vec![0.0f32, (2.0f32).ln(), (3.0f32).ln()]; // probs 1/6, 2/6, 3/6
        let run = |seed| {
            let mut s = Sampler::new(SamplingConfig {
                seed,
                ..cfg.clone()
            });
            (0..6000)
                .map(|_| s.sample(&mut base.clone(), &[]))
                .collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        let count = |id| a.iter().filter(|&&x| x == id).count() as f64 / a.len() as f64;
        assert!((count(0) - 1.0 / 6.0).abs() < 0.02 && (count(2) - 0.5).abs() < 0.02);
    }
}

mod judge {
    use super::*;

    /// Pearson's χ² of `counts` against probabilities `p` (cells with an
    /// expected count under 5 pooled), and its degrees of freedom.
    fn chi2(counts: &[usize], p: &[f64]) -> (f64, usize) {
        let n: usize = counts.iter().sum();
        let (mut stat, mut cells) = (0.0, 0usize);
        let (mut pool_o, mut pool_e) = (0.0, 0.0);
        for (&c, &pi) in counts.iter().zip(p) {
            let e = pi * n as f64;
            if e < 5.0 {
                pool_o += c as f64;
                pool_e += e;
            } else {
                stat += (c as f64 - e).powi(2) / e;
                cells += 1;
            }
        }
        if pool_e > 0.0 {
            stat += (pool_o - pool_e).powi(2) / pool_e.max(1e-12);
            cells += 1;
        }
        (stat, cells.saturating_sub(1))
    }

    /// The probabilities [`Sampler::sample`] draws from for `logits`.
    fn target(cfg: &SamplingConfig, logits: &[f32]) -> Vec<f64> {
        let mut s = Sampler::new(cfg.clone());
        let mut z = logits.to_vec();
        assert!(s.distribution(&mut z, &[]).is_none());
        let mut p = vec![0.0; logits.len()];
        for &i in &s.cand {
            p[i as usize] = s.probs[i as usize];
        }
        p
    }

    /// Whatever the drafted token (likely, unlikely, cut by top-k or
    /// min-p), what comes out of a judge step (the draft kept, or its
    /// replacement) is distributed as the target: χ² below the 0.1%
    /// critical value for its degrees of freedom (≤ 9 here: 27.9) in
    /// 40 000 seeded trials. The naive rule (keep any draft the target
    /// could have drawn) fails the same test.
    #[test]
    fn judged_tokens_follow_the_target_distribution() {
        let logits = [2.0f32, 1.5, 1.0, 0.4, 0.0, -0.5, -1.0, -3.0, -6.0, 0.9];
        let settings = [
            SamplingConfig {
                greedy: false,
                top_k: 0,
                ..Default::default()
            },
            SamplingConfig {
                greedy: false,
                temperature: 0.7,
                top_k: 5,
                min_p: 0.05,
                ..Default::default()
            },
        ];
        const CRIT: f64 = 27.9;
        for cfg in &settings {
            let p = target(cfg, &logits);
            for draft in [0u32, 2, 7, 8] {
                let mut s = Sampler::new(SamplingConfig {
                    seed: 11 + u64::from(draft),
                    ..cfg.clone()
                });
                let (mut counts, mut naive) = (vec![0; logits.len()], vec![0; logits.len()]);
                for _ in 0..40_000 {
                    let mut z = logits.to_vec();
                    let tok = s.judge(&mut z, &[], draft).unwrap_or(draft);
                    counts[tok as usize] += 1;
                    // Naive: keep the draft whenever it is a candidate.
                    let mut z = logits.to_vec();
                    let t = if p[draft as usize] > 0.0 {
                        draft
                    } else {
                        s.sample(&mut z, &[])
                    };
                    naive[t as usize] += 1;
                }
                let (stat, df) = chi2(&counts, &p);
                assert!(
                    df <= 9 && stat < CRIT,
                    "{cfg:?} draft {draft}: χ² {stat:.1} (df {df})"
                );
                if p[draft as usize] > 0.0 && p[draft as usize] < 0.9 {
                    let (stat, _) = chi2(&naive, &p);
                    assert!(stat > 10.0 * CRIT, "naive rule passed: χ² {stat:.1}");
                }
            }
        }
    }

    /// Greedy: a draft is kept exactly when it is the argmax (after the
    /// repetition penalty), else the argmax replaces it.
    #[test]
    fn greedy_keeps_only_the_argmax() {
        let mut s = Sampler::new(SamplingConfig {
            repetition_penalty: 4.0,
            ..Default::default()
        });
        let logits = [1.0f32, 3.0, 2.0];
        assert_eq!(s.judge(&mut logits.clone(), &[], 1), None);
        assert_eq!(s.judge(&mut logits.clone(), &[], 2), Some(1));
        // With 1 in the history its logit drops to 0.75: 2 is the argmax.
        assert_eq!(s.judge(&mut logits.clone(), &[1], 2), None);
        assert_eq!(s.judge(&mut logits.clone(), &[1], 0), Some(2));
    }
}

mod candidates {
    use super::*;

    /// Logits with the awkward values: ties, −inf entries, ±0, a few large
    /// ones, a rare NaN; `n` of them.
    fn logits(rng: &mut Rng, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match rng.next_u64() % 256 {
                0..=15 => f32::NEG_INFINITY,
                16..=31 => 2.5,
                32..=47 => -0.0,
                48..=63 => 0.0,
                64..=79 => 30.0 + (i % 3) as f32,
                80 => f32::NAN,
                _ => (rng.uniform() * 16.0 - 8.0) as f32,
            })
            .collect()
    }

    /// The candidate-list sampler gives the ids of the whole-vocabulary
    /// reference and leaves the same logits, bit for bit, over a grid of
    /// settings (top-k off, 1, ties at the cut, all but one; top-p; min-p;
    /// temperatures; the repetition penalty) and 20 draws each.
    #[test]
    fn sample_matches_the_whole_vocabulary_reference() {
        let mut rng = Rng::new(11);
        let mut cases = 0;
        for n in [1usize, 2, 7, 300, 4099] {
            for top_k in [0, 1, 5, 50, n.saturating_sub(1), n] {
                for top_p in [1.0, 0.9, 0.3] {
                    for min_p in [0.0, 0.15, 0.6] {
                        for (temperature, penalty) in [(1.0, 1.0), (0.1, 1.05), (0.7, 1.3)] {
                            let cfg = SamplingConfig {
                                greedy: false,
                                temperature,
                                top_k,
                                top_p,
                                min_p,
                                repetition_penalty: penalty,
                                seed: cases,
                            };
                            let mut fast = Sampler::new(cfg.clone());
                            let mut slow = Sampler::new(cfg.clone());
                            let history: Vec<u32> =
                                (0..n.min(40)).map(|i| (i * 7 % n) as u32).collect();
                            for draw in 0..20 {
                                let base = logits(&mut rng, n);
                                let (mut a, mut b) = (base.clone(), base);
                                let ia = fast.sample(&mut a, &history);
                                let ib = slow.sample_reference(&mut b, &history);
                                assert_eq!(ia, ib, "{cfg:?} n {n} draw {draw}");
                                let bits =
                                    |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                                assert_eq!(bits(&a), bits(&b), "{cfg:?} n {n} draw {draw}: logits");
                            }
                            cases += 1;
                        }
                    }
                }
            }
        }
        println!("{cases} settings, 20 draws each: same ids and logits");
    }

    /// `kth_largest` is the k-th largest in `total_cmp` order for every k,
    /// as a full sort says, including −0 / +0 and repeated values.
    #[test]
    fn kth_largest_matches_a_full_sort() {
        let mut rng = Rng::new(3);
        let mut buf = Vec::new();
        for n in [2usize, 3, 17, 200, 1000] {
            let v = logits(&mut rng, n);
            let mut sorted = v.clone();
            sorted.sort_by(|a, b| b.total_cmp(a));
            for k in 1..n {
                let got = kth_largest(&v, k, &mut buf);
                assert_eq!(got.to_bits(), sorted[k - 1].to_bits(), "n {n} k {k}");
            }
        }
    }
}

#[test]
fn knobs_turn_sampling_on_and_temperature_zero_is_greedy() {
    let none = SamplingKnobs::default().resolve().unwrap();
    assert_eq!(none, SamplingConfig::default());
    assert!(none.greedy);
    let k = SamplingKnobs {
        top_k: Some(5),
        seed: 9,
        ..Default::default()
    };
    let s = k.resolve().unwrap();
    assert!(!s.greedy);
    assert_eq!((s.top_k, s.seed, s.temperature), (5, 9, 1.0));
    let zero = SamplingKnobs {
        temperature: Some(0.0),
        min_p: Some(0.2),
        ..Default::default()
    };
    assert!(zero.resolve().unwrap().greedy);
    let card = SamplingKnobs {
        preset: Some("model-card".into()),
        repetition_penalty: Some(1.2),
        ..Default::default()
    };
    let s = card.resolve().unwrap();
    assert!(!s.greedy);
    assert_eq!(
        (s.temperature, s.min_p, s.repetition_penalty),
        (0.1, 0.15, 1.2)
    );
    let bad = SamplingKnobs {
        preset: Some("hot".into()),
        ..Default::default()
    };
    assert!(
        bad.resolve()
            .unwrap_err()
            .contains("unknown sampling preset \"hot\"")
    );
    let bad = SamplingKnobs {
        top_p: Some(1.5),
        ..Default::default()
    };
    assert!(bad.resolve().unwrap_err().contains("top_p"));
}
