//! Beam search over the caches gives the same hypotheses as re-running the full forward at
//! each step, for every attention kind; `--beam 1` is greedy decoding; joint CTC/attention
//! decoding follows a CTC head that is certain and needs one; shallow fusion follows a
//! confident language model; the word bonus counts word-initial tokens; an ensemble averages
//! its members' probabilities.

use std::path::Path;

use burn::prelude::*;
use learner::decode::{
    beam_search, decode_batch, decode_ensemble, BeamConfig, CachedScorer, CtcPrefixScorer,
    Discounting, EnsembleScorer, Hypothesis, NgramLm, Pruning, RecomputeScorer, Scorer,
    SpecialTokens,
};
use mtla::AttentionKind;
use st_model::{DecoderStyle, EncoderOutput, ModelConfig, SpeechModel};

type B = burn::backend::Flex;

const SPECIAL: SpecialTokens = SpecialTokens {
    bos: 0,
    eos: 2,
    pad: 1,
    word_start: Vec::new(),
};

fn config(kind: AttentionKind, s: usize, style: DecoderStyle) -> ModelConfig {
    let mut c = ModelConfig::from_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/small_cpu.toml"),
    )
    .unwrap();
    c.decoder.attention.kind = kind;
    c.decoder.attention.down_rate = s;
    c.decoder.style = style;
    c.vocab_size = 40;
    c.resolved().unwrap()
}

fn batch(frames: &[usize], dim: usize) -> Tensor<B, 3> {
    let t = *frames.iter().max().unwrap();
    let mut v = Vec::with_capacity(frames.len() * t * dim);
    for (b, &n) in frames.iter().enumerate() {
        for j in 0..t {
            for d in 0..dim {
                v.push(if j < n {
                    ((b * 31 + j * 7 + d * 3) % 17) as f32 / 8.0 - 1.0
                } else {
                    0.0
                });
            }
        }
    }
    Tensor::<B, 1>::from_floats(v.as_slice(), &Default::default()).reshape([frames.len(), t, dim])
}

/// An MTLA s = 2 model (prefix decoder) and its encoding of `frames`.
fn mtla_encoded(frames: &[usize]) -> (SpeechModel<B>, EncoderOutput<B>) {
    let cfg = config(AttentionKind::Mtla, 2, DecoderStyle::Prefix);
    let model = SpeechModel::<B>::new(&cfg, &Default::default()).unwrap();
    let encoded = model.encode(batch(frames, 80), frames).unwrap();
    (model, encoded)
}

#[test]
fn cached_and_recomputed_search_agree() {
    let frames = [90, 61, 75];
    let beam = BeamConfig {
        beam: 3,
        max_len_b: 9,
        ..BeamConfig::default()
    };
    for (kind, s, style) in [
        (AttentionKind::Mtla, 2, DecoderStyle::Prefix),
        (AttentionKind::Mtla, 3, DecoderStyle::Prefix),
        (AttentionKind::Mla, 1, DecoderStyle::Prefix),
        (AttentionKind::Mha, 1, DecoderStyle::Prefix),
        (AttentionKind::Gqa, 1, DecoderStyle::Cross),
    ] {
        let cfg = config(kind, s, style);
        let model = SpeechModel::<B>::new(&cfg, &Default::default()).unwrap();
        let encoded = model.encode(batch(&frames, 80), &frames).unwrap();
        let mut cached = CachedScorer::new(&model, &encoded, 10).unwrap();
        let (a, stats) = beam_search(&mut cached, &frames, &beam, &SPECIAL, None, None).unwrap();
        let mut slow = RecomputeScorer::new(&model, &encoded);
        let (b, _) = beam_search(&mut slow, &frames, &beam, &SPECIAL, None, None).unwrap();
        assert_eq!(a.len(), 3);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.tokens, y.tokens, "{kind} s={s} {style:?}");
            assert!(
                (x.score - y.score).abs() < 1e-4,
                "{kind}: {} vs {}",
                x.score,
                y.score
            );
            assert!(x.tokens.len() <= 9);
        }
        assert!(stats.peak_cache_bytes > 0 && stats.steps <= 9);
    }
}

