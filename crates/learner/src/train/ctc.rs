//! The CTC loss (Graves et al., 2006), `−log p(l | x) = −log Σ_{π ∈ B⁻¹(l)} Π_t y_t(π_t)`, as one
//! graph node on the CPU backend.
//!
//! burn-flex has no CTC kernel, so burn's `CTCLoss` runs the forward (α) recursion as tensor ops,
//! about ten per frame over `[batch, 2S + 1]`, each a graph node that the backward pass walks
//! again (with an ASR model's CTC head, the largest cost of an update after the matrix products).
//! Here each utterance is one host pass over its extended labels `l'` (a blank before, between and
//! after the labels), utterances on all cores. In log space, with `y` the log-probabilities,
//!
//! `α_t(s) = y_t(l'_s) + logsumexp(α_{t−1}(s), α_{t−1}(s−1), α_{t−1}(s−2))`, the last term only
//! where `l'_s` is a label other than `l'_{s−2}`, and `loss = −logsumexp(α_{T−1}(|l'|−1),
//! α_{T−1}(|l'|−2))`; the backward pass runs `β` the same way from the last frame, and the
//! gradient of the loss with respect to `y_t(c)` is the negated posterior of the states that emit
//! `c` at frame `t`: `−Σ_{s: l'_s = c} exp(α_t(s) + β_t(s) − y_t(l'_s) + loss)`. As burn's
//! `zero_infinity`, an utterance that no alignment fits (too few frames) has loss 0 and no
//! gradient.
//!
//! Other backends (and dtypes other than f32) take burn's `CTCLoss`.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::loss::CTCLossConfig;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use mtla::cpu::{back, backprop, cast, on_cpu, AdPrimitive};
use rayon::prelude::*;

/// Per-utterance CTC loss `[batch]` of `log_probs` `[batch, frames, classes]` (log-softmax
/// outputs) against `targets` `[batch, S]`, of which utterance `n` uses its first
/// `target_lengths[n]` labels and `log_probs` its first `input_lengths[n]` frames; `blank` is the
/// blank class. Infeasible utterances get 0 (burn's `zero_infinity`).
pub fn ctc_loss<B: Backend>(
    log_probs: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    input_lengths: &[usize],
    target_lengths: &[usize],
    blank: usize,
) -> Tensor<B, 1> {
    match cpu_ctc_loss(&log_probs, &targets, input_lengths, target_lengths, blank) {
        Some(loss) => loss,
        None => burn_ctc_loss(log_probs, targets, input_lengths, target_lengths, blank),
    }
}

/// burn's `CTCLoss` with the same arguments and `zero_infinity`.
fn burn_ctc_loss<B: Backend>(
    log_probs: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    input_lengths: &[usize],
    target_lengths: &[usize],
    blank: usize,
) -> Tensor<B, 1> {
    let device = log_probs.device();
    let ints = |v: &[usize]| {
        let v: Vec<i64> = v.iter().map(|&n| n as i64).collect();
        Tensor::<B, 1, Int>::from_ints(v.as_slice(), &device)
    };
    CTCLossConfig::new()
        .with_blank(blank)
        .with_zero_infinity(true)
        .init()
        .forward(
            log_probs.swap_dims(0, 1),
            targets,
            ints(input_lengths),
            ints(target_lengths),
        )
}

