//! Which sentences of the text corpus get audio: a number per split, a word-count range, and
//! optionally only sentences made of frequent words (so a demo slice has a small vocabulary).
//! Within a split, sentences are taken in id order; ids are hashes, so this is a fixed random
//! sample, and a larger request contains every smaller one.

use std::collections::HashMap;

use super::text::{Split, TextPair};

/// What to select.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    /// Utterances per split (`train`, `dev`, `test`); `None` takes all.
    pub train: Option<usize>,
    pub dev: Option<usize>,
    pub test: Option<usize>,
    /// Bounds on words of the normalised English.
    pub min_words: usize,
    pub max_words: usize,
    /// Keep only sentences whose every English and German word occurs at least this often in
    /// the whole text corpus (0 or 1: no constraint).
    pub min_word_count: usize,
}

impl Selection {
    fn limit(&self, split: Split) -> Option<usize> {
        match split {
            Split::Train => self.train,
            Split::Dev => self.dev,
            Split::Test => self.test,
        }
    }
}

/// Lower-case German words (letters and digits).
fn german_words(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// The selected pairs, split by split (train, dev, test), each in id order.
pub fn select<'a>(pairs: &'a [TextPair], sel: &Selection) -> Vec<&'a TextPair> {
    let mut en_count: HashMap<&str, usize> = HashMap::new();
    let mut de_count: HashMap<String, usize> = HashMap::new();
    if sel.min_word_count > 1 {
        for p in pairs {
            for w in p.en_norm.split_whitespace() {
                *en_count.entry(w).or_default() += 1;
            }
            for w in german_words(&p.de) {
                *de_count.entry(w).or_default() += 1;
            }
        }
    }
    let frequent = |p: &TextPair| {
        sel.min_word_count <= 1
            || (p
                .en_norm
                .split_whitespace()
                .all(|w| en_count[w] >= sel.min_word_count)
                && german_words(&p.de).all(|w| de_count[&w] >= sel.min_word_count))
    };
    let mut out = Vec::new();
    for split in Split::ALL {
        let mut candidates: Vec<&TextPair> = pairs
            .iter()
            .filter(|p| p.split == split)
            .filter(|p| {
                let n = p.en_norm.split_whitespace().count();
                (sel.min_words..=sel.max_words).contains(&n)
            })
            .filter(|p| frequent(p))
            .collect();
        candidates.sort_by(|a, b| a.id.cmp(&b.id));
        candidates.truncate(sel.limit(split).unwrap_or(usize::MAX));
        out.extend(candidates);
    }
    out
}
