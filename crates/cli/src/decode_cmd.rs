//! `mtla-st transcribe FILE...` and `mtla-st translate FILE...`: one line per file
//! (`FILE<TAB>text`), or one JSON object per line with `--json` (text, seconds, tokens/s). The
//! shipped models under `models/` are the defaults, so a fresh clone works without training.

use std::path::{Path, PathBuf};

use burn::prelude::Backend;
use learner::infer::Inference;

use crate::backend::{run_on, BackendArgs, BackendKind, BackendTask};

/// The models shipped in the repository.
const MODELS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models");

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// Audio files (WAV, FLAC or Ogg Vorbis; any sample rate, resampled to 16 kHz).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// A model folder (model.safetensors, tokenizer.json, config.toml) or a run's checkpoint
    /// (default: the repository's shipped model for the task).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Beam size (default: the model's eval.beam).
    #[arg(long)]
    pub beam: Option<usize>,
    /// Joint CTC/attention decoding: weight of the CTC head's prefix score in [0, 1]
    /// (default: the model's eval.ctc_weight).
    #[arg(long)]
    pub ctc_weight: Option<f64>,
    /// Shallow fusion: an n-gram language model made by `mtla-st lm` over the model's pieces
    /// (default: the model's eval.lm).
    #[arg(long)]
    pub lm: Option<PathBuf>,
    /// Weight of the language model's log-probability, >= 0 (default: the model's
    /// eval.lm_weight; 0: none).
    #[arg(long)]
    pub lm_weight: Option<f64>,
    /// One JSON object per file with the audio and decoding seconds and tokens/s.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub backend: BackendArgs,
}

struct Decode {
    args: DecodeArgs,
    model: PathBuf,
}

impl BackendTask for Decode {
    /// Whether every file was decoded.
    type Output = bool;
    fn run<B: Backend>(self, device: B::Device, _: BackendKind) -> anyhow::Result<bool> {
        let mut inference =
            Inference::<B>::load(&self.model, &device)?.in_precision(self.args.backend.precision);
        if let Some(w) = self.args.ctc_weight {
            inference = inference.with_ctc_weight(w)?;
        }
        if self.args.lm.is_some() || self.args.lm_weight.is_some() {
            inference = inference.with_lm(self.args.lm.clone(), self.args.lm_weight)?;
        }
        let beam = self.args.beam.unwrap_or(inference.config().eval.beam);
        anyhow::ensure!(beam >= 1, "--beam must be >= 1");
        let mut all_ok = true;
        for file in &self.args.files {
            // A bad file is reported and skipped; the others are still decoded.
            match inference.decode_file(file, beam) {
                Ok(d) => {
                    if d.length_limited {
                        eprintln!(
                            "warning: {}: the output ended at the length limit and may be cut \
                             short (raise eval.max_len_a / max_len_b in the model's config.toml)",
                            d.file
                        );
                    }
                    match self.args.json {
                        true => println!("{}", serde_json::to_string(&d)?),
                        false => println!("{}\t{}", d.file, d.text),
                    }
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    all_ok = false;
                }
            }
        }
        Ok(all_ok)
    }
}

/// Runs `transcribe` (`task = "asr"`) or `translate` (`task = "st"`).
pub fn run(args: DecodeArgs, task: &str) -> anyhow::Result<bool> {
    let model = args
        .model
        .clone()
        .unwrap_or_else(|| Path::new(MODELS).join(task));
    let backend = args.backend.clone();
    run_on(&backend, Decode { args, model })
}