#[test]
fn beam_one_is_greedy() {
    let frames = [70, 52];
    let (model, encoded) = mtla_encoded(&frames);
    let beam = BeamConfig {
        beam: 1,
        max_len_b: 12,
        ..BeamConfig::default()
    };
    let mut scorer = CachedScorer::new(&model, &encoded, 12).unwrap();
    let (hyps, _) = beam_search(&mut scorer, &frames, &beam, &SPECIAL, None, None).unwrap();
    // Plain greedy: argmax of each step (no EOS at step 0, never BOS/pad), stop at EOS.
    let mut state = model.prefill(&encoded).unwrap();
    let mut last = vec![SPECIAL.bos as i64; 2];
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); 2];
    let mut done = [false; 2];
    for step in 0..12 {
        let logp = model
            .step(
                Tensor::from_ints(last.as_slice(), &Default::default()),
                &mut state,
            )
            .unwrap();
        let logp: Vec<f32> = logp.into_data().to_vec().unwrap();
        for r in 0..2 {
            let row = &logp[r * 40..(r + 1) * 40];
            let best = (0..40u32)
                .filter(|&t| {
                    t != SPECIAL.bos && t != SPECIAL.pad && (t != SPECIAL.eos || step >= 1)
                })
                .filter(|&t| step + 1 < 12 || t == SPECIAL.eos)
                .max_by(|&a, &b| row[a as usize].total_cmp(&row[b as usize]))
                .unwrap();
            if !done[r] {
                if best == SPECIAL.eos {
                    done[r] = true;
                } else {
                    out[r].push(best);
                }
            }
            last[r] = best as i64;
        }
    }
    assert_eq!(hyps[0].tokens, out[0]);
    assert_eq!(hyps[1].tokens, out[1]);
}

/// `[frames, vocab]` log-probabilities whose every frame is `labels[t]` (`None`: blank) with
/// probability 0.999.
fn sharp_ctc(labels: &[Option<u32>], vocab: usize) -> Vec<f32> {
    let rest = (0.001f32 / (vocab - 1) as f32).ln();
    labels
        .iter()
        .flat_map(|l| {
            let on = l.unwrap_or(SPECIAL.pad) as usize;
            (0..vocab).map(move |k| if k == on { 0.999f32.ln() } else { rest })
        })
        .collect()
}

/// A CTC head certain of "5 9 9" (the repeat needs a blank between) for utterance 0 and of
/// "12 3" for utterance 1.
fn certain_ctc() -> CtcPrefixScorer {
    CtcPrefixScorer::new(
        vec![
            sharp_ctc(
                &[Some(5), Some(5), None, Some(9), None, Some(9), None, None],
                40,
            ),
            sharp_ctc(&[None, Some(12), Some(12), Some(3), None], 40),
        ],
        40,
        SPECIAL.pad,
        SPECIAL.eos,
    )
}

#[test]
fn joint_ctc_search_follows_a_certain_ctc_head() {
    let frames = [70, 52];
    let (model, encoded) = mtla_encoded(&frames);
    let ctc = certain_ctc();
    // A beam whose pre-beam (1.5 k) covers the whole vocabulary: CTC sees every token.
    for ctc_weight in [0.5, 1.0] {
        let search = BeamConfig {
            beam: 27,
            max_len_b: 10,
            ctc_weight,
            ..BeamConfig::default()
        };
        let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
        let (hyps, _) =
            beam_search(&mut scorer, &frames, &search, &SPECIAL, Some(&ctc), None).unwrap();
        assert_eq!(hyps[0].tokens, [5, 9, 9], "λ {ctc_weight}");
        assert_eq!(hyps[1].tokens, [12, 3], "λ {ctc_weight}");
    }
    // λ = 0 ignores the CTC head: the decoder's own search.
    let search = BeamConfig {
        beam: 3,
        max_len_b: 9,
        ..BeamConfig::default()
    };
    let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
    let (with, _) = beam_search(&mut scorer, &frames, &search, &SPECIAL, Some(&ctc), None).unwrap();
    let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
    let (without, _) = beam_search(&mut scorer, &frames, &search, &SPECIAL, None, None).unwrap();
    assert_eq!(with, without);
}

