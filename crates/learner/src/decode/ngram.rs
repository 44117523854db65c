//! A token n-gram language model for shallow fusion: interpolated Kneser-Ney (Chen & Goodman
//! 1998: one discount per order, or modified Kneser-Ney's three, as KenLM's) over the model's own
//! pieces, trained on transcripts and added
//! to the beam search's scores with weight `β` (`eval.lm_weight`), as ESPnet's `lm_weight` and
//! icefall's n-gram shallow fusion do:
//!
//! `score = (1 − λ) log p_att + λ Δ log ψ_CTC + β log p_LM`.
//!
//! With `c_n` the raw counts at the highest order and the continuation counts `N1+(• g)` (how
//! many distinct tokens precede `g`) below it (raw counts again for n-grams that start the
//! sentence), `D_n(c)` the discount of a count `c` at order `n` (from that order's
//! counts-of-counts `n_k`, with `Y = n1 / (n1 + 2 n2)`: `Y` for every count, or modified
//! Kneser-Ney's `D(1) = 1 − 2Y n2/n1`, `D(2) = 2 − 3Y n3/n2`, `D(3+) = 3 − 4Y n4/n3`), and `h'`
//! the context `h` without its oldest token:
//!
//! `p(w | h) = max(c_n(h w) − D_n(c_n(h w)), 0) / c_n(h •) + γ(h) · p(w | h')`,
//!
//! `γ(h) = Σ_k D_n(k) N_k(h •) / c_n(h •)` holding the mass the discounts freed, ending in the
//! uniform distribution over the vocabulary. A context never seen leaves the lower-order
//! distribution as it is.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use crate::error::{LearnerError, Result};

/// Magic bytes and version of the file format: a header of little-endian `u32`s (version,
/// order, vocabulary, the discounts' bits), then per order its number of contexts and for each
/// context its tokens, its follower count, its followers, its total and the followers' counts.
/// Version 3 holds three discounts per order (modified Kneser-Ney), versions 1 and 2 one; a model
/// with one discount per order is written as version 2, so it stays readable by older builds.
/// Versions 2 and 3 write the integers as LEB128 varints (most tokens and counts fit
/// one byte: a third of version 1's size); version 1 as `u16` tokens and follower counts and
/// `u32` numbers of contexts, totals and counts.
const MAGIC: &[u8; 8] = b"MTLANGRM";
const VERSION: u32 = 3;

/// The tokens that follow one context, and their (raw or continuation) counts.
#[derive(Debug, Clone, Default, PartialEq)]
struct Followers {
    tokens: Vec<u32>,
    counts: Vec<u32>,
    /// `c_n(h •)`: the sum of every follower's count, pruned ones included.
    total: u32,
    /// The lower order's weight, `1 − Σ_kept max(c − D_n(c), 0) / total` (`γ(h)` without
    /// pruning), so that the distribution sums to 1.
    backoff: f32,
}

impl Followers {
    fn new(tokens: Vec<u32>, counts: Vec<u32>, total: u32, discounts: Discounts) -> Self {
        let kept: f32 = counts.iter().map(|&c| discounts.discounted(c)).sum();
        Self {
            backoff: 1.0 - kept / total as f32,
            tokens,
            counts,
            total,
        }
    }
}

/// How [`NgramLm::train`] discounts counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discounting {
    /// One discount per order, `Y = n1 / (n1 + 2 n2)` (interpolated Kneser-Ney).
    #[default]
    Single,
    /// Three per order, for counts 1, 2 and 3+ (modified Kneser-Ney, KenLM's): a lower
    /// perplexity, though not a lower WER in shallow fusion here (`experiments/asr_recipe`).
    Modified,
}

/// `D_n(1)`, `D_n(2)` and `D_n(3+)` of one order.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Discounts([f32; 3]);

