//! English text for a language model over the corpus's transcripts (`mtla-st corpus lm-text`,
//! then `mtla-st lm --text`): every English sentence of the corpus's catalogs, whether or not it
//! has a usable German translation, and the Ding dictionary's, filtered as the corpus filters its
//! English ([`build_text`]) and kept only where the corpus's split rule
//! ([`super::text::split_of`]) puts it in train. A dev or test sentence, or any sentence that
//! normalises to one, never gets in.

use std::fmt;
use std::path::Path;

use super::ding::ding_pairs;
use super::gettext::gettext_english;
use super::text::{build_text, Split, TextStats};
use crate::error::DataError;
use crate::fs::write_atomic;

/// What [`lm_text`] read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LmTextStats {
    /// Speakable English sentences read (catalogs, then the dictionary).
    pub english: usize,
    /// The corpus filters' counts over them.
    pub text: TextStats,
    /// Sentences left out because their split is dev or test.
    pub held_out: usize,
    /// Sentences kept (train split).
    pub kept: usize,
}

impl fmt::Display for LmTextStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.text;
        write!(
            f,
            "{} English sentences in, {} kept (train split), {} held out (dev/test split), \
             dropped: not a sentence {}, bad chars {}, code {}, all caps {}, length {}, duplicates {}",
            self.english, self.kept, self.held_out, t.not_sentence, t.bad_chars, t.code,
            t.allcaps, t.length, t.duplicates
        )
    }
}

/// The train-split English sentences (as written, one per entry) of the catalogs and the Ding
/// dictionary unpacked under `root` (`<work>/root` of `mtla-st corpus build`).
pub fn lm_text(root: &Path) -> Result<(Vec<String>, LmTextStats), DataError> {
    let mut english = gettext_english(root)?;
    let ding_file = root.join("usr/share/trans/de-en");
    if ding_file.exists() {
        english.extend(ding_pairs(&ding_file)?.0);
    }
    let mut stats = LmTextStats {
        english: english.len(),
        ..LmTextStats::default()
    };
    let (text, text_stats) = build_text(english);
    stats.text = text_stats;
    let (train, held_out): (Vec<_>, Vec<_>) =
        text.into_iter().partition(|p| p.split == Split::Train);
    stats.held_out = held_out.len();
    stats.kept = train.len();
    Ok((train.into_iter().map(|p| p.en).collect(), stats))
}

/// Writes `sentences` one per line (atomically: an interrupted run leaves no half file).
pub fn write_lm_text(path: &Path, sentences: &[String]) -> Result<(), DataError> {
    let mut text = sentences.join("\n");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}
