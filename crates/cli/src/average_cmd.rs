//! `mtla-st average --checkpoints DIR --best N --out FILE`: averages a run's N best
//! checkpoints by validation accuracy, as the paper does with its 10 best.

use std::path::PathBuf;

use learner::average::{average_checkpoints, best_checkpoints};

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
}

/// Runs `mtla-st average`.
pub fn run(args: AverageArgs) -> anyhow::Result<()> {
    let inputs = best_checkpoints(&args.checkpoints, args.best)?;
    average_checkpoints(&inputs, &args.out)?;
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
