//! Corpus character error rate exactly as `jiwer.process_characters` (jiwer 4.0.0) computes
//! it with its default transform `cer_default` (`Strip`, `ReduceToListOfListOfChars`):
//! spaces inside a segment count as characters.

use serde::Serialize;

use super::levenshtein::{edit_counts, EditCounts};
use super::python_str;
use super::MetricsError;

/// A corpus CER with its edit counts (`jiwer.CharacterOutput`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CerScore {
    /// `(S + D + I) / (H + S + D)`, a fraction.
    pub cer: f64,
    pub substitutions: u64,
    pub deletions: u64,
    pub insertions: u64,
    pub hits: u64,
    /// Reference characters after stripping, `H + S + D`.
    pub ref_chars: u64,
}

/// Corpus CER of `hyps` against `refs` (one reference per segment). A reference that is
/// empty after stripping is allowed, as in jiwer 4.0.0.
///
/// # Errors
/// [`MetricsError::EmptyReferences`] when every reference is empty after stripping.
///
/// # Panics
/// If `refs.len() != hyps.len()`.
pub fn corpus_cer(hyps: &[String], refs: &[String]) -> Result<CerScore, MetricsError> {
    assert_eq!(
        refs.len(),
        hyps.len(),
        "CER: {} references for {} hypotheses",
        refs.len(),
        hyps.len()
    );
    let chars = |s: &str| python_str::strip(s).chars().collect::<Vec<char>>();
    let mut counts = EditCounts::default();
    for (hyp, reference) in hyps.iter().zip(refs) {
        counts += edit_counts(&chars(reference), &chars(hyp));
    }
    let ref_chars = counts.hits + counts.substitutions + counts.deletions;
    if ref_chars == 0 {
        return Err(MetricsError::EmptyReferences {
            metric: "CER",
            segments: refs.len(),
        });
    }
    let errors = counts.substitutions + counts.deletions + counts.insertions;
    Ok(CerScore {
        cer: errors as f64 / ref_chars as f64,
        substitutions: counts.substitutions,
        deletions: counts.deletions,
        insertions: counts.insertions,
        hits: counts.hits,
        ref_chars,
    })
}
