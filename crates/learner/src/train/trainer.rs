//! The training loop, run by burn-train (`SupervisedTraining` + `Learner`) as a custom
//! learning strategy: burn-train provides the dashboard (TUI in a terminal, plain lines
//! otherwise), the metrics and their machine-readable logs in the run directory; the loop
//! adds what fairseq recipes need: updates of `update_freq` batches normalised by their
//! target tokens, global-norm clipping, the inverse-sqrt schedule, checkpoints every N updates
//! or epoch with the data position (kill -9 safe, `--resume` continues with the same data
//! order and learning rate), the N best by validation accuracy, and a stop on NaN loss.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use burn::data::dataloader::{DataLoader, DataLoaderIterator, Progress};
use burn::module::AutodiffModule;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{GradientsAccumulator, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn::train::metric::{AccuracyMetric, LearningRateMetric};
use burn::train::SequenceOutput;
use burn::train::{
    EventProcessorTraining, Interrupter, Learner, LearnerEvent, LearningComponentsMarker,
    SupervisedLearningStrategy, SupervisedTraining, SupervisedTrainingEventProcessor, TrainLoader,
    TrainingComponents, TrainingItem, TrainingStrategy, ValidLoader,
};
use serde::Serialize;

use data::batcher::mix;

use super::adam::FusedAdam;
use super::batch::{BatchSource, TrainBatch};
use super::bits_loss::BitsLoss;
use super::clip::clip_global_norm;
use super::listening::{greedy_ctc, swap_audio, Validation};
use super::renderer::ValidLabel;
use super::schedule::InverseSqrt;
use super::state::{update_best, CheckpointDir, Kept, RunState};
use super::trainee::Trainee;
use crate::config::ExperimentConfig;
use crate::error::{LearnerError, Result};
use crate::precision::{LossScaler, Precision};

type Optim<B> = OptimizerAdaptor<FusedAdam, Trainee<B>, B>;
type Components<B> = LearningComponentsMarker<B, f64, Trainee<B>, Optim<B>>;

/// What a finished (or stopped) run reports.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub updates: usize,
    pub epochs_started: u64,
    pub wall_s: f64,
    pub last_checkpoint: Option<PathBuf>,
    pub best: Vec<Kept>,
    pub stopped_because: String,
    /// Updates and real feature frames per second of update time (validation excluded).
    pub updates_per_s: f64,
    pub frames_per_s: f64,
    /// Peak resident memory of the process, bytes (Linux).
    pub peak_memory_bytes: Option<u64>,
}

/// Batches of one epoch as a burn [`DataLoader`] (what `SupervisedTraining` is built from).
pub struct EpochLoader<B: Backend> {
    source: Arc<BatchSource>,
    epoch: u64,
    device: B::Device,
}

struct EpochIter<'a, B: Backend> {
    loader: &'a EpochLoader<B>,
    batches: Vec<Vec<usize>>,
    next: usize,
}

impl<B: Backend> Iterator for EpochIter<'_, B> {
    type Item = TrainBatch<B>;
    fn next(&mut self) -> Option<TrainBatch<B>> {
        let indices = self.batches.get(self.next)?;
        self.next += 1;
        self.loader
            .source
            .load(indices, self.loader.epoch, &self.loader.device)
            .ok()
    }
}

impl<B: Backend> DataLoaderIterator<TrainBatch<B>> for EpochIter<'_, B> {
    fn progress(&self) -> Progress {
        Progress::new(self.next, self.batches.len())
    }
}

impl<B: Backend> DataLoader<B, TrainBatch<B>> for EpochLoader<B> {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<TrainBatch<B>> + 'a> {
        Box::new(EpochIter {
            loader: self,
            batches: self.source.epoch(self.epoch),
            next: 0,
        })
    }

    fn num_items(&self) -> usize {
        self.source.dataset.len()
    }

    fn to_device(&self, device: &B::Device) -> Arc<dyn DataLoader<B, TrainBatch<B>>> {
        Arc::new(Self {
            source: self.source.clone(),
            epoch: self.epoch,
            device: device.clone(),
        })
    }

    fn slice(&self, _start: usize, _end: usize) -> Arc<dyn DataLoader<B, TrainBatch<B>>> {
        self.to_device(&self.device)
    }
}

