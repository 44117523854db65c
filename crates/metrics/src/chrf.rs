//! Corpus chrF and chrF++ exactly as `sacrebleu.metrics.CHRF().corpus_score` computes them
//! with its defaults: `char_order=6`, `beta=2`, case-sensitive, whitespace ignored,
//! `eps_smoothing=False` (sacreBLEU's effective-order averaging); chrF++ adds
//! `word_order=2`. With several references each segment keeps the statistics of the
//! reference with the best segment-level F-score, as sacreBLEU does.

use std::collections::HashMap;
use std::hash::Hash;

use serde::Serialize;

use super::python_str;
use super::SACREBLEU_VERSION;

/// `CHRF.CHAR_ORDER`.
const CHAR_ORDER: usize = 6;
/// `CHRF.BETA`.
const BETA: u32 = 2;
/// `CHRF._PUNCTS` (`string.punctuation`), split off word edges for chrF++ word n-grams.
const PUNCTS: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

/// A corpus chrF (or chrF++) score (`sacrebleu.metrics.chrf.CHRFScore`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChrfScore {
    /// chrF on sacreBLEU's 0..100 scale.
    pub score: f64,
    /// sacreBLEU's signature, e.g. `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|version:2.6.0`.
    pub signature: String,
}

/// Corpus chrF (`CHRF()`: character 1..6-grams, beta 2) of `hyps` against reference streams
/// `refs` (`refs[k][i]` is the k-th reference of segment `i`).
///
/// # Panics
/// If `refs` is empty or a stream's length differs from `hyps.len()`.
pub fn corpus_chrf(hyps: &[String], refs: &[Vec<String>]) -> ChrfScore {
    corpus_score(hyps, refs, 0)
}

/// Corpus chrF++ (`CHRF(word_order=2)`: chrF plus word 1- and 2-grams).
///
/// # Panics
/// If `refs` is empty or a stream's length differs from `hyps.len()`.
pub fn corpus_chrf_pp(hyps: &[String], refs: &[Vec<String>]) -> ChrfScore {
    corpus_score(hyps, refs, 2)
}

/// `CHRF(word_order=word_order).corpus_score(hyps, refs)`.
fn corpus_score(hyps: &[String], refs: &[Vec<String>], word_order: usize) -> ChrfScore {
    super::check_streams(hyps, refs);
    let order = CHAR_ORDER + word_order;
    let mut corpus = vec![MatchStats::default(); order];
    for (i, hyp) in hyps.iter().enumerate() {
        let hyp_ngrams = Ngrams::extract(hyp, word_order);
        let mut best: Option<(f64, Vec<MatchStats>)> = None;
        for stream in refs {
            let ref_ngrams = Ngrams::extract(&stream[i], word_order);
            let stats = hyp_ngrams.match_statistics(&ref_ngrams);
            let f_score = f_score(&stats);
            // `_compute_segment_statistics`: strictly better replaces (first wins on ties).
            if best.as_ref().is_none_or(|(best_f, _)| f_score > *best_f) {
                best = Some((f_score, stats));
            }
        }
        if let Some((_, stats)) = best {
            for (sum, s) in corpus.iter_mut().zip(stats) {
                sum.hyp += s.hyp;
                sum.reference += s.reference;
                sum.matched += s.matched;
            }
        }
    }
    ChrfScore {
        score: f_score(&corpus),
        signature: format!(
            "nrefs:{}|case:mixed|eff:yes|nc:{CHAR_ORDER}|nw:{word_order}|space:no|version:{SACREBLEU_VERSION}",
            refs.len()
        ),
    }
}

/// `[hyp, ref, match]` counts of one n-gram order (`CHRF._get_match_statistics`).
#[derive(Debug, Clone, Copy, Default)]
struct MatchStats {
    /// Hypothesis n-grams, or 0 when the reference has none of this order.
    hyp: u64,
    reference: u64,
    matched: u64,
}

/// The n-gram counters of one segment: character orders 1..=6, then word orders.
struct Ngrams {
    chars: Vec<HashMap<Vec<char>, u64>>,
    words: Vec<HashMap<Vec<String>, u64>>,
}

