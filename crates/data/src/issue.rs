//! Bad input rows: what was wrong with each, and whether such a row is skipped or fatal.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use super::error::DataError;

/// Why a row was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssueKind {
    /// The line is not valid UTF-8.
    NotUtf8,
    /// Wrong number of columns, an unparsable number or audio reference, an empty id.
    Malformed,
    /// The id was already used by an earlier row.
    DuplicateId,
    /// The target (or source) text is empty.
    EmptyText,
    /// The audio file does not exist.
    MissingAudio,
    /// The audio cannot be decoded (corrupt, truncated, unsupported, multi-channel).
    UnreadableAudio,
    /// The audio has another sample rate than the features need.
    SampleRate,
    /// Fewer fbank frames than the minimum (fairseq: 5).
    TooShort,
    /// More fbank frames than the maximum (fairseq: 3000).
    TooLong,
}

impl IssueKind {
    /// Short label for summaries.
    pub fn label(self) -> &'static str {
        match self {
            IssueKind::NotUtf8 => "not UTF-8",
            IssueKind::Malformed => "malformed",
            IssueKind::DuplicateId => "duplicate id",
            IssueKind::EmptyText => "empty text",
            IssueKind::MissingAudio => "missing audio",
            IssueKind::UnreadableAudio => "unreadable audio",
            IssueKind::SampleRate => "wrong sample rate",
            IssueKind::TooShort => "too short",
            IssueKind::TooLong => "too long",
        }
    }

    /// Classifies an audio error.
    pub fn of_audio_error(e: &DataError) -> Self {
        match e {
            DataError::Audio(fbank::FbankError::SampleRate { .. }) => IssueKind::SampleRate,
            DataError::Io { source, .. }
            | DataError::Audio(fbank::FbankError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                IssueKind::MissingAudio
            }
            _ => IssueKind::UnreadableAudio,
        }
    }
}

/// How many rejected rows a report lists by default (then a count of the rest).
pub const SHOW_ISSUES: usize = 20;

/// One rejected row: the file and 1-based line it came from, and the problem.
#[derive(Debug, Clone, PartialEq)]
pub struct RowIssue {
    pub file: PathBuf,
    pub line: usize,
    pub kind: IssueKind,
    pub message: String,
}

impl fmt::Display for RowIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.kind.label(),
            self.message
        )
    }
}

/// What to do with a bad row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BadRows {
    /// Skip it and count it (the default).
    #[default]
    Skip,
    /// Stop with an error naming the row.
    Fail,
}

/// The rows a reader or a preparation step rejected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueLog {
    pub issues: Vec<RowIssue>,
}

impl IssueLog {
    /// Records `issue`, or returns it as an error when bad rows are fatal.
    pub fn record(&mut self, issue: RowIssue, policy: BadRows) -> Result<(), DataError> {
        match policy {
            BadRows::Skip => {
                self.issues.push(issue);
                Ok(())
            }
            BadRows::Fail => Err(DataError::BadRow(issue)),
        }
    }

    /// Number of rejected rows.
    pub fn len(&self) -> usize {
        self.issues.len()
    }

    /// True when nothing was rejected.
    pub fn is_empty(&self) -> bool {
        self.issues.is_empty()
    }

    /// Count per kind, e.g. `2 missing audio, 1 too short`.
    pub fn summary(&self) -> String {
        let mut counts = BTreeMap::new();
        for i in &self.issues {
            *counts.entry(i.kind).or_insert(0usize) += 1;
        }
        if counts.is_empty() {
            return "none".into();
        }
        counts
            .iter()
            .map(|(k, n)| format!("{n} {}", k.label()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The first `show` rejected rows, one per line as `  skipped FILE:LINE: kind: message`,
    /// then how many more there are; empty when nothing was rejected.
    pub fn listing(&self, show: usize) -> String {
        let mut out: Vec<String> = self
            .issues
            .iter()
            .take(show)
            .map(|i| format!("  skipped {i}"))
            .collect();
        if self.issues.len() > show {
            out.push(format!("  ... and {} more", self.issues.len() - show));
        }
        out.join("\n")
    }

    /// `skipped N rows (summary)` and the first `show` of them with file and line.
    pub fn report(&self, show: usize) -> String {
        format!(
            "skipped {} rows ({}):\n{}",
            self.len(),
            self.summary(),
            self.listing(show)
        )
    }

    /// Appends another log.
    pub fn extend(&mut self, other: IssueLog) {
        self.issues.extend(other.issues);
    }
}
