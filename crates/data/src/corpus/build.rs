//! `build_corpus`: packages -> text -> selection -> speech -> manifests. Every step can be rerun:
//! downloads and unpacked packages are kept in the work directory, audio that exists is not
//! synthesised again (each file appears whole, by rename), manifests are written atomically.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use fbank::{FrameOptions, WavOptions};
use rayon::prelude::*;

use super::ding::{ding_pairs, DingStats};
use super::gettext::{gettext_pairs, GettextStats};
use super::select::{select, Selection};
use super::text::{build_text, write_text_tsv, Split, TextPair, TextStats};
use super::tts::{check_tools, synthesize, Engine, Voice, APT_PACKAGES};
use super::{batch, debian, run_command, RawPair};
use crate::audio::{decode, AudioRef, Decoded};
use crate::error::DataError;
use crate::issue::{IssueKind, IssueLog, RowIssue};
use crate::manifest::{Manifest, ManifestRow};
use crate::prepare::{MAX_FRAMES, MIN_FRAMES};
use crate::progress::Progress;

/// Container of the synthesised audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// Lossless, about half the size of WAV.
    Flac,
    /// Ogg Vorbis (lossy, about a sixth of FLAC at quality 0): for committed demo data.
    Ogg,
    Wav,
}

impl AudioFormat {
    pub fn extension(self) -> &'static str {
        match self {
            AudioFormat::Flac => "flac",
            AudioFormat::Ogg => "ogg",
            AudioFormat::Wav => "wav",
        }
    }
}

impl FromStr for AudioFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "flac" => Ok(AudioFormat::Flac),
            "ogg" => Ok(AudioFormat::Ogg),
            "wav" => Ok(AudioFormat::Wav),
            _ => Err(format!("unknown audio format {s:?} (flac, ogg, wav)")),
        }
    }
}

/// How to build the corpus.
#[derive(Debug, Clone, PartialEq)]
pub struct CorpusOptions {
    /// Where the manifests (`train.tsv`, `dev.tsv`, `test.tsv`) and `audio/` go.
    pub out: PathBuf,
    /// Downloads, unpacked packages, `text.tsv` and temporary files.
    pub work: PathBuf,
    /// Package tiers (see [`debian::packages`]).
    pub tiers: Vec<u8>,
    pub selection: Selection,
    pub engines: Vec<Engine>,
    /// Parallel synthesis jobs.
    pub jobs: usize,
    /// Pitch and tempo shifts of the recorded voices.
    pub augment: bool,
    pub format: AudioFormat,
    /// Vorbis quality (-1..10) for [`AudioFormat::Ogg`].
    pub ogg_quality: i32,
    /// Install the TTS engines and sox with apt-get first.
    pub install_tools: bool,
    pub progress: bool,
}

/// What a build did.
#[derive(Debug, Clone, Default)]
pub struct CorpusReport {
    pub gettext: GettextStats,
    pub ding: DingStats,
    pub text: TextStats,
    /// Sentence pairs in the text corpus, per split (train, dev, test).
    pub pairs: [usize; 3],
    /// Utterances in the manifests and their hours of audio, per split.
    pub utterances: [usize; 3],
    pub hours: [f64; 3],
    pub synthesized: usize,
    pub reused: usize,
    /// Utterances left out (synthesis failed, audio too short or long).
    pub issues: IssueLog,
    pub synthesis_seconds: f64,
    pub total_seconds: f64,
}

impl fmt::Display for CorpusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.gettext;
        writeln!(
            f,
            "gettext: {} catalogs, {} messages, {} candidates, {} rejected (en), {} rejected (de), {} duplicates",
            g.catalogs, g.entries, g.candidates, g.rejected_en, g.rejected_de, g.duplicates
        )?;
        writeln!(
            f,
            "ding: {} entries, {} sentences kept",
            self.ding.entries, self.ding.kept
        )?;
        let t = &self.text;
        writeln!(
            f,
            "text: {} pairs in, kept train/dev/test {}/{}/{} (not a sentence {}, bad chars {}, code {}, all caps {}, length {}, duplicates {})",
            t.input, self.pairs[0], self.pairs[1], self.pairs[2], t.not_sentence, t.bad_chars, t.code,
            t.allcaps, t.length, t.duplicates
        )?;
        for (i, split) in Split::ALL.iter().enumerate() {
            writeln!(
                f,
                "{split}: {} utterances, {:.3} h",
                self.utterances[i], self.hours[i]
            )?;
        }
        write!(
            f,
            "audio: {} synthesised in {:.1} s, {} reused; {} left out ({}); total {:.1} s",
            self.synthesized,
            self.synthesis_seconds,
            self.reused,
            self.issues.len(),
            self.issues.summary(),
            self.total_seconds
        )
    }
}

