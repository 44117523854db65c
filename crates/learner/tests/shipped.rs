//! The models shipped under `models/` work from a fresh clone: with their trained weights,
//! step-by-step decoding (the compressed MTLA cache) gives the log-probabilities of teacher
//! forcing (the stride-aware mask) on a padded batch of real speech and its greedy hypotheses, and the ASR model
//! transcribes the demo test utterances, whose sentences are held out of its training data, and
//! better with its shipped language model than without.

#[path = "support/run.rs"]
mod run_util;

use burn::backend::Flex;
use burn::prelude::*;
use data::{Dataset, DatasetOptions, TargetSide, Tokenizer};
use learner::config::{EvalConfig, ExperimentConfig, Task};
use learner::decode::{decode_batch, BeamConfig, SpecialTokens};
use learner::eval::{evaluate, EvalOptions};
use run_util::repo;
use st_model::SpeechModel;

type B = Flex;

/// Greedy decoding of a padded batch of demo speech, then its hypotheses step by step against
/// teacher forcing: every step of every row agrees to 1e-4.
fn incremental_equals_teacher_forcing(model_dir: &str) {
    let dir = repo().join(model_dir);
    let weights = dir.join("model.safetensors");
    let device = Default::default();
    let config = st_model::checkpoint::stored_config(&weights).unwrap();
    let model: SpeechModel<B> = st_model::checkpoint::load(&config, &weights, &device).unwrap();
    let tokenizer = Tokenizer::load(&dir.join("tokenizer.json")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let demo = Dataset::open(
        &repo().join("data/demo/test.tsv"),
        cache.path(),
        &DatasetOptions::default(),
    )
    .unwrap();
    // Four utterances of different lengths, so that rows are padded in time and in tokens.
    let batch = demo
        .load_batch(&[0, 1, 2, 3], &tokenizer, TargetSide::Transcript, None)
        .unwrap();
    let features = Tensor::<B, 1>::from_floats(batch.features.as_slice(), &device).reshape([
        batch.frames.len(),
        batch.max_frames,
        batch.feat_dim,
    ]);
    let greedy = BeamConfig {
        beam: 1,
        max_len_b: 48,
        ..BeamConfig::default()
    };
    let special = SpecialTokens::of(&tokenizer);
    let (hyps, _) = decode_batch(
        &model,
        features.clone(),
        &batch.frames,
        &greedy,
        &special,
        None,
    )
    .unwrap();
    let rows: Vec<Vec<i64>> = hyps
        .iter()
        .map(|h| {
            std::iter::once(special.bos as i64)
                .chain(h.tokens.iter().map(|&t| t as i64))
                .collect()
        })
        .collect();
    assert!(rows.iter().any(|r| r.len() > 5), "{model_dir}: {rows:?}");
    let d = model
        .incremental_mismatch(features, &batch.frames, &rows)
        .unwrap();
    assert!(d <= 1e-4, "{model_dir}: {d}");
}

#[test]
fn shipped_asr_model_decodes_incrementally_as_it_was_trained() {
    incremental_equals_teacher_forcing("models/asr");
}

#[test]
fn shipped_st_model_decodes_incrementally_as_it_was_trained() {
    incremental_equals_teacher_forcing("models/st");
}

/// 49 of the 50 demo test utterances are in the corpus's test split (sentences never in
/// training). Greedy WER of the shipped model there (decoder alone, weights stored in f16) was
/// 53.6 % when a d 256 model was first shipped (stage 4), 26.2 % for stage 13's, 29.8 % for
/// stage 15's (its gains are in the joint search); a model that stopped listening scores ~100 %.
#[test]
fn shipped_asr_model_transcribes_held_out_speech() {
    let wer = demo_test_wer(EvalConfig {
        beam: 1,
        ..Default::default()
    });
    assert!(wer < 0.6, "WER {wer}");
}

/// With its config's decoding settings (beam 10, CTC weight 0.2) the shipped ASR model
/// transcribes the 50 demo test utterances with WER 26.5 %, and with its shipped 8-gram language
/// model (`eval.lm`, weight 0.5) 17.2 % (stage 15's model, measured when it was shipped).
#[test]
fn shipped_asr_model_transcribes_better_with_its_language_model() {
    let shipped = ExperimentConfig::load(&repo().join("models/asr/config.toml"))
        .unwrap()
        .eval;
    assert!(shipped.lm_weight > 0.0 && shipped.lm.as_ref().is_some_and(|p| p.is_file()));
    let without = demo_test_wer(EvalConfig {
        lm_weight: 0.0,
        ..shipped.clone()
    });
    let with = demo_test_wer(shipped);
    assert!(
        with + 0.05 < without,
        "WER {with} with the language model, {without} without"
    );
}

/// Word error rate of the shipped ASR model on the demo test slice (50 utterances).
fn demo_test_wer(eval: EvalConfig) -> f64 {
    let dir = repo().join("models/asr");
    let out = tempfile::tempdir().unwrap();
    let report = evaluate::<B>(
        &EvalOptions {
            checkpoint: dir.join("model.safetensors"),
            ensemble: Vec::new(),
            manifest: repo().join("data/demo/test.tsv"),
            tokenizer: Some(dir.join("tokenizer.json")),
            eval,
            task: Task::Transcript,
            feature_cache: out.path().join("cache"),
            out: out.path().join("eval"),
            progress: false,
            precision: Default::default(),
        },
        &Default::default(),
    )
    .unwrap();
    assert_eq!(report.quality.segments, 50);
    report.quality.wer.unwrap().wer
}