/// One part of a batch, forward and backward done: summed losses (nats), gradients, metrics.
struct Shard<B: AutodiffBackend> {
    loss: f64,
    nll: f64,
    dec_loss: f64,
    ctc: Option<f64>,
    frames: usize,
    grads: GradientsParams,
    item: SequenceOutput<B>,
}

/// The run: config, directory, data and what the loop needs across calls.
pub struct Run<B: AutodiffBackend> {
    pub config: ExperimentConfig,
    pub dir: PathBuf,
    pub train: Arc<BatchSource>,
    pub valid: Arc<BatchSource>,
    pub device: B::Device,
    /// Data parallelism: every batch is split over these devices (the first is `device`, which
    /// holds the model and the optimizer); one device trains as before.
    pub devices: Vec<B::Device>,
    pub resume: Option<RunState>,
    /// One single-thread pool per device, each part's work runs in (see [`Run::shards`]); made
    /// on first use.
    part_pools: OnceLock<Vec<rayon::ThreadPool>>,
    outcome: Mutex<Option<Result<TrainReport>>>,
    valid_label: ValidLabel,
}

impl<B: AutodiffBackend> Run<B> {
    pub fn new(
        config: ExperimentConfig,
        dir: PathBuf,
        train: BatchSource,
        valid: BatchSource,
        device: B::Device,
        resume: Option<RunState>,
    ) -> Self {
        Self {
            config,
            dir,
            train: Arc::new(train),
            valid: Arc::new(valid),
            devices: vec![device.clone()],
            device,
            resume,
            part_pools: OnceLock::new(),
            outcome: Mutex::new(None),
            valid_label: ValidLabel::default(),
        }
    }

    fn optimizer(&self) -> Optim<B> {
        let t = &self.config.train;
        FusedAdam::new(
            t.adam_betas.0 as f32,
            t.adam_betas.1 as f32,
            t.adam_eps as f32,
            t.weight_decay as f32,
        )
        .init()
    }

    /// Trains `model`; returns the report and the trained model (the last state reached).
    pub fn launch(self, model: Trainee<B>) -> Result<(TrainReport, Trainee<B::InnerBackend>)> {
        let train_loader: TrainLoader<Components<B>> = Arc::new(EpochLoader::<B> {
            source: self.train.clone(),
            epoch: 1,
            device: self.device.clone(),
        });
        let valid_loader: ValidLoader<Components<B>> = Arc::new(EpochLoader::<B::InnerBackend> {
            source: self.valid.clone(),
            epoch: 0,
            device: self.device.clone(),
        });
        let pad = self.train.tokenizer.pad_id() as usize;
        let dir = self.dir.clone();
        let optimizer = self.optimizer();
        let run = Arc::new(self);
        let training = SupervisedTraining::new(&dir, train_loader, valid_loader)
            .metric_train_numeric(BitsLoss::default())
            .metric_valid_numeric(BitsLoss::default())
            .metric_train_numeric(AccuracyMetric::new().with_pad_token(pad))
            .metric_valid_numeric(AccuracyMetric::new().with_pad_token(pad))
            .metric_train_numeric(LearningRateMetric::new())
            .with_application_logger(None)
            .with_training_strategy(TrainingStrategy::Custom(run.clone()));
        // burn-train's TUI in a terminal, plain lines otherwise (logs, CI).
        let training = if std::io::IsTerminal::is_terminal(&std::io::stdout()) {
            training
        } else {
            training.renderer(super::renderer::PlainRenderer::new(
                std::time::Duration::from_secs(10),
                run.valid_label.clone(),
            ))
        };
        let result = training.launch(Learner::new(model, optimizer, run.config.train.lr));
        let outcome = run.outcome.lock().expect("not poisoned").take();
        let report = outcome.unwrap_or_else(|| {
            Err(LearnerError::Training(
                "training ended without a report".into(),
            ))
        })?;
        Ok((report, result.model))
    }

    fn schedule(&self) -> InverseSqrt {
        let t = &self.config.train;
        InverseSqrt {
            lr: t.lr,
            warmup_updates: t.warmup_updates,
            warmup_init_lr: t.warmup_init_lr,
        }
    }

