//! `mtla-st eval --checkpoint FILE --manifest TSV [--beam K] [--max-frames N] [--backend ...]`.

use std::path::PathBuf;

use burn::prelude::Backend;
use learner::config::{EvalConfig, ExperimentConfig, Task};
use learner::eval::{evaluate, EvalOptions};

use crate::backend::{run_on, BackendArgs, BackendKind, BackendTask};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// Model weights (.safetensors written by training or `average`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Another checkpoint over the same vocabulary to decode together with --checkpoint
    /// (repeatable): an ensemble averaging their next-token probabilities, as fairseq's
    /// `--path a.pt:b.pt`; --checkpoint's tokenizer, config and CTC head are used.
    #[arg(long, value_name = "CHECKPOINT")]
    pub ensemble: Vec<PathBuf>,
    /// fairseq S2T TSV manifest to decode.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Tokenizer (default: the tokenizer.json beside the checkpoint or in its run folder).
    #[arg(long)]
    pub tokenizer: Option<PathBuf>,
    /// Beam size (1 = greedy).
    #[arg(long)]
    pub beam: Option<usize>,
    /// Decoding batch bound in padded frames.
    #[arg(long)]
    pub max_frames: Option<usize>,
    /// Length penalty: a finished hypothesis scores log P / length^lenpen (fairseq's; above 1
    /// favours longer outputs). Default: the model config's `eval.lenpen`.
    #[arg(long)]
    pub lenpen: Option<f64>,
    /// Output tokens at most max_len_a x input frames + max_len_b (default: `eval.max_len_a`).
    #[arg(long)]
    pub max_len_a: Option<f64>,
    /// See --max-len-a (default: `eval.max_len_b`).
    #[arg(long)]
    pub max_len_b: Option<usize>,
    /// Joint CTC/attention decoding: weight of the CTC head's prefix score in [0, 1] (0: the
    /// decoder alone; ESPnet's ASR recipes use 0.3). Needs a model with a CTC head.
    #[arg(long)]
    pub ctc_weight: Option<f64>,
    /// Shallow fusion: an n-gram language model made by `mtla-st lm` over the model's pieces
    /// (default: the run config's `eval.lm`).
    #[arg(long)]
    pub lm: Option<PathBuf>,
    /// Weight of the language model's log-probability, >= 0 (default: `eval.lm_weight`; 0:
    /// none).
    #[arg(long)]
    pub lm_weight: Option<f64>,
    /// Word insertion bonus added for every word-initial piece; below 0 it holds back
    /// hypotheses that split a word into several (default: `eval.word_bonus`; 0: none).
    #[arg(long, allow_hyphen_values = true)]
    pub word_bonus: Option<f64>,
    /// Score against transcripts (ASR) instead of translations.
    #[arg(long)]
    pub asr: bool,
    /// Output folder for hyp.txt, ref.txt and report.json (default: next to the checkpoint).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

struct Eval(EvalOptions);

impl BackendTask for Eval {
    type Output = ();
    fn run<B: Backend>(self, device: B::Device, kind: BackendKind) -> anyhow::Result<()> {
        let report = evaluate::<B>(&self.0, &device)?;
        println!("{}", report.table());
        println!(
            "backend: {kind:?}; hypotheses, references and report.json in {}",
            self.0.out.display()
        );
        Ok(())
    }
}

/// Runs `mtla-st eval`.
pub fn run(args: EvalArgs) -> anyhow::Result<()> {
    let run_config =
        EvalOptions::run_config(&args.checkpoint).unwrap_or_else(ExperimentConfig::default);
    let eval = EvalConfig {
        beam: args.beam.unwrap_or(run_config.eval.beam),
        max_frames: args.max_frames.unwrap_or(run_config.eval.max_frames),
        lenpen: args.lenpen.unwrap_or(run_config.eval.lenpen),
        max_len_a: args.max_len_a.unwrap_or(run_config.eval.max_len_a),
        max_len_b: args.max_len_b.unwrap_or(run_config.eval.max_len_b),
        ctc_weight: args.ctc_weight.unwrap_or(run_config.eval.ctc_weight),
        lm: args.lm.or(run_config.eval.lm.clone()),
        lm_weight: args.lm_weight.unwrap_or(run_config.eval.lm_weight),
        word_bonus: args.word_bonus.unwrap_or(run_config.eval.word_bonus),
        ..run_config.eval.clone()
    };
    if eval.beam == 0 {
        anyhow::bail!("--beam must be >= 1");
    }
    eval.check_weights().map_err(anyhow::Error::msg)?;
    let task = if args.asr {
        Task::Transcript
    } else {
        run_config.data.task
    };
    let out = args.out.unwrap_or_else(|| {
        let stem = args
            .manifest
            .file_stem()
            .map_or("eval".into(), |s| s.to_string_lossy().to_string());
        args.checkpoint.with_extension("").with_file_name(format!(
            "{}-{stem}-beam{}{}{}{}",
            args.checkpoint
                .file_stem()
                .map_or("model".into(), |s| s.to_string_lossy().to_string()),
            eval.beam,
            match eval.ctc_weight {
                0.0 => String::new(),
                w => format!("-ctc{w}"),
            },
            match eval.lm_weight {
                0.0 => String::new(),
                w => format!("-lm{w}"),
            },
            match eval.word_bonus {
                0.0 => String::new(),
                w => format!("-wb{w}"),
            }
        ))
    });
    let opts = EvalOptions {
        checkpoint: args.checkpoint,
        ensemble: args.ensemble,
        manifest: args.manifest,
        tokenizer: args.tokenizer,
        eval,
        task,
        feature_cache: run_config.data.feature_cache,
        out,
        progress: true,
        precision: args.backend.precision,
    };
    run_on(&args.backend, Eval(opts))
}
