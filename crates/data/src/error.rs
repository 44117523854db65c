//! Errors of the data layer. Every variant names the file (and the line or row where there is
//! one) and the problem, so a message alone is enough to find and fix bad input.

use std::path::PathBuf;

use super::issue::RowIssue;

/// What went wrong while reading corpora, manifests, audio, caches or tokenizers.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file could not be opened, read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A manifest row that is bad (missing audio, empty text, ...) while bad rows are fatal.
    #[error("{0}")]
    BadRow(RowIssue),
    /// A manifest that cannot be used at all (no header, a required column missing, no rows).
    #[error("{path}: {reason}")]
    Manifest { path: PathBuf, reason: String },
    /// Audio that cannot be decoded, or decoded audio that does not fit the options.
    #[error(transparent)]
    Audio(#[from] fbank::FbankError),
    /// A file of a structured format (yaml segments, .mo catalog, SentencePiece model, cache
    /// shard, dictionary) that does not parse; `line` is 0 for binary formats.
    #[error("{path}{}: {reason}", if *.line > 0 { format!(":{line}") } else { String::new() })]
    Format {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    /// The tokenizer library failed (training, encoding, saving or loading).
    #[error("tokenizer{}: {reason}", path.as_ref().map(|p| format!(" {}", p.display())).unwrap_or_default())]
    Tokenizer {
        path: Option<PathBuf>,
        reason: String,
    },
    /// An external program (apt-get, dpkg-deb, a TTS engine, sox) failed or is missing.
    #[error("{program}: {reason}")]
    Command { program: String, reason: String },
    /// A request that cannot be satisfied (e.g. transcripts asked of a manifest without them).
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            source,
        }
    }

    /// A parse error at `path:line` (`line` 0: no line).
    pub fn format(path: impl Into<PathBuf>, line: usize, reason: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            line,
            reason: reason.into(),
        }
    }
}