impl Discounts {
    /// The discounts from the counts-of-counts `n1..n4` of one order (Chen & Goodman's
    /// estimates). The single discount `n1 / (n1 + 2 n2)` is kept in `[0.1, 0.9]` (0.5 when
    /// `n1 + n2 = 0`); modified Kneser-Ney falls back to it where one of its three is undefined
    /// (some `n_k` is 0) or outside `(0, k)`.
    fn estimate<'a>(counts: impl Iterator<Item = &'a u32>, discounting: Discounting) -> Self {
        let mut n = [0.0f32; 4];
        for &c in counts {
            if (1..=4).contains(&c) {
                n[c as usize - 1] += 1.0;
            }
        }
        let y = n[0] / (n[0] + 2.0 * n[1]);
        let single = match n[0] + n[1] {
            0.0 => 0.5,
            _ => y.clamp(0.1, 0.9),
        };
        if discounting == Discounting::Single || n.contains(&0.0) {
            return Self([single; 3]);
        }
        let d: [f32; 3] = std::array::from_fn(|i| {
            let k = (i + 1) as f32;
            k - (k + 1.0) * y * n[i + 1] / n[i]
        });
        match d
            .iter()
            .zip([1.0, 2.0, 3.0])
            .all(|(&d, k)| d > 0.0 && d < k)
        {
            true => Self(d),
            false => Self([single; 3]),
        }
    }

    /// Whether every count has the same discount.
    fn single(self) -> bool {
        self.0.iter().all(|&d| d == self.0[0])
    }

    /// `max(c − D(c), 0)`: what a count keeps.
    fn discounted(self, c: u32) -> f32 {
        let d = self.0[(c.max(1) as usize).min(3) - 1];
        (c as f32 - d).max(0.0)
    }
}

/// An interpolated (or modified) Kneser-Ney n-gram model over token ids.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramLm {
    order: usize,
    vocab: usize,
    /// `D_n(1), D_n(2), D_n(3+)`, per order `n = 1..=order`.
    discounts: Vec<Discounts>,
    /// Per order `n` (index `n − 1`): context (`n − 1` tokens) -> its followers.
    tables: Vec<HashMap<Vec<u32>, Followers>>,
}

/// Which counted n-grams [`NgramLm::train`] drops (KenLM's `--prune`): those of order
/// `from_order` and above seen fewer than `min_count` times (raw counts at the highest order,
/// continuation counts below it). Their probability mass goes to the lower order, so every
/// distribution still sums to 1; a smaller file at a small cost in perplexity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pruning {
    pub min_count: u32,
    pub from_order: usize,
}

impl Pruning {
    /// Keep every n-gram.
    pub const NONE: Self = Self {
        min_count: 1,
        from_order: usize::MAX,
    };

    /// The threshold at order `n`.
    fn min_count(self, n: usize) -> u32 {
        if n >= self.from_order {
            self.min_count.max(1)
        } else {
            1
        }
    }
}

/// What [`NgramLm::train`] counted.
#[derive(Debug, Clone, PartialEq)]
pub struct NgramStats {
    pub sentences: usize,
    /// Tokens predicted (EOS included).
    pub tokens: usize,
    /// Distinct n-grams kept, per order.
    pub ngrams: Vec<usize>,
}

