//! `mtla-st train --config FILE [--backend cpu|wgpu|cuda] [--out DIR] [--resume]`.

use std::path::PathBuf;

use burn::backend::Autodiff;
use burn::prelude::Backend;
use learner::config::ExperimentConfig;
use learner::train::setup::{cpu_parts, train_on_devices, TrainOptions};

use crate::backend::{run_on_devices, BackendArgs, BackendKind, DevicesTask};

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// Experiment config (TOML: [model], [data], [train], [eval]).
    #[arg(long)]
    pub config: PathBuf,
    /// Run directory (default: runs/<config name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Continue the run in --out from its last checkpoint (same data order and learning rate).
    #[arg(long)]
    pub resume: bool,
    /// Override any config value, e.g. --set model.decoder.attention.kind=mha (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Override train.max_updates.
    #[arg(long)]
    pub max_updates: Option<usize>,
    /// Override train.time_limit_minutes.
    #[arg(long)]
    pub time_limit_minutes: Option<f64>,
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Data-parallel training over these device indices of the backend, e.g. `--devices 0,1,2,3`:
    /// every batch is split over them, so the effective batch and the learning-rate schedule
    /// stay those of the config (replaces --device). On the CPU the default splits every batch
    /// into one part per core (at most 4) computed concurrently; `--devices 0` keeps it whole.
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<usize>,
}

struct Train(TrainOptions);

impl DevicesTask for Train {
    type Output = ();
    fn run<B: Backend>(self, devices: Vec<B::Device>, _: BackendKind) -> anyhow::Result<()> {
        let report = train_on_devices::<Autodiff<B>>(&self.0, devices)?;
        eprintln!(
            "training stopped ({}) after {} updates in {:.1} min ({:.2} updates/s, {:.0} frames/s, \
             peak memory {}); last checkpoint: {}",
            report.stopped_because,
            report.updates,
            report.wall_s / 60.0,
            report.updates_per_s,
            report.frames_per_s,
            report
                .peak_memory_bytes
                .map_or("n/a".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0)),
            report
                .last_checkpoint
                .as_ref()
                .map_or("none".into(), |p| p.display().to_string())
        );
        println!("{}", serde_json::to_string(&report)?);
        Ok(())
    }
}

/// Runs `mtla-st train`.
pub fn run(args: TrainArgs) -> anyhow::Result<()> {
    let mut config = ExperimentConfig::load_with(&args.config, &args.overrides)?;
    if let Some(n) = args.max_updates {
        config.train.max_updates = n;
    }
    if let Some(m) = args.time_limit_minutes {
        config.train.time_limit_minutes = m;
    }
    config.validate().map_err(anyhow::Error::msg)?;
    let out = args.out.unwrap_or_else(|| {
        PathBuf::from("runs").join(
            args.config
                .file_stem()
                .map_or("run".into(), |s| s.to_string_lossy().to_string()),
        )
    });
    let opts = TrainOptions {
        config,
        out,
        resume: args.resume,
        progress: true,
        precision: args.backend.precision,
    };
    let devices = match (args.devices.is_empty(), args.backend.backend) {
        (true, BackendKind::Cpu) => vec![args.backend.device; cpu_parts()],
        (true, _) => vec![args.backend.device],
        (false, _) => args.devices.clone(),
    };
    run_on_devices(&args.backend, &devices, Train(opts))
}
