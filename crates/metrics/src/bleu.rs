//! Corpus BLEU exactly as `sacrebleu.corpus_bleu` / `sacrebleu.metrics.BLEU().corpus_score`
//! computes it with its defaults: `tokenize='13a'`, `smooth_method='exp'`, case-sensitive,
//! `force=False`, `use_effective_order=False`, max n-gram order 4, any number of references.

use std::collections::HashMap;

use serde::Serialize;

use super::python_str;
use super::tokenizer_13a::tokenize_13a;
use super::SACREBLEU_VERSION;

/// `sacrebleu.metrics.bleu.MAX_NGRAM_ORDER`.
pub const MAX_NGRAM_ORDER: usize = 4;

/// A corpus BLEU score with its sufficient statistics (`sacrebleu.metrics.bleu.BLEUScore`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BleuScore {
    /// BLEU on sacreBLEU's 0..100 scale.
    pub score: f64,
    /// Clipped n-gram matches for n = 1..=4.
    pub counts: [u64; MAX_NGRAM_ORDER],
    /// Hypothesis n-grams for n = 1..=4.
    pub totals: [u64; MAX_NGRAM_ORDER],
    /// n-gram precisions in percent, after `exp` smoothing.
    pub precisions: [f64; MAX_NGRAM_ORDER],
    /// Brevity penalty.
    pub bp: f64,
    /// Hypothesis tokens.
    pub sys_len: u64,
    /// Reference tokens (per segment, the reference length closest to the hypothesis).
    pub ref_len: u64,
    /// sacreBLEU's signature for these settings, e.g.
    /// `nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0`.
    pub signature: String,
}

/// One segment's statistics (`BLEU._compute_segment_statistics`), or their sum over a corpus
/// (`sum_of_lists`).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BleuStats {
    sys_len: u64,
    ref_len: u64,
    correct: [u64; MAX_NGRAM_ORDER],
    total: [u64; MAX_NGRAM_ORDER],
}

impl std::ops::AddAssign for BleuStats {
    fn add_assign(&mut self, other: Self) {
        self.sys_len += other.sys_len;
        self.ref_len += other.ref_len;
        for n in 0..MAX_NGRAM_ORDER {
            self.correct[n] += other.correct[n];
            self.total[n] += other.total[n];
        }
    }
}

/// Corpus BLEU of `hyps` against reference streams `refs` (`refs[k][i]` is the k-th reference
/// of segment `i`), as `sacrebleu.corpus_bleu(hyps, refs)` returns it. Segments are
/// right-stripped and 13a-tokenized; an empty reference line is still a reference.
///
/// # Panics
/// If `refs` is empty or a stream's length differs from `hyps.len()`.
pub fn corpus_bleu(hyps: &[String], refs: &[Vec<String>]) -> BleuScore {
    compute_bleu(&super::sum(segment_statistics(hyps, refs)), refs.len())
}

/// Each segment's statistics (summed, they are the corpus's).
///
/// # Panics
/// As [`corpus_bleu`].
pub(crate) fn segment_statistics(hyps: &[String], refs: &[Vec<String>]) -> Vec<BleuStats> {
    super::check_streams(hyps, refs);
    hyps.iter()
        .enumerate()
        .map(|(i, hyp)| {
            let segment_refs: Vec<String> = refs.iter().map(|r| preprocess(&r[i])).collect();
            let mut stats = BleuStats::default();
            add_segment_statistics(&mut stats, &preprocess(hyp), &segment_refs);
            stats
        })
        .collect()
}

/// `BLEU._preprocess_segment` without lowercasing: `tokenizer(sent.rstrip())`.
fn preprocess(segment: &str) -> String {
    tokenize_13a(python_str::rstrip(segment))
}