impl NgramLm {
    /// Counts `sentences` (token ids without BOS/EOS; each is scored as `BOS s EOS`) into a
    /// model of `order` ≥ 1 over `vocab` tokens, discounted as `discounting` says, then drops
    /// what `pruning` names.
    pub fn train(
        sentences: impl IntoIterator<Item = Vec<u32>>,
        vocab: usize,
        order: usize,
        bos: u32,
        eos: u32,
        pruning: Pruning,
        discounting: Discounting,
    ) -> Result<(Self, NgramStats)> {
        if order == 0 || vocab > u16::MAX as usize {
            return Err(LearnerError::Config(format!(
                "an n-gram model needs order >= 1 and at most {} tokens (order {order}, {vocab} \
                 tokens)",
                u16::MAX
            )));
        }
        // raw[n - 1]: n-gram -> count.
        let mut raw: Vec<HashMap<Vec<u32>, u32>> = vec![HashMap::new(); order];
        let (mut n_sentences, mut n_tokens) = (0, 0);
        for s in sentences {
            if let Some(&t) = s
                .iter()
                .find(|&&t| t as usize >= vocab || t == bos || t == eos)
            {
                return Err(LearnerError::Config(format!(
                    "token {t} is not a piece of the {vocab}-token vocabulary (or is BOS/EOS)"
                )));
            }
            let seq: Vec<u32> = std::iter::once(bos)
                .chain(s)
                .chain(std::iter::once(eos))
                .collect();
            for i in 1..seq.len() {
                for n in 1..=order.min(i + 1) {
                    *raw[n - 1].entry(seq[i + 1 - n..=i].to_vec()).or_default() += 1;
                }
            }
            n_sentences += 1;
            n_tokens += seq.len() - 1;
        }
        // Continuation counts below the highest order: distinct left extensions.
        let mut used: Vec<HashMap<Vec<u32>, u32>> = vec![HashMap::new(); order];
        used[order - 1] = raw[order - 1].clone();
        for n in (1..order).rev() {
            let mut cont: HashMap<Vec<u32>, u32> = HashMap::new();
            for g in used[n].keys() {
                *cont.entry(g[1..].to_vec()).or_default() += 1;
            }
            for (g, &c) in &raw[n - 1] {
                if g[0] == bos {
                    cont.insert(g.clone(), c);
                }
            }
            used[n - 1] = cont;
        }
        let discounts: Vec<Discounts> = used
            .iter()
            .map(|counts| Discounts::estimate(counts.values(), discounting))
            .collect();
        let tables: Vec<HashMap<Vec<u32>, Followers>> = used
            .into_iter()
            .zip(&discounts)
            .enumerate()
            .map(|(i, (counts, &d))| {
                let min = pruning.min_count(i + 1);
                // Context -> (kept tokens, their counts, total of all).
                let mut grouped: HashMap<Vec<u32>, (Vec<u32>, Vec<u32>, u32)> = HashMap::new();
                let mut sorted: Vec<(Vec<u32>, u32)> = counts.into_iter().collect();
                sorted.sort_unstable();
                for (g, c) in sorted {
                    let (context, last) = g.split_at(g.len() - 1);
                    let (tokens, kept, total) = grouped.entry(context.to_vec()).or_default();
                    *total += c;
                    if c >= min {
                        tokens.push(last[0]);
                        kept.push(c);
                    }
                }
                grouped
                    .into_iter()
                    .filter(|(_, (tokens, _, _))| !tokens.is_empty())
                    .map(|(context, (tokens, kept, total))| {
                        (context, Followers::new(tokens, kept, total, d))
                    })
                    .collect()
            })
            .collect();
        let ngrams = tables
            .iter()
            .map(|t| t.values().map(|f| f.tokens.len()).sum())
            .collect();
        let lm = Self {
            order,
            vocab,
            discounts,
            tables,
        };
        let stats = NgramStats {
            sentences: n_sentences,
            tokens: n_tokens,
            ngrams,
        };
        Ok((lm, stats))
    }

    /// The number of tokens it predicts (the tokenizer's it was counted with).
    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    /// `log p(w | history)` for every token `w` of the vocabulary; `history` is the hypothesis
    /// so far, BOS first (only its last `order − 1` tokens matter).
    pub fn log_probs(&self, history: &[u32]) -> Vec<f32> {
        let mut p = vec![1.0 / self.vocab as f32; self.vocab];
        for n in 1..=self.order.min(history.len() + 1) {
            let context = &history[history.len() + 1 - n..];
            // A context without kept followers leaves the lower order's distribution as it is
            // (a higher order may still know the longer context when this one was pruned).
            let Some(f) = self.tables[n - 1].get(context) else {
                continue;
            };
            let (d, total) = (self.discounts[n - 1], f.total as f32);
            p.iter_mut().for_each(|x| *x *= f.backoff);
            for (&t, &c) in f.tokens.iter().zip(&f.counts) {
                p[t as usize] += d.discounted(c) / total;
            }
        }
        p.into_iter().map(f32::ln).collect()
    }

    /// Log-probability of `BOS s EOS` (natural log), and the number of tokens predicted.
    pub fn sentence_log_prob(&self, s: &[u32], bos: u32, eos: u32) -> (f64, usize) {
        let seq: Vec<u32> = std::iter::once(bos)
            .chain(s.iter().copied())
            .chain(std::iter::once(eos))
            .collect();
        let lp = (1..seq.len())
            .map(|i| self.log_probs(&seq[..i])[seq[i] as usize] as f64)
            .sum();
        (lp, seq.len() - 1)
    }

    /// Writes the model to `path` (atomically: a temporary file renamed into place).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        let single = self.discounts.iter().all(|d| d.single());
        let version = if single { 2 } else { VERSION };
        for v in [version, self.order as u32, self.vocab as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let per_order = if single { 1 } else { 3 };
        for d in self.discounts.iter().flat_map(|d| &d.0[..per_order]) {
            out.extend_from_slice(&d.to_le_bytes());
        }
        for table in &self.tables {
            let mut contexts: Vec<(&Vec<u32>, &Followers)> = table.iter().collect();
            contexts.sort_unstable_by(|a, b| a.0.cmp(b.0));
            write_varint(&mut out, contexts.len() as u32);
            for (context, f) in contexts {
                let k = [f.tokens.len() as u32, f.total];
                let fields = context.iter().chain(&k[..1]).chain(&f.tokens);
                for &v in fields.chain(&k[1..]).chain(&f.counts) {
                    write_varint(&mut out, v);
                }
            }
        }
        fbank::npy::write_atomic(path, &out).map_err(|e| LearnerError::io(path, e))
    }

