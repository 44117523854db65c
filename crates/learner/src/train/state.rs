//! A run directory's checkpoints: the last training state (model and optimizer records, data
//! position, best list) committed atomically by writing `state.json` last, and the best
//! checkpoints by validation accuracy kept as safetensors for evaluation and averaging.
//!
//! Layout of `RUN/checkpoints/`: `u00001200.safetensors` (weights, any kept checkpoint),
//! `u00001200.model.bin` + `u00001200.optim.bin` (the last one only: records with parameter
//! ids, to resume Adam exactly), `state.json` (the commit point), `last.safetensors` and
//! `best.safetensors` (links to the newest and the best).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{LearnerError, Result};
use crate::precision::LossScaler;

/// A kept checkpoint and its validation scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub update: usize,
    pub epoch: u64,
    pub valid_accuracy: f64,
    /// Bits per target token.
    pub valid_loss: f64,
    /// Decoder NLL on swapped audio minus on the real audio, bits per token (≈ 0: not listening).
    #[serde(default)]
    pub audio_gain: Option<f64>,
    /// Greedy CTC word error rate on the dev set (a fraction), with a CTC head.
    #[serde(default)]
    pub ctc_wer: Option<f64>,
    /// File name under `checkpoints/`.
    pub file: String,
}

/// Everything needed to continue a run exactly where its last checkpoint was taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunState {
    /// Epoch in progress (1-based).
    pub epoch: u64,
    /// Index of the next batch of that epoch.
    pub next_batch: usize,
    /// Optimizer updates done.
    pub updates: usize,
    /// Training wall time so far, seconds.
    pub elapsed_s: f64,
    /// Seconds spent in updates alone (batches, forward, backward, optimizer; no validation).
    #[serde(default)]
    pub train_s: f64,
    /// Real (unpadded) feature frames trained on.
    #[serde(default)]
    pub train_frames: u64,
    /// f16 training's loss scaler, as it stood at this point (resumed exactly).
    #[serde(default)]
    pub loss_scaler: Option<LossScaler>,
    /// The last checkpoint (its `.model.bin`/`.optim.bin` resume training).
    pub last: Option<Kept>,
    /// The best checkpoints by validation accuracy, best first.
    pub best: Vec<Kept>,
    /// True once the run reached its stopping criterion.
    pub finished: bool,
}

impl RunState {
    /// Training throughput: updates and frames per second of update time.
    pub fn throughput(&self) -> (f64, f64) {
        let s = self.train_s.max(1e-9);
        (self.updates as f64 / s, self.train_frames as f64 / s)
    }
}

/// The `checkpoints/` folder of a run.
#[derive(Debug, Clone)]
pub struct CheckpointDir {
    pub dir: PathBuf,
}

impl CheckpointDir {
    pub fn new(run: &Path) -> Result<Self> {
        let dir = run.join("checkpoints");
        std::fs::create_dir_all(&dir).map_err(|e| LearnerError::io(&dir, e))?;
        Ok(Self { dir })
    }

    fn state_path(&self) -> PathBuf {
        self.dir.join("state.json")
    }

    /// File stem of the checkpoint after `update` updates.
    pub fn stem(update: usize) -> String {
        format!("u{update:08}")
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    /// The committed state, if any.
    pub fn load(&self) -> Result<Option<RunState>> {
        let path = self.state_path();
        if !path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&path).map_err(|e| LearnerError::io(&path, e))?;
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| LearnerError::io(&path, format!("corrupt run state: {e}")))
    }

    /// Commits `state` (atomically), points the `last`/`best` links at it and removes files
    /// no longer referenced.
    pub fn commit(&self, state: &RunState) -> Result<()> {
        let json = serde_json::to_vec_pretty(state).expect("state serialises");
        fbank::npy::write_atomic(&self.state_path(), &json)
            .map_err(|e| LearnerError::io(self.state_path(), e))?;
        if let Some(last) = &state.last {
            self.link(&last.file, "last.safetensors")?;
        }
        if let Some(best) = state.best.first() {
            self.link(&best.file, "best.safetensors")?;
        }
        self.prune(state)
    }

    fn link(&self, target: &str, name: &str) -> Result<()> {
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::fs::hard_link(self.path(target), &tmp)
            .or_else(|_| std::fs::copy(self.path(target), &tmp).map(|_| ()))
            .and_then(|_| std::fs::rename(&tmp, self.dir.join(name)))
            .map_err(|e| LearnerError::io(self.dir.join(name), e))?;
        // rename() between two links of one file succeeds without removing the source.
        let _ = std::fs::remove_file(&tmp);
        Ok(())
    }

    /// Deletes checkpoint files that `state` no longer refers to.
    fn prune(&self, state: &RunState) -> Result<()> {
        let keep: Vec<String> = state
            .last
            .iter()
            .chain(&state.best)
            .map(|k| k.file.clone())
            .collect();
        let last_stem = state
            .last
            .as_ref()
            .map(|k| k.file.trim_end_matches(".safetensors").to_string());
        let entries = std::fs::read_dir(&self.dir).map_err(|e| LearnerError::io(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let ours =
                name.starts_with('u') && (name.ends_with(".safetensors") || name.ends_with(".bin"));
            let referenced = keep.contains(&name)
                || last_stem
                    .as_ref()
                    .is_some_and(|s| name.starts_with(&format!("{s}.")));
            if ours && !referenced {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// Inserts `candidate` into `best` (best accuracy first, ties: newer first), keeping `n`.
pub fn update_best(best: &mut Vec<Kept>, candidate: Kept, n: usize) {
    best.push(candidate);
    best.sort_by(|a, b| {
        b.valid_accuracy
            .total_cmp(&a.valid_accuracy)
            .then(b.update.cmp(&a.update))
    });
    best.truncate(n);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(update: usize, acc: f64) -> Kept {
        Kept {
            update,
            epoch: 1,
            valid_accuracy: acc,
            valid_loss: 1.0,
            audio_gain: None,
            ctc_wer: None,
            file: format!("{}.safetensors", CheckpointDir::stem(update)),
        }
    }

    #[test]
    fn keeps_the_n_best_and_prunes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = CheckpointDir::new(dir.path()).unwrap();
        let mut state = RunState::default();
        for (u, acc) in [(10, 0.2), (20, 0.5), (30, 0.4), (40, 0.1)] {
            for ext in ["safetensors", "model.bin", "optim.bin"] {
                std::fs::write(
                    ckpt.path(&format!("{}.{ext}", CheckpointDir::stem(u))),
                    b"x",
                )
                .unwrap();
            }
            update_best(&mut state.best, kept(u, acc), 2);
            state.last = Some(kept(u, acc));
            ckpt.commit(&state).unwrap();
        }
        assert_eq!(
            state.best.iter().map(|k| k.update).collect::<Vec<_>>(),
            vec![20, 30]
        );
        let mut names: Vec<String> = std::fs::read_dir(&ckpt.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "best.safetensors",
                "last.safetensors",
                "state.json",
                "u00000020.safetensors",
                "u00000030.safetensors",
                "u00000040.model.bin",
                "u00000040.optim.bin",
                "u00000040.safetensors"
            ]
        );
        assert_eq!(ckpt.load().unwrap().unwrap(), state);
    }
}