#[test]
fn shallow_fusion_follows_a_confident_language_model() {
    let frames = [70, 52];
    let (model, encoded) = mtla_encoded(&frames);
    let sentences = (0..50).map(|_| vec![7, 8, 9]);
    let single = Discounting::Single;
    let (lm, _) = NgramLm::train(
        sentences,
        40,
        3,
        SPECIAL.bos,
        SPECIAL.eos,
        Pruning::NONE,
        single,
    )
    .unwrap();
    let run = |lm_weight, lm: Option<&NgramLm>| {
        let search = BeamConfig {
            beam: 3,
            max_len_b: 9,
            lm_weight,
            ..BeamConfig::default()
        };
        let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
        beam_search(&mut scorer, &frames, &search, &SPECIAL, None, lm)
            .unwrap()
            .0
    };
    // Weight 0: the decoder alone, as without a language model.
    let alone = run(0.0, None);
    assert_eq!(run(0.0, Some(&lm)), alone);
    assert!(alone.iter().any(|h| h.tokens != [7, 8, 9]), "{alone:?}");
    // A heavy weight: the language model's one sentence, for every utterance.
    for h in run(20.0, Some(&lm)) {
        assert_eq!(h.tokens, [7, 8, 9]);
    }
}

#[test]
fn word_bonus_counts_word_initial_tokens() {
    let frames = [70, 52];
    let (model, encoded) = mtla_encoded(&frames);
    let run = |word_bonus, special: &SpecialTokens| {
        let search = BeamConfig {
            beam: 3,
            max_len_b: 9,
            word_bonus,
            ..BeamConfig::default()
        };
        let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
        beam_search(&mut scorer, &frames, &search, special, None, None)
            .unwrap()
            .0
    };
    // The untrained model's own search, with no word-initial ids: a bonus has nothing to count.
    let alone = run(0.0, &SPECIAL);
    assert_eq!(
        run(-50.0, &SPECIAL),
        alone,
        "no word-initial ids: nothing to count"
    );
    // The weights are random (an untrained model may write one id over and over), so the ids
    // are taken from what this model writes. A heavy penalty on the first token the search
    // wrote (it is among the model's likely ids, so the pre-beam offers it): it appears nowhere.
    let only = |id: u32| SpecialTokens {
        word_start: (0..40).map(|i| i == id).collect(),
        ..SPECIAL
    };
    let count = |h: &Hypothesis, id: u32| h.tokens.iter().filter(|&&t| t == id).count();
    let first = alone[0].tokens[0];
    assert_eq!(
        run(0.0, &only(first)),
        alone,
        "a zero bonus changes nothing"
    );
    for h in run(-50.0, &only(first)) {
        assert_eq!(count(&h, first), 0, "{h:?}");
    }
    // A heavy bonus on it: that id and nothing else (how long is the search's call: fairseq's
    // rule stops once `beam` hypotheses have ended, and bonus-laden ones end high).
    for h in run(50.0, &only(first)) {
        assert!(
            !h.tokens.is_empty() && count(&h, first) == h.tokens.len(),
            "{h:?}"
        );
    }
}

