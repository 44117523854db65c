//! Decoding: batched beam search over the model's incremental (compressed) KV caches.

pub mod beam;
pub mod scorer;

pub use beam::{beam_search, BeamConfig, Hypothesis, SearchStats, SpecialTokens};
pub use scorer::{CachedScorer, RecomputeScorer, Scorer};

use burn::prelude::*;
use st_model::SpeechModel;

/// Encodes `features` `[batch, frames, feat_dim]` (real lengths `frames`) and beam-searches
/// every row over the decoder's incremental caches, reserved once for the longest output.
pub fn decode_batch<B: Backend>(
    model: &SpeechModel<B>,
    features: Tensor<B, 3>,
    frames: &[usize],
    search: &BeamConfig,
    special: SpecialTokens,
) -> st_model::Result<(Vec<Hypothesis>, SearchStats)> {
    let encoded = model.encode(features, frames)?;
    let longest = frames
        .iter()
        .map(|&f| (search.max_len_a * f as f64) as usize + search.max_len_b)
        .max()
        .unwrap_or(0);
    let mut scorer = CachedScorer::new(model, &encoded, longest + 1)?;
    beam_search(&mut scorer, frames, search, special)
}
