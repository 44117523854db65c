//! Building manifests from audio plus text: validation of every row (audio present and
//! decodable at the right rate, text not empty, length within fairseq's limits) with a report of
//! what was dropped and why, and the "directory of WAVs + TSV of id, transcript, translation" input.

use std::fmt;
use std::path::{Path, PathBuf};

use fbank::{FrameOptions, WavOptions};
use rayon::prelude::*;

use super::audio::{decode, AudioRef, Decoded};
use super::error::DataError;
use super::issue::{BadRows, IssueKind, IssueLog, RowIssue};
use super::manifest::{Manifest, ManifestRow};
use super::progress::Progress;

/// fairseq's `filter_manifest_df`: fewer frames than this is no speech.
pub const MIN_FRAMES: usize = 5;
/// fairseq's `filter_manifest_df` (training splits): more frames than this is too long.
pub const MAX_FRAMES: usize = 3000;

/// How to validate prepared rows.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareOptions {
    pub min_frames: usize,
    /// `None`: no upper bound (fairseq bounds training splits only).
    pub max_frames: Option<usize>,
    pub bad_rows: BadRows,
    /// Expected sample rate of the audio.
    pub sample_rate: u32,
    /// Accept other rates (features will be computed after resampling).
    pub resample: bool,
    pub progress: bool,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        Self {
            min_frames: MIN_FRAMES,
            max_frames: Some(MAX_FRAMES),
            bad_rows: BadRows::Skip,
            sample_rate: 16_000,
            resample: false,
            progress: true,
        }
    }
}

/// What a preparation wrote and dropped.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepareReport {
    pub manifest: PathBuf,
    pub rows: usize,
    pub hours: f64,
    pub issues: IssueLog,
    /// True when the manifest already existed and nothing was done.
    pub reused: bool,
}

impl fmt::Display for PrepareReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reused {
            return write!(
                f,
                "{}: already prepared (use --force to redo)",
                self.manifest.display()
            );
        }
        write!(
            f,
            "{}: {} utterances, {:.2} h; dropped {} ({})",
            self.manifest.display(),
            self.rows,
            self.hours,
            self.issues.len(),
            self.issues.summary()
        )
    }
}

impl PrepareReport {
    /// The report of `rows` written to `manifest`, after dropping `issues`.
    pub(crate) fn new(manifest: &Path, rows: &[ManifestRow], issues: IssueLog) -> Self {
        Self {
            manifest: manifest.to_path_buf(),
            rows: rows.len(),
            hours: rows.iter().map(|r| r.n_frames).sum::<usize>() as f64 / 360_000.0,
            issues,
            reused: false,
        }
    }

    /// The report for a manifest that already existed.
    pub(crate) fn reused(manifest: &Path) -> Self {
        Self {
            manifest: manifest.to_path_buf(),
            rows: 0,
            hours: 0.0,
            issues: IssueLog::default(),
            reused: true,
        }
    }
}

/// A row to validate and the file (and line) it comes from, for reports.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub row: ManifestRow,
    pub source: PathBuf,
}

/// Decodes every candidate's audio (all cores) to count its frames, and keeps the rows that
/// pass: audio readable at the expected rate, texts not empty, frames within the limits.
/// Returns the kept rows in input order and the dropped ones with their reasons.
pub fn validate(
    candidates: Vec<Candidate>,
    opts: &PrepareOptions,
    label: &str,
) -> Result<(Vec<ManifestRow>, IssueLog), DataError> {
    let wav = WavOptions {
        channel: None,
        expected_rate: Some(opts.sample_rate),
        resample: opts.resample,
    };
    let frame = FrameOptions {
        samp_freq: opts.sample_rate as f32,
        ..FrameOptions::default()
    };
    let progress = Progress::new(label, candidates.len(), opts.progress);
    let checked: Vec<Result<ManifestRow, RowIssue>> = candidates
        .into_par_iter()
        .map(|c| {
            let r = check(c, &wav, &frame, opts);
            progress.inc(1);
            r
        })
        .collect();
    progress.finish();
    let mut rows = Vec::with_capacity(checked.len());
    let mut issues = IssueLog::default();
    for r in checked {
        match r {
            Ok(row) => rows.push(row),
            Err(issue) => issues.record(issue, opts.bad_rows)?,
        }
    }
    Ok((rows, issues))
}

