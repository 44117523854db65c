//! CTC prefix scores for joint CTC/attention decoding (Watanabe et al. 2017, "Hybrid
//! CTC/Attention Architecture for End-to-End Speech Recognition", Algorithm 2; ESPnet's
//! `CTCPrefixScore`). A hypothesis `h` is scored by the attention decoder and by the encoder's
//! CTC head at once,
//!
//! `score(h·c) = score(h) + (1 − λ) log p_att(c | h, X) + λ (log ψ(h·c) − log ψ(h))`,
//!
//! where `ψ(g)` is the probability that CTC's output *begins* with `g` (summed over every
//! alignment whose collapsed labels start with `g`), and for `c = EOS` that it *is* `h`. CTC
//! knows where the audio ends and what it contains, so it penalises the words an attention
//! decoder inserts, drops or repeats, which teacher-forced training never shows it.
//!
//! The forward variables of `h` over the frames `t`:
//! `r^n_t(h)`: frames `0..=t` emit `h` and frame `t` is `h`'s last label,
//! `r^b_t(h)`: frames `0..=t` emit `h` and frame `t` is blank. For a label `c` after `h`
//! (`φ_t = r^b_t(h) + r^n_t(h)`, or `r^b_t(h)` alone when `c` repeats `h`'s last label, which
//! CTC can only emit again after a blank):
//!
//! `r^n_t(h·c) = (r^n_{t−1}(h·c) + φ_{t−1}) p_t(c)`, `r^b_t(h·c) = (r^n_{t−1}(h·c) + r^b_{t−1}(h·c)) p_t(∅)`,
//! `ψ(h·c) = r^n_0(h·c) + Σ_{t≥1} φ_{t−1} p_t(c)`, and `ψ(h·EOS) = r^n_{T−1}(h) + r^b_{T−1}(h)`.
//!
//! Everything is in log space, on the host (`O(T)` per candidate; the search extends only the
//! attention decoder's best candidates, [`PRE_BEAM_RATIO`] × beam per hypothesis, as ESPnet does).

/// Per hypothesis, how many of the attention decoder's best next tokens CTC scores (ESPnet's
/// `pre_beam_ratio`); the others are not candidates.
pub const PRE_BEAM_RATIO: f64 = 1.5;

/// The CTC log-probabilities of a batch of utterances and the ids CTC treats specially.
#[derive(Debug, Clone)]
pub struct CtcPrefixScorer {
    /// Per utterance, its real frames' log-probabilities, `[frames, vocab]` row-major.
    log_probs: Vec<Vec<f32>>,
    vocab: usize,
    blank: u32,
    eos: u32,
}

/// CTC's view of one hypothesis: its forward variables and prefix probability.
#[derive(Debug, Clone, PartialEq)]
pub struct CtcState {
    /// `log r^n_t(h)`, one per frame.
    r_n: Vec<f32>,
    /// `log r^b_t(h)`, one per frame.
    r_b: Vec<f32>,
    /// `log ψ(h)`.
    pub log_psi: f32,
    /// `h`'s last label (`None` for the empty hypothesis).
    last: Option<u32>,
    /// Labels in `h`.
    len: usize,
}

/// `log(e^a + e^b)`. `ln(1 + e^{lo−hi})` rather than `ln_1p` (twice as fast here, and
/// within half an f32 ulp of 1 of it, far below `hi`'s own rounding); a term more than 17
/// nats below the other (`e^−17 ≈ 4e−8`) is dropped, as f32 rounding would drop it at `hi ≈ −1`.
fn log_add(a: f32, b: f32) -> f32 {
    let (hi, lo) = if a > b { (a, b) } else { (b, a) };
    let d = lo - hi;
    if d < -17.0 || d.is_nan() {
        hi
    } else {
        hi + (1.0 + d.exp()).ln()
    }
}

