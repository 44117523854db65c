//! `mtla-st average --checkpoints DIR --best N --out FILE [--half | --q8]`: averages a run's N
//! best checkpoints by validation accuracy, as the paper does with its 10 best (`--half`: in
//! f16, half the size, for shipping; `--q8`: in 8-bit blocks, about a quarter); `--inputs A B
//! ...` averages the files named instead, as fairseq's `average_checkpoints.py --inputs` (e.g.
//! the last N of a run, kept by hand; one file re-stores it in fewer bits).

use std::path::PathBuf;

use learner::average::{average_checkpoints, best_checkpoints, StoredPrecision};

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["checkpoints", "inputs"])))]
pub struct AverageArgs {
    /// A run directory or its checkpoints/ folder.
    #[arg(long)]
    pub checkpoints: Option<PathBuf>,
    /// How many of the best checkpoints to average.
    #[arg(long, default_value_t = 10)]
    pub best: usize,
    /// Average these checkpoint files (.safetensors) instead of a run's best.
    #[arg(long, num_args = 1..)]
    pub inputs: Vec<PathBuf>,
    /// The averaged weights (.safetensors).
    #[arg(long)]
    pub out: PathBuf,
    /// Write the weights in f16: half the size, for shipping a model (`models/`); loading
    /// widens them back to f32.
    #[arg(long, conflicts_with = "q8")]
    pub half: bool,
    /// Write the weights in 8-bit blocks (Q8_0: 32 weights and one f16 scale each; biases
    /// and norms in f16): about a quarter of the size; loading widens them back to f32.
    #[arg(long)]
    pub q8: bool,
}

/// Runs `mtla-st average`.
pub fn run(args: AverageArgs) -> anyhow::Result<()> {
    let inputs = match &args.checkpoints {
        Some(run) => best_checkpoints(run, args.best)?,
        None => args.inputs,
    };
    let precision = match (args.half, args.q8) {
        (true, _) => StoredPrecision::F16,
        (_, true) => StoredPrecision::Q8,
        _ => StoredPrecision::F32,
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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::AverageArgs;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: AverageArgs,
    }

    fn parse(args: &[&str]) -> Result<AverageArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("average").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn averages_a_runs_best_or_the_files_named() {
        let run = parse(&["--checkpoints", "runs/a", "--best", "2", "--out", "o"]).unwrap();
        assert_eq!(
            (run.checkpoints.unwrap().to_str(), run.best),
            (Some("runs/a"), 2)
        );
        let files = parse(&["--inputs", "a.safetensors", "b.safetensors", "--out", "o"]).unwrap();
        assert_eq!(files.inputs.len(), 2);
        assert!(files.checkpoints.is_none());
        // One source, not both, not none.
        assert!(parse(&["--checkpoints", "runs/a", "--inputs", "a", "--out", "o"]).is_err());
        assert!(parse(&["--out", "o"]).is_err());
        // One stored format at most.
        let q8 = parse(&["--inputs", "a", "--out", "o", "--q8"]).unwrap();
        assert!(q8.q8 && !q8.half);
        assert!(parse(&["--inputs", "a", "--out", "o", "--q8", "--half"]).is_err());
    }
}