/// The parallel pairs of the catalogs and the Ding dictionary unpacked under `root`, catalogs
/// first, before the corpus-wide filters ([`build_text`]); the dictionary's counts stay at their
/// defaults when it is not there.
pub fn parallel_pairs(root: &Path) -> Result<(Vec<RawPair>, GettextStats, DingStats), DataError> {
    let (mut pairs, gettext) = gettext_pairs(root)?;
    let mut ding = DingStats::default();
    let ding_file = root.join("usr/share/trans/de-en");
    if ding_file.exists() {
        let (more, stats) = ding_pairs(&ding_file)?;
        pairs.extend(more);
        ding = stats;
    }
    Ok((pairs, gettext, ding))
}

/// Builds (or completes) the corpus described by `opts`.
pub fn build_corpus(opts: &CorpusOptions) -> Result<CorpusReport, DataError> {
    let start = Instant::now();
    let mut report = CorpusReport::default();
    if opts.engines.is_empty() {
        return Err(DataError::Invalid("no TTS engine chosen".into()));
    }
    if opts.install_tools {
        run_command(
            std::process::Command::new("apt-get")
                .args(["install", "-y", "--no-install-recommends"])
                .args(APT_PACKAGES)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )?;
    }
    check_tools(&opts.engines)?;

    // 1-2. Packages.
    let debs = debian::download(&debian::packages(&opts.tiers)?, &opts.work.join("debs"))?;
    let root = opts.work.join("root");
    debian::unpack(&debs, &root)?;

    // 3. Parallel text.
    let (pairs, gettext, ding) = parallel_pairs(&root)?;
    report.gettext = gettext;
    report.ding = ding;
    let (text, stats) = build_text(pairs);
    report.text = stats;
    for (i, split) in Split::ALL.iter().enumerate() {
        report.pairs[i] = text.iter().filter(|p| p.split == *split).count();
    }
    let text_tsv = opts.work.join("text.tsv");
    write_text_tsv(&text_tsv, &text)?;
    let line_of: HashMap<&str, usize> = text
        .iter()
        .enumerate()
        .map(|(i, p)| (p.id.as_str(), i + 2))
        .collect();

    // 4. Speech.
    let chosen = select(&text, &opts.selection);
    let audio_dir = opts.out.join("audio");
    std::fs::create_dir_all(&audio_dir).map_err(|e| DataError::io(&audio_dir, e))?;
    let ext = opts.format.extension();
    let audio_of = |p: &TextPair| audio_dir.join(format!("{}.{ext}", p.id));
    let todo: Vec<&TextPair> = chosen
        .iter()
        .copied()
        .filter(|p| !audio_of(p).exists())
        .collect();
    report.reused = chosen.len() - todo.len();
    let synth_start = Instant::now();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.jobs.max(1))
        .build()
        .map_err(|e| DataError::Invalid(format!("thread pool: {e}")))?;
    let tmp_root = opts.work.join("tmp");
    render_batches(&todo, &tmp_root, &pool, opts);
    let progress = Progress::new("synthesis", todo.len(), opts.progress);
    let results: Vec<(&str, Result<Voice, DataError>)> = pool.install(|| {
        todo.par_iter()
            .map(|p| {
                let r = speak(p, &audio_of(p), &tmp_root.join(&p.id), opts);
                progress.inc(1);
                (p.id.as_str(), r)
            })
            .collect()
    });
    progress.finish();
    report.synthesis_seconds = synth_start.elapsed().as_secs_f64();
    let mut voices = HashMap::new();
    for (id, r) in results {
        match r {
            Ok(v) => {
                report.synthesized += 1;
                voices.insert(id, v);
            }
            Err(e) => report.issues.issues.push(RowIssue {
                file: text_tsv.clone(),
                line: line_of[id],
                kind: IssueKind::UnreadableAudio,
                message: format!("{id}: synthesis failed: {e}"),
            }),
        }
    }

    // 5. Manifests.
    let frame = FrameOptions::default();
    let rows: Vec<(Split, Result<ManifestRow, RowIssue>)> = chosen
        .par_iter()
        .filter(|p| audio_of(p).exists())
        .map(|p| {
            let voice = voices
                .get(p.id.as_str())
                .cloned()
                .unwrap_or_else(|| Voice::pick(&p.id, &opts.engines));
            (
                p.split,
                manifest_row(
                    p,
                    audio_of(p),
                    &voice,
                    &frame,
                    &text_tsv,
                    line_of[p.id.as_str()],
                ),
            )
        })
        .collect();
    let mut per_split: [Vec<ManifestRow>; 3] = Default::default();
    for (split, row) in rows {
        match row {
            Ok(r) => per_split[split as usize].push(r),
            Err(issue) => report.issues.issues.push(issue),
        }
    }
    for (i, split) in Split::ALL.iter().enumerate() {
        let rows = &per_split[i];
        if rows.is_empty() {
            continue;
        }
        report.utterances[i] = rows.len();
        report.hours[i] = rows.iter().map(|r| r.n_frames as f64).sum::<f64>() / 360_000.0;
        Manifest::write(&opts.out.join(format!("{split}.tsv")), rows)?;
    }
    report.total_seconds = start.elapsed().as_secs_f64();
    Ok(report)
}

