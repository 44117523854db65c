//! Training on the CPU backend: the same config and seed give the same loss curve (a run given a
//! tokenizer keeps a copy of it), a resumed
//! run repeats the uninterrupted one bit for bit (dropout and SpecAugment on), and a NaN loss stops training with a
//! message naming the step while the last good checkpoint survives; two devices with half
//! batches give one device's update.

#[path = "support/run.rs"]
mod run_util;

use std::path::Path;

use burn::backend::{Autodiff, Flex};
use learner::config::ExperimentConfig;
use learner::train::setup::{train, train_on_devices, TrainOptions};
use run_util::{losses, tiny_config as config};

type B = Autodiff<Flex>;

/// The CPU backend's random generator is process-wide: tests that train must not interleave
/// their draws, or "the same seed" would not mean the same stream.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

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
            precision: Default::default(),
        },
        Default::default(),
    )
}

#[test]
fn same_seed_same_loss_curve() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("cache"), 0.1);
    run(&c, &dir.path().join("a"), false).unwrap();
    // The second run is given the first one's tokenizer (the same pieces) and keeps a copy.
    let given = dir.path().join("a/tokenizer.json");
    let mut c_given = c.clone();
    c_given.data.tokenizer = Some(given.clone());
    run(&c_given, &dir.path().join("b"), false).unwrap();
    let (a, b) = (losses(&dir.path().join("a")), losses(&dir.path().join("b")));
    assert_eq!(a.len(), 4);
    assert_eq!(a, b, "two runs with one seed must give one loss curve");
    assert_eq!(
        std::fs::read_to_string(&given).unwrap(),
        std::fs::read_to_string(dir.path().join("b/tokenizer.json")).unwrap(),
        "a run keeps a copy of the tokenizer it was given"
    );
    // An existing run is never overwritten by accident.
    let err = run(&c, &dir.path().join("a"), false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
}

