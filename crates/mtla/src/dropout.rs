//! Inverted dropout, `y = x ⊙ m / (1 - p)` with `m_i ~ Bernoulli(1 - p)`, as `burn::nn::Dropout`
//! (active only under autodiff), with a mask that is cheap on the CPU backend.
//!
//! Profiling a training update of `configs/small_cpu.toml` on burn-flex showed ~15 % of the time
//! in drawing dropout masks: burn samples every element through a generic distribution sampler
//! over ChaCha, on one thread. Here, on the CPU backend, the mask `m / (1 - p)` is computed on
//! the host from a counter-based generator (SplitMix64, element by element on all cores) and applied with
//! one multiplication. The stream is reseeded with [`seed`] (the trainer does so at every
//! update, next to `Backend::seed`), so masks depend on the seed and the order of calls alone:
//! training stays reproducible and exactly resumable. The stream is per thread, so the
//! data-parallel shards of a batch (each forward in its own thread) draw from their own seeds
//! whatever the threads' timing. GPU backends keep burn's own on-device sampling (a host mask
//! would cross the bus at every call).

use std::cell::Cell;

use burn::prelude::*;
use burn::tensor::{Distribution, TensorData};
use rayon::prelude::*;

use crate::rows::dispatched;

thread_local! {
    /// This thread's CPU mask stream: a seed and the index of the next draw.
    static STREAM: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// Restarts this thread's CPU mask stream at `seed`.
pub fn seed(seed: u64) {
    STREAM.set((seed, 0));
}

/// Takes `n` consecutive draws of this thread's stream: its seed and the first index.
fn take(n: usize) -> (u64, u64) {
    let (seed, at) = STREAM.get();
    STREAM.set((seed, at.wrapping_add(n as u64)));
    (seed, at)
}

/// The `i`-th output of the SplitMix64 generator started at `seed` (a counter-based generator:
/// any element of the stream is computed on its own, so chunks fill in parallel).
#[inline(always)]
fn splitmix64(seed: u64, i: u64) -> u64 {
    let mut z = seed.wrapping_add(i.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One draw of `n` consecutive values from the CPU mask stream: element `i` of the mask is
/// `1 / keep` with probability `keep`, else 0. Counter-based, so any part of the mask can be
/// recomputed later (the fused attention backward does, instead of keeping the mask).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MaskDraw {
    seed: u64,
    first: u64,
    threshold: u64,
    scale: f32,
}

impl MaskDraw {
    /// Takes the next `n` values of the stream for a mask keeping a share `keep`.
    pub(crate) fn take(n: usize, keep: f64) -> Self {
        let (seed, first) = take(n);
        Self {
            seed,
            first,
            // Keep when the top 24 bits, as a fraction of 2^24, fall below `keep`.
            threshold: (keep * (1u64 << 24) as f64) as u64,
            scale: (1.0 / keep) as f32,
        }
    }

    /// Mask elements `from..from + out.len()` of this draw into `out`.
    pub(crate) fn fill(&self, from: usize, out: &mut [f32]) {
        let base = self.first.wrapping_add(from as u64);
        fill_mask(self.seed, base, self.threshold, self.scale, out);
    }
}

dispatched! {
    /// `out_i = scale` where the top 24 bits of `splitmix64(seed, base + i)` fall below
    /// `threshold`, else 0 (one hash per element, in vector lanes).
    pub(crate) fn fill_mask(seed: u64, base: u64, threshold: u64, scale: f32, out: &mut [f32]) -> () {
        for (i, m) in out.iter_mut().enumerate() {
            let r = splitmix64(seed, base.wrapping_add(i as u64)) >> 40;
            *m = if r < threshold { scale } else { 0.0 };
        }
    }
}

/// `n` mask values of a fresh draw (see [`MaskDraw`]), filled on all cores.
fn host_mask(n: usize, keep: f64) -> Vec<f32> {
    let draw = MaskDraw::take(n, keep);
    let mut mask = vec![0.0f32; n];
    mask.par_chunks_mut(1 << 14)
        .enumerate()
        .for_each(|(c, chunk)| draw.fill(c << 14, chunk));
    mask
}

/// Dropout with probability `prob` of zeroing an element during training.
#[derive(Module, Clone, Debug)]
pub struct Dropout {
    pub prob: f64,
}

impl Dropout {
    pub fn new(prob: f64) -> Self {
        assert!(
            (0.0..1.0).contains(&prob),
            "dropout probability must be in [0, 1), got {prob}"
        );
        Self { prob }
    }

    /// `x` during inference (no autodiff) or with `prob = 0`; `x ⊙ m / (1 - p)` in training.
    pub fn forward<B: Backend, const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let device = x.device();
        if !B::ad_enabled(&device) || self.prob == 0.0 {
            return x;
        }
        let keep = 1.0 - self.prob;
        if crate::cpu::on_cpu::<B>() {
            let shape = x.shape();
            let mask = host_mask(shape.num_elements(), keep);
            let dtype = x.dtype();
            x * Tensor::<B, D>::from_data(TensorData::new(mask, shape), (&device, dtype))
        } else {
            let mask = x.random_like(Distribution::Bernoulli(keep));
            x * mask * (1.0 / keep)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};

    type B = Autodiff<Flex>;

    #[test]
    fn masks_keep_the_expected_share_scaled_and_repeat_after_reseeding() {
        let device = Default::default();
        let x = Tensor::<B, 2>::ones([400, 250], &device);
        let dropout = Dropout::new(0.3);
        seed(7);
        let a: Vec<f32> = dropout.forward(x.clone()).into_data().into_vec().unwrap();
        let b: Vec<f32> = dropout.forward(x.clone()).into_data().into_vec().unwrap();
        seed(7);
        let again: Vec<f32> = dropout.forward(x.clone()).into_data().into_vec().unwrap();
        assert_eq!(a, again, "the same seed gives the same masks");
        assert_ne!(a, b, "consecutive calls draw fresh masks");
        let kept = a.iter().filter(|&&v| v != 0.0).count() as f64 / a.len() as f64;
        assert!((kept - 0.7).abs() < 0.005, "kept {kept}");
        assert!(a.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
        // The mean is preserved in expectation.
        let mean = a.iter().map(|&v| v as f64).sum::<f64>() / a.len() as f64;
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        // Without autodiff (inference) the input passes through.
        let y = Tensor::<Flex, 2>::ones([3, 3], &device);
        assert_eq!(dropout.forward(y.clone()).into_data(), y.into_data());
    }

    #[test]
    fn gradients_flow_through_the_kept_elements_only() {
        let device = Default::default();
        let x = Tensor::<B, 1>::ones([10_000], &device).require_grad();
        seed(3);
        let y = Dropout::new(0.5).forward(x.clone());
        let grads = y.clone().sum().backward();
        let g: Vec<f32> = x.grad(&grads).unwrap().into_data().into_vec().unwrap();
        let y: Vec<f32> = y.into_data().into_vec().unwrap();
        assert_eq!(g, y, "d(sum y)/dx = mask / keep = y for x = 1");
    }
}
