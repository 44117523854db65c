//! Checkpoint averaging (fairseq `average_checkpoints.py`, the paper averages its 10 best):
//! every parameter is the element-wise mean over the checkpoints, written in f32 or, for a
//! shipped model, f16 (half the size) or 8-bit blocks (Q8_0, about a quarter; loading widens
//! either back to f32). One input and `--q8` re-stores a model in fewer bits.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use st_model::stored::{encode, float_values, StoredTensor};

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

pub use st_model::stored::StoredPrecision;

/// Averages the tensors of `inputs` (same names and shapes; stored in f32, f16 or Q8_0) into
/// `out`, written in `precision`; the header metadata of the first input is kept, with
/// `averaged_from` added (`restored_from` for one input that names what it was averaged from).
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
        let bytes = st_model::stored::widen(&bytes)
            .map_err(|e| LearnerError::io(path, e))?
            .unwrap_or(bytes);
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
            let values = float_values(&view).ok_or_else(|| {
                LearnerError::io(
                    path,
                    format!("tensor '{name}' is {:?}, not f32 or f16", view.dtype()),
                )
            })?;
            let values = values.into_iter().map(f64::from);
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
    let stored: Vec<StoredTensor> = sums
        .into_iter()
        .flat_map(|(name, (shape, sum))| {
            let mean: Vec<f32> = sum.iter().map(|s| (s / n) as f32).collect();
            encode(&name, &shape, &mean, precision)
        })
        .collect();
    let views = stored.iter().map(|t| (t.name.clone(), t.view()));
    let names: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
    // One input is a model re-stored in another format: what it was averaged from stays named.
    let key = if inputs.len() == 1 && metadata.contains_key("averaged_from") {
        "restored_from"
    } else {
        "averaged_from"
    };
    metadata.insert(key.into(), names.join(","));
    let serialized =
        safetensors::serialize(views, Some(metadata)).map_err(|e| LearnerError::io(out, e))?;
    fbank::npy::write_atomic(out, &serialized).map_err(|e| LearnerError::io(out, e))
}

#[cfg(test)]
mod tests {
    use safetensors::tensor::TensorView;
    use safetensors::Dtype;

    use super::*;

    fn write(path: &Path, values: &[f32]) {
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![2, values.len() / 2], &data).unwrap();
        std::fs::write(path, safetensors::serialize([("w", view)], None).unwrap()).unwrap();
    }

    /// The stored dtype of `w` and its values as the loader sees them.
    fn read(path: &Path) -> (Dtype, Vec<f32>) {
        let bytes = std::fs::read(path).unwrap();
        let dtype = SafeTensors::deserialize(&bytes)
            .unwrap()
            .tensor("w")
            .unwrap()
            .dtype();
        let wide = st_model::stored::widen(&bytes).unwrap().unwrap_or(bytes);
        let file = SafeTensors::deserialize(&wide).unwrap();
        (dtype, float_values(&file.tensor("w").unwrap()).unwrap())
    }

    #[test]
    fn averages_elementwise_in_f32_or_smaller_in_f16_and_8_bits() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let xs: Vec<f32> = (0..64).map(|i| (i as f32 * 0.7).sin()).collect();
        let ys: Vec<f32> = xs.iter().map(|x| 3.0 * x - 0.25).collect();
        write(&a, &xs);
        write(&b, &ys);
        let mean: Vec<f32> = xs.iter().zip(&ys).map(|(x, y)| (x + y) / 2.0).collect();
        let out = |name: &str| dir.path().join(name);
        let both = [a.clone(), b.clone()];
        average_checkpoints(&both, &out("f32"), StoredPrecision::F32).unwrap();
        average_checkpoints(&both, &out("f16"), StoredPrecision::F16).unwrap();
        average_checkpoints(&both, &out("q8"), StoredPrecision::Q8).unwrap();
        // A stored model re-stored in 8 bits: its one input, widened, written again.
        average_checkpoints(&[out("f16")], &out("f16-q8"), StoredPrecision::Q8).unwrap();

        let (dtype, values) = read(&out("f32"));
        assert_eq!((dtype, values), (Dtype::F32, mean.clone()));
        let max = mean.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (file, dtype, tol) in [
            ("f16", Dtype::F16, 1e-3 * max),
            ("q8", Dtype::I8, max / 127.0),
            ("f16-q8", Dtype::I8, max / 127.0),
        ] {
            let (d, values) = read(&out(file));
            assert_eq!(d, dtype, "{file}");
            for (v, m) in values.iter().zip(&mean) {
                assert!((v - m).abs() <= tol, "{file}: {v} vs {m}");
            }
        }
        let size = |name: &str| std::fs::metadata(out(name)).unwrap().len();
        assert!(
            size("q8") < size("f16") && size("f16") < size("f32"),
            "{} {} {}",
            size("q8"),
            size("f16"),
            size("f32")
        );
    }
}