    /// Reads a model written by [`save`](Self::save); a file that is not one is an error naming it.
    pub fn load(path: &Path) -> Result<Self> {
        let bad = |m: &str| LearnerError::io(path, format!("not an n-gram model file: {m}"));
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|mut f| f.read_to_end(&mut bytes))
            .map_err(|e| LearnerError::io(path, e))?;
        if bytes.len() < 8 || &bytes[..8] != MAGIC {
            return Err(bad("wrong magic bytes"));
        }
        let mut r = Fields {
            bytes: &bytes,
            at: 8,
            varints: false,
        };
        let truncated = || bad("truncated");
        let version = r.u32().ok_or_else(truncated)?;
        if !(1..=VERSION).contains(&version) {
            return Err(bad("unknown version"));
        }
        r.varints = version >= 2;
        let order = r.u32().ok_or_else(truncated)? as usize;
        let vocab = r.u32().ok_or_else(truncated)? as usize;
        if order == 0 || vocab == 0 {
            return Err(bad("order and vocabulary must be positive"));
        }
        // Before version 3, one discount per order: every count's.
        let per_order = if version >= 3 { 3 } else { 1 };
        let discounts = (0..order)
            .map(|_| {
                let d = (0..per_order)
                    .map(|_| r.u32().map(f32::from_bits))
                    .collect::<Option<Vec<_>>>()?;
                Some(Discounts(std::array::from_fn(|i| d[i.min(d.len() - 1)])))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(truncated)?;
        let mut tables = Vec::with_capacity(order);
        for n in 1..=order {
            let mut table = HashMap::new();
            for _ in 0..r.count().ok_or_else(truncated)? {
                let context = r.tokens(n - 1).ok_or_else(truncated)?;
                let k = r.tokens(1).ok_or_else(truncated)?[0] as usize;
                let tokens = r.tokens(k).ok_or_else(truncated)?;
                let total = r.count().ok_or_else(truncated)?;
                let counts = (0..k)
                    .map(|_| r.count())
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(truncated)?;
                if tokens.iter().chain(&context).any(|&t| t as usize >= vocab) {
                    return Err(bad("token outside the vocabulary"));
                }
                if total == 0 || counts.iter().sum::<u32>() > total {
                    return Err(bad("counts do not add up"));
                }
                let followers = Followers::new(tokens, counts, total, discounts[n - 1]);
                table.insert(context, followers);
            }
            tables.push(table);
        }
        Ok(Self {
            order,
            vocab,
            discounts,
            tables,
        })
    }
}

/// Appends `v` as an unsigned LEB128 varint: 7 bits per byte, low first, the high bit set on
/// every byte but the last.
fn write_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A reader over a model file's bytes (header `u32`s little-endian; the rest varints in version
/// 2, `u16` tokens and `u32` counts in version 1); `None` past the end or on a malformed varint.
struct Fields<'a> {
    bytes: &'a [u8],
    at: usize,
    varints: bool,
}

