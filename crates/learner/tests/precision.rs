//! Mixed precision end to end: training in f16 with dynamic loss scaling (every update logs its
//! scale, the f32 master weights get the update, a resumed run repeats the uninterrupted one,
//! scaler included) and in bf16, and decoding a checkpoint in f16. Burn's CPU backend computes
//! in f16/bf16 too and checks that both operands of every op share one type, so this runs (and
//! finds any tensor left in f32) everywhere, though the CLI keeps the CPU in f32.

#[path = "support/run.rs"]
mod run_util;

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use learner::infer::Inference;
use learner::precision::{LossScaler, Precision};
use learner::train::setup::{train, TrainOptions};
use run_util::{losses, repo, tiny_config};

fn run(config: &learner::config::ExperimentConfig, out: &Path, resume: bool, precision: Precision) {
    train::<Autodiff<Flex>>(
        &TrainOptions {
            config: config.clone(),
            out: out.to_path_buf(),
            resume,
            progress: false,
            precision,
        },
        Default::default(),
    )
    .unwrap();
}

fn gnorms(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["gnorm"].as_f64())
        .collect()
}

#[test]
fn f16_training_scales_its_loss_resumes_exactly_and_decodes() {
    let device = Default::default();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = tiny_config(&d.join("cache"), 0.0);
    run(&c, &d.join("whole"), false, Precision::F16);
    let rows: Vec<serde_json::Value> = std::fs::read_to_string(d.join("whole/train_log.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let updates: Vec<_> = rows.iter().filter(|r| r["loss"].is_number()).collect();
    assert_eq!(updates.len(), 4, "{rows:?}");
    for r in &updates {
        assert!(r["loss"].as_f64().unwrap().is_finite(), "{r}");
        assert!(r["gnorm"].as_f64().unwrap().is_finite(), "{r}");
        // No overflow in 4 updates: the initial scale throughout.
        assert_eq!(
            r["loss_scale"].as_f64(),
            Some(LossScaler::INIT_SCALE),
            "{r}"
        );
    }
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join("whole/checkpoints/state.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["loss_scaler"]["clean"].as_u64(), Some(4), "{state}");

    let mut first_half = c.clone();
    first_half.train.max_updates = 2;
    run(&first_half, &d.join("split"), false, Precision::F16);
    run(&c, &d.join("split"), true, Precision::F16);
    assert_eq!(
        losses(&d.join("split")),
        losses(&d.join("whole")),
        "an f16 run resumed must repeat the uninterrupted one"
    );

    let model =
        Inference::<Flex>::load(&d.join("whole/checkpoints/u00000004.safetensors"), &device)
            .unwrap()
            .in_precision(Precision::F16);
    let demo = repo().join("data/demo/audio/deen-05cdad3451.ogg");
    let out = model.decode_file(&demo, 2).unwrap();
    assert!(out.tokens >= 1, "{out:?}");

    // bf16 needs no loss scale; its curve follows f32's closely (same seed, same data).
    run(&c, &d.join("bf16"), false, Precision::Bf16);
    run(&c, &d.join("f32"), false, Precision::F32);
    let (bf16, f32s, f16) = (
        losses(&d.join("bf16")),
        losses(&d.join("f32")),
        losses(&d.join("whole")),
    );
    eprintln!("losses: f32 {f32s:?}\n bf16 {bf16:?}\n f16 {f16:?}");
    // The f32 master weights get the half-precision gradients (unscaled): same norms.
    let (g16, g32) = (gnorms(&d.join("whole")), gnorms(&d.join("f32")));
    eprintln!("gradient norms: f32 {g32:?}\n f16 {g16:?}");
    for (h, f) in g16.iter().zip(&g32) {
        assert!(
            *f > 0.0 && (h - f).abs() < 0.01 * f,
            "f16 {g16:?} vs f32 {g32:?}"
        );
    }
    // Rounded differently, so computed differently: the half-precision runs did run in half.
    assert!(bf16 != f32s && f16 != f32s && f16 != bf16);
    for ((a, b), h) in bf16.iter().zip(&f32s).zip(&f16) {
        assert!((a - b).abs() < 0.01 * b, "bf16 {bf16:?} vs f32 {f32s:?}");
        assert!((h - b).abs() < 0.002 * b, "f16 {f16:?} vs f32 {f32s:?}");
    }
}
