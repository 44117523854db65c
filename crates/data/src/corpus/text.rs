//! The parallel text of the corpus: merging catalog and dictionary pairs, keeping speakable
//! sentences, de-duplicating on the normalised English and splitting by its hash, exactly as the
//! shared recipe's `build_text.py` (~96% train, 2% dev, 2% test). One deliberate difference: ids
//! are a hash of the normalised English instead of a running number, so an utterance keeps its
//! id (and its voice) whatever else the corpus contains.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::LazyLock;

use fancy_regex::Regex;
use sha1::{Digest, Sha1};

use super::{search, RawPair};
use crate::error::DataError;
use crate::fs::write_atomic;

/// A corpus split, fixed by the hash of the normalised English.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Split {
    Train,
    Dev,
    Test,
}

impl Split {
    /// All splits, in manifest order.
    pub const ALL: [Split; 3] = [Split::Train, Split::Dev, Split::Test];

    pub fn as_str(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Dev => "dev",
            Split::Test => "test",
        }
    }
}

impl fmt::Display for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Split {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Split::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| format!("unknown split {s:?} (train, dev, test)"))
    }
}

/// One sentence pair of the corpus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextPair {
    /// `deen-` and 10 hex digits of the SHA-1 of `en_norm`.
    pub id: String,
    pub split: Split,
    /// `ding` or `gettext:<catalog>`.
    pub source: String,
    pub en: String,
    pub de: String,
    /// Lower-case English without punctuation (apostrophes kept): the ASR-style transcript.
    pub en_norm: String,
}

/// Counts of `build_text.py`'s statistics line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextStats {
    pub input: usize,
    pub not_sentence: usize,
    pub bad_chars: usize,
    pub code: usize,
    pub allcaps: usize,
    pub length: usize,
    pub duplicates: usize,
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("valid corpus regex")
}

static SENTENCE_START: LazyLock<Regex> = LazyLock::new(|| re(r"^[A-Z']"));
static BAD_CHARS: LazyLock<Regex> = LazyLock::new(|| re(r#"[0-9:;()"/%&+\[\]{}<>=_*#@\\|~^$`]"#));
/// Command-line options, file.names, a.b.c.
static CODE: LazyLock<Regex> = LazyLock::new(|| re(r"(^|\s)-+[A-Za-z]|\w\.\w"));
/// Shouted words and placeholders (FILE, WARRANTY).
static ALLCAPS: LazyLock<Regex> = LazyLock::new(|| re(r"\b[A-Z]{5,}\b"));
static NOT_LETTER: LazyLock<Regex> = LazyLock::new(|| re(r"[^a-z' -]+"));
/// Quotes, but not the apostrophes of don't / it's.
static QUOTE: LazyLock<Regex> = LazyLock::new(|| re(r"(?<![a-z])'|'(?![a-z])"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| re(r"\s+"));

/// The recipe's English normalisation: lower case, letters, apostrophes inside words, spaces.
pub fn normalize_en(s: &str) -> String {
    let s = s.to_lowercase().replace('\u{2019}', "'");
    let s = NOT_LETTER.replace_all(&s, " ");
    let s = QUOTE.replace_all(&s, " ").replace('-', " ");
    SPACES.replace_all(&s, " ").trim().to_string()
}

/// The split of a normalised sentence: SHA-1, first 8 hex digits, modulo 100.
pub fn split_of(en_norm: &str) -> Split {
    let d = Sha1::digest(en_norm.as_bytes());
    match u32::from_be_bytes([d[0], d[1], d[2], d[3]]) % 100 {
        0..=1 => Split::Test,
        2..=3 => Split::Dev,
        _ => Split::Train,
    }
}

/// Filters, de-duplicates and splits `pairs` (catalog pairs first, then the dictionary's).
pub fn build_text(pairs: impl IntoIterator<Item = RawPair>) -> (Vec<TextPair>, TextStats) {
    let mut stats = TextStats::default();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for p in pairs {
        let (en, de) = (p.en.trim(), p.de.trim());
        stats.input += 1;
        let counter = if !(search(&SENTENCE_START, en) && en.ends_with(['.', '!', '?'])) {
            &mut stats.not_sentence
        } else if search(&BAD_CHARS, en) {
            &mut stats.bad_chars
        } else if search(&CODE, en) {
            &mut stats.code
        } else if search(&ALLCAPS, en) {
            &mut stats.allcaps
        } else {
            let n = normalize_en(en);
            if !(3..=30).contains(&n.split_whitespace().count()) {
                stats.length += 1;
            } else if !seen.insert(n.clone()) {
                stats.duplicates += 1;
            } else {
                let digest = Sha1::digest(n.as_bytes());
                let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
                let source = if p.source == "ding" {
                    "ding".to_string()
                } else {
                    let name = p.source.strip_suffix(".mo").unwrap_or(&p.source);
                    format!("gettext:{}", name.strip_suffix(".po").unwrap_or(name))
                };
                out.push(TextPair {
                    id: format!("deen-{hex}"),
                    split: split_of(&n),
                    source,
                    en: en.to_string(),
                    de: de.to_string(),
                    en_norm: n,
                });
            }
            continue;
        };
        *counter += 1;
    }
    (out, stats)
}

/// Writes the text corpus as `build_text.py` does (`id split source en de en_norm`).
pub fn write_text_tsv(path: &Path, pairs: &[TextPair]) -> Result<(), DataError> {
    let mut s = String::from("id\tsplit\tsource\ten\tde\ten_norm\n");
    for p in pairs {
        s.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\t{}\n",
            p.id, p.split, p.source, p.en, p.de, p.en_norm
        ));
    }
    write_atomic(path, s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_keeps_inner_apostrophes_only() {
        assert_eq!(
            normalize_en("Don't say 'hello' - it’s late!"),
            "don't say hello it's late"
        );
        assert_eq!(normalize_en("Well-known words."), "well known words");
    }

    #[test]
    fn splits_and_filters() {
        let pair = |en: &str| RawPair {
            en: en.into(),
            de: "Ein deutscher Satz.".into(),
            source: "x.mo".into(),
        };
        let (kept, stats) = build_text([
            pair("The file was saved."),
            pair("the file was saved."),
            pair("The file was saved!"),
            pair("Use file.txt here."),
            pair("Press ENTER now please."),
            pair("It costs 5 euros."),
            pair("Too short."),
        ]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].source, "gettext:x");
        assert_eq!(kept[0].split, split_of("the file was saved"));
        assert_eq!(
            (
                stats.not_sentence,
                stats.duplicates,
                stats.code,
                stats.allcaps,
                stats.bad_chars,
                stats.length
            ),
            (1, 1, 1, 1, 1, 1)
        );
    }
}
