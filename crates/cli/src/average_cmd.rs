//! `mtla-st average --checkpoints DIR --best N --out FILE [--half]`: averages a run's N best
//! checkpoints by validation accuracy, as the paper does with its 10 best (`--half`: in f16,
//! half the size, for shipping).

use std::path::PathBuf;

use learner::average::{average_checkpoints, best_checkpoints, StoredPrecision};

#[derive(Debug, clap::Args)]
pub struct AverageArgs {
    /// A run directory or its checkpoints/ folder.
    #[arg(long)]
    pub checkpoints: PathBuf,
    /// How many of the best checkpoints to average.
    #[arg(long, default_value_t = 10)]
    pub best: usize,
    /// The averaged weights (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Write the weights in f16: half the size, for shipping a model (`models/`); loading
    /// widens them back to f32.
    #[arg(long)]
    pub half: bool,
}

/// Runs `mtla-st average`.
pub fn run(args: AverageArgs) -> anyhow::Result<()> {
    let inputs = best_checkpoints(&args.checkpoints, args.best)?;
    let precision = if args.half {
        StoredPrecision::F16
    } else {
        StoredPrecision::F32
    };
    average_checkpoints(&inputs, &args.out, precision)?;
    eprintln!(
        "averaged {} checkpoints into {}",
        inputs.len(),
        args.out.display()
    );
    for p in &inputs {
        eprintln!("  {}", p.display());
    }
    Ok(())
}
