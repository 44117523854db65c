//! Decoding: batched beam search over the model's incremental (compressed) KV caches.

pub mod beam;
pub mod ctc_prefix;
pub mod ngram;
pub mod scorer;

pub use beam::{beam_search, BeamConfig, Hypothesis, SearchStats, SpecialTokens};
pub use ctc_prefix::{CtcPrefixScorer, CtcState};
pub use ngram::{NgramLm, NgramStats, Pruning};
pub use scorer::{CachedScorer, RecomputeScorer, Scorer};

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
    special: SpecialTokens,
    lm: Option<&NgramLm>,
) -> st_model::Result<(Vec<Hypothesis>, SearchStats)> {
    mtla::pool::awake_on::<B, _>(|| {
        let encoded = model.encode(features, frames)?;
        let longest = frames
            .iter()
            .map(|&f| (search.max_len_a * f as f64) as usize + search.max_len_b)
            .max()
            .unwrap_or(0);
        let ctc = match search.ctc_weight > 0.0 {
            true => Some(ctc_prefix_scorer(model, &encoded, special)?),
            false => None,
        };
        let mut scorer = CachedScorer::new(model, &encoded, longest + 1)?;
        beam_search(&mut scorer, frames, search, special, ctc.as_ref(), lm)
    })
}

/// The CTC head's log-probabilities of every utterance's real frames, on the host.
fn ctc_prefix_scorer<B: Backend>(
    model: &SpeechModel<B>,
    encoded: &EncoderOutput<B>,
    special: SpecialTokens,
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
