//! fairseq's `inverse_sqrt` learning-rate schedule: linear warm-up from `warmup_init_lr` to
//! `lr` over `warmup_updates`, then `lr * sqrt(warmup_updates / update)`.

use serde::{Deserialize, Serialize};

/// Inverse square-root schedule; `update` counts optimizer updates from 1.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct InverseSqrt {
    pub lr: f64,
    pub warmup_updates: usize,
    pub warmup_init_lr: f64,
}

impl InverseSqrt {
    /// Learning rate of the `update`-th optimizer update (1-based).
    pub fn lr(&self, update: usize) -> f64 {
        let u = update.max(1) as f64;
        let w = self.warmup_updates as f64;
        if self.warmup_updates > 0 && u < w {
            self.warmup_init_lr + (self.lr - self.warmup_init_lr) * u / w
        } else {
            self.lr * w.max(1.0).sqrt() / u.sqrt()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warms_up_linearly_then_decays_as_inverse_sqrt() {
        let s = InverseSqrt {
            lr: 2e-3,
            warmup_updates: 100,
            warmup_init_lr: 0.0,
        };
        assert!((s.lr(50) - 1e-3).abs() < 1e-12);
        assert!((s.lr(100) - 2e-3).abs() < 1e-12);
        assert!((s.lr(400) - 1e-3).abs() < 1e-12);
        assert!(s.lr(1) > 0.0);
    }
}