fn check(
    c: Candidate,
    wav: &WavOptions,
    frame: &FrameOptions,
    opts: &PrepareOptions,
) -> Result<ManifestRow, RowIssue> {
    let Candidate { mut row, source } = c;
    let issue = |kind, message: String| RowIssue {
        file: source.clone(),
        line: row.line,
        kind,
        message: format!("{}: {message}", row.id),
    };
    // A transcript-only (ASR) or translation-only row is kept: the task picks the target side.
    row.src_text = row.src_text.filter(|s| !s.trim().is_empty());
    if row.tgt_text.trim().is_empty() && row.src_text.is_none() {
        return Err(issue(
            IssueKind::EmptyText,
            "empty transcript and translation".into(),
        ));
    }
    row.n_frames = match decode(&row.audio, wav) {
        Ok(Decoded::Wave(w)) => frame.num_frames(w.samples.len()),
        Ok(Decoded::Features(f)) => f.frames,
        Err(e) => return Err(issue(IssueKind::of_audio_error(&e), e.to_string())),
    };
    if row.n_frames < opts.min_frames {
        let msg = format!("{} frames < {}", row.n_frames, opts.min_frames);
        return Err(issue(IssueKind::TooShort, msg));
    }
    if let Some(max) = opts.max_frames.filter(|&m| row.n_frames > m) {
        return Err(issue(
            IssueKind::TooLong,
            format!("{} frames > {max}", row.n_frames),
        ));
    }
    Ok(row)
}

/// Builds `out` (a manifest) from `table` (TSV: `id`, transcript[, translation]; a first line
/// starting with `id\t` is a header) and the audio `audio_dir/<id>.{wav,flac,ogg}`. Either text
/// may be empty (an ASR table has no translations), not both.
pub fn prepare_wav_dir(
    audio_dir: &Path,
    table: &Path,
    out: &Path,
    opts: &PrepareOptions,
) -> Result<PrepareReport, DataError> {
    let bytes = std::fs::read(table).map_err(|e| DataError::io(table, e))?;
    let mut issues = IssueLog::default();
    let mut candidates = Vec::new();
    for (i, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = i + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let issue = |kind, message: String| RowIssue {
            file: table.to_path_buf(),
            line,
            kind,
            message,
        };
        if raw.is_empty() {
            continue;
        }
        let Ok(text) = std::str::from_utf8(raw) else {
            issues.record(
                issue(IssueKind::NotUtf8, "invalid UTF-8".into()),
                opts.bad_rows,
            )?;
            continue;
        };
        if line == 1 && text.starts_with("id\t") {
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        let (id, transcript, translation) = match fields[..] {
            [id, transcript] => (id, transcript, ""),
            [id, transcript, translation] => (id, transcript, translation),
            _ => {
                let msg = format!(
                    "{} columns, expected 2 or 3 (id, transcript[, translation])",
                    fields.len()
                );
                issues.record(issue(IssueKind::Malformed, msg), opts.bad_rows)?;
                continue;
            }
        };
        let id = id.trim();
        if id.is_empty() {
            issues.record(
                issue(IssueKind::Malformed, "empty id".into()),
                opts.bad_rows,
            )?;
            continue;
        }
        let audio = ["wav", "flac", "ogg"]
            .iter()
            .map(|ext| audio_dir.join(format!("{id}.{ext}")))
            .find(|p| p.exists())
            .unwrap_or_else(|| audio_dir.join(format!("{id}.wav")));
        candidates.push(Candidate {
            row: ManifestRow {
                line,
                id: id.to_string(),
                audio: AudioRef::file(audio),
                n_frames: 0,
                tgt_text: translation.trim().to_string(),
                speaker: String::new(),
                src_text: Some(transcript.trim().to_string()),
            },
            source: table.to_path_buf(),
        });
    }
    let label = format!("checking {}", table.display());
    let (rows, checked) = validate(candidates, opts, &label)?;
    issues.extend(checked);
    issues.issues.sort_by_key(|i| i.line);
    Manifest::write(out, &rows)?;
    Ok(PrepareReport::new(out, &rows, issues))
}
