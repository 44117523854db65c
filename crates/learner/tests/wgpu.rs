//! Training a few steps and decoding on WebGPU (a real GPU or a software adapter such as
//! lavapipe) gives the CPU backend's results, in f32 and in f16 (`--precision f16`, where the
//! adapter has f16 arithmetic). Needs `--features wgpu`; skipped, saying so, where no adapter
//! exists.
#![cfg(feature = "wgpu")]

#[path = "support/run.rs"]
mod run_util;

use std::path::Path;

use burn::backend::wgpu::{Wgpu, WgpuDevice};
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use data::{Dataset, DatasetOptions, TargetSide, Tokenizer};
use learner::config::ExperimentConfig;
use learner::decode::{beam_search, BeamConfig, CachedScorer, SpecialTokens};
use learner::precision::{cast_module, check_supported, Precision};
use learner::train::batch::{to_tensors, Specials};
use learner::train::setup::{train, TrainOptions};
use run_util::{losses, repo};
use st_model::SpeechModel;

fn adapter() -> Option<WgpuDevice> {
    let device = WgpuDevice::DefaultDevice;
    let probe =
        std::panic::catch_unwind(|| Tensor::<Wgpu, 1>::ones([4], &device).sum().into_scalar());
    match probe {
        Ok(v) if v == 4.0 => Some(device),
        _ => None,
    }
}

fn config(dir: &Path, tokenizer: &Path, init: &Path) -> ExperimentConfig {
    let mut c = ExperimentConfig::load(&repo().join("configs/small_cpu.toml")).unwrap();
    c.model.dropout = 0.0;
    c.model.decoder.attention.dropout = 0.0;
    c.model.encoder.layers = 1;
    c.model.decoder.layers = 1;
    c.data.specaugment = None;
    c.data.max_sentences = Some(4);
    c.data.tokenizer = Some(tokenizer.to_path_buf());
    c.data.feature_cache = dir.join("cache");
    c.train.max_updates = 3;
    c.train.warmup_updates = 2;
    c.train.validate_every_updates = 3;
    c.train.update_freq = 1;
    c.train.init_from = Some(init.to_path_buf());
    c
}

fn greedy<B: Backend>(
    checkpoint: &Path,
    config: &ExperimentConfig,
    tokenizer: &Tokenizer,
    device: &B::Device,
    precision: Precision,
) -> Vec<Vec<u32>> {
    let model = st_model::checkpoint::load::<B>(&config.model, checkpoint, device).unwrap();
    let model = cast_module(model, precision);
    let test = Dataset::open(
        config.data.test.as_ref().unwrap(),
        &config.data.feature_cache,
        &DatasetOptions::default(),
    )
    .unwrap();
    let host = test
        .load_batch(&[0, 1, 2], tokenizer, TargetSide::Translation, None)
        .unwrap();
    let batch = to_tensors::<B>(&host, Specials::of(tokenizer), device);
    let features = batch.features.cast(precision.dtype());
    let encoded = model.encode(features, &batch.frames).unwrap();
    let mut scorer = CachedScorer::new(&model, &encoded, 20).unwrap();
    let special = SpecialTokens::of(tokenizer);
    let search = BeamConfig {
        beam: 1,
        max_len_b: 12,
        ..BeamConfig::default()
    };
    let (hyps, _) = beam_search(&mut scorer, &host.frames, &search, &special, None, None).unwrap();
    hyps.into_iter().map(|h| h.tokens).collect()
}

