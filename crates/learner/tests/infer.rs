//! Decoding audio files with a trained model (what `mtla-st transcribe/translate` run): a run's
//! checkpoint finds its tokenizer and config, any sample rate is resampled, and silence, empty
//! files, audio longer than the model accepts and a model missing its tokenizer or config are
//! errors naming the file, while other files still decode; a manifest with nothing to decode is an
//! error naming it.

#[path = "support/run.rs"]
mod run_util;

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use learner::config::Task;
use learner::eval::{evaluate, EvalOptions};
use learner::infer::Inference;
use learner::train::setup::{train, TrainOptions};
use run_util::{repo, tiny_config};

fn write_wav(path: &Path, samples: &[i16], rate: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

/// Deterministic noise of `n` samples.
fn noise(n: usize) -> Vec<i16> {
    let mut x = 12345u32;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((x >> 16) as i16) / 8
        })
        .collect()
}

#[test]
fn files_decode_and_bad_ones_are_named_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut c = tiny_config(&d.join("cache"), 0.0);
    c.train.max_updates = 1;
    let run = d.join("run");
    train::<Autodiff<Flex>>(
        &TrainOptions {
            config: c,
            out: run.clone(),
            resume: false,
            progress: false,
            precision: Default::default(),
        },
        Default::default(),
    )
    .unwrap();
    let checkpoint = run.join("checkpoints/u00000001.safetensors");
    let model = Inference::<Flex>::load(&checkpoint, &Default::default()).unwrap();

    // A demo utterance (Ogg Vorbis, 16 kHz) and noise at 8 kHz (resampled) decode.
    let demo = repo().join("data/demo/audio/deen-05cdad3451.ogg");
    let out = model.decode_file(&demo, 2).unwrap();
    assert!((out.audio_s - 1.41).abs() < 0.02, "{out:?}");
    assert!(
        out.tokens >= 1 && out.seconds > 0.0 && out.tokens_per_s > 0.0,
        "{out:?}"
    );
    let narrow = d.join("narrow.wav");
    write_wav(&narrow, &noise(8_000), 8_000);
    let out = model.decode_file(&narrow, 1).unwrap();
    assert!((out.audio_s - 0.98).abs() < 0.02, "{out:?}");

    let fails = |file: &Path, what: &str| {
        let err = model.decode_file(file, 1).unwrap_err().to_string();
        assert!(
            err.contains(&file.display().to_string()) && err.contains(what),
            "{err}"
        );
    };
    let silent = d.join("silent.wav");
    write_wav(&silent, &vec![0; 16_000], 16_000);
    fails(&silent, "silence");
    let empty = d.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    fails(&empty, "");
    let long = d.join("long.wav");
    write_wav(&long, &noise(16_000 * 31), 16_000);
    fails(&long, "longer than this model accepts");
    fails(&d.join("missing.wav"), "");
    // Nothing above spoiled the model for the next file.
    model.decode_file(&demo, 1).unwrap();

    // A model folder needs its tokenizer and its config.
    let lone = d.join("lone");
    std::fs::create_dir_all(&lone).unwrap();
    std::fs::copy(&checkpoint, lone.join("model.safetensors")).unwrap();
    let err = Inference::<Flex>::load(&lone, &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tokenizer.json"), "{err}");
    std::fs::copy(run.join("tokenizer.json"), lone.join("tokenizer.json")).unwrap();
    let err = Inference::<Flex>::load(&lone, &Default::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.toml"), "{err}");
    std::fs::copy(run.join("config.toml"), lone.join("config.toml")).unwrap();
    let model = Inference::<Flex>::load(&lone, &Default::default()).unwrap();

    // Shallow fusion: a language model over the tokenizer's pieces decodes; a missing file, one
    // over another vocabulary and a negative weight are errors naming them.
    let tokenizer = data::Tokenizer::load(&run.join("tokenizer.json")).unwrap();
    let (bos, eos) = (tokenizer.bos_id(), tokenizer.eos_id());
    let lm_over = |vocab: usize, name: &str| {
        let sentences = [tokenizer.encode("hello world"), tokenizer.encode("hello")];
        let sentences =
            sentences.map(|s| s.into_iter().filter(|&t| (t as usize) < vocab).collect());
        let (lm, _) = learner::decode::NgramLm::train(
            sentences,
            vocab,
            3,
            bos,
            eos,
            learner::decode::Pruning::NONE,
            learner::decode::Discounting::Single,
        )
        .unwrap();
        let path = d.join(name);
        lm.save(&path).unwrap();
        path
    };
    let good = lm_over(tokenizer.vocab_size(), "lm.bin");
    let model = model.with_lm(Some(good), Some(0.5)).unwrap();
    assert_eq!(model.config().eval.lm_weight, 0.5);
    model.decode_file(&demo, 2).unwrap();
    for (lm, weight, what) in [
        (d.join("no-lm.bin"), 0.5, "no-lm.bin"),
        (lm_over(6, "small.bin"), 0.5, "small.bin"),
        (d.join("lm.bin"), -1.0, "lm_weight"),
    ] {
        let model = Inference::<Flex>::load(&lone, &Default::default()).unwrap();
        let err = model
            .with_lm(Some(lm), Some(weight))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(what), "{err}");
    }

    // Evaluating a manifest none of whose audio exists is an error naming it, not an empty report,
    // for a checkpoint in RUN/checkpoints/ and for one in the run folder itself (where `mtla-st
    // average --out RUN/avg.safetensors` writes): both find the run's tokenizer and config.
    let manifest = d.join("nowhere.tsv");
    std::fs::write(
        &manifest,
        "id\taudio\tn_frames\ttgt_text\tspeaker\tsrc_text\nu1\tmissing.wav\t100\tHallo.\ts\tHello.\n",
    )
    .unwrap();
    let averaged = run.join("avg.safetensors");
    std::fs::copy(&checkpoint, &averaged).unwrap();
    for weights in [&checkpoint, &averaged] {
        assert!(EvalOptions::run_config(weights).is_some(), "{weights:?}");
        let err = evaluate::<Flex>(
            &EvalOptions {
                checkpoint: weights.clone(),
                ensemble: Vec::new(),
                manifest: manifest.clone(),
                tokenizer: None,
                eval: Default::default(),
                task: Task::Transcript,
                feature_cache: d.join("cache"),
                out: d.join("eval"),
                progress: false,
                precision: Default::default(),
            },
            &Default::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&manifest.display().to_string()) && err.contains("nothing to decode"),
            "{err}"
        );
    }
}
