//! English -> German sentence pairs from gettext catalogs: which catalogs are German, which
//! messages are speakable sentences (no format strings, markup, paths or shouting), and how long
//! help texts are aligned paragraph by paragraph and sentence by sentence. The rules are those
//! of the shared recipe's `mo_pairs.py`, regex for regex.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use fancy_regex::Regex;
use tokenizers::normalizers::NFC;
use tokenizers::{NormalizedString, Normalizer};

use super::mo::read_mo;
use super::{search, RawPair};
use crate::error::DataError;

/// Word-count bounds of a kept sentence.
const MIN_WORDS: usize = 3;
const MAX_WORDS: usize = 30;

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("valid corpus regex")
}

/// Format strings, markup, entities, URLs, paths, option-like and code-like text.
static BAD: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(%[-+ #0-9.*]*[a-zA-Z%(]|%\d|\{[^}]*\}|\$\{|\$[A-Za-z0-9_]|<[^>]*>|&[a-z#0-9]+;|https?:|www\.|@|\\|/[a-z]|[|=~^*#\[\]{}<>`]|--|\.\.\.\s*$|\t|\s{2,}|\b[A-Z0-9_]{2,}_[A-Z0-9_]+\b|\.[a-z]{2,4}\b)"#,
    )
});
/// Keyboard mnemonics (`_File`, `&Open`).
static MNEMONIC: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?<![A-Za-z0-9_])[_&](?=[A-Za-zÄÖÜäöüß])"));
static WORD: LazyLock<Regex> =
    LazyLock::new(|| re(r"[A-Za-zÄÖÜäöüßÀ-ÿ]+(?:['’-][A-Za-zÄÖÜäöüßÀ-ÿ]+)*"));
