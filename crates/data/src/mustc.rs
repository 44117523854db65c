//! MuST-C style releases: `data/<split>/wav/<talk>.wav` (whole talks),
//! `data/<split>/txt/<split>.yaml` (one segment per line: `- {duration: 3.5, offset: 16.58,
//! speaker_id: spk.767, wav: ted_767.wav}`) and `<split>.<lang>` (one line per segment).
//! Segments are cut into one pack file of complete WAVs per split, referenced from the manifest
//! as `path:offset:length` (fairseq's layout for zipped audio), ids `<talk>_<i>` as fairseq's.

use std::collections::HashMap;
use std::io::{BufWriter, Cursor, Write};
use std::path::{Path, PathBuf};

use fbank::{read_wav, Audio, FrameOptions, WavOptions};
use rayon::prelude::*;

use super::audio::AudioRef;
use super::error::DataError;
use super::issue::{IssueKind, IssueLog, RowIssue};
use super::manifest::{Manifest, ManifestRow};
use super::prepare::{PrepareOptions, PrepareReport};
use super::progress::Progress;

/// A cut segment (row and WAV bytes), or why it was dropped.
type Cut = Result<(ManifestRow, Vec<u8>), RowIssue>;

/// One segment of the yaml file.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// 1-based line in the yaml file.
    pub line: usize,
    pub wav: String,
    pub offset: f64,
    pub duration: f64,
    pub speaker: String,
}

/// Reads a MuST-C segment list (a yaml sequence of one-line flow mappings).
pub fn read_segments(path: &Path) -> Result<Vec<Segment>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|e| DataError::io(path, e))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l == "---" {
            continue;
        }
        let bad = |reason: &str| DataError::format(path, line_no, reason.to_string());
        let body = l
            .strip_prefix('-')
            .map(str::trim)
            .and_then(|b| b.strip_prefix('{'))
            .and_then(|b| b.strip_suffix('}'))
            .ok_or_else(|| bad("expected a segment `- {duration: .., offset: .., wav: ..}`"))?;
        let mut fields = HashMap::new();
        for item in body.split(',') {
            let (k, v) = item
                .split_once(':')
                .ok_or_else(|| bad(&format!("{:?} is not `key: value`", item.trim())))?;
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'');
            fields.insert(k.trim(), v.to_string());
        }
        let number = |key: &str| -> Result<f64, DataError> {
            let v = fields.get(key).ok_or_else(|| bad(&format!("no {key}")))?;
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| bad(&format!("{key} {v:?} is not a non-negative number")))
        };
        out.push(Segment {
            line: line_no,
            wav: fields.get("wav").cloned().ok_or_else(|| bad("no wav"))?,
            offset: number("offset")?,
            duration: number("duration")?,
            speaker: fields.get("speaker_id").cloned().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Reads one line per segment of a text file.
fn read_lines(path: &Path, expected: usize) -> Result<Vec<String>, DataError> {
    let text = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let text = String::from_utf8(text).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        DataError::format(path, line, "invalid UTF-8")
    })?;
    let lines: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
    if lines.len() != expected {
        return Err(DataError::format(
            path,
            0,
            format!(
                "{} lines but the yaml lists {expected} segments",
                lines.len()
            ),
        ));
    }
    Ok(lines)
}

