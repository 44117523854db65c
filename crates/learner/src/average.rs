//! Checkpoint averaging (fairseq `average_checkpoints.py`, the paper averages its 10 best):
//! every parameter is the element-wise mean over the checkpoints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

use crate::error::{LearnerError, Result};
use crate::train::state::CheckpointDir;

/// The `n` best checkpoints recorded in a run's (or its `checkpoints/` folder's) state.
pub fn best_checkpoints(dir: &Path, n: usize) -> Result<Vec<PathBuf>> {
    let ckpt_dir = if dir.join("state.json").exists() {
        dir.to_path_buf()
    } else {
        dir.join("checkpoints")
    };
    let ckpt = CheckpointDir {
        dir: ckpt_dir.clone(),
    };
    let state = ckpt.load()?.ok_or_else(|| {
        LearnerError::io(&ckpt_dir, "no state.json: not a run's checkpoint folder")
    })?;
    if state.best.is_empty() {
        return Err(LearnerError::io(
            &ckpt_dir,
            "the run has no validated checkpoint yet",
        ));
    }
    if state.best.len() < n {
        eprintln!(
            "note: {} keeps {} best checkpoints; averaging those",
            ckpt_dir.display(),
            state.best.len()
        );
    }
    Ok(state
        .best
        .iter()
        .take(n)
        .map(|k| ckpt.path(&k.file))
        .collect())
}

/// Averages the f32 tensors of `inputs` (same names and shapes) into `out`; the header
/// metadata of the first input is kept, with `averaged_from` added.
pub fn average_checkpoints(inputs: &[PathBuf], out: &Path) -> Result<()> {
    let first = inputs
        .first()
        .ok_or_else(|| LearnerError::Config("no checkpoint to average".into()))?;
    let mut sums: BTreeMap<String, (Vec<usize>, Vec<f64>)> = BTreeMap::new();
    let mut metadata = std::collections::HashMap::new();
    for (k, path) in inputs.iter().enumerate() {
        let bytes = std::fs::read(path).map_err(|e| LearnerError::io(path, e))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| LearnerError::io(path, format!("not a safetensors checkpoint: {e}")))?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| LearnerError::io(path, e))?;
        if k == 0 {
            metadata = meta.metadata().clone().unwrap_or_default();
        } else if file.len() != sums.len() {
            return Err(LearnerError::io(
                path,
                format!(
                    "has {} tensors but {} has {}",
                    file.len(),
                    first.display(),
                    sums.len()
                ),
            ));
        }
        for (name, view) in file.iter() {
            if view.dtype() != Dtype::F32 {
                return Err(LearnerError::io(
                    path,
                    format!("tensor '{name}' is {:?}, not f32", view.dtype()),
                ));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64);
            match sums.get_mut(name) {
                Some((shape, sum)) if shape.as_slice() == view.shape() => {
                    sum.iter_mut().zip(values).for_each(|(s, v)| *s += v)
                }
                Some((shape, _)) => {
                    return Err(LearnerError::io(
                        path,
                        format!(
                            "tensor '{name}' has shape {:?}, {} has {shape:?}",
                            view.shape(),
                            first.display()
                        ),
                    ))
                }
                None if k == 0 => {
                    sums.insert(name.to_string(), (view.shape().to_vec(), values.collect()));
                }
                None => {
                    return Err(LearnerError::io(
                        path,
                        format!("tensor '{name}' is not in {}", first.display()),
                    ))
                }
            }
        }
    }
    let n = inputs.len() as f64;
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = sums
        .into_iter()
        .map(|(name, (shape, sum))| {
            (
                name,
                shape,
                sum.iter()
                    .flat_map(|s| ((s / n) as f32).to_le_bytes())
                    .collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(Dtype::F32, shape.clone(), data).expect("consistent sizes"),
            )
        })
        .collect();
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    metadata.insert("averaged_from".into(), names.join(","));
    let serialized =
        safetensors::serialize(views, Some(metadata)).map_err(|e| LearnerError::io(out, e))?;
    fbank::npy::write_atomic(out, &serialized).map_err(|e| LearnerError::io(out, e))
}
