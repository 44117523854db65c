//! Helpers shared by the training tests (`#[path = "support/run.rs"] mod run_util;`).
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The training losses a run logged, one per update.
pub fn losses(run: &Path) -> Vec<f64> {
    std::fs::read_to_string(run.join("train_log.jsonl"))
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()?["loss"].as_f64())
        .collect()
}

/// `configs/small_cpu.toml` cut to one encoder and one decoder layer, batches of 4 utterances,
/// 4 updates validated every 2, features cached under `cache`.
pub fn tiny_config(cache: &Path, dropout: f64) -> learner::config::ExperimentConfig {
    let mut c =
        learner::config::ExperimentConfig::load(&repo().join("configs/small_cpu.toml")).unwrap();
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
