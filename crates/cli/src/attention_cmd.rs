//! `mtla-st attention check --reference FILE`: loads a file written by the authors' PyTorch
//! MTLA (`mtla_reference.py`), runs our layer in parallel form, token by token and with the
//! prefix prefilled, and prints one JSON line of max |diff|. Exit status 0 iff all <= 1e-4.

use std::path::PathBuf;

use burn::prelude::Backend;

use crate::backend::{run_on, BackendArgs, BackendKind, BackendTask};

/// Tolerance of the check (float32).
const TOLERANCE: f32 = 1e-4;

#[derive(Debug, clap::Subcommand)]
pub enum AttentionCommand {
    /// Compare our MTLA with a reference file written by mtla_reference.py.
    Check {
        /// The .safetensors written by ../shared/oracles/mtla_reference.py.
        #[arg(long)]
        reference: PathBuf,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

struct Check(PathBuf);

impl BackendTask for Check {
    type Output = bool;
    fn run<B: Backend>(self, device: B::Device, _: BackendKind) -> anyhow::Result<bool> {
        let report = mtla::reference::check_reference::<B>(&self.0, &device)?;
        println!("{}", serde_json::to_string(&report)?);
        Ok(report.within(TOLERANCE))
    }
}

/// Runs `mtla-st attention ...`; returns whether the check passed.
pub fn run(cmd: AttentionCommand) -> anyhow::Result<bool> {
    match cmd {
        AttentionCommand::Check { reference, backend } => {
            backend.f32_only("attention check")?;
            run_on(&backend, Check(reference))
        }
    }
}
