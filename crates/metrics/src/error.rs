//! Errors of the quality metrics: unreadable or mismatched input files and undefined scores.
//! Every variant names the file(s), line or counts involved.

use std::path::PathBuf;

/// What went wrong while reading score inputs or computing a metric.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8 text; `line` (1-based) holds the first invalid byte.
    #[error("{path}: line {line} is not valid UTF-8")]
    NotUtf8 { path: PathBuf, line: usize },
    /// A reference file has a different number of lines (segments) than the hypothesis file.
    #[error(
        "{reference} has {ref_lines} lines but {hyp} has {hyp_lines}; \
         line i of every file must be the same segment"
    )]
    LineCountMismatch {
        hyp: PathBuf,
        hyp_lines: usize,
        reference: PathBuf,
        ref_lines: usize,
    },
    /// No reference file was given.
    #[error("no reference file given")]
    NoReferences,
    /// Every reference is empty after the metric's text transform, so the error rate has no
    /// denominator.
    #[error("{metric} is undefined: all {segments} references are empty after its text transform")]
    EmptyReferences {
        metric: &'static str,
        segments: usize,
    },
}
