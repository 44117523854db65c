//! Batched beam search as fairseq's `SequenceGenerator`: `2K` candidates per sentence each
//! step, end-of-sentence candidates ranked in the top `K` are finalized with their score
//! divided by `length^lenpen`, a sentence stops once `K` hypotheses are final, and
//! `max_len = a * src_frames + b` forces EOS. Finished sentences leave the batch (their rows
//! are dropped from the caches). `beam = 1` is greedy decoding. With a CTC head and
//! `ctc_weight > 0` the search is joint CTC/attention (ESPnet's `BeamSearch` with a CTC scorer);
//! with an n-gram model and `lm_weight > 0` its scores are added too (shallow fusion).

use burn::prelude::*;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::ctc_prefix::{CtcPrefixScorer, CtcState, PRE_BEAM_RATIO};
use super::ngram::NgramLm;
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
    /// Joint CTC/attention decoding: the weight `λ` of the CTC prefix score (0: attention only,
    /// ESPnet's ASR recipes use 0.3); see [`crate::decode::ctc_prefix`].
    pub ctc_weight: f64,
    /// Shallow fusion: the weight `β ≥ 0` of an n-gram language model's log-probability
    /// ([`crate::decode::ngram`]; 0: no language model).
    pub lm_weight: f64,
    /// Word insertion bonus `γ`: added for every token that begins a word (Kaldi's word
    /// insertion penalty with the sign turned; ESPnet's `penalty` counts every token instead).
    /// Below 0 it holds back hypotheses that split a word the model cannot spell ("a nough"
    /// for "enough"); 0: none.
    pub word_bonus: f64,
}

impl Default for BeamConfig {
    fn default() -> Self {
        Self {
            beam: 5,
            lenpen: 1.0,
            max_len_a: 0.0,
            max_len_b: 200,
            min_len: 1,
            ctc_weight: 0.0,
            lm_weight: 0.0,
            word_bonus: 0.0,
        }
    }
}

/// Token ids the search needs.
#[derive(Debug, Clone)]
pub struct SpecialTokens {
    pub bos: u32,
    pub eos: u32,
    pub pad: u32,
    /// For every id, whether it begins a word (for `word_bonus`; empty: none does).
    pub word_start: Vec<bool>,
}

