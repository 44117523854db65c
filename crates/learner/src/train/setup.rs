//! Preparing a run directory: the resolved config, the tokenizer, the datasets, the model
//! (fresh, from `encoder_init`, or resumed), then training.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use st_model::ModelConfig;

use super::batch::BatchSource;
use super::state::CheckpointDir;
use super::trainee::Trainee;
use super::trainer::{Run, TrainReport};
use crate::config::ExperimentConfig;
use crate::error::{LearnerError, Result};
use crate::precision::{check_supported, Precision};
use data::{Dataset, DatasetOptions, Tokenizer, SHOW_ISSUES};

/// What `mtla-st train` was asked to do.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    pub config: ExperimentConfig,
    /// Run directory (config, tokenizer, checkpoints, logs).
    pub out: PathBuf,
    /// Continue from the run directory's last checkpoint.
    pub resume: bool,
    /// Progress bars while extracting features.
    pub progress: bool,
    /// The forward pass's float precision (f16 / bf16 on GPU backends; weights stay f32).
    pub precision: Precision,
}

/// The tokenizer of a run: the config's, the run's own, or trained on the training targets.
/// Whichever it is, the run keeps a copy as `tokenizer.json`, so that evaluation, averaging and
/// `transcribe` find it next to the checkpoints.
pub fn run_tokenizer(config: &ExperimentConfig, run: &Path, train: &Dataset) -> Result<Tokenizer> {
    let own = run.join("tokenizer.json");
    if let Some(path) = &config.data.tokenizer {
        let tokenizer = Tokenizer::load(path)?;
        if !own.exists() {
            tokenizer.save(&own)?;
        }
        return Ok(tokenizer);
    }
    if own.exists() {
        return Ok(Tokenizer::load(&own)?);
    }
    let texts = train.texts(config.data.task.side())?;
    let tokenizer = Tokenizer::train(&texts, config.model.vocab_size)?;
    tokenizer.save(&own)?;
    Ok(tokenizer)
}

/// Opens a manifest with the run's feature options, at the given speed-perturbation factors.
pub fn open_dataset(
    manifest: &Path,
    config: &ExperimentConfig,
    speeds: Vec<f32>,
    progress: bool,
) -> Result<Dataset> {
    let opts = DatasetOptions {
        resample: config.data.resample,
        progress,
        side: Some(config.data.task.side()),
        speeds,
        ..DatasetOptions::default()
    };
    let dataset = Dataset::open(manifest, &config.data.feature_cache, &opts)?;
    if !dataset.issues().is_empty() {
        eprintln!(
            "{}: {}",
            manifest.display(),
            dataset.issues().report(SHOW_ISSUES)
        );
    }
    if dataset.is_empty() {
        return Err(LearnerError::Config(format!(
            "{}: no usable utterance",
            manifest.display()
        )));
    }
    Ok(dataset)
}

/// Trains as `opts` says on `device`; returns the report. On the CPU backend every batch is
/// split into [`cpu_parts`] parts whose forward and backward passes run concurrently.
pub fn train<B: AutodiffBackend>(opts: &TrainOptions, device: B::Device) -> Result<TrainReport> {
    let parts = if mtla::cpu::on_cpu::<B>() {
        cpu_parts()
    } else {
        1
    };
    train_on_devices::<B>(opts, vec![device; parts])
}

/// How many parts a batch is split into on the CPU backend: one per core, at most 4.
///
/// burn-flex runs many small ops (element-wise, layout, autodiff bookkeeping) on one core, so a
/// single forward/backward pass keeps 2 cores busy only in its larger products: on 2 cores a
/// `configs/small_cpu.toml` update took 0.21 s with one part and 0.16 s with 2 or 4 parts, the
/// paper preset 5.2 s and 4.6 s. The update is the same as one part's (each part's loss is
/// normalised by the whole batch's target tokens; the dropout masks differ, deterministically).
/// At most 4: more parts make each part's products smaller and each thread keeps its own
/// allocator arena (peak memory on 2 parts: 180 -> 390 MB, 2.8 -> 3.0 GB).
pub fn cpu_parts() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}

