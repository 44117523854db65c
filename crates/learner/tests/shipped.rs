//! The models shipped under `models/` work from a fresh clone: with their trained weights,
//! step-by-step decoding (the compressed MTLA cache) gives the log-probabilities of teacher
//! forcing (the stride-aware mask) on a padded batch of real speech, and the ASR model
//! transcribes the demo test utterances, whose sentences are held out of its training data.

#[path = "support/run.rs"]
mod run_util;

use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use data::{Dataset, DatasetOptions, TargetSide, Tokenizer};
use learner::config::Task;
use learner::eval::{evaluate, EvalOptions};
use run_util::repo;
use st_model::SpeechModel;

type B = Flex;

/// Greedy decoding of a padded batch, one token per row per step, against teacher forcing of
/// the tokens it chose: every step of every row agrees to 1e-4.
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
    let rows = batch.frames.len();
    let features = Tensor::<B, 1>::from_floats(batch.features.as_slice(), &device).reshape([
        rows,
        batch.max_frames,
        batch.feat_dim,
    ]);
    let (bos, eos) = (tokenizer.bos_id() as i64, tokenizer.eos_id() as i64);

    let encoded = model.encode(features.clone(), &batch.frames).unwrap();
    let mut state = model.prefill(&encoded).unwrap();
    let mut inputs: Vec<Vec<i64>> = vec![vec![bos]; rows];
    let mut lengths = vec![0usize; rows];
    let mut steps = Vec::new();
    for _ in 0..48 {
        let last: Vec<i64> = inputs.iter().map(|r| *r.last().unwrap()).collect();
        let logp = model
            .step(
                Tensor::<B, 1, Int>::from_ints(last.as_slice(), &device),
                &mut state,
            )
            .unwrap();
        let next: Vec<i64> = logp.clone().argmax(1).into_data().iter::<i64>().collect();
        for (b, &t) in next.iter().enumerate() {
            if lengths[b] == 0 {
                inputs[b].push(t);
                if t == eos {
                    lengths[b] = inputs[b].len() - 1;
                }
            }
        }
        steps.push(logp);
        if lengths.iter().all(|&n| n > 0) {
            break;
        }
    }
    for (b, n) in lengths.iter_mut().enumerate() {
        if *n == 0 {
            *n = inputs[b].len() - 1;
        }
    }
    let width = steps.len();
    let padded: Vec<i64> = inputs
        .iter()
        .flat_map(|r| (0..width).map(|i| r.get(i).copied().unwrap_or(eos)))
        .collect();
    let tokens = Tensor::<B, 1, Int>::from_ints(padded.as_slice(), &device).reshape([rows, width]);
    let teacher = log_softmax(
        model
            .forward(features, &batch.frames, tokens, &lengths)
            .unwrap()
            .logits,
        2,
    );
    assert!(lengths.iter().any(|&n| n > 5), "{model_dir}: {lengths:?}");
    for (i, logp) in steps.iter().enumerate() {
        for (b, &n) in lengths.iter().enumerate() {
            if i >= n {
                continue;
            }
            let want = teacher
                .clone()
                .slice(s![b..b + 1, i..i + 1, ..])
                .reshape([1, config.vocab_size]);
            let d: f32 = (logp.clone().slice(s![b..b + 1, ..]) - want)
                .abs()
                .max()
                .into_scalar();
            assert!(d <= 1e-4, "{model_dir}: row {b} step {i}: {d}");
        }
    }
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
/// training). Greedy WER of the shipped model there was 48.0 % when it was shipped (test set:
/// 39.7 % with beam 5); a model that stopped listening scores ~100 %.
#[test]
fn shipped_asr_model_transcribes_held_out_speech() {
    let dir = repo().join("models/asr");
    let out = tempfile::tempdir().unwrap();
    let report = evaluate::<B>(
        &EvalOptions {
            checkpoint: dir.join("model.safetensors"),
            manifest: repo().join("data/demo/test.tsv"),
            tokenizer: Some(dir.join("tokenizer.json")),
            eval: learner::config::EvalConfig {
                beam: 1,
                ..Default::default()
            },
            task: Task::Transcript,
            feature_cache: out.path().join("cache"),
            out: out.path().join("eval"),
            progress: false,
            precision: Default::default(),
        },
        &Default::default(),
    )
    .unwrap();
    let wer = report.quality.wer.unwrap().wer;
    assert!(report.quality.segments == 50 && wer < 0.6, "WER {wer}");
}