#[test]
fn training_and_decoding_on_wgpu_match_the_cpu() {
    let Some(gpu) = adapter() else {
        eprintln!("skipped: no WebGPU adapter (install mesa-vulkan-drivers for lavapipe)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let base = ExperimentConfig::load(&repo().join("configs/small_cpu.toml")).unwrap();
    let train_set = Dataset::open(
        &base.data.train,
        &dir.path().join("cache"),
        &DatasetOptions::default(),
    )
    .unwrap();
    let tokenizer =
        Tokenizer::train(&train_set.texts(TargetSide::Translation).unwrap(), 300).unwrap();
    let tok_path = dir.path().join("tokenizer.json");
    tokenizer.save(&tok_path).unwrap();

    // Both backends start from the same weights.
    let init = dir.path().join("init.safetensors");
    let mut cfg = config(dir.path(), &tok_path, &init);
    cfg.model.vocab_size = tokenizer.vocab_size();
    let model = SpeechModel::<Flex>::new(&cfg.model, &Default::default()).unwrap();
    st_model::checkpoint::save(&model, &cfg.model, &init).unwrap();

    let run = |name: &str, precision: Precision| TrainOptions {
        config: cfg.clone(),
        out: dir.path().join(name),
        resume: false,
        progress: false,
        precision,
    };
    train::<Autodiff<Flex>>(&run("cpu", Precision::F32), Default::default()).unwrap();
    train::<Autodiff<Wgpu>>(&run("wgpu", Precision::F32), gpu.clone()).unwrap();

    let (cpu, wgpu) = (
        losses(&dir.path().join("cpu")),
        losses(&dir.path().join("wgpu")),
    );
    assert_eq!(cpu.len(), 3);
    for (a, b) in cpu.iter().zip(&wgpu) {
        assert!(
            (a - b).abs() / a.abs() < 1e-3,
            "losses differ: cpu {cpu:?} wgpu {wgpu:?}"
        );
    }
    // Decoding the same weights on both backends gives the same hypotheses. Each backend's own
    // weights differ by rounding after Adam's steps (the losses above agree to 1e-3), enough to
    // flip a near-tie of these barely trained weights and the rest of a hypothesis with it (seen
    // once, in a CI run on a loaded machine); the WebGPU-trained weights are decoded below.
    let last = |name: &str| dir.path().join(name).join("checkpoints/last.safetensors");
    let a = greedy::<Flex>(
        &last("cpu"),
        &cfg,
        &tokenizer,
        &Default::default(),
        Precision::F32,
    );
    let b = greedy::<Wgpu>(&last("cpu"), &cfg, &tokenizer, &gpu, Precision::F32);
    assert_eq!(a, b, "greedy hypotheses differ between CPU and WebGPU");
    let own = greedy::<Wgpu>(&last("wgpu"), &cfg, &tokenizer, &gpu, Precision::F32);
    assert_eq!(own.len(), a.len());
    assert!(
        own.iter().all(|h| !h.is_empty() && h.len() <= 12),
        "{own:?}"
    );

    // Mixed precision on the GPU: f16 where the adapter has it, a clear error where not.
    for precision in [Precision::F16, Precision::Bf16] {
        if let Err(e) = check_supported::<Wgpu>(&gpu, precision) {
            assert!(
                e.to_string()
                    .contains(&format!("no {precision} arithmetic")),
                "{e}"
            );
            eprintln!("{precision} skipped: {e}");
            continue;
        }
        let name = format!("wgpu-{precision}");
        train::<Autodiff<Wgpu>>(&run(&name, precision), gpu.clone()).unwrap();
        let half = losses(&dir.path().join(&name));
        for (a, h) in cpu.iter().zip(&half) {
            assert!(
                (a - h).abs() / a.abs() < 1e-2,
                "{precision} losses differ: cpu f32 {cpu:?} wgpu {half:?}"
            );
        }
        let c = greedy::<Wgpu>(&last(&name), &cfg, &tokenizer, &gpu, precision);
        // Decoding runs in f16 too (the fused kernel on f16 caches, checked against f32 in
        // mtla/tests/fused_gpu.rs). Its hypotheses are not compared token by token: the weights
        // are random, so rounding can flip a near-tie and the rest of a hypothesis with it.
        assert_eq!(c.len(), a.len());
    }
}