    /// Validation: the objective and token accuracy (reported to burn-train too), the CTC loss,
    /// the audio gain and the greedy CTC WER (see [`listening`](super::listening)).
    fn validate(
        &self,
        model: &Trainee<B::InnerBackend>,
        epoch: u64,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
    ) -> Result<Validation> {
        let scalar = |t: Tensor<B::InnerBackend, 1>| t.into_scalar().elem::<f64>();
        let bits = |sum: f64, n: usize| sum / n.max(1) as f64 / std::f64::consts::LN_2;
        let batches = self.valid.epoch(0);
        let (mut loss, mut correct, mut ctc, mut tokens) = (0.0f64, 0.0f64, None, 0usize);
        // Decoder NLL on real and on swapped audio, over the batches that can swap.
        let (mut real_nll, mut swapped_nll, mut swapped_tokens) = (0.0f64, 0.0f64, 0usize);
        let (mut hyps, mut refs) = (Vec::new(), Vec::new());
        let blank = self.valid.tokenizer.pad_id();
        let label = self.valid_label.lock().expect("not poisoned").clone();
        let mut result = None;
        for (i, indices) in batches.iter().enumerate() {
            // On the CPU on a pool thread with the other kept awake: a forward pass is many
            // small parallel ops, each otherwise a wake-up of the pool and a sleep of this thread.
            let (batch, objective, swapped) =
                mtla::pool::awake_on::<B::InnerBackend, _>(|| -> Result<_> {
                    let batch = self
                        .valid
                        .load::<B::InnerBackend>(indices, 0, &self.device)?;
                    let objective = model.objective(&batch)?;
                    let swapped = swap_audio(&batch)
                        .map(|swapped| model.objective(&swapped))
                        .transpose()?;
                    Ok((batch, objective, swapped))
                })?;
            loss += scalar(objective.loss.clone());
            correct += objective.sums.correct.clone().into_scalar().elem::<f64>();
            if let Some(c) = objective.ctc.clone() {
                *ctc.get_or_insert(0.0) += scalar(c);
            }
            tokens += batch.ntokens;
            if let Some(swapped) = swapped {
                real_nll += scalar(objective.sums.nll.clone());
                swapped_nll += scalar(swapped.sums.nll);
                swapped_tokens += batch.ntokens;
            }
            if let Some(lp) = objective.ctc_log_probs.clone() {
                for ids in greedy_ctc(lp, &objective.encoder_lengths, blank) {
                    hyps.push(self.valid.tokenizer.decode(&ids));
                }
                refs.extend(batch.texts.iter().cloned());
            }
            if i + 1 == batches.len() {
                // The renderer prints the label with the last item: the figures go in first.
                let v = Validation {
                    loss: bits(loss, tokens),
                    accuracy: correct / tokens.max(1) as f64,
                    ctc_loss: ctc.map(|c| bits(c, tokens)),
                    audio_gain: (swapped_tokens > 0)
                        .then(|| bits(swapped_nll - real_nll, swapped_tokens)),
                    ctc_wer: (!refs.is_empty())
                        .then(|| metrics::corpus_wer(&hyps, &refs).ok().map(|w| w.wer))
                        .flatten(),
                };
                *self.valid_label.lock().expect("not poisoned") = format!("{label}{}", v.extras());
                result = Some(v);
            }
            let item = objective.metric_output(&batch);
            processor.process_valid(LearnerEvent::ProcessedItem(TrainingItem::new(
                item,
                Progress::new(i + 1, batches.len()),
                Progress::new(epoch as usize, 0),
                Some(i + 1),
                None,
            )));
        }
        processor.process_valid(LearnerEvent::EndEpoch(epoch as usize));
        result.ok_or_else(|| LearnerError::Training("the validation set has no batch".into()))
    }

