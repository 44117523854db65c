//! `mtla-st`: speech translation and recognition with Multi-head Temporal Latent Attention.

mod attention_cmd;
mod average_cmd;
mod backend;
mod bench_cmd;
mod compare_cmd;
mod conv_module_bench;
mod corpus_cmd;
mod decode_cmd;
mod eval_cmd;
mod fbank_cmd;
mod lm_cmd;
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
    /// Count an n-gram language model over a model's pieces, for shallow fusion in decoding.
    Lm(lm_cmd::LmArgs),
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

/// Tunes glibc's malloc for tensor buffers; a `MALLOC_*` variable in the environment still
/// decides its own setting.
///
/// - At most 2 arenas. CPU training runs each part of a batch in its own thread
///   (`learner::train::setup::cpu_parts`), and glibc gives every thread its own arena, each
///   keeping the memory its thread freed: with the default cap (8 per core) the peak memory of
///   a `configs/small_cpu.toml` run doubled (180 -> 375-392 MB); with 2 arenas it stays at
///   177-233 MB at the same speed (3 alternating runs each, 0.194 vs 0.194 s per update).
/// - Blocks below 32 MiB (the largest threshold glibc accepts) come from the heap, and up to
///   1 GiB freed at its top is kept for the next step. By default glibc maps a block at or
///   above a threshold that follows the largest block freed so far, and unmaps it when freed:
///   buffers of one size, such as every activation of a layer at one length, are then mapped,
///   faulted in page by page and unmapped again at every step. In `bench attention-train` at
///   the paper's dims (T 1024) that was a sixth of the time, in the kernel.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (variable, parameter, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 2),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 32 << 20),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 1 << 30),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: `mallopt` only tunes the allocator; called before any thread is spawned.
            unsafe {
                libc::mallopt(parameter, value);
            }
        }
    }
}

fn main() -> std::process::ExitCode {
    tune_malloc();
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
        Command::Lm(args) => lm_cmd::run(args).map(|_| true),
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
