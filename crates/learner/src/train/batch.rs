//! Host batches -> tensors for teacher forcing: decoder input `BOS y_1 .. y_n` and target
//! `y_1 .. y_n EOS`, padded with PAD.

use std::sync::Arc;

use burn::prelude::*;
use fbank::SpecAugment;

use crate::error::Result;
use data::batcher::mix;
use data::{Batch, BatchConfig, Dataset, TargetSide, Tokenizer};

/// A training/validation batch on a device.
#[derive(Debug, Clone)]
pub struct TrainBatch<B: Backend> {
    /// `[batch, frames, feat_dim]`.
    pub features: Tensor<B, 3>,
    pub frames: Vec<usize>,
    /// `[batch, S]`: BOS then the target tokens.
    pub inputs: Tensor<B, 2, Int>,
    /// `[batch, S]`: the target tokens then EOS, PAD after.
    pub targets: Tensor<B, 2, Int>,
    /// Real length of each row of `inputs`/`targets` (target tokens + 1).
    pub lengths: Vec<usize>,
    /// Target tokens to predict (EOS included), for loss normalisation.
    pub ntokens: usize,
    /// Each row's reference text, as in the manifest.
    pub texts: Vec<String>,
}

/// Token ids the batches are built with.
#[derive(Debug, Clone, Copy)]
pub struct Specials {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
}

impl Specials {
    pub fn of(tokenizer: &Tokenizer) -> Self {
        Self {
            bos: tokenizer.bos_id(),
            eos: tokenizer.eos_id(),
            pad: tokenizer.pad_id(),
        }
    }
}

/// Puts a host batch on `device`.
pub fn to_tensors<B: Backend>(
    batch: &Batch,
    specials: Specials,
    device: &B::Device,
) -> TrainBatch<B> {
    let n = batch.len();
    let lengths: Vec<usize> = batch.targets.iter().map(|t| t.len() + 1).collect();
    let s = lengths.iter().copied().max().unwrap_or(1);
    let mut inputs = vec![specials.pad as i64; n * s];
    let mut targets = vec![specials.pad as i64; n * s];
    for (b, t) in batch.targets.iter().enumerate() {
        inputs[b * s] = specials.bos as i64;
        for (j, &tok) in t.iter().enumerate() {
            inputs[b * s + j + 1] = tok as i64;
            targets[b * s + j] = tok as i64;
        }
        targets[b * s + t.len()] = specials.eos as i64;
    }
    TrainBatch {
        features: Tensor::<B, 1>::from_floats(batch.features.as_slice(), device).reshape([
            n,
            batch.max_frames,
            batch.feat_dim,
        ]),
        frames: batch.frames.clone(),
        inputs: Tensor::<B, 1, Int>::from_ints(inputs.as_slice(), device).reshape([n, s]),
        targets: Tensor::<B, 1, Int>::from_ints(targets.as_slice(), device).reshape([n, s]),
        ntokens: lengths.iter().sum(),
        lengths,
        texts: batch.target_texts.clone(),
    }
}

/// A dataset with its tokenizer and batching: the epoch's batch list and each batch's
/// tensors, deterministically from `(seed, epoch, batch index)`, so a resumed run sees the
/// same data in the same order.
pub struct BatchSource {
    pub dataset: Arc<Dataset>,
    pub tokenizer: Arc<Tokenizer>,
    pub side: TargetSide,
    pub batching: BatchConfig,
    pub augment: Option<SpecAugment>,
}

impl BatchSource {
    /// Index lists of `epoch`'s batches.
    pub fn epoch(&self, epoch: u64) -> Vec<Vec<usize>> {
        self.dataset.batches(&self.batching, epoch)
    }

    /// Loads one batch of `epoch` (SpecAugment drawn from `(seed, epoch)` and each utterance).
    pub fn load<B: Backend>(
        &self,
        indices: &[usize],
        epoch: u64,
        device: &B::Device,
    ) -> Result<TrainBatch<B>> {
        let augment = self
            .augment
            .as_ref()
            .map(|a| (a, mix(self.batching.seed, epoch)));
        let batch = self
            .dataset
            .load_batch(indices, &self.tokenizer, self.side, augment)?;
        Ok(to_tensors(&batch, Specials::of(&self.tokenizer), device))
    }

    /// Target tokens (EOS included) of each utterance in `indices`, without loading features.
    pub fn target_tokens(&self, indices: &[usize]) -> Result<usize> {
        let mut n = 0;
        for &i in indices {
            let text = match self.side {
                TargetSide::Translation => self.dataset.target_text(i),
                TargetSide::Transcript => self.dataset.source_text(i).unwrap_or(""),
            };
            n += self.tokenizer.encode(text).len() + 1;
        }
        Ok(n)
    }
}
