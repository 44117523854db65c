//! Cepstral mean and variance normalisation: per utterance (fairseq's `utterance_cmvn`, the
//! paper's setting) and global (statistics accumulated over a manifest, saved, applied).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{FbankError, Result};
use crate::features::Features;

/// Variance floor of fairseq's `UtteranceCMVN` / `GlobalCMVN` (`np.maximum(var, 1e-10)`).
const VAR_FLOOR: f64 = 1e-10;

/// fairseq `UtteranceCMVN`: `x = (x - mean_t(x)) / sqrt(max(var_t(x), 1e-10))` per dimension.
pub fn utterance_cmvn(feats: &mut Features, norm_means: bool, norm_vars: bool) {
    if feats.frames == 0 {
        return;
    }
    let mut stats = CmvnStats::new(feats.dim);
    stats.accumulate(feats);
    let cmvn = stats.to_cmvn();
    cmvn.apply(feats, norm_means, norm_vars);
}

/// Running sums for global CMVN.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmvnStats {
    pub count: u64,
    pub sum: Vec<f64>,
    pub sum_sq: Vec<f64>,
}

impl CmvnStats {
    /// Empty statistics over `dim` features.
    pub fn new(dim: usize) -> Self {
        Self {
            count: 0,
            sum: vec![0.0; dim],
            sum_sq: vec![0.0; dim],
        }
    }

    /// Adds every frame of `feats`.
    pub fn accumulate(&mut self, feats: &Features) {
        assert_eq!(
            feats.dim,
            self.sum.len(),
            "CMVN statistics dimension mismatch"
        );
        for t in 0..feats.frames {
            for (d, &x) in feats.row(t).iter().enumerate() {
                self.sum[d] += x as f64;
                self.sum_sq[d] += (x as f64) * (x as f64);
            }
        }
        self.count += feats.frames as u64;
    }

    /// Merges statistics gathered elsewhere (e.g. on another thread).
    pub fn merge(&mut self, other: &CmvnStats) {
        self.count += other.count;
        self.sum
            .iter_mut()
            .zip(&other.sum)
            .for_each(|(a, b)| *a += b);
        self.sum_sq
            .iter_mut()
            .zip(&other.sum_sq)
            .for_each(|(a, b)| *a += b);
    }

    /// Mean and standard deviation.
    pub fn to_cmvn(&self) -> GlobalCmvn {
        let n = self.count.max(1) as f64;
        let mean: Vec<f64> = self.sum.iter().map(|s| s / n).collect();
        let std = self
            .sum_sq
            .iter()
            .zip(&mean)
            .map(|(sq, m)| (sq / n - m * m).max(VAR_FLOOR).sqrt())
            .collect();
        GlobalCmvn {
            mean,
            std,
            count: self.count,
        }
    }
}

/// Global mean/std, applied as fairseq's `GlobalCMVN`: `x = (x - mean) / std`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalCmvn {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    /// Number of frames the statistics came from.
    pub count: u64,
}

impl GlobalCmvn {
    /// Normalises `feats` in place.
    pub fn apply(&self, feats: &mut Features, norm_means: bool, norm_vars: bool) {
        assert_eq!(feats.dim, self.mean.len(), "CMVN dimension mismatch");
        let dim = feats.dim;
        for row in feats.data.chunks_exact_mut(dim) {
            for (d, x) in row.iter_mut().enumerate() {
                let mut v = *x as f64;
                if norm_means {
                    v -= self.mean[d];
                }
                if norm_vars {
                    v /= self.std[d];
                }
                *x = v as f32;
            }
        }
    }

    /// Saves as JSON (`{"mean": [...], "std": [...], "count": N}`), atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).expect("CMVN serialises");
        crate::npy::write_atomic(path, &json)
    }

    /// Loads a file written by [`GlobalCmvn::save`], checking its shape.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|source| FbankError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let cmvn: Self = serde_json::from_slice(&text).map_err(|e| FbankError::Format {
            path: path.to_path_buf(),
            reason: format!("not a CMVN statistics file: {e}"),
        })?;
        if cmvn.mean.len() != cmvn.std.len()
            || cmvn.std.iter().any(|s| !(s.is_finite() && *s > 0.0))
        {
            return Err(FbankError::Format {
                path: path.to_path_buf(),
                reason: "mean and std must have the same length and std must be positive".into(),
            });
        }
        Ok(cmvn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feats() -> Features {
        Features::new(4, 2, vec![1.0, 10.0, 2.0, 10.0, 3.0, 10.0, 6.0, 10.0])
    }

    #[test]
    fn utterance_cmvn_gives_zero_mean_unit_variance() {
        let mut f = feats();
        utterance_cmvn(&mut f, true, true);
        let col0: Vec<f32> = (0..4).map(|t| f.row(t)[0]).collect();
        let mean: f32 = col0.iter().sum::<f32>() / 4.0;
        let var: f32 = col0.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(
            mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
            "{mean} {var}"
        );
        // A constant column has zero variance: floored, so it maps to 0, not NaN.
        assert!((0..4).all(|t| f.row(t)[1] == 0.0));
    }

    #[test]
    fn global_stats_merge_save_load_apply() {
        let mut a = CmvnStats::new(2);
        a.accumulate(&feats());
        let mut b = CmvnStats::new(2);
        b.merge(&a);
        assert_eq!(a, b);
        let cmvn = a.to_cmvn();
        assert_eq!(cmvn.mean, vec![3.0, 10.0]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cmvn.json");
        cmvn.save(&path).unwrap();
        let loaded = GlobalCmvn::load(&path).unwrap();
        assert_eq!(loaded, cmvn);
        let mut f = feats();
        loaded.apply(&mut f, true, false);
        assert_eq!(f.row(0), &[-2.0, 0.0]);
        std::fs::write(&path, b"{\"mean\": [1]}").unwrap();
        let msg = GlobalCmvn::load(&path).unwrap_err().to_string();
        assert!(msg.contains("cmvn.json") && msg.contains("CMVN"), "{msg}");
    }
}
