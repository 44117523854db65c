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