impl SpecialTokens {
    /// The tokenizer's BOS, EOS and PAD, and its word-initial pieces.
    pub fn of(tokenizer: &data::Tokenizer) -> Self {
        Self {
            bos: tokenizer.bos_id(),
            eos: tokenizer.eos_id(),
            pad: tokenizer.pad_id(),
            word_start: tokenizer.word_starts(),
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
    /// Sentences whose returned hypothesis ended at `max_len` (EOS forced there, or chosen at
    /// the last allowed step): possibly cut short, so `max_len_a`/`max_len_b` may be too small.
    pub length_limited: usize,
}

#[derive(Debug, Clone)]
struct Beam {
    tokens: Vec<u32>,
    score: f64,
    /// CTC's forward variables of `tokens` (joint decoding only).
    ctc: Option<CtcState>,
}

/// Decodes `src_frames.len()` sentences whose scorer rows are `0..n` (one per sentence). With
/// `ctc` (utterance `i` = sentence `i`) and `config.ctc_weight > 0` the search is joint
/// CTC/attention: each hypothesis's best `⌈1.5 k⌉` next tokens by the decoder are scored
/// `(1 − λ) log p_att + λ Δ log ψ_CTC` ([`crate::decode::ctc_prefix`]). With `lm` and
/// `config.lm_weight = β > 0`, every token also gains `β log p_LM(token | hypothesis)`
/// ([`crate::decode::ngram`]), in the pre-beam as well, and every token that begins a word
/// `config.word_bonus = γ`.
pub fn beam_search<B: Backend, S: Scorer<B>>(
    scorer: &mut S,
    src_frames: &[usize],
    config: &BeamConfig,
    special: &SpecialTokens,
    ctc: Option<&CtcPrefixScorer>,
    lm: Option<&NgramLm>,
) -> st_model::Result<(Vec<Hypothesis>, SearchStats)> {
    let k = config.beam.max(1);
    let lambda = config.ctc_weight;
    let joint = ctc.filter(|_| lambda > 0.0);
    let beta = config.lm_weight;
    let fusion = lm.filter(|_| beta > 0.0);
    let pre_beam = ((PRE_BEAM_RATIO * k as f64).ceil() as usize).max(k);
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
        .map(|s| {
            (0..k)
                .map(|i| Beam {
                    tokens: vec![special.bos],
                    score: if i == 0 { 0.0 } else { f64::NEG_INFINITY },
                    ctc: joint.filter(|_| i == 0).map(|c| c.initial(s)),
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
        let allowed = |tok: u32, force_eos: bool| {
            if force_eos {
                tok == special.eos
            } else {
                tok != special.pad
                    && tok != special.bos
                    && (tok != special.eos || step >= config.min_len)
            }
        };
        // Shallow fusion: `β log p_LM` of every token after every live hypothesis (row
        // `pos * k + b`, as the decoder's).
        let lm_logp: Vec<Vec<f32>> = match fusion {
            Some(lm) => active
                .iter()
                .flat_map(|&s| beams[s].iter())
                .map(|beam| match beam.score == f64::NEG_INFINITY {
                    true => Vec::new(),
                    false => lm.log_probs(&beam.tokens),
                })
                .collect(),
            None => Vec::new(),
        };
        // What a token adds besides the decoder and CTC: `β log p_LM + γ [tok begins a word]`.
        let fused_of = |pos: usize, b: usize, tok: u32| {
            let lm = lm_logp
                .get(pos * k + b)
                .map_or(0.0, |row| beta * row[tok as usize] as f64);
            match special.word_start.get(tok as usize) {
                Some(true) => lm + config.word_bonus,
                _ => lm,
            }
        };
        let tokens_of = |pos: usize, b: usize, force_eos: bool| {
            let row = &logp[(pos * k + b) * vocab..(pos * k + b + 1) * vocab];
            row.iter()
                .enumerate()
                .map(|(tok, &lp)| (lp, tok as u32))
                .filter(move |&(lp, tok)| allowed(tok, force_eos) && lp.is_finite())
        };
        // Joint decoding: the decoder's pre-beam of every live hypothesis, (pos, beam, log p,
        // token), extended by CTC (O(frames) per token), one hypothesis per task on every core.
        let mut pre: Vec<(usize, usize, f32, u32)> = Vec::new();
        let mut extended: Vec<Option<CtcState>> = Vec::new();
        if let Some(ctc) = joint {
            let mut groups = Vec::new();
            for (pos, &s) in active.iter().enumerate() {
                let force_eos = step + 1 >= max_len[s];
                for (b, beam) in beams[s].iter().enumerate() {
                    if beam.score == f64::NEG_INFINITY {
                        continue;
                    }
                    // Ranked by the decoder's, the language model's and the word bonus's weighted
                    // scores (ESPnet's pre-beam over its full scorers).
                    let mut best: Vec<(f64, f32, u32)> = tokens_of(pos, b, force_eos)
                        .map(|(lp, tok)| {
                            ((1.0 - lambda) * lp as f64 + fused_of(pos, b, tok), lp, tok)
                        })
                        .collect();
                    if best.len() > pre_beam {
                        best.select_nth_unstable_by(pre_beam, |a, b| b.0.total_cmp(&a.0));
                        best.truncate(pre_beam);
                    }
                    groups.push((
                        s,
                        b,
                        best.iter().map(|&(_, _, tok)| tok).collect::<Vec<_>>(),
                    ));
                    pre.extend(best.into_iter().map(|(_, lp, tok)| (pos, b, lp, tok)));
                }
            }
            extended = groups
                .par_iter()
                .flat_map_iter(|(s, b, tokens)| {
                    let h = beams[*s][*b]
                        .ctc
                        .as_ref()
                        .expect("a live beam has a CTC state");
                    ctc.extend(*s, h, tokens).into_iter().map(Some)
                })
                .collect();
        }
        let mut pre = pre.iter().enumerate().peekable();
        let mut parents = Vec::new();
        let mut still_active = Vec::new();
        for (pos, &s) in active.iter().enumerate() {
            let force_eos = step + 1 >= max_len[s];
            // (score, beam, token, index into `extended`).
            let mut candidates: Vec<(f64, usize, u32, usize)> = Vec::with_capacity(k * vocab);
            if joint.is_some() {
                while let Some((i, &(_, b, lp, tok))) = pre.next_if(|(_, job)| job.0 == pos) {
                    let beam = &beams[s][b];
                    let (g, h) = (extended[i].as_ref(), beam.ctc.as_ref());
                    let delta = g.zip(h).map_or(0.0, |(g, h)| g.log_psi - h.log_psi);
                    let score = beam.score
                        + (1.0 - lambda) * lp as f64
                        + lambda * delta as f64
                        + fused_of(pos, b, tok);
                    if score.is_finite() {
                        candidates.push((score, b, tok, i));
                    }
                }
            } else {
                for (b, beam) in beams[s].iter().enumerate() {
                    if beam.score != f64::NEG_INFINITY {
                        candidates.extend(tokens_of(pos, b, force_eos).map(|(lp, tok)| {
                            let score = beam.score + lp as f64 + fused_of(pos, b, tok);
                            (score, b, tok, usize::MAX)
                        }));
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
            for (rank, &(score, b, tok, state)) in candidates.iter().enumerate() {
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
                    let ctc = extended.get_mut(state).and_then(Option::take);
                    next.push((pos * k + b, Beam { tokens, score, ctc }));
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
                        ctc: None,
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
    stats.length_limited = hyps
        .iter()
        .zip(&max_len)
        .filter(|&(h, &limit)| h.tokens.len() + 1 >= limit)
        .count();
    Ok((hyps, stats))
}
