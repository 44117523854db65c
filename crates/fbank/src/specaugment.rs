//! SpecAugment as fairseq's `specaugment` transform with the LB policy (Park et al. 2019):
//! frequency masks of width < F=27, time masks of width < min(T=100, p * frames), no time warp.

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::features::Features;

/// Mask counts and widths; defaults are the LB policy used by the paper's recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpecAugment {
    pub freq_mask_n: usize,
    pub freq_mask_f: usize,
    pub time_mask_n: usize,
    pub time_mask_t: usize,
    pub time_mask_p: f32,
    /// Value written into masked cells (fairseq: 0.0, i.e. the mean after CMVN).
    pub mask_value: f32,
}

impl Default for SpecAugment {
    fn default() -> Self {
        Self {
            freq_mask_n: 1,
            freq_mask_f: 27,
            time_mask_n: 1,
            time_mask_t: 100,
            time_mask_p: 1.0,
            mask_value: 0.0,
        }
    }
}

impl SpecAugment {
    /// Masks `feats` in place, drawing widths and offsets from `rng` exactly as fairseq does
    /// (`f ~ U[0, F)`, `f0 ~ U[0, dim - f)`, then `t ~ U[0, T')`, `t0 ~ U[0, frames - t)`).
    pub fn apply<R: Rng>(&self, feats: &mut Features, rng: &mut R) {
        let (frames, dim) = (feats.frames, feats.dim);
        if frames == 0 || dim < self.freq_mask_f {
            return;
        }
        for _ in 0..self.freq_mask_n {
            let f = rng.random_range(0..self.freq_mask_f.max(1));
            let f0 = rng.random_range(0..(dim - f).max(1));
            for row in feats.data.chunks_exact_mut(dim) {
                row[f0..f0 + f]
                    .iter_mut()
                    .for_each(|x| *x = self.mask_value);
            }
        }
        let max_t = self
            .time_mask_t
            .min((frames as f32 * self.time_mask_p).floor() as usize);
        if max_t < 1 {
            return;
        }
        for _ in 0..self.time_mask_n {
            let t = rng.random_range(0..max_t);
            let t0 = rng.random_range(0..(frames - t).max(1));
            feats.data[t0 * dim..(t0 + t) * dim]
                .iter_mut()
                .for_each(|x| *x = self.mask_value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn masks_are_seeded_bounded_and_use_the_mask_value() {
        let aug = SpecAugment {
            freq_mask_n: 2,
            time_mask_n: 2,
            time_mask_t: 20,
            mask_value: -7.0,
            ..SpecAugment::default()
        };
        let run = |seed| {
            let mut f = Features::new(300, 80, vec![1.0; 300 * 80]);
            aug.apply(&mut f, &mut rand::rngs::StdRng::seed_from_u64(seed));
            f
        };
        assert_eq!(run(3), run(3));
        let f = run(3);
        let masked_cols = (0..80)
            .filter(|&d| (0..300).all(|t| f.row(t)[d] == -7.0))
            .count();
        let masked_rows = (0..300)
            .filter(|&t| f.row(t).iter().all(|&x| x == -7.0))
            .count();
        assert!(masked_cols <= 2 * 26, "{masked_cols}");
        assert!(masked_rows <= 2 * 19, "{masked_rows}");
        assert!(f.data.iter().any(|&x| x == -7.0), "seed 3 masks something");
        assert!(f.data.iter().all(|&x| x == -7.0 || x == 1.0));
    }

    #[test]
    fn empty_or_narrow_input_is_left_alone() {
        let mut f = Features::new(0, 80, vec![]);
        SpecAugment::default().apply(&mut f, &mut rand::rngs::StdRng::seed_from_u64(0));
        let mut g = Features::new(5, 10, vec![1.0; 50]);
        SpecAugment::default().apply(&mut g, &mut rand::rngs::StdRng::seed_from_u64(0));
        assert!(g.data.iter().all(|&x| x == 1.0));
    }
}
