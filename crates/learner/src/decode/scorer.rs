//! What the beam search asks of a model: log-probabilities of the next token for every row of
//! partial hypotheses, and row reordering. Two implementations: over the incremental caches
//! (the fast path) and by re-running the full teacher-forced forward (the check).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use st_model::{DecoderState, EncoderOutput, Result, SpeechModel};

/// Next-token scoring for the rows of a beam search.
pub trait Scorer<B: Backend> {
    /// Log-probabilities `[rows, vocab]` of the next token; `history[r]` holds row `r`'s
    /// tokens so far (BOS first), its last element is the token to feed.
    fn step(&mut self, history: &[Vec<u32>]) -> Result<Tensor<B, 2>>;
    /// Row `i` becomes old row `rows[i]`.
    fn reorder(&mut self, rows: &[usize]);
    /// Bytes of the decoder KV cache held now.
    fn cache_bytes(&self) -> usize;
}

fn index_tensor<B: Backend>(rows: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let v: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
    Tensor::from_ints(v.as_slice(), device)
}

/// Incremental decoding over each layer's (compressed) KV cache.
pub struct CachedScorer<'a, B: Backend> {
    model: &'a SpeechModel<B>,
    state: DecoderState<B>,
    device: B::Device,
}

impl<'a, B: Backend> CachedScorer<'a, B> {
    /// Prefills the caches with the encoded utterances (one row each); `reserve` tokens of
    /// room are allocated up front so decoding never reallocates.
    pub fn new(
        model: &'a SpeechModel<B>,
        encoded: &EncoderOutput<B>,
        reserve: usize,
    ) -> Result<Self> {
        let mut state = model.prefill(encoded)?;
        state.reserve(reserve);
        Ok(Self {
            model,
            state,
            device: encoded.states.device(),
        })
    }
}

impl<B: Backend> Scorer<B> for CachedScorer<'_, B> {
    fn step(&mut self, history: &[Vec<u32>]) -> Result<Tensor<B, 2>> {
        let last: Vec<i64> = history
            .iter()
            .map(|h| *h.last().expect("BOS first") as i64)
            .collect();
        let tokens = Tensor::<B, 1, Int>::from_ints(last.as_slice(), &self.device);
        self.model.step(tokens, &mut self.state)
    }

    fn reorder(&mut self, rows: &[usize]) {
        self.state.reorder(index_tensor::<B>(rows, &self.device));
    }

    fn cache_bytes(&self) -> usize {
        self.state.cache_bytes()
    }
}

/// Several models' scorers decoding together, as fairseq's `EnsembleModel`: the next-token
/// distribution is the mean of theirs, `log (1/M) Σ_m p_m(y | history)`; one member is that
/// member exactly.
pub struct EnsembleScorer<S> {
    members: Vec<S>,
}

impl<S> EnsembleScorer<S> {
    /// # Panics
    /// If `members` is empty.
    pub fn new(members: Vec<S>) -> Self {
        assert!(!members.is_empty(), "an ensemble needs a member");
        Self { members }
    }
}

impl<B: Backend, S: Scorer<B>> Scorer<B> for EnsembleScorer<S> {
    fn step(&mut self, history: &[Vec<u32>]) -> Result<Tensor<B, 2>> {
        let mut log_probs = self
            .members
            .iter_mut()
            .map(|m| m.step(history))
            .collect::<Result<Vec<_>>>()?;
        if log_probs.len() == 1 {
            return Ok(log_probs.pop().expect("one member"));
        }
        let m = log_probs.len();
        let stacked = Tensor::stack::<3>(log_probs, 0);
        let max = stacked.clone().max_dim(0);
        let log_sum_exp = (stacked - max.clone()).exp().sum_dim(0).log() + max;
        let [_, rows, vocab] = log_sum_exp.dims();
        Ok(log_sum_exp.reshape([rows, vocab]) - (m as f64).ln())
    }

    fn reorder(&mut self, rows: &[usize]) {
        self.members.iter_mut().for_each(|m| m.reorder(rows));
    }

    fn cache_bytes(&self) -> usize {
        self.members.iter().map(|m| m.cache_bytes()).sum()
    }
}

/// Re-runs the full teacher-forced decoder on every row's whole history at each step: no
/// cache, quadratic cost; the reference the cached path must agree with.
pub struct RecomputeScorer<'a, B: Backend> {
    model: &'a SpeechModel<B>,
    encoded: EncoderOutput<B>,
}

impl<'a, B: Backend> RecomputeScorer<'a, B> {
    pub fn new(model: &'a SpeechModel<B>, encoded: &EncoderOutput<B>) -> Self {
        Self {
            model,
            encoded: encoded.clone(),
        }
    }
}

impl<B: Backend> Scorer<B> for RecomputeScorer<'_, B> {
    fn step(&mut self, history: &[Vec<u32>]) -> Result<Tensor<B, 2>> {
        let device = self.encoded.states.device();
        let (rows, t) = (history.len(), history[0].len());
        let flat: Vec<i64> = history
            .iter()
            .flat_map(|h| h.iter().map(|&x| x as i64))
            .collect();
        let tokens = Tensor::<B, 1, Int>::from_ints(flat.as_slice(), &device).reshape([rows, t]);
        let decoder_input = match &self.model.projector {
            Some(p) => p.forward(self.encoded.states.clone()),
            None => self.encoded.states.clone(),
        };
        let logits = self.model.decoder.forward(
            tokens,
            decoder_input,
            &self.encoded.lengths,
            &vec![t; rows],
        )?;
        let vocab = logits.dims()[2];
        Ok(log_softmax(
            logits.slice(s![.., t - 1..t, ..]).reshape([rows, vocab]),
            1,
        ))
    }

    fn reorder(&mut self, rows: &[usize]) {
        let device = self.encoded.states.device();
        self.encoded.states = self
            .encoded
            .states
            .clone()
            .select(0, index_tensor::<B>(rows, &device));
        self.encoded.lengths = rows.iter().map(|&r| self.encoded.lengths[r]).collect();
    }

    fn cache_bytes(&self) -> usize {
        0
    }
}