#[test]
fn resuming_repeats_the_uninterrupted_run_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    // Dropout and SpecAugment on: both must draw the same numbers after a restart.
    let mut c = config(&dir.path().join("cache"), 0.1);
    assert!(c.data.specaugment.is_some());
    // More pieces than the demo text supports: the model follows the tokenizer, and a resume
    // with the same config must accept the run's adjusted vocabulary.
    c.model.vocab_size = 5000;
    run(&c, &dir.path().join("whole"), false).unwrap();
    let mut first_half = c.clone();
    first_half.train.max_updates = 2;
    let split = dir.path().join("split");
    run(&first_half, &split, false).unwrap();
    // As if killed after logging update 3 but before its checkpoint: that past is dropped.
    let log = split.join("train_log.jsonl");
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str("{\"update\": 3, \"loss\": 123.0}\n");
    std::fs::write(&log, text).unwrap();
    let report = run(&c, &split, true).unwrap();
    assert_eq!(report.updates, 4);
    // Resuming a finished run trains nothing more.
    let again = run(&c, &split, true).unwrap();
    assert_eq!(
        (again.updates, again.stopped_because.as_str()),
        (4, "reached max_updates = 4")
    );
    let (whole, resumed) = (losses(&dir.path().join("whole")), losses(&split));
    assert_eq!(whole.len(), 4);
    assert_eq!(
        resumed, whole,
        "the resumed curve must equal the uninterrupted one"
    );
    let weights =
        |run: &Path| std::fs::read(run.join("checkpoints/u00000004.safetensors")).unwrap();
    let (a, b) = (weights(&dir.path().join("whole")), weights(&split));
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let mut names = a.names();
    names.sort();
    assert!(!names.is_empty());
    for name in names {
        assert_eq!(
            a.tensor(name).unwrap().data(),
            b.tensor(name).unwrap().data(),
            "{name} differs after resume"
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
    // The CTC loss is logged apart from the decoder's, and every validation says whether the
    // model listens: audio gain and greedy CTC WER.
    let log = std::fs::read_to_string(dir.path().join("asr/train_log.jsonl")).unwrap();
    let rows: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let updates: Vec<_> = rows.iter().filter(|r| r["loss"].is_number()).collect();
    let valids: Vec<_> = rows
        .iter()
        .filter(|r| r["valid_loss"].is_number())
        .collect();
    assert_eq!(updates.len(), 2);
    assert!(!valids.is_empty());
    for r in updates {
        let (ctc, dec, loss) = (
            r["ctc_loss"].as_f64().unwrap(),
            r["dec_loss"].as_f64().unwrap(),
            r["loss"].as_f64().unwrap(),
        );
        // (1 - λ) · decoder + λ · CTC.
        assert!((loss - (0.7 * dec + 0.3 * ctc)).abs() < 1e-6 * loss, "{r}");
    }
    for r in valids {
        assert!(r["audio_gain"].as_f64().unwrap().is_finite(), "{r}");
        let wer = r["ctc_wer"].as_f64().unwrap();
        assert!(wer >= 0.0 && wer.is_finite(), "{r}");
        assert!(r["valid_ctc_loss"].as_f64().unwrap() > 0.0, "{r}");
        // Throughput where users look: at every validation.
        assert!(r["updates_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["frames_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
}

/// Data parallelism: the same batches split over two devices (two CPU "devices" here; GPUs in
/// use) give the losses and weights of one device with the whole batch, within float rounding.
#[test]
fn two_devices_with_half_batches_give_the_one_device_update() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("cache"), 0.0);
    c.data.specaugment = None;
    c.data.task = learner::config::Task::Transcript;
    c.model.ctc_weight = 0.3;
    c.train.max_updates = 3;
    c.train.validate_every_updates = 3;
    let opts = |name: &str| TrainOptions {
        config: c.clone(),
        out: dir.path().join(name),
        resume: false,
        progress: false,
        precision: Default::default(),
    };
    {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        train_on_devices::<B>(&opts("one"), vec![Default::default()]).unwrap();
        train_on_devices::<B>(&opts("two"), vec![Default::default(); 2]).unwrap();
    }
    let (one, two) = (
        losses(&dir.path().join("one")),
        losses(&dir.path().join("two")),
    );
    assert_eq!(one.len(), 3);
    for (a, b) in one.iter().zip(&two) {
        assert!((a - b).abs() < 1e-5 * a.abs(), "losses {one:?} vs {two:?}");
    }
    let weights = |run: &str| {
        std::fs::read(
            dir.path()
                .join(run)
                .join("checkpoints/u00000003.safetensors"),
        )
        .unwrap()
    };
    let (a, b) = (weights("one"), weights("two"));
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let floats = |t: safetensors::tensor::TensorView| -> Vec<f32> {
        t.data()
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let mut worst = 0.0f32;
    for name in a.names() {
        let (x, y) = (
            floats(a.tensor(name).unwrap()),
            floats(b.tensor(name).unwrap()),
        );
        assert_eq!(x.len(), y.len(), "{name}");
        for (p, q) in x.iter().zip(&y) {
            worst = worst.max((p - q).abs());
        }
    }
    eprintln!("max |weight difference| after 3 updates: {worst:e}");
    assert!(worst < 1e-4, "weights differ by up to {worst}");
}

/// `train.freeze_encoder`: a run started from another run's weights leaves every encoder
/// parameter as it was given and trains the decoder and the CTC head.
#[test]
fn frozen_encoder_keeps_its_weights_while_the_decoder_trains() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(&dir.path().join("cache"), 0.1);
    c.data.task = learner::config::Task::Transcript;
    c.model.ctc_weight = 0.3;
    c.train.max_updates = 2;
    run(&c, &dir.path().join("start"), false).unwrap();
    let start = dir.path().join("start/checkpoints/u00000002.safetensors");
    c.data.tokenizer = Some(dir.path().join("start/tokenizer.json"));
    c.train.init_from = Some(start.clone());
    c.train.freeze_encoder = true;
    run(&c, &dir.path().join("frozen"), false).unwrap();
    let (a, b) = (
        std::fs::read(&start).unwrap(),
        std::fs::read(dir.path().join("frozen/checkpoints/u00000002.safetensors")).unwrap(),
    );
    let (a, b) = (
        safetensors::SafeTensors::deserialize(&a).unwrap(),
        safetensors::SafeTensors::deserialize(&b).unwrap(),
    );
    let (mut kept, mut trained) = (0, 0);
    for name in a.names() {
        let same = a.tensor(name).unwrap().data() == b.tensor(name).unwrap().data();
        if name.starts_with("encoder.") {
            assert!(same, "{name} changed in a frozen encoder");
            kept += 1;
        } else if (name.starts_with("decoder.") || name.starts_with("ctc.")) && !same {
            trained += 1;
        }
    }
    assert!(
        kept > 0 && trained > 0,
        "{kept} encoder tensors kept, {trained} others trained"
    );
    // Freezing an encoder nothing initialises is a config error that names the field.
    c.train.init_from = None;
    let err = c.validate().unwrap_err();
    assert!(err.contains("train.freeze_encoder"), "{err}");
}