impl Fields<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let field = self.bytes.get(self.at..self.at + n)?;
        self.at += n;
        Some(field)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn varint(&mut self) -> Option<u32> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let byte = self.take(1)?[0];
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return u32::try_from(v).ok();
            }
        }
        None
    }

    /// A number of contexts, a total or a count.
    fn count(&mut self) -> Option<u32> {
        match self.varints {
            true => self.varint(),
            false => self.u32(),
        }
    }

    /// `n` tokens (or a follower count).
    fn tokens(&mut self, n: usize) -> Option<Vec<u32>> {
        (0..n)
            .map(|_| match self.varints {
                true => self.varint(),
                false => Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?) as u32),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOS: u32 = 0;
    const EOS: u32 = 1;

    fn toy(order: usize) -> NgramLm {
        let single = Discounting::Single;
        NgramLm::train(
            [vec![2], vec![2, 3]],
            4,
            order,
            BOS,
            EOS,
            Pruning::NONE,
            single,
        )
        .unwrap()
        .0
    }

    #[test]
    fn kneser_ney_by_hand() {
        // `BOS 2 EOS` and `BOS 2 3 EOS`. Unigram continuation counts: 2 <- {BOS}, EOS <- {2, 3},
        // 3 <- {2}: c = {2: 1, EOS: 2, 3: 1}, total 4, D1 = n1 / (n1 + 2 n2) = 2 / 4.
        let lm = toy(2);
        let p1 = |c: f32| (c - 0.5f32).max(0.0) / 4.0 + 0.5 * 3.0 / 4.0 / 4.0;
        let unigram: Vec<f32> = lm.log_probs(&[]).into_iter().map(f32::exp).collect();
        let expected = [p1(0.0), p1(2.0), p1(1.0), p1(1.0)];
        for (p, e) in unigram.iter().zip(expected) {
            assert!((p - e).abs() < 1e-6, "{unigram:?} vs {expected:?}");
        }
        // Bigram counts {BOS 2: 2, 2 EOS: 1, 2 3: 1, 3 EOS: 1}: D2 = 3 / 5. After `2`: EOS and 3
        // once each, p(3 | 2) = (1 - 0.6) / 2 + 0.6 * 2 / 2 * p1(3).
        let p = lm.log_probs(&[BOS, 2])[3].exp();
        assert!((p - (0.2 + 0.6 * p1(1.0))).abs() < 1e-6, "{p}");
    }

    #[test]
    fn modified_discounts_by_hand() {
        // n1..n4 = 4, 2, 1, 1: Y = 4 / 8, D(1) = 1 - 2Y 2/4, D(2) = 2 - 3Y 1/2, D(3+) = 3 - 4Y.
        let counts = [1, 1, 1, 1, 2, 2, 3, 4, 9];
        let d = Discounts::estimate(counts.iter(), Discounting::Modified);
        assert_eq!(d, Discounts([0.5, 1.25, 1.0]));
        let single = Discounts::estimate(counts.iter(), Discounting::Single);
        assert_eq!(single, Discounts([0.5; 3]), "Y = 4 / 8 for every count");
        assert_eq!([1, 2, 3, 9].map(|c| d.discounted(c)), [0.5, 0.75, 2.0, 8.0]);
        // No count of 3: undefined, so the single discount n1 / (n1 + 2 n2) for every count.
        let d = Discounts::estimate([1, 1, 2, 4].iter(), Discounting::Modified);
        assert_eq!(d, Discounts([0.5; 3]));
        // n1..n4 = 1, 2, 4, 9: Y = 1/5, D(1) = 1 - 2Y 2 = 0.2, D(2) = 2 - 3Y 4/2 = 0.8,
        // D(3+) = 3 - 4Y 9/4 = 1.2.
        let counts = [1, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4];
        let d = Discounts::estimate(counts.iter(), Discounting::Modified);
        assert!(
            (d.0[0] - 0.2).abs() < 1e-6 && (d.0[1] - 0.8).abs() < 1e-6,
            "{d:?}"
        );
        assert!((d.0[2] - 1.2).abs() < 1e-6, "{d:?}");
    }

    #[test]
    fn every_distribution_sums_to_one() {
        let sentences =
            || (0..50u32).map(|i| (0..1 + i % 7).map(|j| 2 + (i * j + j) % 9).collect());
        // Pruned or not, at the highest order or from the second.
        let prunings = [1, 2].into_iter().flat_map(|min_count| {
            [2, 4].map(|from_order| Pruning {
                min_count,
                from_order,
            })
        });
        let settings =
            prunings.flat_map(|p| [Discounting::Single, Discounting::Modified].map(|d| (p, d)));
        for (pruning, discounting) in settings {
            let (lm, stats) =
                NgramLm::train(sentences(), 12, 4, BOS, EOS, pruning, discounting).unwrap();
            assert_eq!(
                lm.discounts.iter().all(|d| d.single()),
                discounting == Discounting::Single,
                "modified Kneser-Ney has three discounts at some order: {:?}",
                lm.discounts
            );
            assert_eq!(stats.sentences, 50);
            assert_eq!(stats.ngrams.len(), 4);
            // Seen and unseen contexts, shorter and longer than the order.
            for history in [
                vec![BOS],
                vec![BOS, 2],
                vec![BOS, 2, 4, 6],
                vec![BOS, 11, 11],
            ] {
                let sum: f32 = lm.log_probs(&history).into_iter().map(f32::exp).sum();
                assert!(
                    (sum - 1.0).abs() < 1e-5,
                    "{history:?}, {pruning:?}, {discounting:?}: {sum}"
                );
            }
        }
    }

    #[test]
    fn a_deterministic_continuation_is_likely_and_pruning_keeps_it() {
        let sentences = (0..20).map(|_| vec![5, 6, 7]).chain([vec![5, 8]]);
        // Pruned from the bigrams, `6 7` (one left extension) goes while `5 6 7` (20 times)
        // stays: the longer context must still be found without the shorter one.
        for (min_count, from_order) in [(1, 3), (2, 3), (2, 2)] {
            let sentences = sentences.clone();
            let pruning = Pruning {
                min_count,
                from_order,
            };
            let single = Discounting::Single;
            let (lm, stats) = NgramLm::train(sentences, 10, 3, BOS, EOS, pruning, single).unwrap();
            let p = lm.log_probs(&[BOS, 5, 6]);
            let best = (0..10).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            assert_eq!(best, 7, "{pruning:?}");
            assert!(p[7].exp() > 0.8, "{pruning:?}: {}", p[7].exp());
            // Trigrams `BOS 5 6`, `5 6 7`, `6 7 EOS` (20 times) and `BOS 5 8`, `5 8 EOS` (once
            // each: kept at 1, pruned at 2).
            assert_eq!(stats.ngrams[2], if min_count == 1 { 5 } else { 3 });
            if from_order == 2 {
                assert!(!lm.tables[1].contains_key(&vec![6]), "context `6` pruned");
            }
        }
    }

    #[test]
    fn saved_models_load_equal_and_other_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let lm = toy(3);
        let path = dir.path().join("lm.bin");
        lm.save(&path).unwrap();
        assert_eq!(NgramLm::load(&path).unwrap(), lm);
        // One discount per order is written as version 2, three as version 3.
        let version = |path: &Path| std::fs::read(path).unwrap()[8];
        assert_eq!(version(&path), 2);
        let sentences = (0..40u32).map(|i| (0..1 + i % 5).map(|j| 2 + (i + j * j) % 7).collect());
        let modified = Discounting::Modified;
        let (lm, _) = NgramLm::train(sentences, 10, 3, BOS, EOS, Pruning::NONE, modified).unwrap();
        assert!(
            !lm.discounts.iter().all(|d| d.single()),
            "{:?}",
            lm.discounts
        );
        let path3 = dir.path().join("lm3.bin");
        lm.save(&path3).unwrap();
        assert_eq!(version(&path3), 3);
        assert_eq!(NgramLm::load(&path3).unwrap(), lm);
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, b"not a model").unwrap();
        let err = NgramLm::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("bad.bin") && err.contains("not an n-gram model"),
            "{err}"
        );
        std::fs::write(&bad, &std::fs::read(&path).unwrap()[..30]).unwrap();
        assert!(NgramLm::load(&bad)
            .unwrap_err()
            .to_string()
            .contains("truncated"));
    }

    /// `toy(3)` as version 1 wrote it (154 bytes).
    const TOY3_V1: [u8; 154] = [
        0x4d, 0x54, 0x4c, 0x41, 0x4e, 0x47, 0x52, 0x4d, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0x9a, 0x99, 0x19, 0x3f, 0x66, 0x66,
        0x66, 0x3f, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00, 0x04,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x02, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x01, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
        0x02, 0x00, 0x01, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00,
        0x01, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn version_1_files_still_load_and_later_versions_are_smaller() {
        let dir = tempfile::tempdir().unwrap();
        let old = dir.path().join("v1.bin");
        std::fs::write(&old, TOY3_V1).unwrap();
        assert_eq!(NgramLm::load(&old).unwrap(), toy(3));
        let new = dir.path().join("v2.bin");
        toy(3).save(&new).unwrap();
        assert!(std::fs::metadata(&new).unwrap().len() < TOY3_V1.len() as u64);
        let mut out = Vec::new();
        for v in [0, 127, 128, 300, u32::MAX] {
            write_varint(&mut out, v);
        }
        let mut r = Fields {
            bytes: &out,
            at: 0,
            varints: true,
        };
        let read: Vec<u32> = (0..5).map(|_| r.count().unwrap()).collect();
        assert_eq!(read, [0, 127, 128, 300, u32::MAX]);
        assert_eq!(r.count(), None, "past the end");
    }

    #[test]
    fn tokens_outside_the_vocabulary_are_refused() {
        let single = Discounting::Single;
        let err = NgramLm::train([vec![2, 9]], 4, 2, BOS, EOS, Pruning::NONE, single).unwrap_err();
        assert!(err.to_string().contains("token 9"), "{err}");
        assert!(NgramLm::train([vec![2]], 4, 0, BOS, EOS, Pruning::NONE, single).is_err());
    }
}
