//! `mtla-st lm --tokenizer JSON --manifest TSV [--text TXT] [--asr] --order N --out FILE [--valid TSV]`:
//! an n-gram language model over a model's pieces, counted from a manifest's transcripts
//! (`--asr`) or translations and from plain text (one sentence per line, such as `mtla-st
//! corpus lm-text` writes), for shallow fusion in the beam search (`eval.lm`, `eval.lm_weight`).

use std::path::{Path, PathBuf};

use anyhow::Context;
use data::{BadRows, Manifest, ManifestRow, Tokenizer};
use learner::decode::{Discounting, NgramLm, Pruning};

#[derive(Debug, clap::Args)]
pub struct LmArgs {
    /// The tokenizer of the model the language model will serve (its `tokenizer.json`).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Training text: fairseq S2T TSV manifests (the training set only: never dev or test).
    #[arg(long, required_unless_present = "text")]
    pub manifest: Vec<PathBuf>,
    /// More training text: plain UTF-8, one sentence per line, blank lines skipped (never a
    /// dev or test sentence).
    #[arg(long)]
    pub text: Vec<PathBuf>,
    /// Count the transcripts (`src_text`, for ASR) instead of the translations (`tgt_text`).
    #[arg(long)]
    pub asr: bool,
    /// Longest n-gram, in pieces.
    #[arg(long, default_value_t = 6)]
    pub order: usize,
    /// Drop highest-order n-grams seen fewer times than this (a smaller file; 1 keeps all).
    #[arg(long, default_value_t = 1)]
    pub min_count: u32,
    /// Apply `--min-count` from this order up instead of at the highest order only (lower
    /// orders hold most of a long model's n-grams).
    #[arg(long)]
    pub prune_from: Option<usize>,
    /// Modified Kneser-Ney: three discounts per order (counts 1, 2, 3+) instead of one. A lower
    /// perplexity, but tune `eval.lm_weight` again: it wants a larger weight in fusion.
    #[arg(long)]
    pub modified_kn: bool,
    /// A manifest to report the model's perplexity on (a dev set).
    #[arg(long)]
    pub valid: Option<PathBuf>,
    /// The model file to write.
    #[arg(long)]
    pub out: PathBuf,
}

/// The texts of a manifest's rows, an error naming the manifest when a transcript is missing.
fn texts(path: &Path, asr: bool) -> anyhow::Result<Vec<String>> {
    let manifest = Manifest::read(path, BadRows::Skip)?;
    let text = |row: &ManifestRow| match asr {
        true => row.src_text.clone().ok_or_else(|| {
            anyhow::anyhow!(
                "{} line {}: no src_text column (needed with --asr)",
                path.display(),
                row.line
            )
        }),
        false => Ok(row.tgt_text.clone()),
    };
    manifest.rows.iter().map(text).collect()
}

/// The non-blank lines of a plain text file.
fn lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the training text {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// Runs `mtla-st lm`.
pub fn run(args: LmArgs) -> anyhow::Result<()> {
    let tokenizer = Tokenizer::load(&args.tokenizer)?;
    let (bos, eos) = (tokenizer.bos_id(), tokenizer.eos_id());
    let mut sentences = Vec::new();
    for path in &args.manifest {
        sentences.extend(texts(path, args.asr)?.iter().map(|t| tokenizer.encode(t)));
    }
    for path in &args.text {
        sentences.extend(lines(path)?.iter().map(|t| tokenizer.encode(t)));
    }
    anyhow::ensure!(
        !sentences.is_empty(),
        "no text to count in {:?} {:?}",
        args.manifest,
        args.text
    );
    let pruning = Pruning {
        min_count: args.min_count,
        from_order: args.prune_from.unwrap_or(args.order),
    };
    let (lm, stats) = NgramLm::train(
        sentences,
        tokenizer.vocab_size(),
        args.order,
        bos,
        eos,
        pruning,
        match args.modified_kn {
            true => Discounting::Modified,
            false => Discounting::Single,
        },
    )?;
    lm.save(&args.out)?;
    let bytes = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    eprintln!(
        "{} sentences, {} tokens; n-grams per order {:?}; {} ({:.1} MB)",
        stats.sentences,
        stats.tokens,
        stats.ngrams,
        args.out.display(),
        bytes as f64 / 1e6
    );
    if let Some(valid) = &args.valid {
        let (mut log_prob, mut tokens) = (0.0, 0);
        for text in texts(valid, args.asr)? {
            let (lp, n) = lm.sentence_log_prob(&tokenizer.encode(&text), bos, eos);
            log_prob += lp;
            tokens += n;
        }
        eprintln!(
            "{}: perplexity {:.3} per token ({tokens} tokens)",
            valid.display(),
            (-log_prob / tokens.max(1) as f64).exp()
        );
    }
    Ok(())
}
