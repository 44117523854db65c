//! Batched beam search as fairseq's `SequenceGenerator`: `2K` candidates per sentence each
//! step, end-of-sentence candidates ranked in the top `K` are finalized with their score
//! divided by `length^lenpen`, a sentence stops once `K` hypotheses are final, and
//! `max_len = a * src_frames + b` forces EOS. Finished sentences leave the batch (their rows
//! are dropped from the caches). `beam = 1` is greedy decoding.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::scorer::Scorer;

/// Search settings (fairseq's defaults: lenpen 1, max_len_a 0, max_len_b 200, min_len 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeamConfig {
    pub beam: usize,
    pub lenpen: f64,
    pub max_len_a: f64,
    pub max_len_b: usize,
    pub min_len: usize,
}

impl Default for BeamConfig {
    fn default() -> Self {
        Self {
            beam: 5,
            lenpen: 1.0,
            max_len_a: 0.0,
            max_len_b: 200,
            min_len: 1,
        }
    }
}

/// Token ids the search needs.
#[derive(Debug, Clone, Copy)]
pub struct SpecialTokens {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
}

impl SpecialTokens {
    /// The tokenizer's BOS, EOS and PAD.
    pub fn of(tokenizer: &data::Tokenizer) -> Self {
        Self {
            bos: tokenizer.bos_id(),
            eos: tokenizer.eos_id(),
            pad: tokenizer.pad_id(),
        }
    }
}

/// The best hypothesis of one sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Tokens without BOS and EOS.
    pub tokens: Vec<u32>,
    /// Length-normalised log-probability.
    pub score: f64,
}

/// What a search cost.
#[derive(Debug, Clone, Default)]
pub struct SearchStats {
    pub steps: usize,
    /// Largest decoder KV cache held at any step, in bytes.
    pub peak_cache_bytes: usize,
    /// Tokens generated (EOS included) over the returned hypotheses.
    pub tokens: usize,
}

#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    score: f64,
}

/// Decodes `src_frames.len()` sentences whose scorer rows are `0..n` (one per sentence).
pub fn beam_search<B: Backend, S: Scorer<B>>(
    scorer: &mut S,
    src_frames: &[usize],
    config: &BeamConfig,
    special: SpecialTokens,
) -> st_model::Result<(Vec<Hypothesis>, SearchStats)> {
    let k = config.beam.max(1);
    let n = src_frames.len();
    let max_len: Vec<usize> = src_frames
        .iter()
        .map(|&f| ((config.max_len_a * f as f64) as usize + config.max_len_b).max(1))
        .collect();
    // Every sentence starts with K copies of its row; only beam 0 is live at step 0.
    scorer.reorder(
        &(0..n)
            .flat_map(|s| std::iter::repeat_n(s, k))
            .collect::<Vec<_>>(),
    );
    let mut active: Vec<usize> = (0..n).collect();
    let mut beams: Vec<Vec<Beam>> = (0..n)
        .map(|_| {
            (0..k)
                .map(|i| Beam {
                    tokens: vec![special.bos],
                    score: if i == 0 { 0.0 } else { f64::NEG_INFINITY },
                })
                .collect()
        })
        .collect();
    let mut finished: Vec<Vec<Hypothesis>> = vec![Vec::new(); n];
    let mut stats = SearchStats::default();
    for step in 0.. {
        let history: Vec<Vec<u32>> = active
            .iter()
            .flat_map(|&s| beams[s].iter().map(|b| b.tokens.clone()))
            .collect();
        let logp = scorer.step(&history)?;
        stats.steps += 1;
        stats.peak_cache_bytes = stats.peak_cache_bytes.max(scorer.cache_bytes());
        let vocab = logp.dims()[1];
        let logp: Vec<f32> = logp
            .into_data()
            .convert::<f32>()
            .to_vec()
            .expect("f32 log-probs");
        let mut parents = Vec::new();
        let mut still_active = Vec::new();
        for (pos, &s) in active.iter().enumerate() {
            let force_eos = step + 1 >= max_len[s];
            let mut candidates: Vec<(f64, usize, u32)> = Vec::with_capacity(k * vocab);
            for (b, beam) in beams[s].iter().enumerate() {
                if beam.score == f64::NEG_INFINITY {
                    continue;
                }
                let row = &logp[(pos * k + b) * vocab..(pos * k + b + 1) * vocab];
                for (tok, &lp) in row.iter().enumerate() {
                    let tok = tok as u32;
                    let allowed = if force_eos {
                        tok == special.eos
                    } else {
                        tok != special.pad
                            && tok != special.bos
                            && (tok != special.eos || step >= config.min_len)
                    };
                    if allowed && lp.is_finite() {
                        candidates.push((beam.score + lp as f64, b, tok));
                    }
                }
            }
            let take = (2 * k).min(candidates.len());
            if take < candidates.len() {
                candidates.select_nth_unstable_by(take, |a, b| b.0.total_cmp(&a.0));
                candidates.truncate(take);
            }
            candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
            let mut next = Vec::with_capacity(k);
            for (rank, &(score, b, tok)) in candidates.iter().enumerate() {
                if tok == special.eos {
                    if rank < k && finished[s].len() < k {
                        let length = beams[s][b].tokens.len(); // generated tokens + EOS
                        finished[s].push(Hypothesis {
                            tokens: beams[s][b].tokens[1..].to_vec(),
                            score: score / (length as f64).powf(config.lenpen),
                        });
                    }
                } else if next.len() < k {
                    let mut tokens = beams[s][b].tokens.clone();
                    tokens.push(tok);
                    next.push((pos * k + b, Beam { tokens, score }));
                }
            }
            if finished[s].len() >= k || force_eos || next.is_empty() {
                continue;
            }
            while next.len() < k {
                let (row, _) = next[0].clone();
                next.push((
                    row,
                    Beam {
                        tokens: vec![special.bos],
                        score: f64::NEG_INFINITY,
                    },
                ));
            }
            parents.extend(next.iter().map(|(row, _)| *row));
            beams[s] = next.into_iter().map(|(_, beam)| beam).collect();
            still_active.push(s);
        }
        active = still_active;
        if active.is_empty() {
            break;
        }
        scorer.reorder(&parents);
    }
    let hyps: Vec<Hypothesis> = finished
        .into_iter()
        .map(|f| {
            f.into_iter()
                .max_by(|a, b| a.score.total_cmp(&b.score))
                .unwrap_or(Hypothesis {
                    tokens: Vec::new(),
                    score: f64::NEG_INFINITY,
                })
        })
        .collect();
    stats.tokens = hyps.iter().map(|h| h.tokens.len() + 1).sum();
    Ok((hyps, stats))
}
