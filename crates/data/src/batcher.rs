//! Batches of utterance indices bounded by padded frames, as fairseq's `--max-tokens`.
//!
//! Training (`shuffle`): utterances are sorted by length with ties broken at random, cut greedily
//! into batches (so each batch holds similar lengths: little padding), and the batches are
//! shuffled; both draws come from `(seed, epoch)`, so every epoch differs and every run with the
//! same seed is the same. Evaluation: manifest order, cut greedily.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::prepare::{MAX_FRAMES, MIN_FRAMES};

/// How to cut a dataset into batches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    /// Bound on `batch size x longest utterance in the batch`, in frames.
    pub max_frames: usize,
    /// Bound on utterances per batch.
    pub max_sentences: Option<usize>,
    /// Shuffle (training) or keep manifest order (dev/test).
    pub shuffle: bool,
    pub seed: u64,
    /// Utterances with fewer frames are left out (fairseq: 5).
    pub min_frames: usize,
    /// Utterances with more frames are left out (fairseq: 3000).
    pub max_utt_frames: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_frames: 40_000,
            max_sentences: None,
            shuffle: true,
            seed: 1,
            min_frames: MIN_FRAMES,
            max_utt_frames: MAX_FRAMES,
        }
    }
}

impl BatchConfig {
    /// True when an utterance of `frames` frames goes into batches: within the length limits
    /// and not longer than a whole batch may be.
    pub fn keeps(&self, frames: usize) -> bool {
        frames >= self.min_frames && frames <= self.max_utt_frames && frames <= self.max_frames
    }
}

/// Cuts utterances `0..frames.len()` (with these frame counts) into batches for `epoch`.
/// Every kept utterance appears exactly once; see [`BatchConfig::keeps`].
pub fn make_batches(frames: &[usize], cfg: &BatchConfig, epoch: u64) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..frames.len())
        .filter(|&i| cfg.keeps(frames[i]))
        .collect();
    let mut rng = StdRng::seed_from_u64(mix(cfg.seed, epoch));
    if cfg.shuffle {
        let tie: Vec<u64> = (0..frames.len()).map(|_| rng.random()).collect();
        order.sort_by_key(|&i| (frames[i], tie[i]));
    }
    let max_sentences = cfg.max_sentences.unwrap_or(usize::MAX).max(1);
    let mut batches = Vec::new();
    let mut batch: Vec<usize> = Vec::new();
    let mut longest = 0;
    for i in order {
        let grown = longest.max(frames[i]);
        if !batch.is_empty()
            && (grown * (batch.len() + 1) > cfg.max_frames || batch.len() >= max_sentences)
        {
            batches.push(std::mem::take(&mut batch));
            longest = 0;
        }
        longest = longest.max(frames[i]);
        batch.push(i);
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    if cfg.shuffle {
        batches.shuffle(&mut rng);
    }
    batches
}

/// Combines a seed and an epoch into one well-spread seed (SplitMix64 finaliser).
pub fn mix(seed: u64, salt: u64) -> u64 {
    let mut z = seed
        ^ salt
            .wrapping_add(0x9E37_79B9_7F4A_7C15)
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