    /// Saves the weights (safetensors), the model and optimizer records, then commits the state.
    fn checkpoint(
        &self,
        ckpt: &CheckpointDir,
        model: &Trainee<B>,
        optim: &Optim<B>,
        state: &mut RunState,
        valid: Validation,
    ) -> Result<()> {
        let stem = CheckpointDir::stem(state.updates);
        let file = format!("{stem}.safetensors");
        let inner = model.valid();
        st_model::checkpoint::save(&inner.model, &self.config.model, &ckpt.path(&file))?;
        let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
        for (kind, record) in [
            ("model", Recorded::Model(model.clone().into_record())),
            ("optim", Recorded::Optim(optim.to_record())),
        ] {
            // The recorder appends ".bin"; write under a partial name, then rename.
            let partial = ckpt.path(&format!(".{stem}-{kind}-partial"));
            let done = ckpt.path(&format!("{stem}.{kind}.bin"));
            match record {
                Recorded::Model(r) => recorder.record(r, partial.clone()),
                Recorded::Optim(r) => recorder.record(r, partial.clone()),
            }
            .map_err(|e| LearnerError::io(&done, e))?;
            std::fs::rename(partial.with_extension("bin"), &done)
                .map_err(|e| LearnerError::io(&done, e))?;
        }
        let kept = Kept {
            update: state.updates,
            epoch: state.epoch,
            valid_accuracy: valid.accuracy,
            valid_loss: valid.loss,
            audio_gain: valid.audio_gain,
            ctc_wer: valid.ctc_wer,
            file,
        };
        update_best(
            &mut state.best,
            kept.clone(),
            self.config.train.keep_best.max(1),
        );
        state.last = Some(kept);
        ckpt.commit(state)
    }

