//! `mtla-st prepare ...`: manifests (fairseq S2T TSV) from a MuST-C release or from a directory
//! of audio files with a table of texts, and a unigram tokenizer from a manifest's texts.

use std::path::PathBuf;

use anyhow::Context;
use data::mustc::prepare_mustc;
use data::prepare::{prepare_wav_dir, MAX_FRAMES, MIN_FRAMES};
use data::{
    BadRows, IssueLog, Manifest, PrepareOptions, PrepareReport, TargetSide, Tokenizer, SHOW_ISSUES,
};

#[derive(Debug, clap::Subcommand)]
pub enum PrepareCommand {
    /// A MuST-C style release (data/<split>/wav/*.wav, txt/<split>.yaml, .<src>, .<tgt>) ->
    /// <out>/<split>.tsv + <out>/<split>_audio.bin (segments as path:offset:length).
    Mustc(MustcArgs),
    /// A directory of <id>.wav|flac|ogg plus a TSV of id, transcript, translation -> a manifest.
    Wavs(WavsArgs),
    /// Train a unigram (SentencePiece-style) tokenizer on a manifest's texts.
    Tokenizer(TokenizerArgs),
}

/// Row validation shared by the preparation commands.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// Rows with fewer fbank frames are dropped (fairseq: 5).
    #[arg(long, default_value_t = MIN_FRAMES)]
    pub min_frames: usize,
    /// Rows with more fbank frames are dropped (fairseq: 3000; MuST-C: training splits only).
    #[arg(long, default_value_t = MAX_FRAMES)]
    pub max_frames: usize,
    /// Keep long rows.
    #[arg(long)]
    pub no_max_frames: bool,
    /// Stop at the first bad row instead of skipping and counting it.
    #[arg(long)]
    pub strict: bool,
    /// Expected sample rate of the audio.
    #[arg(long, default_value_t = 16_000)]
    pub sample_rate: u32,
    /// Accept audio at other rates (it is resampled when features are computed).
    #[arg(long)]
    pub resample: bool,
    /// Bad rows listed individually (the rest are only counted).
    #[arg(long, default_value_t = SHOW_ISSUES)]
    pub show_issues: usize,
    /// No progress output.
    #[arg(long)]
    pub quiet: bool,
}

impl CheckArgs {
    fn options(&self) -> PrepareOptions {
        PrepareOptions {
            min_frames: self.min_frames,
            max_frames: (!self.no_max_frames).then_some(self.max_frames),
            bad_rows: if self.strict {
                BadRows::Fail
            } else {
                BadRows::Skip
            },
            sample_rate: self.sample_rate,
            resample: self.resample,
            progress: !self.quiet,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct MustcArgs {
    /// The language-pair directory of the release (holding data/), e.g. MUSTC_v1.0/en-de.
    pub root: PathBuf,
    /// Output directory for manifests and audio packs.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, value_delimiter = ',', default_value = "train,dev,tst-COMMON")]
    pub splits: Vec<String>,
    #[arg(long, default_value = "en")]
    pub src_lang: String,
    #[arg(long, default_value = "de")]
    pub tgt_lang: String,
    /// Redo splits whose manifest already exists.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, clap::Args)]
pub struct WavsArgs {
    /// Directory holding <id>.wav (or .flac, .ogg).
    pub audio_dir: PathBuf,
    /// TSV: id, transcript, translation (an `id<TAB>...` first line is a header).
    #[arg(long)]
    pub table: PathBuf,
    /// Manifest to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, clap::Args)]
pub struct TokenizerArgs {
    /// Manifest whose texts train the tokenizer (usually the training split).
    pub manifest: PathBuf,
    /// Where to save it (tokenizers JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Pieces, specials included.
    #[arg(long, default_value_t = 1000)]
    pub vocab_size: usize,
    /// Train on transcripts (src_text, for ASR) instead of translations (tgt_text).
    #[arg(long)]
    pub transcripts: bool,
}

/// Runs `mtla-st prepare ...`.
pub fn run(cmd: PrepareCommand) -> anyhow::Result<()> {
    match cmd {
        PrepareCommand::Mustc(args) => {
            for split in &args.splits {
                let report = prepare_mustc(
                    &args.root,
                    split,
                    &args.src_lang,
                    &args.tgt_lang,
                    &args.out,
                    &args.check.options(),
                    args.force,
                )
                .with_context(|| format!("preparing MuST-C split {split}"))?;
                print_report(&report, args.check.show_issues);
            }
            Ok(())
        }
        PrepareCommand::Wavs(args) => {
            let report = prepare_wav_dir(
                &args.audio_dir,
                &args.table,
                &args.out,
                &args.check.options(),
            )
            .with_context(|| format!("preparing {}", args.out.display()))?;
            print_report(&report, args.check.show_issues);
            Ok(())
        }
        PrepareCommand::Tokenizer(args) => train_tokenizer(&args),
    }
}

fn print_report(report: &PrepareReport, show: usize) {
    print_issues(&report.issues, show);
    eprintln!("{report}");
}

/// Lists the first `show` issues, then how many more there are.
pub fn print_issues(issues: &IssueLog, show: usize) {
    if !issues.is_empty() {
        eprintln!("{}", issues.listing(show));
    }
}

fn train_tokenizer(args: &TokenizerArgs) -> anyhow::Result<()> {
    let manifest = Manifest::read(&args.manifest, BadRows::Skip)?;
    print_issues(&manifest.issues, SHOW_ISSUES);
    let side = if args.transcripts {
        TargetSide::Transcript
    } else {
        TargetSide::Translation
    };
    let texts: Vec<String> = manifest
        .rows
        .iter()
        .filter_map(|r| match side {
            TargetSide::Translation => Some(r.tgt_text.clone()),
            TargetSide::Transcript => r.src_text.clone(),
        })
        .collect();
    anyhow::ensure!(
        !texts.is_empty(),
        "{}: no {} to train on",
        args.manifest.display(),
        if args.transcripts {
            "transcripts (src_text)"
        } else {
            "translations"
        }
    );
    let tokenizer = Tokenizer::train(&texts, args.vocab_size)?;
    tokenizer.save(&args.out)?;
    let pieces: usize = texts.iter().map(|t| tokenizer.encode(t).len()).sum();
    let words: usize = texts.iter().map(|t| t.split_whitespace().count()).sum();
    eprintln!(
        "{}: {} pieces from {} sentences ({:.2} pieces per word)",
        args.out.display(),
        tokenizer.vocab_size(),
        texts.len(),
        pieces as f64 / words.max(1) as f64
    );
    Ok(())
}