#[test]
fn hypotheses_cut_by_the_length_limit_are_counted() {
    let frames = [70, 52];
    let (model, encoded) = mtla_encoded(&frames);
    let ctc = certain_ctc();
    let search = |max_len_a, max_len_b| BeamConfig {
        beam: 27,
        max_len_a,
        max_len_b,
        ctc_weight: 1.0,
        ..BeamConfig::default()
    };
    // Room for both: "5 9 9 EOS" and "12 3 EOS" end on their own.
    let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
    let (hyps, stats) = beam_search(
        &mut scorer,
        &frames,
        &search(0.0, 10),
        &SPECIAL,
        Some(&ctc),
        None,
    )
    .unwrap();
    assert_eq!((hyps[0].tokens.len(), hyps[1].tokens.len()), (3, 2));
    assert_eq!(stats.length_limited, 0);
    // max_len = 0.1 * src_frames + 3 gives 3 and 4 tokens: the first is cut to "5 9 EOS"
    // and counted, the second still ends on its own.
    let mut scorer = CachedScorer::new(&model, &encoded, 10).unwrap();
    let (hyps, stats) = beam_search(
        &mut scorer,
        &[0, 10],
        &search(0.1, 3),
        &SPECIAL,
        Some(&ctc),
        None,
    )
    .unwrap();
    assert_eq!(hyps[0].tokens, [5, 9]);
    assert_eq!(hyps[1].tokens, [12, 3]);
    assert_eq!(stats.length_limited, 1);
}

#[test]
fn joint_decoding_needs_a_ctc_head() {
    let frames = [40];
    let mut cfg = config(AttentionKind::Mtla, 2, DecoderStyle::Prefix);
    cfg.ctc_weight = 0.0;
    let model = SpeechModel::<B>::new(&cfg, &Default::default()).unwrap();
    let search = BeamConfig {
        ctc_weight: 0.3,
        ..BeamConfig::default()
    };
    let err = decode_batch(&model, batch(&frames, 80), &frames, &search, &SPECIAL, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs a model with a CTC head"), "{err}");
}

#[test]
fn an_ensemble_averages_its_members_probabilities() {
    let frames = [70, 52];
    let device = Default::default();
    let a = SpeechModel::<B>::new(
        &config(AttentionKind::Mtla, 2, DecoderStyle::Prefix),
        &device,
    )
    .unwrap();
    let b = SpeechModel::<B>::new(&config(AttentionKind::Mha, 1, DecoderStyle::Cross), &device)
        .unwrap();
    let (ea, eb) = (
        a.encode(batch(&frames, 80), &frames).unwrap(),
        b.encode(batch(&frames, 80), &frames).unwrap(),
    );
    let scorer = |m, e| CachedScorer::new(m, e, 10).unwrap();
    let mut alone = [scorer(&a, &ea), scorer(&b, &eb)];
    let mut both = EnsembleScorer::new(vec![scorer(&a, &ea), scorer(&b, &eb)]);
    // Two steps, rows reordered in between: log((p_a + p_b) / 2) for every token.
    let mut history = vec![vec![SPECIAL.bos]; 2];
    for step in 0..2 {
        let probs = |t: Tensor<B, 2>| t.exp().into_data().to_vec::<f32>().unwrap();
        let (pa, pb) = (
            probs(alone[0].step(&history).unwrap()),
            probs(alone[1].step(&history).unwrap()),
        );
        let pe = probs(both.step(&history).unwrap());
        for i in 0..pe.len() {
            assert!(
                (pe[i] - (pa[i] + pb[i]) / 2.0).abs() < 1e-6,
                "step {step}, {i}"
            );
        }
        alone.iter_mut().for_each(|s| s.reorder(&[1, 0]));
        both.reorder(&[1, 0]);
        history = vec![vec![SPECIAL.bos, 7], vec![SPECIAL.bos, 11]];
    }
    // A model with itself is the model alone.
    let search = BeamConfig {
        beam: 3,
        max_len_b: 9,
        ..BeamConfig::default()
    };
    let (one, _) = decode_batch(&a, batch(&frames, 80), &frames, &search, &SPECIAL, None).unwrap();
    let (twice, stats) = decode_ensemble(
        &[&a, &a],
        batch(&frames, 80),
        &frames,
        &search,
        &SPECIAL,
        None,
    )
    .unwrap();
    for (x, y) in one.iter().zip(&twice) {
        assert_eq!(x.tokens, y.tokens);
        assert!((x.score - y.score).abs() < 1e-4);
    }
    assert!(stats.peak_cache_bytes > 0);
}