/// Prepares one split of a MuST-C release at `root` (the directory holding `data/`) into
/// `out_dir/<split>.tsv` and `out_dir/<split>_audio.bin`. Skips a split whose manifest exists
/// unless `force`. Both files appear whole (temporary files + rename): an interrupted run is
/// simply rerun. Long segments are dropped only from training splits, as in fairseq.
pub fn prepare_mustc(
    root: &Path,
    split: &str,
    src_lang: &str,
    tgt_lang: &str,
    out_dir: &Path,
    opts: &PrepareOptions,
    force: bool,
) -> Result<PrepareReport, DataError> {
    let manifest = out_dir.join(format!("{split}.tsv"));
    let pack = out_dir.join(format!("{split}_audio.bin"));
    if manifest.exists() && pack.exists() && !force {
        return Ok(PrepareReport::reused(&manifest));
    }
    let txt = root.join("data").join(split).join("txt");
    let wav_dir = root.join("data").join(split).join("wav");
    let yaml = txt.join(format!("{split}.yaml"));
    let segments = read_segments(&yaml)?;
    let src = read_lines(&txt.join(format!("{split}.{src_lang}")), segments.len())?;
    let tgt = read_lines(&txt.join(format!("{split}.{tgt_lang}")), segments.len())?;
    let opts = PrepareOptions {
        max_frames: opts.max_frames.filter(|_| split.starts_with("train")),
        ..opts.clone()
    };

    // Segments grouped by talk, in order of first appearance.
    let mut talks: Vec<(String, Vec<usize>)> = Vec::new();
    let mut talk_index = HashMap::new();
    for (i, s) in segments.iter().enumerate() {
        let t = *talk_index.entry(s.wav.clone()).or_insert_with(|| {
            talks.push((s.wav.clone(), Vec::new()));
            talks.len() - 1
        });
        talks[t].1.push(i);
    }

    std::fs::create_dir_all(out_dir).map_err(|e| DataError::io(out_dir, e))?;
    let tmp_pack = pack.with_extension(format!("bin.tmp{}", std::process::id()));
    let job = Job {
        split,
        segments: &segments,
        src: &src,
        tgt: &tgt,
        yaml: &yaml,
        wav_dir: &wav_dir,
        pack: &pack,
        opts: &opts,
    };
    let (rows, issues) = match write_pack(&job, &talks, &tmp_pack) {
        Ok(done) => done,
        Err(e) => {
            // Best effort: the error matters more than a leftover temporary file.
            let _ = std::fs::remove_file(&tmp_pack);
            return Err(e);
        }
    };
    std::fs::rename(&tmp_pack, &pack).map_err(|e| DataError::io(&pack, e))?;
    Manifest::write(&manifest, &rows)?;
    Ok(PrepareReport::new(&manifest, &rows, issues))
}

/// Everything one split's segments are cut from.
struct Job<'a> {
    split: &'a str,
    segments: &'a [Segment],
    src: &'a [String],
    tgt: &'a [String],
    yaml: &'a Path,
    wav_dir: &'a Path,
    /// Final name of the pack (what the manifest refers to).
    pack: &'a Path,
    opts: &'a PrepareOptions,
}

/// Cuts every talk's segments into `tmp_pack` (synced to disk), returning the rows with their
/// slices of the pack and the dropped segments.
fn write_pack(
    job: &Job,
    talks: &[(String, Vec<usize>)],
    tmp_pack: &Path,
) -> Result<(Vec<ManifestRow>, IssueLog), DataError> {
    let opts = job.opts;
    let file = std::fs::File::create(tmp_pack).map_err(|e| DataError::io(tmp_pack, e))?;
    let mut writer = BufWriter::new(file);
    let mut written = 0u64;
    let mut rows = Vec::new();
    let mut issues = IssueLog::default();
    let wav_opts = WavOptions {
        channel: None,
        expected_rate: Some(opts.sample_rate),
        resample: opts.resample,
    };
    let label = format!("MuST-C {}", job.split);
    let progress = Progress::new(&label, job.segments.len(), opts.progress);
    // A few talks at a time in parallel, written in order, so memory stays bounded.
    for group in talks.chunks(2 * rayon::current_num_threads()) {
        let cut: Vec<Vec<Cut>> = group
            .par_iter()
            .map(|(wav, idx)| {
                let talk = read_wav(job.wav_dir.join(wav), &wav_opts).map_err(DataError::from);
                let stem = wav.strip_suffix(".wav").unwrap_or(wav);
                let out = idx
                    .iter()
                    .enumerate()
                    .map(|(k, &i)| segment(&talk, i, &format!("{stem}_{k}"), job))
                    .collect();
                progress.inc(idx.len() as u64);
                out
            })
            .collect();
        for r in cut.into_iter().flatten() {
            match r {
                Ok((mut row, bytes)) => {
                    writer
                        .write_all(&bytes)
                        .map_err(|e| DataError::io(tmp_pack, e))?;
                    row.audio = AudioRef {
                        path: job.pack.to_path_buf(),
                        slice: Some((written, bytes.len() as u64)),
                    };
                    written += bytes.len() as u64;
                    rows.push(row);
                }
                Err(issue) => issues.record(issue, opts.bad_rows)?,
            }
        }
    }
    progress.finish();
    let file = writer
        .into_inner()
        .map_err(|e| DataError::io(tmp_pack, e.into_error()))?;
    file.sync_all().map_err(|e| DataError::io(tmp_pack, e))?;
    Ok((rows, issues))
}

