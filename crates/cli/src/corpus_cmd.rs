//! `mtla-st corpus build`: the offline English-speech -> German-text corpus from Debian packages
//! (gettext catalogs and the Ding dictionary for German, Debian TTS engines for English speech),
//! written as fairseq S2T manifests. Rerunning completes an interrupted build. `mtla-st corpus
//! lm-text`: the English (or German) text of the same packages for a language model over a
//! model's transcripts (or translations).

use std::path::PathBuf;

use anyhow::Context;
use data::corpus::{
    build_corpus, debian, lm_text, write_lm_text, AudioFormat, CorpusOptions, Engine, LmLanguage,
    Selection,
};

use crate::prepare_cmd::print_issues;

#[derive(Debug, clap::Subcommand)]
pub enum CorpusCommand {
    /// Download packages, extract and filter the parallel text, synthesise speech, write
    /// <out>/{train,dev,test}.tsv and <out>/audio/.
    Build(CorpusBuildArgs),
    /// Write the train-split English sentences of the corpus's packages (every catalog message,
    /// translated or not, and the Ding dictionary's), or with `--german` the German side of its
    /// train-split pairs, one per line, for `mtla-st lm --text`: a dev or test sentence never
    /// gets in.
    LmText(CorpusLmTextArgs),
}

#[derive(Debug, clap::Args)]
pub struct CorpusLmTextArgs {
    /// The text file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The German side of the parallel pairs (for an ST model's language model) instead of
    /// English.
    #[arg(long)]
    pub german: bool,
    #[command(flatten)]
    pub packages: PackageArgs,
}

/// Where the Debian packages go and which of them.
#[derive(Debug, clap::Args)]
pub struct PackageArgs {
    /// Work directory: downloaded packages, unpacked catalogs, text.tsv
    /// (default: $HOME/.cache/mtla-st/debian-en-de).
    #[arg(long)]
    pub work: Option<PathBuf>,
    /// Package tiers: 1 = UI/help catalogs + Ding (~80 MB), 2 = + Wesnoth campaigns (~130 MB),
    /// 3 = + large game data (~700 MB). Every catalog unpacked under `<work>/root` is read,
    /// whatever tiers put it there: give other tiers their own `--work`, or later runs of tiers
    /// 1-2 there read them too.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub tiers: Vec<u8>,
}

impl PackageArgs {
    /// `--work`, or `$HOME/.cache/mtla-st/debian-en-de`.
    fn work_dir(&self) -> anyhow::Result<PathBuf> {
        match &self.work {
            Some(w) => Ok(w.clone()),
            None => Ok(std::env::var_os("HOME")
                .map(PathBuf::from)
                .context("no $HOME for the default --work directory; pass --work")?
                .join(".cache/mtla-st/debian-en-de")),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct CorpusBuildArgs {
    /// Output directory (manifests and audio/).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub packages: PackageArgs,
    /// Utterances in all (80% train, 10% dev, 10% test unless --n-dev/--n-test); 0 = every pair.
    #[arg(long, default_value_t = 2000)]
    pub n: usize,
    /// Dev utterances (default: 10% of --n).
    #[arg(long)]
    pub n_dev: Option<usize>,
    /// Test utterances (default: 10% of --n).
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Fewest words of a sentence (normalised English).
    #[arg(long, default_value_t = 3)]
    pub min_words: usize,
    /// Most words of a sentence.
    #[arg(long, default_value_t = 30)]
    pub max_words: usize,
    /// Only sentences whose every English and German word occurs this often in the whole text
    /// corpus (a small vocabulary for demos); 0 = any.
    #[arg(long, default_value_t = 0)]
    pub min_word_count: usize,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "espeak,flite,festival,freetts"
    )]
    pub engines: Vec<Engine>,
    /// Parallel synthesis jobs (TTS is CPU heavy).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// No per-utterance pitch/tempo shift of the recorded voices.
    #[arg(long)]
    pub no_augment: bool,
    /// Audio container: flac (lossless), ogg (Vorbis, ~6x smaller; used for the committed demo), wav.
    #[arg(long, default_value = "flac")]
    pub format: AudioFormat,
    /// Vorbis quality for --format ogg (-1..10).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    pub ogg_quality: i32,
    /// Install the TTS engines and sox with apt-get first (Debian, as root).
    #[arg(long)]
    pub install_tools: bool,
    /// Dropped utterances listed individually.
    #[arg(long, default_value_t = data::SHOW_ISSUES)]
    pub show_issues: usize,
    #[arg(long)]
    pub quiet: bool,
}

impl CorpusBuildArgs {
    fn selection(&self) -> Selection {
        let (dev, test, train) = if self.n == 0 {
            (None, None, None)
        } else {
            let dev = self.n_dev.unwrap_or(self.n / 10);
            let test = self.n_test.unwrap_or(self.n / 10);
            (
                Some(dev),
                Some(test),
                Some(self.n.saturating_sub(dev + test)),
            )
        };
        Selection {
            train,
            dev,
            test,
            min_words: self.min_words,
            max_words: self.max_words,
            min_word_count: self.min_word_count,
        }
    }
}

/// Runs `mtla-st corpus ...`.
pub fn run(cmd: CorpusCommand) -> anyhow::Result<()> {
    match cmd {
        CorpusCommand::Build(args) => {
            let opts = CorpusOptions {
                out: args.out.clone(),
                work: args.packages.work_dir()?,
                tiers: args.packages.tiers.clone(),
                selection: args.selection(),
                engines: args.engines.clone(),
                jobs: args.jobs,
                augment: !args.no_augment,
                format: args.format,
                ogg_quality: args.ogg_quality,
                install_tools: args.install_tools,
                progress: !args.quiet,
            };
            let report = build_corpus(&opts)
                .with_context(|| format!("building the corpus in {}", args.out.display()))?;
            print_issues(&report.issues, args.show_issues);
            eprintln!("{report}");
            Ok(())
        }
        CorpusCommand::LmText(args) => {
            let work = args.packages.work_dir()?;
            let debs =
                debian::download(&debian::packages(&args.packages.tiers)?, &work.join("debs"))?;
            let root = work.join("root");
            debian::unpack(&debs, &root)?;
            let language = match args.german {
                true => LmLanguage::German,
                false => LmLanguage::English,
            };
            let (sentences, stats) = lm_text(&root, language)?;
            anyhow::ensure!(
                !sentences.is_empty(),
                "no {language:?} sentence in the catalogs under {}",
                root.display()
            );
            write_lm_text(&args.out, &sentences)?;
            eprintln!("{stats}\nwrote {}", args.out.display());
            Ok(())
        }
    }
}
