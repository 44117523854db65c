//! Text for a language model over the corpus's sentences (`mtla-st corpus lm-text`, then
//! `mtla-st lm --text`), kept only where the corpus's split rule ([`super::text::split_of`]) puts
//! it in train, so a dev or test sentence, or any sentence that normalises to one, never gets in.
//! English (an ASR model's transcripts): every English sentence of the corpus's catalogs, whether
//! or not it has a usable German translation, and the Ding dictionary's, filtered as the corpus
//! filters its English ([`build_text`]). German (an ST model's translations): the German side of
//! the corpus's parallel pairs under the same filters, at every length the filters allow.

use std::fmt;
use std::path::Path;

use super::build::parallel_pairs;
use super::ding::ding_pairs;
use super::gettext::gettext_english;
use super::text::{build_text, Split, TextPair, TextStats};
use crate::error::DataError;
use crate::fs::write_atomic;

/// What [`lm_text`] read and kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LmTextStats {
    /// Sentences (English) or pairs (German) read, catalogs first, then the dictionary.
    pub read: usize,
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
            "{} sentences in, {} kept (train split), {} held out (dev/test split), \
             dropped: not a sentence {}, bad chars {}, code {}, all caps {}, length {}, duplicates {}",
            self.read, self.kept, self.held_out, t.not_sentence, t.bad_chars, t.code,
            t.allcaps, t.length, t.duplicates
        )
    }
}

/// The language of a language-model text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LmLanguage {
    /// The source side: what an ASR model transcribes.
    English,
    /// The target side: what an ST model translates into.
    German,
}

/// The train-split sentences in `language` (as written, one per entry) of the catalogs and the
/// Ding dictionary unpacked under `root` (`<work>/root` of `mtla-st corpus build`).
pub fn lm_text(root: &Path, language: LmLanguage) -> Result<(Vec<String>, LmTextStats), DataError> {
    let raw = match language {
        LmLanguage::English => {
            let mut english = gettext_english(root)?;
            let ding_file = root.join("usr/share/trans/de-en");
            if ding_file.exists() {
                english.extend(ding_pairs(&ding_file)?.0);
            }
            english
        }
        LmLanguage::German => parallel_pairs(root)?.0,
    };
    let mut stats = LmTextStats {
        read: raw.len(),
        ..LmTextStats::default()
    };
    let (text, text_stats) = build_text(raw);
    stats.text = text_stats;
    let (train, held_out): (Vec<_>, Vec<_>) =
        text.into_iter().partition(|p| p.split == Split::Train);
    stats.held_out = held_out.len();
    stats.kept = train.len();
    let side = |p: TextPair| match language {
        LmLanguage::English => p.en,
        LmLanguage::German => p.de,
    };
    Ok((train.into_iter().map(side).collect(), stats))
}

/// Writes `sentences` one per line (atomically: an interrupted run leaves no half file).
pub fn write_lm_text(path: &Path, sentences: &[String]) -> Result<(), DataError> {
    let mut text = sentences.join("\n");
    text.push('\n');
    write_atomic(path, text.as_bytes())
}