    /// Splits the batch's utterances over the devices into contiguous parts and runs each part's
    /// forward and backward on its device in its own thread (the model forked there), the
    /// gradients brought back to the main device. Each part's loss is divided by `divisor`, the
    /// whole update's target tokens (over the loss scale in f16), so the summed gradients are
    /// those of the unsplit batch. Part `k`'s thread draws its CPU dropout masks from
    /// `mix(stream_seed, k)` (a whole batch is part 0), so the masks do not depend on the
    /// threads' timing.
    ///
    /// Each part runs inside its own one-thread rayon pool, so the CPU backend's parallel ops
    /// within a part run on that part's thread. From a plain thread every such op was handed to
    /// the global pool and its caller put to sleep until done: a futex wake-up and sleep per op,
    /// ~11 % of a `small_cpu` update in the kernel, where the parts already keep every core busy.
    fn shards(
        &self,
        model: &Trainee<B>,
        indices: &[usize],
        epoch: u64,
        divisor: f64,
        stream_seed: u64,
    ) -> Result<Vec<Shard<B>>> {
        let parts: Vec<&[usize]> = indices
            .chunks(indices.len().div_ceil(self.devices.len()).max(1))
            .collect();
        if parts.len() == 1 {
            // On the CPU on a pool thread with the other kept awake (with one thread: on the
            // pool's only thread), so that each parallel op is not a wake-up of the pool and a
            // sleep of this thread; its masks drawn as part 0's.
            let shard = mtla::pool::awake_on::<B, _>(|| {
                mtla::dropout::seed(mix(stream_seed, 0));
                self.shard(model, indices, epoch, &self.device, divisor)
            })?;
            return Ok(vec![shard]);
        }
        let pools = self.part_pools.get_or_init(|| {
            (0..self.devices.len())
                .map(|k| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .thread_name(move |_| format!("part-{k}"))
                        .build()
                        .expect("a one-thread pool for a batch part")
                })
                .collect()
        });
        std::thread::scope(|scope| {
            let workers: Vec<_> = parts
                .iter()
                .zip(&self.devices)
                .enumerate()
                .map(|(k, (part, device))| {
                    let pool = &pools[k];
                    scope.spawn(move || {
                        pool.install(|| {
                            mtla::dropout::seed(mix(stream_seed, k as u64));
                            if k == 0 {
                                return self.shard(model, part, epoch, device, divisor);
                            }
                            let replica = model.clone().fork(device);
                            let mut shard = self.shard(&replica, part, epoch, device, divisor)?;
                            shard.grads = shard.grads.to_device(&self.device, &replica);
                            Ok(shard)
                        })
                    })
                })
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().expect("a data-parallel worker panicked"))
                .collect()
        })
    }

    /// Forward and backward of the utterances `indices` on `device`, the loss divided by `divisor`.
    fn shard(
        &self,
        model: &Trainee<B>,
        indices: &[usize],
        epoch: u64,
        device: &B::Device,
        divisor: f64,
    ) -> Result<Shard<B>> {
        let batch = self.train.load::<B>(indices, epoch, device)?;
        let objective = model.objective(&batch)?;
        let scalar = |t: Tensor<B, 1>| t.into_scalar().elem::<f64>();
        let loss = scalar(objective.loss.clone());
        let nll = scalar(objective.sums.nll.clone());
        let dec_loss = scalar(objective.sums.loss.clone());
        let ctc = objective.ctc.clone().map(scalar);
        let grads = objective.loss.clone().div_scalar(divisor).backward();
        Ok(Shard {
            loss,
            nll,
            dec_loss,
            ctc,
            frames: batch.frames.iter().sum(),
            grads: GradientsParams::from_grads(grads, model),
            item: objective.metric_output(&batch),
        })
    }

    /// The loop. `slot` holds the model throughout (the caller gets back the model reached even
    /// when an error stops training); returns the report or the error that stopped it.
    fn train_loop(
        &self,
        slot: &mut Option<Trainee<B>>,
        mut optim: Optim<B>,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
        interrupter: &Interrupter,
    ) -> Result<TrainReport> {
        let t = self.config.train.clone();
        let model = |slot: &Option<Trainee<B>>| {
            slot.clone()
                .expect("the slot is refilled after every update")
        };
        let ckpt = CheckpointDir::new(&self.dir)?;
        let mut state = self.resume.clone().unwrap_or(RunState {
            epoch: 1,
            ..RunState::default()
        });
        // f16 (the trainee's forward precision) scales its loss; a run resumed in another
        // precision drops or starts the scaler.
        let precision = slot.as_ref().map_or(Precision::F32, |m| m.precision);
        state.loss_scaler = match precision {
            Precision::F16 => state
                .loss_scaler
                .or_else(|| Some(LossScaler::new(self.devices.len(), t.update_freq))),
            _ => None,
        };
        if let Some(last) = self.resume.as_ref().and_then(|s| s.last.clone()) {
            let recorder = BinFileRecorder::<FullPrecisionSettings>::new();
            let stem = last.file.trim_end_matches(".safetensors").to_string();
            let fail = |e| LearnerError::io(ckpt.path(&stem), format!("cannot resume: {e}"));
            let m = recorder
                .load(ckpt.path(&format!("{stem}.model.bin")), &self.device)
                .map_err(fail)?;
            let o = recorder
                .load(ckpt.path(&format!("{stem}.optim.bin")), &self.device)
                .map_err(fail)?;
            *slot = Some(model(slot).load_record(m));
            optim = optim.load_record(o);
        }
        // One JSON line per update and per validation; losses in bits per token (fairseq's base 2).
        let log_path = self.dir.join("train_log.jsonl");
        // Lines logged after the checkpoint a resumed run starts from belong to a discarded past.
        truncate_log(&log_path, state.updates)?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| LearnerError::io(&log_path, e))?;
        let schedule = self.schedule();
        let started = Instant::now();
        let elapsed0 = state.elapsed_s;
        let elapsed = || elapsed0 + started.elapsed().as_secs_f64();
        // Why training must stop now, if it must (a resumed run may already be there).
        let limit = |state: &RunState| {
            if t.max_updates > 0 && state.updates >= t.max_updates {
                Some(format!("reached max_updates = {}", t.max_updates))
            } else if t.time_limit_minutes > 0.0 && elapsed() >= t.time_limit_minutes * 60.0 {
                Some(format!(
                    "reached time_limit_minutes = {}",
                    t.time_limit_minutes
                ))
            } else {
                None
            }
        };
        let batches_per_epoch = self.train.epoch(1).len().max(1);
        let total_epochs = if t.max_epochs > 0 {
            t.max_epochs
        } else {
            (t.max_updates * t.update_freq)
                .div_ceil(batches_per_epoch)
                .max(1)
        };
        let stop = 'epochs: loop {
            if t.max_epochs > 0 && state.epoch as usize > t.max_epochs {
                break format!("reached max_epochs = {}", t.max_epochs);
            }
            if let Some(why) = limit(&state) {
                break why;
            }
            let batches = self.train.epoch(state.epoch);
            let mut accumulator = GradientsAccumulator::<Trainee<B>>::new();
            while state.next_batch < batches.len() {
                // One update: up to update_freq batches, normalised by all their target tokens.
                let (first, end) = (
                    state.next_batch,
                    (state.next_batch + t.update_freq).min(batches.len()),
                );
                let group_tokens = self
                    .train
                    .target_tokens(&batches[first..end].concat())?
                    .max(1) as f64;
                let (mut loss_sum, mut nll_sum, mut dec_sum) = (0.0f64, 0.0f64, 0.0f64);
                let mut ctc_sum: Option<f64> = None;
                let mut items = Vec::with_capacity(end - first);
                let current = model(slot);
                let (update_started, mut frames) = (Instant::now(), 0usize);
                // Dropout draws from (seed, update) alone, as fairseq reseeds at every update:
                // a run resumed from any checkpoint repeats the uninterrupted run bit for bit.
                let update_seed = mix(t.seed, state.updates as u64 + 1);
                for device in &self.devices {
                    B::seed(device, update_seed);
                }
                let loss_scale = state.loss_scaler.map_or(1.0, |s| s.scale);
                for (i, indices) in batches.iter().enumerate().take(end).skip(first) {
                    let divisor = group_tokens / loss_scale;
                    let stream_seed = mix(update_seed, i as u64);
                    for shard in
                        self.shards(&current, indices, state.epoch, divisor, stream_seed)?
                    {
                        if !shard.loss.is_finite() {
                            let last = state.last.as_ref().map_or("none".to_string(), |k| {
                                ckpt.path(&k.file).display().to_string()
                            });
                            return Err(LearnerError::Training(format!(
                                "non-finite loss ({}) at update {} (epoch {}, batch {} of {}); training stopped, \
                                 the last good checkpoint is {last}",
                                shard.loss,
                                state.updates + 1,
                                state.epoch,
                                i + 1,
                                batches.len()
                            )));
                        }
                        loss_sum += shard.loss;
                        nll_sum += shard.nll;
                        dec_sum += shard.dec_loss;
                        if let Some(c) = shard.ctc {
                            *ctc_sum.get_or_insert(0.0) += c;
                        }
                        frames += shard.frames;
                        accumulator.accumulate(&current, shard.grads);
                        items.push(shard.item);
                    }
                }
                let mut grads = accumulator.grads();
                let norm = clip_global_norm::<B, _>(&current, &mut grads, t.clip_norm, loss_scale);
                if let Some(scaler) = state.loss_scaler.as_mut() {
                    let overflow = !norm.is_finite();
                    scaler.record(overflow).map_err(LearnerError::Training)?;
                    if overflow {
                        // As fairseq: the overflowing update is skipped, the scale halved.
                        let line = serde_json::json!({
                            "update": state.updates + 1, "skipped": "f16 gradient overflow",
                            "loss_scale": scaler.scale, "wall_s": elapsed(),
                        });
                        writeln!(log, "{line}").map_err(|e| LearnerError::io(&log_path, e))?;
                        state.next_batch = end;
                        continue;
                    }
                }
                let lr = schedule.lr(state.updates + 1);
                *slot = Some(optim.step(lr, current, grads));
                state.updates += 1;
                state.train_s += update_started.elapsed().as_secs_f64();
                state.train_frames += frames as u64;
                state.next_batch = end;
                for (k, item) in items.into_iter().enumerate() {
                    processor.process_train(LearnerEvent::ProcessedItem(TrainingItem::new(
                        item,
                        Progress::new(first + k + 1, batches.len()),
                        Progress::new(state.epoch as usize, total_epochs),
                        Some(state.updates),
                        Some(lr),
                    )));
                }
                // The objective, then its parts: the decoder's label-smoothed loss and NLL, CTC.
                let bits = |sum: f64| sum / group_tokens / std::f64::consts::LN_2;
                let mut line = serde_json::json!({
                    "update": state.updates, "epoch": state.epoch, "loss": bits(loss_sum),
                    "dec_loss": bits(dec_sum), "nll": bits(nll_sum), "ctc_loss": ctc_sum.map(bits),
                    "lr": lr, "gnorm": norm, "ntokens": group_tokens, "frames": frames, "wall_s": elapsed(),
                });
                if let Some(scaler) = state.loss_scaler {
                    line["loss_scale"] = scaler.scale.into();
                }
                writeln!(log, "{line}").map_err(|e| LearnerError::io(&log_path, e))?;
                let at_interval =
                    t.validate_every_updates > 0 && state.updates % t.validate_every_updates == 0;
                let must_stop = limit(&state)
                    .or_else(|| interrupter.should_stop().then(|| "interrupted".to_string()));
                if at_interval || must_stop.is_some() {
                    self.validate_and_save(
                        &ckpt,
                        &model(slot),
                        &optim,
                        &mut state,
                        processor,
                        &mut log,
                        elapsed(),
                    )?;
                }
                if let Some(why) = must_stop {
                    break 'epochs why;
                }
            }
            processor.process_train(LearnerEvent::EndEpoch(state.epoch as usize));
            state.epoch += 1;
            state.next_batch = 0;
            if state
                .last
                .as_ref()
                .is_some_and(|k| k.update == state.updates)
            {
                // Already validated at this update: only record the new data position.
                ckpt.commit(&state)?;
            } else {
                self.validate_and_save(
                    &ckpt,
                    &model(slot),
                    &optim,
                    &mut state,
                    processor,
                    &mut log,
                    elapsed(),
                )?;
            }
        };
        state.finished = true;
        state.elapsed_s = elapsed();
        ckpt.commit(&state)?;
        let (updates_per_s, frames_per_s) = state.throughput();
        Ok(TrainReport {
            updates_per_s,
            frames_per_s,
            peak_memory_bytes: crate::eval::peak_process_bytes(),
            updates: state.updates,
            epochs_started: state.epoch,
            wall_s: state.elapsed_s,
            last_checkpoint: state.last.as_ref().map(|k| ckpt.path(&k.file)),
            best: state.best.clone(),
            stopped_because: stop,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn validate_and_save(
        &self,
        ckpt: &CheckpointDir,
        model: &Trainee<B>,
        optim: &Optim<B>,
        state: &mut RunState,
        processor: &mut SupervisedTrainingEventProcessor<Components<B>>,
        log: &mut std::fs::File,
        elapsed: f64,
    ) -> Result<()> {
        // At an epoch's end the state already points at the next epoch's first batch.
        let at = if state.next_batch == 0 {
            format!(
                "update {} (end of epoch {})",
                state.updates,
                state.epoch - 1
            )
        } else {
            format!("update {} (epoch {})", state.updates, state.epoch)
        };
        let (updates_per_s, frames_per_s) = state.throughput();
        let peak = crate::eval::peak_process_bytes();
        *self.valid_label.lock().expect("not poisoned") = format!(
            "{at} | {updates_per_s:.2} updates/s, {frames_per_s:.0} frames/s, peak memory {}",
            peak.map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0))
        );
        let valid = self.validate(&model.valid(), state.epoch, processor)?;
        state.elapsed_s = elapsed;
        self.checkpoint(ckpt, model, optim, state, valid)?;
        let line = serde_json::json!({
            "update": state.updates, "epoch": state.epoch, "valid_loss": valid.loss,
            "valid_accuracy": valid.accuracy, "valid_ctc_loss": valid.ctc_loss,
            "audio_gain": valid.audio_gain, "ctc_wer": valid.ctc_wer, "wall_s": elapsed,
            "updates_per_s": updates_per_s, "frames_per_s": frames_per_s, "peak_memory_bytes": peak,
        });
        writeln!(log, "{line}").map_err(|e| LearnerError::io(self.dir.join("train_log.jsonl"), e))
    }
}