fn cpu_ctc_loss<B: Backend>(
    log_probs: &Tensor<B, 3>,
    targets: &Tensor<B, 2, Int>,
    input_lengths: &[usize],
    target_lengths: &[usize],
    blank: usize,
) -> Option<Tensor<B, 1>> {
    if !on_cpu::<B>() {
        return None;
    }
    let [batch, frames, classes] = log_probs.dims();
    let [_, max_labels] = targets.dims();
    if input_lengths.len() != batch || target_lengths.len() != batch || blank >= classes {
        return None;
    }
    let ids: Vec<i64> = targets.to_data().iter::<i64>().collect();
    let mut labels = Vec::with_capacity(batch);
    for (n, &len) in target_lengths.iter().enumerate() {
        let row = ids.get(n * max_labels..n * max_labels + len)?;
        if row.iter().any(|&c| c < 0 || c as usize >= classes) {
            return None;
        }
        labels.push(row.iter().map(|&c| c as usize).collect::<Vec<_>>());
    }
    let frames_of: Vec<usize> = input_lengths.iter().map(|&t| t.min(frames)).collect();
    match cast::<_, AdPrimitive>(log_probs.clone().into_primitive().tensor()) {
        Ok(ad) => {
            let (loss, paths) = Paths::forward(&ad.primitive, &labels, &frames_of, blank)?;
            let out: AdPrimitive = match CtcGrad
                .prepare::<NoCheckpointing>([ad.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(paths, loss),
                OpsKind::UnTracked(prep) => prep.finish(loss),
            };
            Some(back(out))
        }
        Err(primitive) => {
            let flex = cast::<_, FlexTensor>(primitive).ok()?;
            Paths::forward(&flex, &labels, &frames_of, blank).map(|(loss, _)| back(loss))
        }
    }
}

/// One utterance's alignment lattice after the forward pass.
#[derive(Clone, Debug)]
struct Lattice {
    /// The extended labels `l'`: blank, `l_1`, blank, …, `l_S`, blank.
    states: Vec<usize>,
    /// `y_t(l'_s)`, `[T, |l'|]`.
    emissions: Vec<f32>,
    /// `α_t(s)`, `[T, |l'|]`.
    alpha: Vec<f32>,
    /// `−log p(l | x)`, infinite when no alignment fits.
    loss: f32,
}

/// What the backward pass needs: every utterance's lattice and the input's shape.
#[derive(Clone, Debug)]
struct Paths {
    lattices: Arc<Vec<Lattice>>,
    shape: [usize; 3],
}

impl Paths {
    /// The losses `[batch]` (0 where infeasible) and the saved lattices.
    fn forward(
        log_probs: &FlexTensor,
        labels: &[Vec<usize>],
        frames: &[usize],
        blank: usize,
    ) -> Option<(FlexTensor, Self)> {
        if log_probs.dtype() != DType::F32 {
            return None;
        }
        let shape: [usize; 3] = log_probs.layout().shape().dims();
        let [_, max_frames, classes] = shape;
        let log_probs = log_probs.to_contiguous();
        let y: &[f32] = log_probs.storage();
        let lattices: Vec<Lattice> = labels
            .par_iter()
            .zip(frames)
            .enumerate()
            .map(|(n, (labels, &frames))| {
                let rows = &y[n * max_frames * classes..][..frames * classes];
                Lattice::forward(rows, classes, labels, blank)
            })
            .collect();
        let loss: Vec<f32> = lattices
            .iter()
            .map(|l| if l.loss.is_finite() { l.loss } else { 0.0 })
            .collect();
        let loss = FlexTensor::from_data(TensorData::new(loss, [labels.len()]));
        Some((
            loss,
            Self {
                lattices: Arc::new(lattices),
                shape,
            },
        ))
    }

    /// The gradient of `log_probs` from the losses' gradient `d_loss` `[batch]`.
    fn backward(&self, d_loss: FlexTensor) -> [FlexTensor; 1] {
        let [_, max_frames, classes] = self.shape;
        let d_loss = d_loss.to_contiguous();
        let d_loss: &[f32] = d_loss.storage();
        let mut grad = vec![0.0f32; self.shape.iter().product()];
        grad.par_chunks_mut(max_frames * classes)
            .zip(self.lattices.par_iter())
            .zip(d_loss.par_iter())
            .for_each(|((grad, lattice), &d)| lattice.backward(d, classes, grad));
        [FlexTensor::from_data(TensorData::new(grad, self.shape))]
    }
}

impl Lattice {
    /// The α recursion over `y` `[T, classes]` (module doc).
    fn forward(y: &[f32], classes: usize, labels: &[usize], blank: usize) -> Self {
        let mut states = vec![blank; 2 * labels.len() + 1];
        for (s, &l) in labels.iter().enumerate() {
            states[2 * s + 1] = l;
        }
        let width = states.len();
        let frames = y.len() / classes;
        let mut emissions = vec![0.0f32; frames * width];
        for (t, row) in emissions.chunks_mut(width).enumerate() {
            for (e, &c) in row.iter_mut().zip(&states) {
                *e = y[t * classes + c];
            }
        }
        let mut alpha = vec![f32::NEG_INFINITY; frames * width];
        if frames > 0 {
            alpha[0] = emissions[0];
            if width > 1 {
                alpha[1] = emissions[1];
            }
        }
        for t in 1..frames {
            let (done, rest) = alpha.split_at_mut(t * width);
            let prev = &done[(t - 1) * width..];
            for s in 0..width {
                // Blanks sit at even states, so `l'_s ≠ l'_{s−2}` also rules out a blank `l'_s`.
                let skip = s >= 2 && states[s] != states[s - 2];
                let from = log_sum_exp3(
                    prev[s],
                    if s >= 1 {
                        prev[s - 1]
                    } else {
                        f32::NEG_INFINITY
                    },
                    if skip { prev[s - 2] } else { f32::NEG_INFINITY },
                );
                rest[s] = from + emissions[t * width + s];
            }
        }
        let loss = match frames {
            0 => f32::INFINITY,
            _ => {
                let last = &alpha[(frames - 1) * width..];
                let end = if width > 1 {
                    last[width - 2]
                } else {
                    f32::NEG_INFINITY
                };
                -log_sum_exp3(last[width - 1], end, f32::NEG_INFINITY)
            }
        };
        Self {
            states,
            emissions,
            alpha,
            loss,
        }
    }

    /// Adds `d · ∂loss/∂y` to `grad` `[T_max, classes]` by the β recursion (module doc).
    fn backward(&self, d: f32, classes: usize, grad: &mut [f32]) {
        if !self.loss.is_finite() || d == 0.0 {
            return;
        }
        let width = self.states.len();
        let frames = self.emissions.len() / width;
        let mut beta = vec![f32::NEG_INFINITY; width];
        let mut next = vec![f32::NEG_INFINITY; width];
        for t in (0..frames).rev() {
            let emissions = &self.emissions[t * width..][..width];
            if t + 1 == frames {
                beta[width - 1] = emissions[width - 1];
                if width > 1 {
                    beta[width - 2] = emissions[width - 2];
                }
            } else {
                std::mem::swap(&mut beta, &mut next);
                for s in 0..width {
                    let skip = s + 2 < width && self.states[s + 2] != self.states[s];
                    let from = log_sum_exp3(
                        next[s],
                        if s + 1 < width {
                            next[s + 1]
                        } else {
                            f32::NEG_INFINITY
                        },
                        if skip { next[s + 2] } else { f32::NEG_INFINITY },
                    );
                    beta[s] = from + emissions[s];
                }
            }
            let alpha = &self.alpha[t * width..][..width];
            let row = &mut grad[t * classes..][..classes];
            for s in 0..width {
                let log_posterior = alpha[s] + beta[s] - emissions[s] + self.loss;
                if log_posterior > f32::NEG_INFINITY {
                    row[self.states[s]] -= d * log_posterior.exp();
                }
            }
        }
    }
}

/// `log(e^a + e^b + e^c)`, `−∞` when all three are.
fn log_sum_exp3(a: f32, b: f32, c: f32) -> f32 {
    let m = a.max(b).max(c);
    if m == f32::NEG_INFINITY {
        return m;
    }
    m + ((a - m).exp() + (b - m).exp() + (c - m).exp()).ln()
}

/// The loss's graph node, with the log-probabilities as its parent.
#[derive(Debug)]
struct CtcGrad;

impl Backward<Flex, 1> for CtcGrad {
    type State = Paths;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backprop(ops, grads, |state, d_loss| state.backward(d_loss));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::{Distribution, Tolerance};
    use mtla::cpu::AdFlex;

    /// Labels `[4, 5]` (the padding, 1, is never read), their lengths and each utterance's frames:
    /// repeated labels (which need a blank between them), one label, padding frames.
    fn targets<B: Backend>(device: &B::Device) -> (Tensor<B, 2, Int>, [usize; 4], [usize; 4]) {
        let ids = [
            [1, 2, 2, 3, 5],
            [4, 4, 4, 1, 1],
            [3, 1, 1, 1, 1],
            [5, 2, 1, 1, 1],
        ];
        (Tensor::from_ints(ids, device), [5, 3, 1, 2], [12, 9, 12, 7])
    }

    /// Losses and the gradient of the logits under a log-softmax equal burn's `CTCLoss`.
    #[test]
    fn matches_burn_ctc_in_value_and_gradient() {
        let device = Default::default();
        let data = Tensor::<AdFlex, 3>::random([4, 12, 6], Distribution::Normal(0.0, 2.0), &device)
            .into_data();
        let leaf = || Tensor::<AdFlex, 3>::from_data(data.clone(), &device).require_grad();
        let (x_ours, x_burn) = (leaf(), leaf());
        let (ids, lengths, frames) = targets::<AdFlex>(&device);
        let probe = Tensor::<AdFlex, 1>::from_floats([0.5, 1.0, 2.0, -1.0], &device);
        let lp = log_softmax(x_ours.clone(), 2);
        assert!(cpu_ctc_loss(&lp, &ids, &frames, &lengths, 0).is_some());
        let ours = ctc_loss(lp, ids.clone(), &frames, &lengths, 0);
        let burns = burn_ctc_loss(log_softmax(x_burn.clone(), 2), ids, &frames, &lengths, 0);
        let tolerance = Tolerance::absolute(1e-4);
        ours.to_data()
            .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
        let g_ours = (ours * probe.clone()).sum().backward();
        let g_burn = (burns * probe).sum().backward();
        let grad = |x: &Tensor<AdFlex, 3>, g| x.grad(g).unwrap().to_data();
        grad(&x_ours, &g_ours).assert_approx_eq::<f32>(&grad(&x_burn, &g_burn), tolerance);
    }

    /// Without autodiff (validation) the same losses come out.
    #[test]
    fn inference_backend_matches_burn_ctc() {
        let device = Default::default();
        let x = Tensor::<Flex, 3>::random([4, 12, 6], Distribution::Normal(0.0, 2.0), &device);
        let lp = log_softmax(x, 2);
        let (ids, lengths, frames) = targets::<Flex>(&device);
        assert!(cpu_ctc_loss(&lp, &ids, &frames, &lengths, 0).is_some());
        let ours = ctc_loss(lp.clone(), ids.clone(), &frames, &lengths, 0);
        let burns = burn_ctc_loss(lp, ids, &frames, &lengths, 0);
        ours.to_data()
            .assert_approx_eq::<f32>(&burns.to_data(), Tolerance::absolute(1e-4));
    }

    /// Three equal labels need five frames; with four the loss is 0 and so is the gradient.
    #[test]
    fn infeasible_utterance_has_zero_loss_and_gradient() {
        let device = Default::default();
        let x =
            Tensor::<AdFlex, 3>::random([1, 4, 5], Distribution::Default, &device).require_grad();
        let ids = Tensor::<AdFlex, 2, Int>::from_ints([[2, 2, 2]], &device);
        let loss = ctc_loss(log_softmax(x.clone(), 2), ids, &[4], &[3], 0);
        assert_eq!(loss.to_data().to_vec::<f32>().unwrap(), vec![0.0]);
        let grads = loss.sum().backward();
        let g = x.grad(&grads).unwrap().to_data().to_vec::<f32>().unwrap();
        assert!(g.iter().all(|&v| v == 0.0), "{g:?}");
    }
}
