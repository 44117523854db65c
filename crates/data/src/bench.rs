//! Loader throughput: how many utterances (and feature frames) per second `Dataset` turns into
//! padded, augmented, tokenised batches, so it can be compared with a training step's speed.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use fbank::SpecAugment;
use serde::Serialize;

use super::batcher::BatchConfig;
use super::dataset::{Dataset, DatasetOptions, TargetSide};
use super::error::DataError;
use super::tokenizer::Tokenizer;

/// What to measure.
#[derive(Debug, Clone)]
pub struct LoaderBenchOptions {
    pub dataset: DatasetOptions,
    pub batch: BatchConfig,
    /// Passes over the data (each reshuffled).
    pub epochs: u64,
    /// A saved tokenizer; without one, a unigram model of `vocab_size` is trained first.
    pub tokenizer: Option<PathBuf>,
    pub vocab_size: usize,
    pub target: TargetSide,
    /// SpecAugment on every batch, as in training.
    pub augment: bool,
    /// Threads of the loading pool (0: all cores).
    pub threads: usize,
}

/// Measured loader speed.
#[derive(Debug, Clone, Serialize)]
pub struct LoaderBenchReport {
    pub manifest: PathBuf,
    pub utterances: usize,
    pub batches: usize,
    pub threads: usize,
    /// Opening with an empty or partial cache (includes feature extraction when needed).
    pub open_seconds: f64,
    /// Opening again with the cache complete.
    pub reopen_seconds: f64,
    pub tokenizer_seconds: f64,
    /// Loading every batch of every epoch.
    pub load_seconds: f64,
    pub utterances_per_second: f64,
    pub frames_per_second: f64,
    /// Seconds of audio loaded per second of wall time.
    pub audio_seconds_per_second: f64,
    /// Padded frames over real frames (1.0: no padding).
    pub padding: f64,
}

impl fmt::Display for LoaderBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: {} utterances, {} batches per pass, {} thread(s)",
            self.manifest.display(),
            self.utterances,
            self.batches,
            self.threads
        )?;
        writeln!(
            f,
            "open: {:.2} s (cache as found), {:.3} s (cache complete); tokenizer {:.2} s",
            self.open_seconds, self.reopen_seconds, self.tokenizer_seconds
        )?;
        write!(
            f,
            "load: {:.0} utterances/s, {:.0} frames/s ({:.0}x real time), padding {:.2}x, {:.2} s in all",
            self.utterances_per_second,
            self.frames_per_second,
            self.audio_seconds_per_second,
            self.padding,
            self.load_seconds
        )
    }
}

/// Opens `manifest` (filling `cache_dir` if needed), then loads every batch of
/// `opts.epochs` epochs as a training loop would, and reports the throughput.
pub fn bench_loader(
    manifest: &Path,
    cache_dir: &Path,
    opts: &LoaderBenchOptions,
) -> Result<LoaderBenchReport, DataError> {
    let t = Instant::now();
    Dataset::open(manifest, cache_dir, &opts.dataset)?;
    let open_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let ds = Dataset::open(manifest, cache_dir, &opts.dataset)?;
    let reopen_seconds = t.elapsed().as_secs_f64();
    if ds.is_empty() {
        return Err(DataError::Invalid(format!(
            "{}: no usable utterance ({})",
            manifest.display(),
            ds.issues().summary()
        )));
    }

    let t = Instant::now();
    let tokenizer = match &opts.tokenizer {
        Some(path) => Tokenizer::load(path)?,
        None => Tokenizer::train(&ds.texts(opts.target)?, opts.vocab_size)?,
    };
    let tokenizer_seconds = t.elapsed().as_secs_f64();

    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .map_err(|e| DataError::Invalid(format!("thread pool: {e}")))?;
    let spec = SpecAugment::default();
    let (mut utterances, mut frames, mut padded, mut batches) = (0usize, 0usize, 0usize, 0usize);
    let t = Instant::now();
    for epoch in 0..opts.epochs {
        let plan = ds.batches(&opts.batch, epoch);
        batches = plan.len();
        for (b, indices) in plan.iter().enumerate() {
            let seed = opts.batch.seed ^ (epoch << 32) ^ b as u64;
            let augment = opts.augment.then_some((&spec, seed));
            let batch =
                pool.install(|| ds.load_batch(indices, &tokenizer, opts.target, augment))?;
            utterances += batch.len();
            frames += batch.frames.iter().sum::<usize>();
            padded += batch.len() * batch.max_frames;
        }
    }
    let load_seconds = t.elapsed().as_secs_f64().max(1e-9);
    Ok(LoaderBenchReport {
        manifest: manifest.to_path_buf(),
        utterances: ds.len(),
        batches,
        threads: pool.current_num_threads(),
        open_seconds,
        reopen_seconds,
        tokenizer_seconds,
        load_seconds,
        utterances_per_second: utterances as f64 / load_seconds,
        frames_per_second: frames as f64 / load_seconds,
        audio_seconds_per_second: frames as f64 / 100.0 / load_seconds,
        padding: padded as f64 / frames.max(1) as f64,
    })
}