/// A sentence boundary that is not an abbreviation or a number.
static SENT: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?<!\d[.])(?<!\b[A-Za-z][.])(?<!\bMr[.])(?<!\bDr[.])(?<!\bSt[.])(?<!\bNr[.])(?<!\bca[.])(?<!\bvs[.])(?<!\bMrs[.])(?<!\bbzw[.])(?<!\busw[.])(?<=[.!?])["“”»«]?\s+(?=["„»«]?[A-ZÄÖÜ])"#,
    )
});
static FIRST_EN: LazyLock<Regex> = LazyLock::new(|| re(r#"^["'(A-Za-z0-9]"#));
static LOWER: LazyLock<Regex> = LazyLock::new(|| re(r"[a-z]"));
static PARAGRAPH: LazyLock<Regex> = LazyLock::new(|| re(r"\n\s*\n"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| re(r"\s+"));
static GERMAN_DIR: LazyLock<Regex> = LazyLock::new(|| re(r"/de(_DE)?(\.UTF-8)?/LC_MESSAGES$"));
static GERMAN_FILE: LazyLock<Regex> = LazyLock::new(|| re(r"(^|[-_])de(_DE)?\.mo$"));

/// Counts of what the extraction kept and rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GettextStats {
    pub catalogs: usize,
    pub entries: usize,
    pub candidates: usize,
    pub rejected_en: usize,
    pub rejected_de: usize,
    pub duplicates: usize,
}

/// German catalogs under `root` (`*/de/LC_MESSAGES/*.mo`, `de_DE.mo`, `*-de.mo`; not de_AT or
/// de_CH, which would duplicate them), sorted so that every run reads them in the same order.
pub fn find_catalogs(root: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let read = std::fs::read_dir(&dir).map_err(|e| DataError::io(&dir, e))?;
        for entry in read {
            let entry = entry.map_err(|e| DataError::io(&dir, e))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| DataError::io(&path, e))?;
            if kind.is_dir() {
                dirs.push(path);
            } else if kind.is_file() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let dir_text = dir.to_string_lossy();
                if name.ends_with(".mo")
                    && (search(&GERMAN_DIR, &dir_text) || search(&GERMAN_FILE, &name))
                {
                    out.push(path);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Speakable pairs of every German catalog under `root`, de-duplicated on the English side
/// (the first catalog wins). `source` is the catalog's file name.
pub fn gettext_pairs(root: &Path) -> Result<(Vec<RawPair>, GettextStats), DataError> {
    let mut stats = GettextStats::default();
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    for catalog in find_catalogs(root)? {
        let entries = read_mo(&catalog)?;
        stats.catalogs += 1;
        // The header (empty msgid) is not a message.
        stats.entries += entries.iter().filter(|e| !e.msgid.is_empty()).count();
        let name = catalog
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for entry in entries.iter().filter(|e| !e.msgid.is_empty()) {
            let msgstr = entry.msgstr.first().map(String::as_str).unwrap_or("");
            if msgstr.trim().is_empty() {
                continue;
            }
            for (en, de) in pairs_from(&entry.msgid, msgstr) {
                stats.candidates += 1;
                if !ok_en(&en) {
                    stats.rejected_en += 1;
                } else if !ok_de(&de, &en) {
                    stats.rejected_de += 1;
                } else if !seen.insert(en.clone()) {
                    stats.duplicates += 1;
                } else {
                    pairs.push(RawPair {
                        en,
                        de,
                        source: name.clone(),
                    });
                }
            }
        }
    }
    Ok((pairs, stats))
}

/// Every speakable English sentence of every German catalog under `root`, translated or not,
/// de-duplicated (the first catalog wins), each as a [`RawPair`] with an empty German side:
/// more English than the parallel pairs hold, for a language model over transcripts
/// ([`super::lm_text`]).
pub fn gettext_english(root: &Path) -> Result<Vec<RawPair>, DataError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for catalog in find_catalogs(root)? {
        let name = catalog
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for entry in read_mo(&catalog)?.iter().filter(|e| !e.msgid.is_empty()) {
            for en in english_from(&entry.msgid) {
                if ok_en(&en) && seen.insert(en.clone()) {
                    out.push(RawPair {
                        en,
                        de: String::new(),
                        source: name.clone(),
                    });
                }
            }
        }
    }
    Ok(out)
}

/// NFC, no mnemonics, plain apostrophes and quotes, trimmed.
fn norm(s: &str) -> String {
    let mut n = NormalizedString::from(s);
    NFC.normalize(&mut n).expect("NFC cannot fail");
    MNEMONIC
        .replace_all(n.get(), "")
        .replace('\u{2019}', "'")
        .replace(['\u{201c}', '\u{201d}'], "\"")
        .trim()
        .to_string()
}

fn count_non_ascii(s: &str) -> usize {
    s.chars().filter(|c| !c.is_ascii()).count()
}

fn has_far_unicode(s: &str) -> bool {
    s.chars().any(|c| c as u32 > 0x24ff)
}

/// An English message that can be read aloud as a sentence.
fn ok_en(s: &str) -> bool {
    let words = s.split_whitespace().count();
    !search(&BAD, s)
        && search(&FIRST_EN, s)
        && !has_far_unicode(s)
        && count_non_ascii(s) <= 2
        && (MIN_WORDS..=MAX_WORDS).contains(&words)
        && WORD.find_iter(s).count() as f64 >= 0.7 * words as f64
        && search(&LOWER, s)
}

/// A German translation that plausibly renders `en`.
fn ok_de(s: &str, en: &str) -> bool {
    if search(&BAD, s) || s == en || has_far_unicode(s) {
        return false;
    }
    let (w_en, w_de) = (en.split_whitespace().count(), s.split_whitespace().count());
    let ratio = w_de as f64 / w_en as f64;
    w_de >= 2 && (0.5..=2.0).contains(&ratio)
}

/// Candidate pairs of one message: multi-paragraph help texts are aligned paragraph by
/// paragraph when both sides have as many paragraphs.
fn pairs_from(msgid: &str, msgstr: &str) -> Vec<(String, String)> {
    let (en, de) = (norm(msgid), norm(msgstr));
    if !en.contains('\n') && !de.contains('\n') {
        return split_sentences(&en, &de);
    }
    let (pe, pd) = (paragraphs(&en), paragraphs(&de));
    if pe.len() != pd.len() {
        return Vec::new();
    }
    pe.iter()
        .zip(&pd)
        .flat_map(|(a, b)| split_sentences(a, b))
        .collect()
}

/// The paragraphs of a multi-line text (split at blank lines), spaces collapsed.
fn paragraphs(s: &str) -> Vec<String> {
    PARAGRAPH
        .split(s)
        .filter_map(Result::ok)
        .filter(|p| !p.trim().is_empty())
        .map(|p| SPACES.replace_all(p, " ").trim().to_string())
        .collect()
}

/// A text's sentences, split where `SENT` sees a sentence end.
fn sentences(s: &str) -> Vec<String> {
    SENT.split(s)
        .filter_map(Result::ok)
        .map(|x| x.trim().to_string())
        .collect()
}

/// The English sentences of one catalog entry alone: its paragraphs, and a text longer than
/// `MAX_WORDS` split into its sentences (no German side has to split alike).
fn english_from(msgid: &str) -> Vec<String> {
    let en = norm(msgid);
    let parts = match en.contains('\n') {
        true => paragraphs(&en),
        false => vec![en],
    };
    parts
        .into_iter()
        .flat_map(|p| match p.split_whitespace().count() <= MAX_WORDS {
            true => vec![p],
            false => sentences(&p),
        })
        .collect()
}

/// A long text becomes sentence pairs when both sides split into as many sentences.
fn split_sentences(en: &str, de: &str) -> Vec<(String, String)> {
    if en.split_whitespace().count() <= MAX_WORDS {
        return vec![(en.to_string(), de.to_string())];
    }
    let (se, sd) = (sentences(en), sentences(de));
    if se.len() == sd.len() && se.len() > 1 {
        se.into_iter().zip(sd).collect()
    } else {
        vec![(en.to_string(), de.to_string())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_follow_the_recipe() {
        assert!(ok_en("Open the file in a new window."));
        assert!(!ok_en("Cannot open %s for writing."), "format string");
        assert!(!ok_en("See <b>help</b> for details."), "markup");
        assert!(!ok_en("Too short."), "two words");
        assert!(!ok_en("Use --force to overwrite it."), "option");
        assert!(ok_de(
            "Die Datei in einem neuen Fenster öffnen.",
            "Open the file in a new window."
        ));
        assert!(
            !ok_de("Öffnen.", "Open the file in a new window."),
            "one word"
        );
        assert_eq!(norm("_Open the &file"), "Open the file");
        assert_eq!(norm("it\u{2019}s \u{201c}ok\u{201d}"), "it's \"ok\"");
    }

    #[test]
    fn long_texts_split_into_aligned_sentences() {
        let en = "This is the first sentence of a rather long help text that goes on. \
                  It explains what the option does in some detail for the user here. \
                  Dr. Smith wrote it.";
        let de = "Dies ist der erste Satz eines recht langen Hilfetextes, der weitergeht. \
                  Er erklärt, was die Option im Detail für den Benutzer hier tut. \
                  Dr. Schmidt schrieb ihn.";
        let pairs = split_sentences(en, de);
        assert_eq!(pairs.len(), 3, "{pairs:?}");
        assert_eq!(
            pairs[2],
            (
                "Dr. Smith wrote it.".into(),
                "Dr. Schmidt schrieb ihn.".into()
            )
        );
        let para = pairs_from(
            "One two three.\n\nFour five six.",
            "Eins zwei drei.\n\nVier fünf sechs.",
        );
        assert_eq!(para.len(), 2);
    }
}
