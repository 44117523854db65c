//! Training on the CPU backend: the same config and seed give the same loss curve, a resumed
//! run continues exactly where its checkpoint was taken, and a NaN loss stops training with a
//! message naming the step while the last good checkpoint survives.

#[path = "support/run.rs"]
mod run_util;

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use learner::config::ExperimentConfig;
use learner::train::setup::{train, TrainOptions};
use run_util::{losses, repo};

type B = Autodiff<Flex>;

/// The CPU backend's random generator is process-wide: tests that train must not interleave
/// their draws, or "the same seed" would not mean the same stream.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn config(cache: &Path, dropout: f64) -> ExperimentConfig {
    let mut c = ExperimentConfig::load(&repo().join("configs/small_cpu.toml")).unwrap();
    c.model.dropout = dropout;
    c.model.decoder.attention.dropout = dropout;
    c.model.encoder.layers = 1;
    c.model.decoder.layers = 1;
    c.model.vocab_size = 300;
    c.data.max_sentences = Some(4);
    c.data.feature_cache = cache.to_path_buf();
    c.train.max_updates = 4;
    c.train.warmup_updates = 2;
    c.train.validate_every_updates = 2;
    c.train.time_limit_minutes = 0.0;
    c
}

fn run(
    config: &ExperimentConfig,
    out: &Path,
    resume: bool,
) -> learner::error::Result<learner::train::trainer::TrainReport> {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    train::<B>(
        &TrainOptions {
            config: config.clone(),
            out: out.to_path_buf(),
            resume,
            progress: false,
        },
        Default::default(),
    )
}

#[test]
fn same_seed_same_loss_curve() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("cache"), 0.1);
    run(&c, &dir.path().join("a"), false).unwrap();
    run(&c, &dir.path().join("b"), false).unwrap();
    let (a, b) = (losses(&dir.path().join("a")), losses(&dir.path().join("b")));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "two runs with one seed must give one loss curve");
    // An existing run is never overwritten by accident.
    let err = run(&c, &dir.path().join("a"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn resuming_continues_the_same_curve() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("cache"), 0.0);
    run(&c, &dir.path().join("whole"), false).unwrap();
    let mut first_half = c.clone();
    first_half.train.max_updates = 2;
    run(&first_half, &dir.path().join("split"), false).unwrap();
    let report = run(&c, &dir.path().join("split"), true).unwrap();
    assert_eq!(report.updates, 4);
    let (whole, split) = (
        losses(&dir.path().join("whole")),
        losses(&dir.path().join("split")),
    );
    assert_eq!(split.len(), 4);
    for (a, b) in whole.iter().zip(&split) {
        assert!(
            (a - b).abs() < 1e-4 * a.abs(),
            "resumed curve {split:?} vs uninterrupted {whole:?}"
        );
    }
}

#[test]
fn nan_loss_stops_naming_the_step_and_keeps_the_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("cache"), 0.0);
    c.train.lr = 1e30;
    c.train.warmup_updates = 0;
    c.train.clip_norm = 0.0;
    c.train.validate_every_updates = 1;
    c.train.max_updates = 20;
    let err = run(&c, &dir.path().join("nan"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("non-finite loss") && err.contains("at update"),
        "{err}"
    );
    let kept = err
        .split("checkpoint is ")
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        Path::new(&kept).exists(),
        "the last good checkpoint {kept} must survive"
    );
}

#[test]
fn ctc_head_trains() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("cache"), 0.0);
    c.data.task = learner::config::Task::Transcript;
    c.model.ctc_weight = 0.3;
    c.train.max_updates = 2;
    run(&c, &dir.path().join("asr"), false).unwrap();
    assert!(losses(&dir.path().join("asr"))
        .iter()
        .all(|l| l.is_finite()));
}
