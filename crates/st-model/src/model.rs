//! The speech-translation model: encoder -> projector -> decoder (prefix or cross layout),
//! with an optional CTC head on the encoder (ASR). Generic over any Burn backend.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use mtla::linear::linear;

use crate::config::{DecoderStyle, ModelConfig};
use crate::decoder::{Decoder, DecoderState};
use crate::encoder::{Encoder, EncoderOutput};
use crate::error::{ModelError, Result};
use crate::projector::Projector;

#[derive(Module, Debug)]
pub struct SpeechModel<B: Backend> {
    pub encoder: Encoder<B>,
    /// Prefix layout only: maps encoder states to the decoder's speech prefix.
    pub projector: Option<Projector<B>>,
    pub decoder: Decoder<B>,
    /// CTC output layer on the encoder (`ctc_weight > 0`).
    pub ctc: Option<Linear<B>>,
    pub input_dim: usize,
}

/// Training outputs.
#[derive(Debug, Clone)]
pub struct ModelOutput<B: Backend> {
    /// Decoder logits `[batch, S, vocab]`.
    pub logits: Tensor<B, 3>,
    /// CTC log-probabilities `[batch, frames', vocab]` when the model has a CTC head.
    pub ctc_log_probs: Option<Tensor<B, 3>>,
    /// Encoder output lengths.
    pub encoder_lengths: Vec<usize>,
}

impl<B: Backend> SpeechModel<B> {
    /// Fresh weights for `config` (validated).
    pub fn new(config: &ModelConfig, device: &B::Device) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            encoder: Encoder::new(config, device),
            projector: (config.decoder.style == DecoderStyle::Prefix)
                .then(|| Projector::new(config.d_model, config.decoder.prefix_norm, device)),
            decoder: Decoder::new(config, device)?,
            ctc: (config.ctc_weight > 0.0)
                .then(|| LinearConfig::new(config.d_model, config.vocab_size).init(device)),
            input_dim: config.input_dim,
        })
    }

    /// Encodes `features` `[batch, frames, input_dim]` with real lengths `frames`.
    pub fn encode(&self, features: Tensor<B, 3>, frames: &[usize]) -> Result<EncoderOutput<B>> {
        let [b, t, f] = features.dims();
        if f != self.input_dim || frames.len() != b || frames.iter().any(|&n| n > t || n == 0) {
            return Err(ModelError::Input(format!(
                "features must be [batch, frames, {}] with 1..=frames real frames per row; got {:?} and lengths {frames:?}",
                self.input_dim,
                [b, t, f]
            )));
        }
        Ok(self.encoder.forward(features, frames))
    }

    /// What the decoder attends to: the projected prefix, or the encoder states (cross).
    fn decoder_input(&self, encoded: &EncoderOutput<B>) -> Tensor<B, 3> {
        match &self.projector {
            Some(p) => p.forward(encoded.states.clone()),
            None => encoded.states.clone(),
        }
    }

    /// Teacher forcing: `tokens` `[batch, S]` are BOS + targets (real lengths `target_lengths`).
    pub fn forward(
        &self,
        features: Tensor<B, 3>,
        frames: &[usize],
        tokens: Tensor<B, 2, Int>,
        target_lengths: &[usize],
    ) -> Result<ModelOutput<B>> {
        let [b, s] = tokens.dims();
        if target_lengths.len() != b || target_lengths.iter().any(|&n| n > s || n == 0) {
            return Err(ModelError::Input(format!(
                "tokens [{b}, {s}] need 1..={s} real tokens per row; got lengths {target_lengths:?}"
            )));
        }
        let encoded = self.encode(features, frames)?;
        let logits = self.decoder.forward(
            tokens,
            self.decoder_input(&encoded),
            &encoded.lengths,
            target_lengths,
        )?;
        let ctc_log_probs = self.ctc_log_probs(&encoded);
        Ok(ModelOutput {
            logits,
            ctc_log_probs,
            encoder_lengths: encoded.lengths,
        })
    }

    /// The CTC head's log-probabilities `[batch, frames', vocab]` of encoded utterances, when
    /// the model has one.
    pub fn ctc_log_probs(&self, encoded: &EncoderOutput<B>) -> Option<Tensor<B, 3>> {
        self.ctc
            .as_ref()
            .map(|ctc| log_softmax(linear(ctc, encoded.states.clone()), 2))
    }

    /// Puts the encoded utterances into a fresh decoder state (every layer's cache).
    pub fn prefill(&self, encoded: &EncoderOutput<B>) -> Result<DecoderState<B>> {
        self.decoder
            .prefill(self.decoder_input(encoded), &encoded.lengths)
    }

    /// One token per row `[rows]` -> log-probabilities `[rows, vocab]`.
    pub fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: &mut DecoderState<B>,
    ) -> Result<Tensor<B, 2>> {
        if tokens.dims()[0] != state.rows() {
            return Err(ModelError::Input(format!(
                "{} tokens for a decoder state of {} rows (reorder the state first)",
                tokens.dims()[0],
                state.rows()
            )));
        }
        self.decoder.step(tokens, state)
    }

    /// How far incremental decoding strays from teacher forcing: the largest absolute difference
    /// between the log-probabilities of [`Self::step`] (over the compressed caches) and of
    /// [`Self::forward`] (the parallel, stride-aware mask) over every real position of `tokens`
    /// (one row per utterance, BOS first, ragged). Exact decoding gives float noise (~1e-6).
    pub fn incremental_mismatch(
        &self,
        features: Tensor<B, 3>,
        frames: &[usize],
        tokens: &[Vec<i64>],
    ) -> Result<f32> {
        let device = features.device();
        let lengths: Vec<usize> = tokens.iter().map(Vec::len).collect();
        let width = lengths.iter().copied().max().unwrap_or(0);
        // Positions past a row's length are neither compared nor seen by its real ones.
        let at = |row: &Vec<i64>, i: usize| row.get(i).or(row.last()).copied().unwrap_or(0);
        let padded: Vec<i64> = tokens
            .iter()
            .flat_map(|row| (0..width).map(move |i| at(row, i)))
            .collect();
        let teacher = log_softmax(
            self.forward(
                features.clone(),
                frames,
                Tensor::<B, 1, Int>::from_ints(padded.as_slice(), &device)
                    .reshape([tokens.len(), width]),
                &lengths,
            )?
            .logits,
            2,
        );
        let vocab = teacher.dims()[2];
        let mut state = self.prefill(&self.encode(features, frames)?)?;
        let mut worst = 0f32;
        for i in 0..width {
            let step: Vec<i64> = tokens.iter().map(|row| at(row, i)).collect();
            let logp = self.step(Tensor::from_ints(step.as_slice(), &device), &mut state)?;
            for b in (0..tokens.len()).filter(|&b| i < lengths[b]) {
                let want = teacher
                    .clone()
                    .slice(s![b..b + 1, i..i + 1, ..])
                    .reshape([1, vocab]);
                let d: f32 = (logp.clone().slice(s![b..b + 1, ..]) - want)
                    .abs()
                    .max()
                    .into_scalar()
                    .elem();
                worst = worst.max(d);
            }
        }
        Ok(worst)
    }

    /// Reorders a decoder state's rows (beam search).
    pub fn reorder(&self, state: &mut DecoderState<B>, rows: Tensor<B, 1, Int>) {
        state.reorder(rows);
    }

    /// Exact bytes of the decoder's KV caches in `state`.
    pub fn cache_bytes(&self, state: &DecoderState<B>) -> usize {
        state.cache_bytes()
    }
}
