//! The offline English-speech -> German-text corpus, built from Debian packages alone: German
//! human translations from gettext catalogs and the Ding dictionary, English audio from Debian's
//! TTS engines. A port of the shared recipe (`build_corpus.sh` and its scripts) into the project.

pub mod batch;
pub mod build;
pub mod debian;
pub mod ding;
pub mod festival;
pub mod freetts;
pub mod gettext;
pub mod lm_text;
pub mod mo;
pub mod select;
pub mod text;
pub mod tts;

use std::process::Command;

use fancy_regex::Regex;

use super::error::DataError;

pub use build::{build_corpus, AudioFormat, CorpusOptions, CorpusReport};
pub use lm_text::{lm_text, write_lm_text, LmLanguage, LmTextStats};
pub use select::Selection;
pub use text::{Split, TextPair};
pub use tts::{Engine, Voice};

/// An English sentence, its German translation and where it came from (a catalog's file name,
/// or `ding`), before the corpus-wide filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPair {
    pub en: String,
    pub de: String,
    pub source: String,
}

/// `re.search`: does `re` match anywhere in `s`? (A pathological backtracking failure counts
/// as no match; none of the corpus patterns can backtrack that far.)
fn search(re: &Regex, s: &str) -> bool {
    re.is_match(s).unwrap_or(false)
}

/// Runs `cmd` to completion, turning a failure into an error with the end of its stderr.
fn run_command(cmd: &mut Command) -> Result<(), DataError> {
    let program = cmd.get_program().to_string_lossy().into_owned();
    let out = cmd.output().map_err(|e| DataError::Command {
        program: program.clone(),
        reason: if e.kind() == std::io::ErrorKind::NotFound {
            "not found (is it installed?)".into()
        } else {
            e.to_string()
        },
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: String = stderr
        .trim()
        .chars()
        .rev()
        .take(400)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(DataError::Command {
        program,
        reason: format!("{}: {tail}", out.status),
    })
}