/// Trains as `opts` says, data-parallel over `devices` (the first holds the model and the
/// optimizer; every batch is split over all of them, so the effective batch, the learning-rate
/// schedule and the update are those of one device); returns the report.
pub fn train_on_devices<B: AutodiffBackend>(
    opts: &TrainOptions,
    devices: Vec<B::Device>,
) -> Result<TrainReport> {
    let Some(device) = devices.first().cloned() else {
        return Err(LearnerError::Config("no device to train on".into()));
    };
    for d in &devices {
        check_supported::<B>(d, opts.precision)?;
    }
    let mut config = opts.config.clone();
    let run = &opts.out;
    std::fs::create_dir_all(run).map_err(|e| LearnerError::io(run, e))?;
    let ckpt = CheckpointDir::new(run)?;
    let resume = match (ckpt.load()?, opts.resume) {
        (Some(state), true) => Some(state),
        (None, true) => return Err(LearnerError::Config(format!("--resume: {} has no checkpoint to resume from", run.display()))),
        (Some(_), false) => {
            return Err(LearnerError::Config(format!(
                "{} already holds a run; pass --resume to continue it or choose another --out (nothing was changed)",
                run.display()
            )))
        }
        (None, false) => None,
    };
    let config_path = run.join("config.toml");
    let train_speeds = config.data.train_speeds();
    let train_set = open_dataset(&config.data.train, &config, train_speeds, opts.progress)?;
    let valid_set = open_dataset(&config.data.valid, &config, vec![1.0], opts.progress)?;
    let tokenizer = run_tokenizer(&config, run, &train_set)?;
    if tokenizer.vocab_size() != config.model.vocab_size {
        if config.data.tokenizer.is_some() {
            return Err(LearnerError::Config(format!(
                "model.vocab_size is {} but the tokenizer has {} pieces",
                config.model.vocab_size,
                tokenizer.vocab_size()
            )));
        }
        // A small corpus may not support the requested vocabulary: the model follows the tokenizer.
        eprintln!(
            "note: the training text supports {} pieces, not model.vocab_size = {}; using {}",
            tokenizer.vocab_size(),
            config.model.vocab_size,
            tokenizer.vocab_size()
        );
        config.model = ModelConfig {
            vocab_size: tokenizer.vocab_size(),
            ..config.model
        };
    }
    if resume.is_some() {
        // Compared after the vocabulary adjustment above, which the stored config went through too.
        let stored = ExperimentConfig::load(&config_path)?;
        if stored.model != config.model {
            return Err(LearnerError::Config(format!(
                "--resume: the model in {} differs from the one in the given config",
                config_path.display()
            )));
        }
    }
    fbank::npy::write_atomic(&config_path, config.to_toml().as_bytes())
        .map_err(|e| LearnerError::io(&config_path, e))?;

    B::seed(&device, config.train.seed);
    let tokenizer = std::sync::Arc::new(tokenizer);
    let side = config.data.task.side();
    let train_source = BatchSource {
        dataset: std::sync::Arc::new(train_set),
        tokenizer: tokenizer.clone(),
        side,
        batching: config.data.train_batches(config.train.seed),
        augment: config.data.specaugment.clone(),
    };
    let valid_source = BatchSource {
        dataset: std::sync::Arc::new(valid_set),
        tokenizer: tokenizer.clone(),
        side,
        batching: config.data.eval_batches(config.data.max_frames),
        augment: None,
    };
    let mut model = st_model::checkpoint::init::<B>(&config.model, &device)?;
    if let Some(path) = &config.train.init_from {
        st_model::checkpoint::load_into(&mut model, path, None)?;
    }
    if config.train.freeze_encoder {
        // Kept by resuming and by the optimizer, which skips parameters without a gradient.
        model.encoder = burn::module::Module::no_grad(model.encoder);
    }
    let trainee = Trainee {
        model,
        label_smoothing: config.train.label_smoothing,
        ctc_weight: config.model.ctc_weight,
        pad: tokenizer.pad_id() as usize,
        eos: tokenizer.eos_id() as usize,
        precision: opts.precision,
    };
    let mut run = Run::<B>::new(
        config,
        run.clone(),
        train_source,
        valid_source,
        device,
        resume,
    );
    if opts.progress && devices.len() > 1 {
        eprintln!(
            "data-parallel: every batch is split into {} parts, computed concurrently",
            devices.len()
        );
    }
    run.devices = devices;
    let (report, _) = run.launch(trainee)?;
    Ok(report)
}
