//! Decoding: batched beam search over the model's incremental (compressed) KV caches.

pub mod beam;
pub mod ctc_prefix;
pub mod ngram;
pub mod scorer;

pub use beam::{beam_search, BeamConfig, Hypothesis, SearchStats, SpecialTokens};
pub use ctc_prefix::{CtcPrefixScorer, CtcState};
pub use ngram::{Discounting, NgramLm, NgramStats, Pruning};
pub use scorer::{CachedScorer, EnsembleScorer, RecomputeScorer, Scorer};

use burn::prelude::*;
use st_model::{EncoderOutput, ModelError, SpeechModel};

/// Encodes `features` `[batch, frames, feat_dim]` (real lengths `frames`) and beam-searches
/// every row over the decoder's incremental caches, reserved once for the longest output;
/// jointly with the CTC head when `search.ctc_weight > 0` (an error for a model without one),
/// and with the n-gram model `lm` when `search.lm_weight > 0` (shallow fusion).
/// On the CPU backend all of it runs on the pool with a second thread kept awake
/// ([`mtla::pool::awake`]): the encoder's and the search's ops are many and small.
pub fn decode_batch<B: Backend>(
    model: &SpeechModel<B>,
    features: Tensor<B, 3>,
    frames: &[usize],
    search: &BeamConfig,
    special: &SpecialTokens,
    lm: Option<&NgramLm>,
) -> st_model::Result<(Vec<Hypothesis>, SearchStats)> {
    decode_ensemble(&[model], features, frames, search, special, lm)
}

/// [`decode_batch`] with several models over the same vocabulary decoding together (fairseq's
/// `--path a.pt:b.pt`, [`EnsembleScorer`]): each encodes the features and keeps its own caches;
/// the first one's CTC head joins the search.
///
/// # Panics
/// If `models` is empty.
pub fn decode_ensemble<B: Backend>(
    models: &[&SpeechModel<B>],
    features: Tensor<B, 3>,
    frames: &[usize],
    search: &BeamConfig,
    special: &SpecialTokens,
    lm: Option<&NgramLm>,
) -> st_model::Result<(Vec<Hypothesis>, SearchStats)> {
    mtla::pool::awake_on::<B, _>(|| {
        let encoded = models
            .iter()
            .map(|m| m.encode(features.clone(), frames))
            .collect::<st_model::Result<Vec<_>>>()?;
        let longest = frames
            .iter()
            .map(|&f| (search.max_len_a * f as f64) as usize + search.max_len_b)
            .max()
            .unwrap_or(0);
        let ctc = match search.ctc_weight > 0.0 {
            true => Some(ctc_prefix_scorer(models[0], &encoded[0], special)?),
            false => None,
        };
        let members = models
            .iter()
            .zip(&encoded)
            .map(|(m, e)| CachedScorer::new(m, e, longest + 1))
            .collect::<st_model::Result<Vec<_>>>()?;
        let mut scorer = EnsembleScorer::new(members);
        beam_search(&mut scorer, frames, search, special, ctc.as_ref(), lm)
    })
}

/// The CTC head's log-probabilities of every utterance's real frames, on the host.
fn ctc_prefix_scorer<B: Backend>(
    model: &SpeechModel<B>,
    encoded: &EncoderOutput<B>,
    special: &SpecialTokens,
) -> st_model::Result<CtcPrefixScorer> {
    let log_probs = model.ctc_log_probs(encoded).ok_or_else(|| {
        ModelError::Input(
            "eval.ctc_weight > 0 needs a model with a CTC head (trained with model.ctc_weight > 0)"
                .into(),
        )
    })?;
    let [_, frames, vocab] = log_probs.dims();
    let flat: Vec<f32> = log_probs
        .into_data()
        .convert::<f32>()
        .to_vec()
        .expect("f32 log-probs");
    let per_utterance = encoded
        .lengths
        .iter()
        .enumerate()
        .map(|(u, &n)| flat[u * frames * vocab..(u * frames + n) * vocab].to_vec())
        .collect();
    // The blank is PAD, as in training (`train::trainee`).
    Ok(CtcPrefixScorer::new(
        per_utterance,
        vocab,
        special.pad,
        special.eos,
    ))
}
