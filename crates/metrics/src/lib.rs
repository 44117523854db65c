//! Corpus-level translation and recognition quality, reproducing the reference tools
//! number for number: BLEU, chrF and chrF++ as sacreBLEU 2.6.0 computes them with its
//! defaults, WER and CER as jiwer 4.0.0 does (including how rapidfuzz's alignment splits
//! errors into substitutions, deletions and insertions), and WER as fairseq's S2T recipes
//! score ASR (13a tokens, lower-cased, punctuation tokens dropped).
//!
//! Parity with the oracle `shared/oracles/score_reference.py` (and fairseq's `WerScorer`) is
//! tested on the fixtures in `crates/metrics/tests/data/scores/`.

mod bleu;
mod bootstrap;
mod cer;
mod chrf;
mod error;
mod files;
mod levenshtein;
mod punctuation;
mod python_str;
mod report;
mod tokenizer_13a;
mod wer;

pub use bleu::{corpus_bleu, BleuScore, MAX_NGRAM_ORDER};
pub use bootstrap::{paired_bootstrap, PairedTest};
pub use cer::{corpus_cer, CerScore};
pub use chrf::{corpus_chrf, corpus_chrf_pp, ChrfScore};
pub use error::MetricsError;
pub use files::{read_lines, read_streams, score_files};
pub use report::{score_lines, QualityReport};
pub use tokenizer_13a::tokenize_13a;
pub use wer::{corpus_wer, corpus_wer_13a_lc_nopunct, corpus_wer_lc_nopunct, WerScore};

/// The sacreBLEU version whose results and signatures these metrics reproduce.
pub const SACREBLEU_VERSION: &str = "2.6.0";

/// The sum of per-segment sufficient statistics (a corpus's, or a resample's).
fn sum<S: Copy + Default + std::ops::AddAssign>(items: impl IntoIterator<Item = S>) -> S {
    let mut total = S::default();
    items.into_iter().for_each(|s| total += s);
    total
}

/// sacreBLEU's corpus layout: at least one reference stream, each one segment per hypothesis.
fn check_streams(hyps: &[String], refs: &[Vec<String>]) {
    assert!(!refs.is_empty(), "at least one reference stream is needed");
    for (k, stream) in refs.iter().enumerate() {
        assert_eq!(
            stream.len(),
            hyps.len(),
            "reference stream {k} has {} segments but there are {} hypotheses",
            stream.len(),
            hyps.len()
        );
    }
}
