//! Corpus word error rate exactly as `jiwer.process_words` (jiwer 4.0.0) computes it: both
//! sides go through the same transform, every segment is aligned with rapidfuzz's Levenshtein
//! opcodes ([`super::levenshtein`]) and the counts are summed over the corpus, so
//! `wer = (S + D + I) / (H + S + D)`. Also fairseq's form of it (13a tokens, lower-cased,
//! punctuation tokens dropped), whose `editdistance` sum is the same `S + D + I`.

use serde::Serialize;

use super::levenshtein::{edit_counts, EditCounts};
use super::punctuation::is_punctuation;
use super::python_str;
use super::tokenizer_13a::tokenize_13a;
use super::MetricsError;

/// A corpus WER with its edit counts (`jiwer.WordOutput`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WerScore {
    /// `(S + D + I) / (H + S + D)`, a fraction (jiwer's convention, not percent).
    pub wer: f64,
    pub substitutions: u64,
    pub deletions: u64,
    pub insertions: u64,
    pub hits: u64,
    /// Reference words after the transform, `H + S + D`.
    pub ref_words: u64,
}

impl WerScore {
    /// The score of summed counts; `None` when there are no reference words (jiwer then
    /// reports the insertion count as "wer", which is not a rate).
    pub(crate) fn from_counts(counts: EditCounts) -> Option<Self> {
        let ref_words = counts.hits + counts.substitutions + counts.deletions;
        let errors = counts.substitutions + counts.deletions + counts.insertions;
        (ref_words > 0).then(|| WerScore {
            wer: errors as f64 / ref_words as f64,
            substitutions: counts.substitutions,
            deletions: counts.deletions,
            insertions: counts.insertions,
            hits: counts.hits,
            ref_words,
        })
    }
}

/// Corpus WER with jiwer's default transform `wer_default` (`RemoveMultipleSpaces`, `Strip`,
/// `ReduceToListOfListOfWords`): case- and punctuation-sensitive. Like jiwer 4.0.0, a reference
/// that is empty after the transform is allowed and its hypothesis words count as insertions.
///
/// # Errors
/// [`MetricsError::EmptyReferences`] when every reference is empty after the transform
/// (no reference words: WER is undefined).
///
/// # Panics
/// If `refs.len() != hyps.len()`.
pub fn corpus_wer(hyps: &[String], refs: &[String]) -> Result<WerScore, MetricsError> {
    corpus_score(hyps, refs, WerForm::AsWritten)
}

/// Corpus WER after `jiwer.ToLowerCase()` and `jiwer.RemovePunctuation()` (every Unicode
/// `P*` character deleted), then the default transform, on both sides; the oracle's
/// `wer_lc_nopunct`.
///
/// # Errors
/// [`MetricsError::EmptyReferences`] when every reference is empty after the transform.
///
/// # Panics
/// If `refs.len() != hyps.len()`.
pub fn corpus_wer_lc_nopunct(hyps: &[String], refs: &[String]) -> Result<WerScore, MetricsError> {
    corpus_score(hyps, refs, WerForm::LowerNoPunct)
}

/// Corpus WER as fairseq scores speech recognition (`--scoring wer --wer-tokenizer 13a
/// --wer-lowercase --wer-remove-punct`, the S2T MuST-C recipe's ASR scoring): both sides split
/// into sacreBLEU's 13a tokens, tokens made only of punctuation (Unicode `P*`) dropped, the
/// rest lower-cased. Unlike [`corpus_wer_lc_nopunct`], punctuation inside a word stays ("don't"
/// and "e-mail" are one word each, not "dont" and "email"). Checked against fairseq's own
/// `WerScorer` (`tests/data/scores/make_fairseq_wer.py`).
///
/// # Errors
/// [`MetricsError::EmptyReferences`] when every reference is empty after the transform
/// (fairseq then reports 0).
///
/// # Panics
/// If `refs.len() != hyps.len()`.
pub fn corpus_wer_13a_lc_nopunct(
    hyps: &[String],
    refs: &[String],
) -> Result<WerScore, MetricsError> {
    corpus_score(hyps, refs, WerForm::Tokens13aLowerNoPunct)
}

/// Which text a WER compares: as written, lower-cased without punctuation (jiwer), or
/// fairseq's lower-cased 13a tokens without punctuation tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WerForm {
    AsWritten,
    LowerNoPunct,
    Tokens13aLowerNoPunct,
}

impl WerForm {
    pub(crate) fn name(self) -> &'static str {
        match self {
            WerForm::AsWritten => "WER",
            WerForm::LowerNoPunct => "WER (lowercase, no punctuation)",
            WerForm::Tokens13aLowerNoPunct => "WER (13a, lowercase, no punctuation tokens)",
        }
    }

    /// The transform applied to both sides before splitting into words.
    fn words(self, s: &str) -> Vec<String> {
        match self {
            WerForm::AsWritten => words(s),
            WerForm::LowerNoPunct => {
                let lowered: String = s
                    .to_lowercase()
                    .chars()
                    .filter(|&c| !is_punctuation(c))
                    .collect();
                words(&lowered)
            }
            // EvaluationTokenizer.tokenize, then `.split()`: 13a joins its tokens with single
            // spaces, so an empty line is the one empty token, dropped as punctuation is.
            WerForm::Tokens13aLowerNoPunct => tokenize_13a(s)
                .split(' ')
                .filter(|token| !token.chars().all(is_punctuation))
                .map(str::to_lowercase)
                .collect(),
        }
    }
}

/// `jiwer.process_words(refs, hyps, transform, transform)` reduced to its counts.
fn corpus_score(hyps: &[String], refs: &[String], form: WerForm) -> Result<WerScore, MetricsError> {
    WerScore::from_counts(super::sum(segment_counts(hyps, refs, form))).ok_or(
        MetricsError::EmptyReferences {
            metric: form.name(),
            segments: refs.len(),
        },
    )
}

/// Each segment's edit counts (summed, they are the corpus's).
///
/// # Panics
/// If `refs.len() != hyps.len()`.
pub(crate) fn segment_counts(hyps: &[String], refs: &[String], form: WerForm) -> Vec<EditCounts> {
    assert_eq!(
        refs.len(),
        hyps.len(),
        "{}: {} references for {} hypotheses",
        form.name(),
        refs.len(),
        hyps.len()
    );
    hyps.iter()
        .zip(refs)
        .map(|(hyp, reference)| edit_counts(&form.words(reference), &form.words(hyp)))
        .collect()
}

/// `wer_default`: `RemoveMultipleSpaces` (`re.sub(r"\s\s+", " ", s)`), `Strip`, then
/// `ReduceToListOfListOfWords` (split on the space character only, empty words dropped; a
/// lone tab or no-break space therefore stays inside a word, as in jiwer).
fn words(s: &str) -> Vec<String> {
    let collapsed = remove_multiple_spaces(s);
    python_str::strip(&collapsed)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// `re.sub(r"\s\s+", " ", s)`: every run of two or more whitespace characters becomes one space.
fn remove_multiple_spaces(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if python_str::is_space(c) && chars.peek().is_some_and(|&n| python_str::is_space(n)) {
            while chars.peek().is_some_and(|&n| python_str::is_space(n)) {
                chars.next();
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}
