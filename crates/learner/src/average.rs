//! Checkpoint averaging (fairseq `average_checkpoints.py`, the paper averages its 10 best):
//! every parameter is the element-wise mean over the checkpoints, written in f32 or, for a
//! shipped model at half the size, f16 (loading widens it back to f32).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::f16;
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

/// The floating-point format averaged weights are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoredPrecision {
    /// As trained.
    #[default]
    F32,
    /// Half the file size (about 3 significant digits per weight), for shipping a model; the
    /// loader widens every weight back to f32, so computation is unchanged.
    F16,
}

impl StoredPrecision {
    fn dtype(self) -> Dtype {
        match self {
            StoredPrecision::F32 => Dtype::F32,
            StoredPrecision::F16 => Dtype::F16,
        }
    }

    /// The little-endian bytes of `value` in this format.
    fn bytes(self, value: f64) -> Vec<u8> {
        match self {
            StoredPrecision::F32 => (value as f32).to_le_bytes().to_vec(),
            StoredPrecision::F16 => f16::from_f64(value).to_le_bytes().to_vec(),
        }
    }
}

/// Averages the f32 tensors of `inputs` (same names and shapes) into `out`, written in
/// `precision`; the header metadata of the first input is kept, with `averaged_from` added.
pub fn average_checkpoints(
    inputs: &[PathBuf],
    out: &Path,
    precision: StoredPrecision,
) -> Result<()> {
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
                sum.iter().flat_map(|s| precision.bytes(s / n)).collect(),
            )
        })
        .collect();
    let views: Vec<(String, TensorView)> = bytes
        .iter()
        .map(|(name, shape, data)| {
            (
                name.clone(),
                TensorView::new(precision.dtype(), shape.clone(), data).expect("consistent sizes"),
            )
        })
        .collect();
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    metadata.insert("averaged_from".into(), names.join(","));
    let serialized =
        safetensors::serialize(views, Some(metadata)).map_err(|e| LearnerError::io(out, e))?;
    fbank::npy::write_atomic(out, &serialized).map_err(|e| LearnerError::io(out, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, values: &[f32]) {
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![2, values.len() / 2], &data).unwrap();
        std::fs::write(path, safetensors::serialize([("w", view)], None).unwrap()).unwrap();
    }

    fn read(path: &Path) -> (Dtype, Vec<f32>) {
        let bytes = std::fs::read(path).unwrap();
        let file = SafeTensors::deserialize(&bytes).unwrap();
        let view = file.tensor("w").unwrap();
        let values = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|c| f16::from_le_bytes(c.try_into().unwrap()).to_f32())
                .collect(),
            other => panic!("unexpected {other:?}"),
        };
        (view.dtype(), values)
    }

    #[test]
    fn averages_elementwise_in_f32_or_half_the_size_in_f16() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        write(&a, &[1.0, -2.0, 0.5, 1e-3, 3.0, 100.0]);
        write(&b, &[2.0, 2.0, 0.25, 3e-3, -1.0, 200.0]);
        let mean = [1.5, 0.0, 0.375, 2e-3, 1.0, 150.0];
        let (f32_out, f16_out) = (dir.path().join("f32"), dir.path().join("f16"));
        average_checkpoints(&[a.clone(), b.clone()], &f32_out, StoredPrecision::F32).unwrap();
        average_checkpoints(&[a, b], &f16_out, StoredPrecision::F16).unwrap();
        let (dtype, values) = read(&f32_out);
        assert_eq!((dtype, values.as_slice()), (Dtype::F32, mean.as_slice()));
        let (dtype, values) = read(&f16_out);
        assert_eq!(dtype, Dtype::F16);
        for (v, m) in values.iter().zip(mean) {
            assert!((v - m).abs() <= m.abs() * 1e-3, "{values:?} vs {mean:?}");
        }
        let size = |p: &Path| std::fs::metadata(p).unwrap().len();
        assert!(
            size(&f16_out) < size(&f32_out),
            "{} vs {}",
            size(&f16_out),
            size(&f32_out)
        );
    }
}
