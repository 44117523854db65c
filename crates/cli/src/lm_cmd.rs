//! `mtla-st lm --tokenizer JSON --manifest TSV [--asr] --order N --out FILE [--valid TSV]`: an
//! n-gram language model over a model's pieces, counted from a manifest's transcripts (`--asr`)
//! or translations, for shallow fusion in the beam search (`eval.lm`, `eval.lm_weight`).

use std::path::{Path, PathBuf};

use data::{BadRows, Manifest, ManifestRow, Tokenizer};
use learner::decode::NgramLm;

#[derive(Debug, clap::Args)]
pub struct LmArgs {
    /// The tokenizer of the model the language model will serve (its `tokenizer.json`).
    #[arg(long)]
    pub tokenizer: PathBuf,
    /// Training text: fairseq S2T TSV manifests (the training set only: never dev or test).
    #[arg(long, required = true)]
    pub manifest: Vec<PathBuf>,
    /// Count the transcripts (`src_text`, for ASR) instead of the translations (`tgt_text`).
    #[arg(long)]
    pub asr: bool,
    /// Longest n-gram, in pieces.
    #[arg(long, default_value_t = 6)]
    pub order: usize,
    /// Drop highest-order n-grams seen fewer times than this (a smaller file; 1 keeps all).
    #[arg(long, default_value_t = 1)]
    pub min_count: u32,
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

/// Runs `mtla-st lm`.
pub fn run(args: LmArgs) -> anyhow::Result<()> {
    let tokenizer = Tokenizer::load(&args.tokenizer)?;
    let (bos, eos) = (tokenizer.bos_id(), tokenizer.eos_id());
    let mut sentences = Vec::new();
    for path in &args.manifest {
        sentences.extend(texts(path, args.asr)?.iter().map(|t| tokenizer.encode(t)));
    }
    anyhow::ensure!(
        !sentences.is_empty(),
        "no text to count in {:?}",
        args.manifest
    );
    let (lm, stats) = NgramLm::train(
        sentences,
        tokenizer.vocab_size(),
        args.order,
        bos,
        eos,
        args.min_count,
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