/// Speaks the training utterances of `todo` whose engine can batch them ([`batch::renderer`])
/// [`batch::BATCH`] to a process, one engine and voice per batch (each raw output is then in
/// its temporary directory, which [`speak`] finds, also after an interrupted build); a batch
/// that fails leaves its unfinished utterances to [`speak`], which says why. Dev and test stay
/// one process per file, so they are byte for byte what they were in earlier builds: in a long
/// festival process a few utterances end slightly differently (2 of 204 measured, in their last
/// samples), which training does not mind but comparing a rebuilt test set with an earlier one
/// would.
fn render_batches(
    todo: &[&TextPair],
    tmp_root: &Path,
    pool: &rayon::ThreadPool,
    opts: &CorpusOptions,
) {
    let mut groups: BTreeMap<(Engine, &str), (batch::Render, Vec<&TextPair>)> = BTreeMap::new();
    for p in todo.iter().filter(|p| p.split == Split::Train) {
        if let Voice::Recorded { engine, voice, .. } = Voice::pick(&p.id, &opts.engines) {
            // An utterance that a batch of an interrupted build finished is not spoken again.
            if batch::done(&tmp_root.join(&p.id), voice).exists() {
                continue;
            }
            if let Some(render) = batch::renderer(engine, &p.en) {
                groups
                    .entry((engine, voice))
                    .or_insert((render, Vec::new()))
                    .1
                    .push(*p);
            }
        }
    }
    let batches: Vec<(batch::Render, &str, &[&TextPair])> = groups
        .iter()
        .flat_map(|((_, voice), (render, pairs))| {
            pairs
                .chunks(batch::BATCH)
                .map(move |chunk| (*render, *voice, chunk))
        })
        .collect();
    let total = batches.iter().map(|(_, _, chunk)| chunk.len()).sum();
    let progress = Progress::new("batched synthesis", total, opts.progress);
    pool.install(|| {
        batches.par_iter().for_each(|(render, voice, chunk)| {
            let items: Vec<batch::Item> = chunk
                .iter()
                .map(|p| batch::Item {
                    text: &p.en,
                    voice,
                    tmp: tmp_root.join(&p.id),
                })
                .collect();
            let work = tmp_root.join(format!("batch-{}", chunk[0].id));
            // A failed batch is not an error: `speak` redoes what it left.
            let _ = render(&items, &work);
            let _ = std::fs::remove_dir_all(&work);
            progress.inc(chunk.len() as u64);
        })
    });
    progress.finish();
}

/// Synthesises one utterance into `dst` (through a temporary name and a rename), falling back
/// to plain flite when the chosen engine fails; returns the voice used.
fn speak(p: &TextPair, dst: &Path, tmp: &Path, opts: &CorpusOptions) -> Result<Voice, DataError> {
    std::fs::create_dir_all(tmp).map_err(|e| DataError::io(tmp, e))?;
    let ext = opts.format.extension();
    let part = dst.with_extension(format!("part.{ext}"));
    let voice = Voice::pick(&p.id, &opts.engines);
    let run = |v: &Voice| synthesize(&p.en, v, &part, tmp, opts.augment, opts.ogg_quality);
    let used = match run(&voice) {
        Ok(()) => voice,
        Err(e) => {
            eprintln!(
                "synthesis of {} with {voice} failed ({e}); falling back to flite",
                p.id
            );
            let fallback = Voice::fallback();
            run(&fallback)?;
            fallback
        }
    };
    std::fs::rename(&part, dst).map_err(|e| DataError::io(dst, e))?;
    // Best effort: the temporary directory only held the raw engine output.
    let _ = std::fs::remove_dir_all(tmp);
    Ok(used)
}

/// The manifest row of a synthesised utterance, or why it is left out (fairseq's limits).
fn manifest_row(
    p: &TextPair,
    audio: PathBuf,
    voice: &Voice,
    frame: &FrameOptions,
    text_tsv: &Path,
    line: usize,
) -> Result<ManifestRow, RowIssue> {
    let issue = |kind, message: String| RowIssue {
        file: text_tsv.to_path_buf(),
        line,
        kind,
        message: format!("{}: {message}", p.id),
    };
    let audio = AudioRef::file(audio);
    let n_frames = match decode(&audio, &WavOptions::default()) {
        Ok(Decoded::Wave(w)) => frame.num_frames(w.samples.len()),
        Ok(Decoded::Features(f)) => f.frames,
        Err(e) => return Err(issue(IssueKind::of_audio_error(&e), e.to_string())),
    };
    if n_frames < MIN_FRAMES {
        return Err(issue(IssueKind::TooShort, format!("{n_frames} frames")));
    }
    if n_frames > MAX_FRAMES {
        return Err(issue(IssueKind::TooLong, format!("{n_frames} frames")));
    }
    Ok(ManifestRow {
        line: 0,
        id: p.id.clone(),
        audio,
        n_frames,
        tgt_text: p.de.clone(),
        speaker: voice.to_string(),
        src_text: Some(p.en.clone()),
    })
}
