//! The model as burn-train sees it: a [`SpeechModel`] with its training objective,
//! `(1 - λ) · label-smoothed cross entropy + λ · CTC` with `λ = ctc_weight` when the encoder has a
//! CTC head (the decoder loss alone otherwise).

use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::FloatDType;
use burn::train::{InferenceStep, SequenceOutput, TrainOutput, TrainStep};
use st_model::SpeechModel;

use super::batch::TrainBatch;
use super::ctc::ctc_loss;
use super::loss::{label_smoothed_nll, LossSums};
use crate::error::Result;
use crate::precision::{cast_module, Precision};

#[derive(Module, Debug)]
pub struct Trainee<B: Backend> {
    pub model: SpeechModel<B>,
    pub label_smoothing: f64,
    pub ctc_weight: f64,
    pub pad: usize,
    pub eos: usize,
    /// The forward pass's precision (`--precision`): the parameters stay f32, a cast copy
    /// computes, the loss is summed in f32.
    #[module(skip)]
    pub precision: Precision,
}

/// A batch's objective and what the metrics need.
pub struct Objective<B: Backend> {
    /// Summed objective over the batch's target tokens, `[1]` (to be normalised by the caller).
    pub loss: Tensor<B, 1>,
    /// The decoder's label-smoothed loss, NLL and correct tokens (unweighted sums).
    pub sums: LossSums<B>,
    /// Summed CTC loss of the encoder (unweighted), when the model has a CTC head.
    pub ctc: Option<Tensor<B, 1>>,
    pub logits: Tensor<B, 3>,
    /// CTC log-probabilities `[batch, frames', vocab]` and their lengths, for greedy decoding.
    pub ctc_log_probs: Option<Tensor<B, 3>>,
    pub encoder_lengths: Vec<usize>,
}

impl<B: Backend> Objective<B> {
    /// What burn-train's metrics see: the loss in bits per target token (fairseq's base 2, the
    /// one unit of every log and table), the logits and the targets.
    pub fn metric_output(self, batch: &TrainBatch<B>) -> SequenceOutput<B> {
        let bits = self
            .loss
            .div_scalar(batch.ntokens as f64 * std::f64::consts::LN_2);
        SequenceOutput::new(bits, self.logits, None, batch.targets.clone())
    }
}

impl<B: Backend> Trainee<B> {
    /// Teacher-forced objective of `batch` (sums, not means).
    pub fn objective(&self, batch: &TrainBatch<B>) -> Result<Objective<B>> {
        let model = cast_module(self.model.clone(), self.precision);
        let out = model.forward(
            batch.features.clone().cast(self.precision.dtype()),
            &batch.frames,
            batch.inputs.clone(),
            &batch.lengths,
        )?;
        let sums = label_smoothed_nll(
            out.logits.clone(),
            batch.targets.clone(),
            self.pad as u32,
            self.label_smoothing,
        );
        let ctc = out
            .ctc_log_probs
            .clone()
            .filter(|_| self.ctc_weight > 0.0)
            .map(|lp| self.ctc(lp, batch, &out.encoder_lengths));
        let loss = match &ctc {
            Some(ctc) => sums
                .loss
                .clone()
                .mul_scalar(1.0 - self.ctc_weight)
                .add(ctc.clone().mul_scalar(self.ctc_weight)),
            None => sums.loss.clone(),
        };
        Ok(Objective {
            loss,
            sums,
            ctc,
            logits: out.logits,
            ctc_log_probs: out.ctc_log_probs,
            encoder_lengths: out.encoder_lengths,
        })
    }

    /// Summed CTC loss of the target tokens (EOS excluded) against the encoder output, in f32
    /// whatever the model's precision; the blank is PAD, which never occurs in targets.
    fn ctc(
        &self,
        log_probs: Tensor<B, 3>,
        batch: &TrainBatch<B>,
        encoder_lengths: &[usize],
    ) -> Tensor<B, 1> {
        // Targets without EOS; padding positions hold EOS (not blank), beyond each length.
        let targets = batch.targets.clone().mask_fill(
            batch.targets.clone().equal_elem(self.pad as i64),
            self.eos as i64,
        );
        let lengths: Vec<usize> = batch.lengths.iter().map(|&n| n - 1).collect();
        ctc_loss(
            log_probs.cast(FloatDType::F32),
            targets,
            encoder_lengths,
            &lengths,
            self.pad,
        )
        .sum()
    }

    /// burn-train's view of one batch: mean loss per target token (nats, to differentiate),
    /// and the metrics' output.
    pub fn sequence_output(
        &self,
        batch: &TrainBatch<B>,
    ) -> Result<(Tensor<B, 1>, SequenceOutput<B>)> {
        let objective = self.objective(batch)?;
        let mean = objective.loss.clone().div_scalar(batch.ntokens as f64);
        Ok((mean, objective.metric_output(batch)))
    }
}

impl<B: AutodiffBackend> TrainStep for Trainee<B> {
    type Input = TrainBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: TrainBatch<B>) -> TrainOutput<SequenceOutput<B>> {
        let (loss, output) = self
            .sequence_output(&batch)
            .expect("batches come from the same dataset as the model");
        TrainOutput::new(self, loss.backward(), output)
    }
}

impl<B: Backend> InferenceStep for Trainee<B> {
    type Input = TrainBatch<B>;
    type Output = SequenceOutput<B>;

    fn step(&self, batch: TrainBatch<B>) -> SequenceOutput<B> {
        self.sequence_output(&batch)
            .expect("batches come from the same dataset as the model")
            .1
    }
}