impl Ngrams {
    /// `helpers.extract_all_char_ngrams` (whitespace removed) and, for chrF++,
    /// `helpers.extract_word_ngrams` over `CHRF._remove_punctuation` words.
    fn extract(segment: &str, word_order: usize) -> Self {
        let chars: Vec<char> = python_str::split(segment).flat_map(str::chars).collect();
        let words = remove_punctuation(segment);
        Ngrams {
            chars: (1..=CHAR_ORDER).map(|n| count_ngrams(&chars, n)).collect(),
            words: (1..=word_order).map(|n| count_ngrams(&words, n)).collect(),
        }
    }

    /// Match statistics of every order against a reference's n-grams.
    fn match_statistics(&self, reference: &Ngrams) -> Vec<MatchStats> {
        let chars = self.chars.iter().zip(&reference.chars);
        let words = self.words.iter().zip(&reference.words);
        chars
            .map(|(h, r)| order_statistics(h, r))
            .chain(words.map(|(h, r)| order_statistics(h, r)))
            .collect()
    }
}

/// Counts of the `n`-grams of `items` (`Counter([line[i:i + n] ...])`).
fn count_ngrams<T: Clone + Eq + Hash>(items: &[T], n: usize) -> HashMap<Vec<T>, u64> {
    let mut counts = HashMap::new();
    for ngram in items.windows(n) {
        *counts.entry(ngram.to_vec()).or_insert(0) += 1;
    }
    counts
}

/// `CHRF._get_match_statistics` for one order.
fn order_statistics<K: Eq + Hash>(
    hyp: &HashMap<K, u64>,
    reference: &HashMap<K, u64>,
) -> MatchStats {
    let mut hyp_count = 0;
    let mut matched = 0;
    for (ngram, &count) in hyp {
        hyp_count += count;
        if let Some(&ref_count) = reference.get(ngram) {
            matched += count.min(ref_count);
        }
    }
    MatchStats {
        // Don't count hits if no reference exists for that n-gram order.
        hyp: if reference.is_empty() { 0 } else { hyp_count },
        reference: reference.values().sum(),
        matched,
    }
}

/// `CHRF._remove_punctuation`: whitespace-split words with one ASCII punctuation mark split
/// off the end, or else off the start (so `(hi)` gives `(hi` and `)`, sacrebleu #124).
fn remove_punctuation(segment: &str) -> Vec<String> {
    let mut words = Vec::new();
    for word in python_str::split(segment) {
        let mut chars = word.chars();
        let (first, last) = (chars.next(), chars.next_back());
        match (first, last) {
            (Some(_), Some(last)) if PUNCTS.contains(last) => {
                words.push(word[..word.len() - last.len_utf8()].to_string());
                words.push(last.to_string());
            }
            (Some(first), Some(_)) if PUNCTS.contains(first) => {
                words.push(first.to_string());
                words.push(word[first.len_utf8()..].to_string());
            }
            _ => words.push(word.to_string()),
        }
    }
    words
}

/// `CHRF._compute_f_score` without epsilon smoothing: precision and recall are averaged over
/// the orders where both sides have n-grams, then combined into F-beta (0..100). The
/// floating-point operations follow sacreBLEU's order.
fn f_score(stats: &[MatchStats]) -> f64 {
    let factor = f64::from(BETA * BETA);
    let (mut avg_prec, mut avg_rec) = (0.0, 0.0);
    let mut effective_order = 0u32;
    for s in stats {
        if s.hyp > 0 && s.reference > 0 {
            avg_prec += s.matched as f64 / s.hyp as f64;
            avg_rec += s.matched as f64 / s.reference as f64;
            effective_order += 1;
        }
    }
    if effective_order > 0 {
        avg_prec /= f64::from(effective_order);
        avg_rec /= f64::from(effective_order);
    }
    if avg_prec + avg_rec != 0.0 {
        let score = (1.0 + factor) * avg_prec * avg_rec / (factor * avg_prec + avg_rec);
        100.0 * score
    } else {
        0.0
    }
}
