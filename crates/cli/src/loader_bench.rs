//! `mtla-st bench loader`: data-loader throughput (utterances/s, frames/s) on a manifest, as a
//! training loop uses it: shuffled frame-bounded batches, utterance CMVN, SpecAugment, targets.

use std::path::PathBuf;

use anyhow::Context;
use data::{bench_loader, BadRows, BatchConfig, DatasetOptions, LoaderBenchOptions, TargetSide};

#[derive(Debug, clap::Args)]
pub struct LoaderBenchArgs {
    /// Manifest to load (fairseq S2T TSV).
    #[arg(default_value = "data/demo/train.tsv")]
    pub manifest: PathBuf,
    /// Feature cache directory.
    #[arg(long, default_value = "runs/fbank-cache")]
    pub cache_dir: PathBuf,
    /// Start from an empty cache (a temporary one) to include feature extraction in "open".
    #[arg(long)]
    pub cold: bool,
    /// Frames per batch (fairseq --max-tokens).
    #[arg(long, default_value_t = 20_000)]
    pub max_frames: usize,
    #[arg(long)]
    pub max_sentences: Option<usize>,
    /// Passes over the data.
    #[arg(long, default_value_t = 3)]
    pub epochs: u64,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// A saved tokenizer (else one is trained with --vocab-size).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    pub vocab_size: usize,
    /// Transcripts (ASR) instead of translations as targets.
    #[arg(long)]
    pub asr: bool,
    /// No SpecAugment.
    #[arg(long)]
    pub no_augment: bool,
    /// Speed perturbation factors, e.g. 0.9,1.0,1.1 (as `data.speed_perturb`): each utterance
    /// once per factor, features extracted (and cached) per factor.
    #[arg(long, value_delimiter = ',', default_value = "1.0")]
    pub speed_perturb: Vec<f32>,
    /// Loader threads (0 = all cores); try 1 to see one core's rate.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also write the numbers here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// Runs `mtla-st bench loader`.
pub fn run(args: LoaderBenchArgs) -> anyhow::Result<()> {
    let cold_dir = args
        .cold
        .then(|| std::env::temp_dir().join(format!("mtla-st-loader-bench-{}", std::process::id())));
    let cache_dir = cold_dir.clone().unwrap_or_else(|| args.cache_dir.clone());
    let opts = LoaderBenchOptions {
        dataset: DatasetOptions {
            bad_rows: BadRows::Skip,
            progress: true,
            speeds: args.speed_perturb.clone(),
            ..DatasetOptions::default()
        },
        batch: BatchConfig {
            max_frames: args.max_frames,
            max_sentences: args.max_sentences,
            shuffle: true,
            seed: args.seed,
            ..BatchConfig::default()
        },
        epochs: args.epochs,
        tokenizer: args.tokenizer.clone(),
        vocab_size: args.vocab_size,
        target: if args.asr {
            TargetSide::Transcript
        } else {
            TargetSide::Translation
        },
        augment: !args.no_augment,
        threads: args.threads,
    };
    let result = bench_loader(&args.manifest, &cache_dir, &opts);
    if let Some(dir) = &cold_dir {
        let removed = std::fs::remove_dir_all(dir);
        if result.is_ok() {
            removed.with_context(|| format!("removing the temporary cache {}", dir.display()))?;
        }
    }
    let report = result.with_context(|| format!("loading {}", args.manifest.display()))?;
    println!("{report}");
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