impl CtcPrefixScorer {
    /// `log_probs[u]`: utterance `u`'s CTC log-probabilities over its real frames,
    /// `[frames_u, vocab]` row-major. `blank` is CTC's blank; `eos` ends a hypothesis.
    pub fn new(log_probs: Vec<Vec<f32>>, vocab: usize, blank: u32, eos: u32) -> Self {
        assert!(
            log_probs.iter().all(|lp| lp.len() % vocab == 0),
            "CTC log-probabilities must be [frames, vocab]"
        );
        Self {
            log_probs,
            vocab,
            blank,
            eos,
        }
    }

    fn frames(&self, utterance: usize) -> usize {
        self.log_probs[utterance].len() / self.vocab
    }

    /// The empty hypothesis of `utterance`: only blanks so far, `ψ = 1`.
    pub fn initial(&self, utterance: usize) -> CtcState {
        let lp = &self.log_probs[utterance];
        let mut r_b = Vec::with_capacity(self.frames(utterance));
        let mut acc = 0.0f32;
        for t in 0..self.frames(utterance) {
            acc += lp[t * self.vocab + self.blank as usize];
            r_b.push(acc);
        }
        CtcState {
            r_n: vec![f32::NEG_INFINITY; r_b.len()],
            r_b,
            log_psi: 0.0,
            last: None,
            len: 0,
        }
    }

    /// `h·c` for each `c` in `tokens`, from `h`'s state. For `c = EOS` only `log_psi` (the
    /// probability that CTC's output is exactly `h`) is meaningful: nothing extends a finished
    /// hypothesis. `φ` is shared by every `c` but `h`'s last label, so it is computed once.
    pub fn extend(&self, utterance: usize, h: &CtcState, tokens: &[u32]) -> Vec<CtcState> {
        let frames = h.r_n.len();
        let phi_any: Vec<f32> = (0..frames).map(|t| log_add(h.r_b[t], h.r_n[t])).collect();
        tokens
            .iter()
            .map(|&c| match c == self.eos {
                true => CtcState {
                    r_n: Vec::new(),
                    r_b: Vec::new(),
                    log_psi: phi_any.last().copied().unwrap_or(f32::NEG_INFINITY),
                    last: Some(c),
                    len: h.len,
                },
                false => {
                    // CTC emits a repeat of the last label only after a blank.
                    let phi = if h.last == Some(c) { &h.r_b } else { &phi_any };
                    self.extend_by(utterance, h, c, phi)
                }
            })
            .collect()
    }

