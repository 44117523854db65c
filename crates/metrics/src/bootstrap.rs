//! Paired bootstrap resampling (Koehn 2004) as sacreBLEU's `--paired-bs` computes it
//! (`significance._paired_bs_test`, itself Moses' `bootstrap-hypothesis-difference-significance.pl`):
//! is a system's score different from a baseline's on the same segments by more than chance?
//! Each of `n` resamples draws as many segment indices as there are segments, with replacement,
//! the same ones for both systems, and scores both on them from per-segment statistics. The
//! p-value is `(#{s : |Δ_s| − mean|Δ| > |Δ|} + 1) / (n + 1)`, where `Δ` is the real difference
//! and `Δ_s` a resample's: the resampled differences shifted to a mean of zero stand for the
//! null hypothesis. The indices come from a seeded generator (not numpy's), so p-values agree
//! with sacreBLEU's in distribution, not digit for digit.

use std::ops::AddAssign;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::bleu::{compute_bleu, segment_statistics, BleuStats};
use super::levenshtein::EditCounts;
use super::wer::{segment_counts, WerForm, WerScore};
use super::MetricsError;

/// One metric's paired test: both corpus scores and the p-value of their difference.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedTest {
    /// `BLEU`, `WER` or `WER (lowercase, no punctuation)`.
    pub metric: &'static str,
    /// BLEU on 0..100, WER as a fraction (as in the other reports).
    pub baseline: f64,
    pub system: f64,
    pub p_value: f64,
    /// 95 % interval of the system's score over the resamples (2.5th and 97.5th percentiles).
    pub system_interval: [f64; 2],
    pub resamples: usize,
}

/// BLEU (against every reference stream) and WER, as written and lower-cased without
/// punctuation (against the first), of `hyps` against `baseline`, `resamples` paired resamples
/// drawn from `seed`.
///
/// # Errors
/// [`MetricsError::EmptyReferences`] when every first reference is empty (WER undefined).
///
/// # Panics
/// If the streams differ in length, `refs` is empty or `resamples` is 0.
pub fn paired_bootstrap(
    hyps: &[String],
    baseline: &[String],
    refs: &[Vec<String>],
    resamples: usize,
    seed: u64,
) -> Result<Vec<PairedTest>, MetricsError> {
    assert!(resamples > 0, "at least one resample");
    assert_eq!(hyps.len(), baseline.len(), "system and baseline segments");
    let mut rng = StdRng::seed_from_u64(seed);
    let n = hyps.len();
    let samples: Vec<Vec<usize>> = (0..resamples)
        .map(|_| (0..n).map(|_| rng.random_range(0..n.max(1))).collect())
        .collect();
    let num_refs = refs.len();
    let mut tests = vec![test(
        "BLEU",
        &segment_statistics(hyps, refs),
        &segment_statistics(baseline, refs),
        &samples,
        |stats: &BleuStats| compute_bleu(stats, num_refs).score,
    )];
    for form in [WerForm::AsWritten, WerForm::LowerNoPunct] {
        let (sys, base) = (
            segment_counts(hyps, &refs[0], form),
            segment_counts(baseline, &refs[0], form),
        );
        if WerScore::from_counts(summed(&base, 0..n)).is_none() {
            return Err(MetricsError::EmptyReferences {
                metric: form.name(),
                segments: n,
            });
        }
        // A resample of segments without reference words has no rate; it counts as 0.
        let wer = |counts: &EditCounts| WerScore::from_counts(*counts).map_or(0.0, |w| w.wer);
        tests.push(test(form.name(), &sys, &base, &samples, wer));
    }
    Ok(tests)
}

/// The sum of the statistics of the segments `idx`.
fn summed<S: Copy + Default + AddAssign>(stats: &[S], idx: impl Iterator<Item = usize>) -> S {
    super::sum(idx.map(|i| stats[i]))
}

/// The paired test of one metric, `score` computing it from summed per-segment statistics.
fn test<S: Copy + Default + AddAssign>(
    metric: &'static str,
    sys: &[S],
    base: &[S],
    samples: &[Vec<usize>],
    score: impl Fn(&S) -> f64,
) -> PairedTest {
    let n = sys.len();
    let (system, baseline) = (score(&summed(sys, 0..n)), score(&summed(base, 0..n)));
    let real = (system - baseline).abs();
    let mut sys_scores = Vec::with_capacity(samples.len());
    let diffs: Vec<f64> = samples
        .iter()
        .map(|idx| {
            let s = score(&summed(sys, idx.iter().copied()));
            sys_scores.push(s);
            (s - score(&summed(base, idx.iter().copied()))).abs()
        })
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let beyond = diffs.iter().filter(|&&d| d - mean > real).count();
    sys_scores.sort_by(f64::total_cmp);
    let at = |q: f64| sys_scores[((q * (sys_scores.len() - 1) as f64).round()) as usize];
    PairedTest {
        metric,
        baseline,
        system,
        p_value: (beyond + 1) as f64 / (samples.len() + 1) as f64,
        system_interval: [at(0.025), at(0.975)],
        resamples: samples.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 200 references and a baseline that gets every fourth word of every segment wrong.
    fn corpus() -> (Vec<Vec<String>>, Vec<String>) {
        let refs: Vec<String> = (0..200)
            .map(|i| format!("the cat number {i} sat on the mat today"))
            .collect();
        let base = refs.iter().map(|r| r.replacen("cat", "hat", 1)).collect();
        (vec![refs], base)
    }

    #[test]
    fn a_clearly_better_system_is_significant_either_way_round() {
        let (refs, base) = corpus();
        // Half the segments fixed.
        let better: Vec<String> = (0..200)
            .map(|i| match i % 2 {
                0 => refs[0][i].clone(),
                _ => base[i].clone(),
            })
            .collect();
        for (sys, other) in [(&better, &base), (&base, &better)] {
            for t in paired_bootstrap(sys, other, &refs, 1000, 1).unwrap() {
                assert!(t.p_value < 0.01, "{t:?}");
                assert!(t.system_interval[0] <= t.system && t.system <= t.system_interval[1]);
            }
        }
    }

    #[test]
    fn one_word_in_two_hundred_segments_is_not() {
        let (refs, base) = corpus();
        let mut sys = base.clone();
        sys[7] = refs[0][7].clone();
        let tests = paired_bootstrap(&sys, &base, &refs, 1000, 1).unwrap();
        assert_eq!(tests.len(), 3);
        // Only resamples holding segment 7 at least three times (Poisson(1): 8 %) differ by
        // more than the real difference once shifted to a zero mean.
        for t in &tests {
            assert!(t.system != t.baseline && t.p_value > 0.05, "{t:?}");
        }
        // The same seed draws the same resamples.
        assert_eq!(
            paired_bootstrap(&sys, &base, &refs, 1000, 1).unwrap(),
            tests
        );
    }

    #[test]
    fn empty_references_are_an_error() {
        let refs = vec![vec![String::new(); 3]];
        let hyps = vec!["a b".to_string(); 3];
        assert!(matches!(
            paired_bootstrap(&hyps, &hyps, &refs, 10, 1),
            Err(MetricsError::EmptyReferences { .. })
        ));
    }
}
