//! `mtla-st compare --config FILE --variants mtla2,mha [--out DIR] [--train-only]`: trains every
//! attention variant with identical settings, evaluates them, and prints the comparison table.

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::Backend;
use learner::compare::{compare, train_variants};
use learner::config::ExperimentConfig;

use crate::backend::{run_on, BackendArgs, BackendKind, BackendTask};

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// Experiment config; its attention kind is replaced by each variant.
    #[arg(long)]
    pub config: PathBuf,
    /// Variants: mha, gqa, mqa, mla, mtla<s>.
    #[arg(long, value_delimiter = ',', default_value = "mtla2,mha")]
    pub variants: Vec<String>,
    /// Seeds: every variant trains once per seed and the table adds each variant's mean and
    /// range (default: the config's `train.seed`).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Folder of the runs and the table (default: runs/compare-<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Average this many best checkpoints per run before evaluating.
    #[arg(long, default_value_t = 3)]
    pub average_best: usize,
    /// Train (or resume) the runs and stop: no averaging, decoding or table. A later `compare`
    /// over the same folder reuses the finished runs and evaluates them.
    #[arg(long)]
    pub train_only: bool,
    /// Override config values, e.g. --set train.max_updates=1000 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

struct Compare(CompareArgs, ExperimentConfig, PathBuf);

impl BackendTask for Compare {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device, _: BackendKind) -> anyhow::Result<()> {
        let Compare(args, config, out) = self;
        if args.train_only {
            let runs =
                train_variants::<Autodiff<B>>(&config, &args.variants, &args.seeds, &out, device)?;
            for run in runs {
                println!("{} seed {}: {}", run.variant, run.seed, run.dir.display());
            }
            return Ok(());
        }
        let comparison = compare::<Autodiff<B>>(
            &config,
            &args.variants,
            &args.seeds,
            &out,
            args.average_best,
            device,
        )?;
        println!("{}", comparison.table());
        println!("(also in {})", out.join("comparison.md").display());
        Ok(())
    }
}

/// Runs `mtla-st compare`.
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let config = ExperimentConfig::load_with(&args.config, &args.overrides)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("runs").join(format!(
            "compare-{}",
            args.config
                .file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().to_string())
        ))
    });
    let backend = args.backend.clone();
    backend.f32_only("compare")?;
    run_on(&backend, Compare(args, config, out))
}