/// Keeps the lines of `train_log.jsonl` up to `updates` (all of them when the file is new).
fn truncate_log(path: &std::path::Path, updates: usize) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v["update"].as_u64())
                .is_none_or(|u| u as usize <= updates)
        })
        .flat_map(|line| [line, "\n"])
        .collect();
    if kept.len() != text.len() {
        fbank::npy::write_atomic(path, kept.as_bytes()).map_err(|e| LearnerError::io(path, e))?;
    }
    Ok(())
}

enum Recorded<M, O> {
    Model(M),
    Optim(O),
}

impl<B: AutodiffBackend> SupervisedLearningStrategy<Components<B>> for Run<B> {
    fn fit(
        &self,
        components: TrainingComponents<Components<B>>,
        learner: Learner<Components<B>>,
        _train: TrainLoader<Components<B>>,
        _valid: ValidLoader<Components<B>>,
        _starting_epoch: usize,
    ) -> (Trainee<B>, SupervisedTrainingEventProcessor<Components<B>>) {
        let mut processor = components.event_processor;
        let mut slot = Some(learner.model());
        let outcome = self.train_loop(
            &mut slot,
            self.optimizer(),
            &mut processor,
            &components.interrupter,
        );
        *self.outcome.lock().expect("not poisoned") = Some(outcome);
        (
            slot.expect("the loop leaves the model in its slot"),
            processor,
        )
    }
}
