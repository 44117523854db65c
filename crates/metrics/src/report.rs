//! Every corpus score at once, as the oracle `score_reference.py` reports it.

use serde::Serialize;

use super::{
    corpus_bleu, corpus_cer, corpus_chrf, corpus_chrf_pp, corpus_wer, corpus_wer_13a_lc_nopunct,
    corpus_wer_lc_nopunct, BleuScore, CerScore, ChrfScore, WerScore,
};

/// Corpus-level quality of a hypothesis stream against one or more reference streams.
/// BLEU/chrF are on a 0..100 scale (sacreBLEU), WER/CER are fractions (jiwer).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QualityReport {
    /// Number of segments (lines).
    pub segments: usize,
    /// sacreBLEU BLEU, all references.
    pub bleu: BleuScore,
    /// sacreBLEU chrF, all references.
    pub chrf: ChrfScore,
    /// sacreBLEU chrF++, all references.
    pub chrf_pp: ChrfScore,
    /// jiwer WER against the first reference; `None` when every reference line is empty.
    pub wer: Option<WerScore>,
    /// jiwer WER after lower-casing and removing punctuation, first reference.
    pub wer_lc_nopunct: Option<WerScore>,
    /// WER as fairseq's S2T recipes score ASR (13a tokens, lower-cased, punctuation tokens
    /// dropped), first reference.
    pub wer_13a_lc_nopunct: Option<WerScore>,
    /// jiwer CER against the first reference.
    pub cer: Option<CerScore>,
}

/// Scores `hyps` against reference streams `refs` (`refs[k][i]` is the k-th reference of
/// segment `i`). WER and CER use the first stream only, as the oracle does.
///
/// # Panics
/// If `refs` is empty or a stream's length differs from `hyps.len()`.
pub fn score_lines(hyps: &[String], refs: &[Vec<String>]) -> QualityReport {
    super::check_streams(hyps, refs);
    let first = &refs[0];
    QualityReport {
        segments: hyps.len(),
        bleu: corpus_bleu(hyps, refs),
        chrf: corpus_chrf(hyps, refs),
        chrf_pp: corpus_chrf_pp(hyps, refs),
        wer: corpus_wer(hyps, first).ok(),
        wer_lc_nopunct: corpus_wer_lc_nopunct(hyps, first).ok(),
        wer_13a_lc_nopunct: corpus_wer_13a_lc_nopunct(hyps, first).ok(),
        cer: corpus_cer(hyps, first).ok(),
    }
}
