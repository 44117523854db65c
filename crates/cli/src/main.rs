//! `mtla-st`: speech translation and recognition with Multi-head Temporal Latent Attention.

mod attention_cmd;
mod average_cmd;
mod backend;
mod bench_cmd;
mod compare_cmd;
mod corpus_cmd;
mod decode_cmd;
mod eval_cmd;
mod fbank_cmd;
mod loader_bench;
mod model_cmd;
mod plot_cmd;
mod prepare_cmd;
mod score_cmd;
mod train_cmd;
mod train_step_bench;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "mtla-st",
    version,
    about = "Speech translation/recognition with MTLA on Burn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Build manifests (MuST-C release, WAV folder + TSV) and tokenizers, validating every row.
    #[command(subcommand)]
    Prepare(prepare_cmd::PrepareCommand),
    /// Build the offline English-speech -> German-text corpus from Debian packages.
    #[command(subcommand)]
    Corpus(corpus_cmd::CorpusCommand),
    /// Train a model from an experiment config (resumable with --resume).
    Train(train_cmd::TrainArgs),
    /// Transcribe English audio files with an ASR model (default: the shipped one).
    Transcribe(decode_cmd::DecodeArgs),
    /// Translate English audio files into German text with an ST model (default: the shipped one).
    Translate(decode_cmd::DecodeArgs),
    /// Decode a manifest with beam search and report BLEU/chrF/WER, speed and memory.
    Eval(eval_cmd::EvalArgs),
    /// Train and evaluate attention variants with identical settings; print the comparison.
    Compare(compare_cmd::CompareArgs),
    /// Average a run's best checkpoints.
    Average(average_cmd::AverageArgs),
    /// Score hypotheses against references: BLEU, chrF (sacreBLEU), WER (jiwer) as JSON.
    Score(score_cmd::ScoreArgs),
    /// Extract Kaldi-compatible log-mel filterbank features from a WAV into a .npy file.
    Fbank(fbank_cmd::FbankArgs),
    /// Attention-layer tools (exactness check against the authors' PyTorch code).
    #[command(subcommand)]
    Attention(attention_cmd::AttentionCommand),
    /// Model tools (parameter and KV-cache summary).
    #[command(subcommand)]
    Model(model_cmd::ModelCommand),
    /// SVG plots of experiment results.
    #[command(subcommand)]
    Plot(plot_cmd::PlotCommand),
    /// Speed benchmarks that print ratios against a baseline measured in the same run.
    #[command(subcommand)]
    Bench(bench_cmd::BenchCommand),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Prepare(cmd) => prepare_cmd::run(cmd).map(|_| true),
        Command::Corpus(cmd) => corpus_cmd::run(cmd).map(|_| true),
        Command::Train(args) => train_cmd::run(args).map(|_| true),
        Command::Eval(args) => eval_cmd::run(args).map(|_| true),
        Command::Transcribe(args) => decode_cmd::run(args, "asr"),
        Command::Translate(args) => decode_cmd::run(args, "st"),
        Command::Compare(args) => compare_cmd::run(args).map(|_| true),
        Command::Average(args) => average_cmd::run(args).map(|_| true),
        Command::Score(args) => score_cmd::run(args).map(|_| true),
        Command::Fbank(args) => fbank_cmd::run(args).map(|_| true),
        Command::Attention(cmd) => attention_cmd::run(cmd),
        Command::Bench(cmd) => bench_cmd::run(cmd).map(|_| true),
        Command::Model(cmd) => model_cmd::run(cmd).map(|_| true),
        Command::Plot(cmd) => plot_cmd::run(cmd).map(|_| true),
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
