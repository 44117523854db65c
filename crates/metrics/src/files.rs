//! Reading hypothesis and reference files the way the oracle does (Python text mode,
//! `open(path, encoding="utf-8")`): one segment per line, empty lines kept as segments,
//! only the line terminator removed.

use std::path::{Path, PathBuf};

use super::{score_lines, MetricsError, QualityReport};

/// The lines of a UTF-8 text file. As in Python's universal-newline mode, `\n`, `\r\n` and a
/// lone `\r` end a line; a final terminator does not start another (empty) line, and an empty
/// file has no lines. Nothing else is stripped (a byte-order mark stays, as with `utf-8`).
///
/// # Errors
/// [`MetricsError::Io`] if the file cannot be read, [`MetricsError::NotUtf8`] (with the
/// 1-based line number) if it is not UTF-8.
pub fn read_lines(path: &Path) -> Result<Vec<String>, MetricsError> {
    let bytes = std::fs::read(path).map_err(|source| MetricsError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        // The bad byte is on the line after the terminators of the valid prefix.
        let prefix = std::str::from_utf8(valid).unwrap_or_default();
        let terminators = prefix.matches(['\n', '\r']).count() - prefix.matches("\r\n").count();
        MetricsError::NotUtf8 {
            path: path.to_path_buf(),
            line: terminators + 1,
        }
    })?;
    Ok(split_lines(&text).into_iter().map(str::to_string).collect())
}

/// Splits on `\r\n`, `\r` and `\n` (Python's universal newlines).
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(end) => {
                lines.push(&rest[..end]);
                let terminator = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + terminator..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// Reads `hyp` and every file in `refs` and scores them with [`score_lines`].
///
/// # Errors
/// As [`read_streams`].
pub fn score_files(hyp: &Path, refs: &[PathBuf]) -> Result<QualityReport, MetricsError> {
    let (hyps, streams) = read_streams(hyp, refs)?;
    Ok(score_lines(&hyps, &streams))
}

/// The lines of `hyp` and of every file in `refs` (reference streams).
///
/// # Errors
/// [`MetricsError::NoReferences`] if `refs` is empty, the [`read_lines`] errors, and
/// [`MetricsError::LineCountMismatch`] (naming both files and both counts) if a reference file
/// has another number of lines than `hyp`.
pub fn read_streams(
    hyp: &Path,
    refs: &[PathBuf],
) -> Result<(Vec<String>, Vec<Vec<String>>), MetricsError> {
    if refs.is_empty() {
        return Err(MetricsError::NoReferences);
    }
    let hyps = read_lines(hyp)?;
    let mut streams = Vec::with_capacity(refs.len());
    for reference in refs {
        let lines = read_lines(reference)?;
        if lines.len() != hyps.len() {
            return Err(MetricsError::LineCountMismatch {
                hyp: hyp.to_path_buf(),
                hyp_lines: hyps.len(),
                reference: reference.clone(),
                ref_lines: lines.len(),
            });
        }
        streams.push(lines);
    }
    Ok((hyps, streams))
}