/// Cuts one segment out of its talk as a 16-bit WAV and checks it; the row's audio is set by
/// the caller once the bytes have a place in the pack.
fn segment(talk: &Result<Audio, DataError>, i: usize, id: &str, job: &Job) -> Cut {
    let (seg, src, tgt, opts) = (&job.segments[i], &job.src[i], &job.tgt[i], job.opts);
    let issue = |kind, message: String| RowIssue {
        file: job.yaml.to_path_buf(),
        line: seg.line,
        kind,
        message: format!("{id}: {message}"),
    };
    let talk = talk
        .as_ref()
        .map_err(|e| issue(IssueKind::of_audio_error(e), e.to_string()))?;
    if tgt.is_empty() {
        return Err(issue(IssueKind::EmptyText, "empty translation".into()));
    }
    if src.is_empty() {
        return Err(issue(IssueKind::EmptyText, "empty transcript".into()));
    }
    let rate = talk.sample_rate as f64;
    let start = (seg.offset * rate) as usize;
    let end = start + (seg.duration * rate) as usize;
    if end > talk.samples.len() {
        let msg = format!(
            "segment {:.2}+{:.2} s runs past the end of {} ({:.2} s)",
            seg.offset,
            seg.duration,
            seg.wav,
            talk.duration_s()
        );
        return Err(issue(IssueKind::UnreadableAudio, msg));
    }
    let samples = &talk.samples[start..end];
    let frame = FrameOptions {
        samp_freq: talk.sample_rate as f32,
        ..FrameOptions::default()
    };
    let n_frames = if samples.is_empty() {
        0
    } else {
        frame.num_frames(samples.len())
    };
    if n_frames < opts.min_frames {
        let msg = format!("{n_frames} frames < {}", opts.min_frames);
        return Err(issue(IssueKind::TooShort, msg));
    }
    if let Some(max) = opts.max_frames.filter(|&m| n_frames > m) {
        return Err(issue(
            IssueKind::TooLong,
            format!("{n_frames} frames > {max}"),
        ));
    }
    let row = ManifestRow {
        line: seg.line,
        id: id.to_string(),
        audio: AudioRef::file(PathBuf::new()),
        n_frames,
        tgt_text: tgt.to_string(),
        speaker: seg.speaker.clone(),
        src_text: Some(src.to_string()),
    };
    Ok((row, wav_bytes(samples, talk.sample_rate)))
}

/// A 16-bit mono WAV file of int16-scale samples.
pub fn wav_bytes(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = Cursor::new(Vec::with_capacity(44 + 2 * samples.len()));
    let mut w = hound::WavWriter::new(&mut cursor, spec).expect("in-memory WAV header");
    for &s in samples {
        let v = s.round().clamp(i16::MIN as f32, i16::MAX as f32) as i16;
        w.write_sample(v).expect("in-memory WAV write");
    }
    w.finalize().expect("in-memory WAV finalize");
    cursor.into_inner()
}
