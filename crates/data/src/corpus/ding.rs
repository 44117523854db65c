//! Example sentences of the Ding German-English dictionary (Debian `trans-de-en`, file
//! `/usr/share/trans/de-en`, lines `de1 | de2 :: en1 | en2`; GPL-2+, Frank Richter, TU Chemnitz).
//! The rules are those of the shared recipe's `ding_pairs.py`.

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;

use fancy_regex::Regex;

use super::{search, RawPair};
use crate::error::DataError;

/// Dictionary notation (`sb`, `sth`, `jdm`, slashes, ellipses) that is not speakable text.
static BAD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"[/~…–—;{}\[\]<>|=_*#@%&+]|\bsb\b|\bsth\b|\betw\b|\bjd[nmrs]\b|\bjmd\b|\bjdm\b|\.\.",
    )
    .expect("valid regex")
});
/// Grammar notes in braces, brackets and parentheses.
static NOTES: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)").expect("valid regex"));
static SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("valid regex"));
static FIRST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"^[A-Z"']"#).expect("valid regex"));

/// Counts of dictionary entries read and sentences kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DingStats {
    pub entries: usize,
    pub kept: usize,
    /// Lines that are not UTF-8 (skipped).
    pub bad_lines: usize,
}

/// Sentence pairs of the dictionary file at `path`, de-duplicated on the English side.
pub fn ding_pairs(path: &Path) -> Result<(Vec<RawPair>, DingStats), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
    let mut stats = DingStats::default();
    let mut seen = HashSet::new();
    let mut pairs = Vec::new();
    for raw in bytes.split(|&b| b == b'\n') {
        let Ok(line) = std::str::from_utf8(raw) else {
            stats.bad_lines += 1;
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let Some((de, en)) = line.split_once("::") else {
            continue;
        };
        for (d, e) in de.split('|').zip(en.split('|')) {
            stats.entries += 1;
            let (d, e) = (clean(d), clean(e));
            if keep(&d, &e) && seen.insert(e.clone()) {
                pairs.push(RawPair {
                    en: e,
                    de: d,
                    source: "ding".into(),
                });
            }
        }
    }
    stats.kept = pairs.len();
    Ok((pairs, stats))
}

/// Without grammar notes, single-spaced, with plain apostrophes.
fn clean(s: &str) -> String {
    let s = NOTES.replace_all(s, "");
    SPACES.replace_all(&s, " ").trim().replace('\u{2019}', "'")
}

/// A full sentence on both sides, of similar length, in Latin script.
fn keep(d: &str, e: &str) -> bool {
    if e.is_empty() || d.is_empty() || search(&BAD, e) || search(&BAD, d) {
        return false;
    }
    let ends = |s: &str, set: &str| s.chars().last().is_some_and(|c| set.contains(c));
    if !(search(&FIRST, e) && ends(e, ".!?") && ends(d, ".!?»\"")) {
        return false;
    }
    let (we, wd) = (e.split_whitespace().count(), d.split_whitespace().count());
    let ratio = wd as f64 / we as f64;
    (3..=30).contains(&we)
        && wd >= 2
        && (0.5..=2.0).contains(&ratio)
        && !e.chars().chain(d.chars()).any(|c| c as u32 > 0x24ff)
        && e.chars().filter(|c| !c.is_ascii()).count() <= 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sentences_and_drops_notation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("de-en");
        std::fs::write(
            &path,
            "# comment\n\
             Haus {n} | Er baut ein Haus. :: house | He is building a house.\n\
             jdm. etw. geben :: to give sb. sth.\n\
             Das ist gut (so). :: That is good.\n\
             Er baut ein Haus! :: He is building a house.\n",
        )
        .unwrap();
        let (pairs, stats) = ding_pairs(&path).unwrap();
        let en: Vec<&str> = pairs.iter().map(|p| p.en.as_str()).collect();
        assert_eq!(en, ["He is building a house.", "That is good."]);
        assert_eq!(pairs[1].de, "Das ist gut .");
        assert_eq!(stats.entries, 5);
    }
}
