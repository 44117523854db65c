//! Decoding: batched beam search over the model's incremental (compressed) KV caches.

pub mod beam;
pub mod scorer;

pub use beam::{beam_search, BeamConfig, Hypothesis, SearchStats, SpecialTokens};
pub use scorer::{CachedScorer, RecomputeScorer, Scorer};