/// All n-grams of orders 1..=4 with their counts (`helpers.extract_all_word_ngrams`).
fn word_ngrams<'a>(tokens: &'a [&'a str]) -> HashMap<&'a [&'a str], u64> {
    let mut ngrams = HashMap::new();
    for n in 1..=MAX_NGRAM_ORDER {
        for ngram in tokens.windows(n) {
            *ngrams.entry(ngram).or_insert(0) += 1;
        }
    }
    ngrams
}

/// `BLEU._extract_reference_info` + `_compute_segment_statistics`: reference n-gram counts
/// are the maximum over the references, the reference length is the closest one.
fn add_segment_statistics(stats: &mut BleuStats, hyp: &str, refs: &[String]) {
    let ref_tokens: Vec<Vec<&str>> = refs
        .iter()
        .map(|r| python_str::split(r).collect())
        .collect();
    let ref_lens: Vec<u64> = ref_tokens.iter().map(|t| t.len() as u64).collect();
    let mut ref_ngrams: HashMap<&[&str], u64> = HashMap::new();
    for tokens in &ref_tokens {
        for (ngram, count) in word_ngrams(tokens) {
            let best = ref_ngrams.entry(ngram).or_insert(0);
            *best = (*best).max(count);
        }
    }
    let hyp_tokens: Vec<&str> = python_str::split(hyp).collect();
    let hyp_len = hyp_tokens.len() as u64;
    stats.sys_len += hyp_len;
    stats.ref_len += closest_ref_len(hyp_len, &ref_lens);
    for (ngram, count) in word_ngrams(&hyp_tokens) {
        let n = ngram.len() - 1;
        stats.total[n] += count;
        if let Some(&ref_count) = ref_ngrams.get(ngram) {
            stats.correct[n] += count.min(ref_count);
        }
    }
}

/// `BLEU._get_closest_ref_len`: the reference length nearest to `hyp_len`, the shorter one
/// on a tie.
fn closest_ref_len(hyp_len: u64, ref_lens: &[u64]) -> u64 {
    let mut closest: Option<(u64, u64)> = None; // (|hyp_len - ref_len|, ref_len)
    for &ref_len in ref_lens {
        let diff = hyp_len.abs_diff(ref_len);
        let better = match closest {
            None => true,
            Some((best_diff, best_len)) => {
                diff < best_diff || (diff == best_diff && ref_len < best_len)
            }
        };
        if better {
            closest = Some((diff, ref_len));
        }
    }
    closest.map_or(0, |(_, len)| len)
}

/// `utils.my_log`: the natural log, floored at -9999999999 for zero.
fn my_log(x: f64) -> f64 {
    if x == 0.0 {
        -9_999_999_999.0
    } else {
        x.ln()
    }
}

/// `BLEU.compute_bleu` with `smooth_method='exp'` and no effective order, with the same
/// floating-point operation order as sacreBLEU.
pub(crate) fn compute_bleu(stats: &BleuStats, num_refs: usize) -> BleuScore {
    let (sys_len, ref_len) = (stats.sys_len, stats.ref_len);
    let bp = if sys_len < ref_len {
        if sys_len > 0 {
            (1.0 - ref_len as f64 / sys_len as f64).exp()
        } else {
            0.0
        }
    } else {
        1.0
    };
    let mut precisions = [0.0; MAX_NGRAM_ORDER];
    // Early stop if there are no matches (sacrebleu #141).
    let score = if stats.correct.iter().all(|&c| c == 0) {
        0.0
    } else {
        let mut smooth_mteval = 1.0;
        for n in 0..MAX_NGRAM_ORDER {
            let (correct, total) = (stats.correct[n], stats.total[n]);
            if total == 0 {
                break;
            }
            precisions[n] = if correct == 0 {
                smooth_mteval *= 2.0;
                100.0 / (smooth_mteval * total as f64)
            } else {
                100.0 * correct as f64 / total as f64
            };
        }
        let log_sum = precisions.iter().map(|&p| my_log(p)).sum::<f64>();
        bp * (log_sum / MAX_NGRAM_ORDER as f64).exp()
    };
    BleuScore {
        score,
        counts: stats.correct,
        totals: stats.total,
        precisions,
        bp,
        sys_len,
        ref_len,
        signature: bleu_signature(num_refs),
    }
}

/// `BLEUSignature` formatted by `Signature.format()` for the default settings.
fn bleu_signature(num_refs: usize) -> String {
    format!("nrefs:{num_refs}|case:mixed|eff:no|tok:13a|smooth:exp|version:{SACREBLEU_VERSION}")
}