    /// `h·c` for a label `c`, given `φ_t` for `c`.
    fn extend_by(&self, utterance: usize, h: &CtcState, c: u32, phi: &[f32]) -> CtcState {
        let frames = phi.len();
        let lp = &self.log_probs[utterance];
        let p = |t: usize, k: u32| lp[t * self.vocab + k as usize];
        let mut r_n = vec![f32::NEG_INFINITY; frames];
        let mut r_b = vec![f32::NEG_INFINITY; frames];
        if frames > 0 && h.len == 0 {
            r_n[0] = p(0, c);
        }
        // `h·c` has `len + 1` labels: no alignment emits them in fewer frames.
        let start = h.len.max(1);
        for t in start..frames {
            r_n[t] = log_add(r_n[t - 1], phi[t - 1]) + p(t, c);
            r_b[t] = log_add(r_n[t - 1], r_b[t - 1]) + p(t, self.blank);
        }
        // ψ = log(e^{r^n_0} + Σ_t e^{φ_{t−1} + log p_t(c)}), summed under its largest term.
        let term = |t: usize| phi[t - 1] + p(t, c);
        let first = r_n.first().copied().unwrap_or(f32::NEG_INFINITY);
        let top = (start..frames).map(term).fold(first, f32::max);
        let log_psi = match top {
            f32::NEG_INFINITY => top,
            _ => {
                let sum = (start..frames).map(|t| (term(t) - top).exp()).sum::<f32>()
                    + (first - top).exp();
                top + sum.ln()
            }
        };
        CtcState {
            r_n,
            r_b,
            log_psi,
            last: Some(c),
            len: h.len + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames × vocab log-probabilities, each frame a softmax of pseudo-random logits.
    fn log_probs(frames: usize, vocab: usize, seed: u64) -> Vec<f32> {
        let mut x = seed;
        let mut out = Vec::new();
        for _ in 0..frames {
            let logits: Vec<f32> = (0..vocab)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((x >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
                })
                .collect();
            let z = logits.iter().map(|l| l.exp()).sum::<f32>().ln();
            out.extend(logits.iter().map(|l| l - z));
        }
        out
    }

    /// Every alignment of `frames` labels over `vocab`, with its probability and its collapsed
    /// output (repeats merged, blanks dropped).
    fn alignments(lp: &[f32], frames: usize, vocab: usize, blank: u32) -> Vec<(f64, Vec<u32>)> {
        (0..vocab.pow(frames as u32))
            .map(|mut code| {
                let mut path = Vec::new();
                for _ in 0..frames {
                    path.push((code % vocab) as u32);
                    code /= vocab;
                }
                let logp: f64 = path
                    .iter()
                    .enumerate()
                    .map(|(t, &k)| lp[t * vocab + k as usize] as f64)
                    .sum();
                let mut out: Vec<u32> = Vec::new();
                let mut prev = None;
                for &k in &path {
                    if Some(k) != prev && k != blank {
                        out.push(k);
                    }
                    prev = Some(k);
                }
                (logp.exp(), out)
            })
            .collect()
    }

    #[test]
    fn prefix_and_full_probabilities_match_every_alignment_summed() {
        // Blank 0, labels 1-2, EOS 3 (CTC can emit it too, as our heads can: it is a label).
        let (frames, vocab, blank, eos) = (5, 4, 0, 3);
        for seed in [1, 7, 42] {
            let lp = log_probs(frames, vocab, seed);
            let paths = alignments(&lp, frames, vocab, blank);
            let ctc = CtcPrefixScorer::new(vec![lp], vocab, blank, eos);
            let mut prefixes = vec![(vec![], ctc.initial(0))];
            // Every hypothesis of up to 4 labels, repeats included.
            for _ in 0..4 {
                let mut next = Vec::new();
                for (h, state) in &prefixes {
                    for (c, g_state) in [1u32, 2].into_iter().zip(ctc.extend(0, state, &[1, 2])) {
                        let mut g: Vec<u32> = h.clone();
                        g.push(c);
                        next.push((g, g_state));
                    }
                }
                for (g, state) in &next {
                    let want: f64 = paths
                        .iter()
                        .filter(|(_, out)| out.starts_with(g))
                        .map(|(p, _)| p)
                        .sum();
                    let got = (state.log_psi as f64).exp();
                    assert!(
                        (got - want).abs() <= 1e-5 * want.max(1e-3),
                        "ψ({g:?}): {got} vs {want}"
                    );
                    let exact: f64 = paths
                        .iter()
                        .filter(|(_, out)| out == g)
                        .map(|(p, _)| p)
                        .sum();
                    let got = (ctc.extend(0, state, &[eos])[0].log_psi as f64).exp();
                    assert!(
                        (got - exact).abs() <= 1e-5 * exact.max(1e-3),
                        "p({g:?}): {got} vs {exact}"
                    );
                }
                prefixes = next;
            }
            // The empty hypothesis: ψ = 1, and p(∅) = every frame blank.
            let all_blank: f64 = paths
                .iter()
                .filter(|(_, out)| out.is_empty())
                .map(|(p, _)| p)
                .sum();
            let got = (ctc.extend(0, &ctc.initial(0), &[eos])[0].log_psi as f64).exp();
            assert!((got - all_blank).abs() <= 1e-6, "{got} vs {all_blank}");
        }
    }

    #[test]
    fn a_hypothesis_longer_than_the_frames_is_impossible() {
        let ctc = CtcPrefixScorer::new(vec![log_probs(2, 3, 5)], 3, 0, 2);
        let h = ctc.extend(0, &ctc.initial(0), &[1]).remove(0);
        let hh = ctc.extend(0, &h, &[1]).remove(0); // "1 1" needs a blank between: 3 frames
        assert!(h.log_psi.is_finite());
        assert_eq!(hh.log_psi, f32::NEG_INFINITY);
        assert_eq!(ctc.extend(0, &hh, &[2])[0].log_psi, f32::NEG_INFINITY);
    }
}
