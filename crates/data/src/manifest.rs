//! fairseq S2T manifests: tab-separated, a header row, columns `id audio n_frames tgt_text speaker`
//! (+ `src_text`), no quoting. Extra columns are allowed and ignored; `speaker` may be absent.
//! Relative audio paths are resolved against the manifest's directory.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use super::audio::AudioRef;
use super::error::DataError;
use super::issue::{BadRows, IssueKind, IssueLog, RowIssue};

/// One utterance of a manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct ManifestRow {
    /// 1-based line in the manifest it was read from (0 for rows built in memory).
    pub line: usize,
    pub id: String,
    pub audio: AudioRef,
    /// fbank frames as the manifest states them (10 ms each).
    pub n_frames: usize,
    /// The translation (or, in an ASR manifest, the transcript).
    pub tgt_text: String,
    pub speaker: String,
    /// The transcript of the source speech, when the manifest has one.
    pub src_text: Option<String>,
}

/// The rows of a manifest that passed the checks, and the rows that did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub path: PathBuf,
    pub rows: Vec<ManifestRow>,
    pub issues: IssueLog,
}

/// Required columns, in fairseq's order.
const REQUIRED: [&str; 4] = ["id", "audio", "n_frames", "tgt_text"];

impl Manifest {
    /// Reads `path`. Structural problems of a row (not UTF-8, wrong column count, bad number,
    /// empty id or text, duplicate id) are recorded per `policy`; audio is not opened here.
    pub fn read(path: &Path, policy: BadRows) -> Result<Self, DataError> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let mut lines = bytes.split(|&b| b == b'\n').enumerate().map(|(i, l)| {
            let l = l.strip_suffix(b"\r").unwrap_or(l);
            (i + 1, l)
        });
        let bad_manifest = |reason: String| DataError::Manifest {
            path: path.to_path_buf(),
            reason,
        };
        let header = match lines.next() {
            Some((_, h)) if !h.is_empty() => std::str::from_utf8(h)
                .map_err(|_| bad_manifest("line 1: the header is not UTF-8".into()))?,
            _ => return Err(bad_manifest("empty manifest: no header row".into())),
        };
        let columns: Vec<&str> = header.split('\t').collect();
        let col = |name: &str| columns.iter().position(|c| *c == name);
        let required = REQUIRED
            .iter()
            .map(|name| {
                col(name).ok_or_else(|| {
                    bad_manifest(format!(
                        "line 1: the header has no '{name}' column (found: {})",
                        columns.join(", ")
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let [id_c, audio_c, frames_c, tgt_c] = required[..] else {
            unreachable!("four required columns")
        };
        let (speaker_c, src_c) = (col("speaker"), col("src_text"));

        let mut rows = Vec::new();
        let mut issues = IssueLog::default();
        let mut seen = HashSet::new();
        for (line, raw) in lines {
            if raw.is_empty() {
                continue;
            }
            let issue = |kind, message: String| RowIssue {
                file: path.to_path_buf(),
                line,
                kind,
                message,
            };
            let text = match std::str::from_utf8(raw) {
                Ok(t) => t,
                Err(e) => {
                    let msg = format!("invalid UTF-8 at byte {}", e.valid_up_to());
                    issues.record(issue(IssueKind::NotUtf8, msg), policy)?;
                    continue;
                }
            };
            let fields: Vec<&str> = text.split('\t').collect();
            if fields.len() != columns.len() {
                let msg = format!(
                    "{} columns where the header has {}",
                    fields.len(),
                    columns.len()
                );
                issues.record(issue(IssueKind::Malformed, msg), policy)?;
                continue;
            }
            let id = fields[id_c].trim();
            if id.is_empty() {
                issues.record(issue(IssueKind::Malformed, "empty id".into()), policy)?;
                continue;
            }
            let audio = match AudioRef::parse(fields[audio_c].trim(), base) {
                Ok(a) => a,
                Err(e) => {
                    issues.record(issue(IssueKind::Malformed, format!("{id}: {e}")), policy)?;
                    continue;
                }
            };
            let Ok(n_frames) = fields[frames_c].trim().parse::<usize>() else {
                let msg = format!("{id}: n_frames {:?} is not a number", fields[frames_c]);
                issues.record(issue(IssueKind::Malformed, msg), policy)?;
                continue;
            };
            let tgt_text = fields[tgt_c].trim();
            let src_text = src_c
                .map(|c| fields[c].trim().to_string())
                .filter(|s| !s.is_empty());
            // A transcript-only (ASR) row has no translation; the task picks the side it needs.
            if tgt_text.is_empty() && src_text.is_none() {
                let msg = format!("{id}: empty tgt_text and no src_text");
                issues.record(issue(IssueKind::EmptyText, msg), policy)?;
                continue;
            }
            if !seen.insert(id.to_string()) {
                let msg = format!("{id}: the id appears on an earlier line");
                issues.record(issue(IssueKind::DuplicateId, msg), policy)?;
                continue;
            }
            rows.push(ManifestRow {
                line,
                id: id.to_string(),
                audio,
                n_frames,
                tgt_text: tgt_text.to_string(),
                speaker: speaker_c
                    .map(|c| fields[c].trim().to_string())
                    .unwrap_or_default(),
                src_text,
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            rows,
            issues,
        })
    }

    /// Writes `rows` as a manifest at `path` (atomically: temporary file + rename), with audio
    /// paths relative to the manifest's directory where possible. A `src_text` column is written
    /// when any row has a transcript. Tabs and line breaks inside texts become spaces.
    pub fn write(path: &Path, rows: &[ManifestRow]) -> Result<(), DataError> {
        let base = path.parent().unwrap_or(Path::new(""));
        let with_src = rows.iter().any(|r| r.src_text.is_some());
        let clean = |s: &str| s.replace(['\t', '\n', '\r'], " ");
        let mut out = String::from("id\taudio\tn_frames\ttgt_text\tspeaker");
        out.push_str(if with_src { "\tsrc_text\n" } else { "\n" });
        for r in rows {
            out.push_str(&format!(
                "{}\t{}\t{}\t{}\t{}",
                clean(&r.id),
                r.audio.to_manifest_string(base),
                r.n_frames,
                clean(&r.tgt_text),
                clean(&r.speaker)
            ));
            if with_src {
                out.push('\t');
                out.push_str(&clean(r.src_text.as_deref().unwrap_or("")));
            }
            out.push('\n');
        }
        super::fs::write_atomic(path, out.as_bytes())
    }
}
