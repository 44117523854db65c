//! fairseq's `label_smoothed_cross_entropy`: with `eps_i = eps / (V - 1)`,
//! `loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v)`, summed over non-padding targets,
//! in f32 whatever the model's precision (fairseq's `log_softmax(logits.float())`).
//!
//! On the CPU backend the loss is one graph node: one pass per target position computes its
//! log-normaliser `lse = log sum_v e^{z_v}`, `nll = lse - z_t`, `sum_v(-log p_v) = V lse - sum_v z_v`
//! and the argmax, and the backward pass writes the gradient of the logits directly:
//! `dloss/dz_v = p_v - eps_i - (1 - eps - eps_i) [v = t]` (the `p_v` terms' weights,
//! `(1 - eps - eps_i) + V eps_i`, sum to 1). burn's ops instead make a log-softmax, a gather, a sum
//! and an argmax over `[tokens, V]`, each a graph node with its own buffer. Other backends (and
//! logits in another dtype than f32) take burn's ops.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::{DType, FloatDType, TensorData};
use mtla::cpu::{back, backprop, cast, on_cpu, AdPrimitive};
use mtla::rows;
use rayon::prelude::*;

/// Summed losses of a batch, as tensors (no host sync).
#[derive(Debug, Clone)]
pub struct LossSums<B: Backend> {
    /// Label-smoothed loss summed over target tokens, `[1]`.
    pub loss: Tensor<B, 1>,
    /// Negative log-likelihood summed over target tokens, `[1]`.
    pub nll: Tensor<B, 1>,
    /// Correctly predicted (argmax) target tokens, `[1]`.
    pub correct: Tensor<B, 1, Int>,
}

/// Label-smoothed cross entropy of `logits` `[batch, S, V]` against `targets` `[batch, S]`,
/// ignoring positions whose target is `pad`.
pub fn label_smoothed_nll<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    pad: u32,
    epsilon: f64,
) -> LossSums<B> {
    match cpu_label_smoothed_nll(&logits, &targets, pad, epsilon) {
        Some(sums) => sums,
        None => burn_label_smoothed_nll(logits, targets, pad, epsilon),
    }
}

/// The loss by burn's tensor ops (any backend).
fn burn_label_smoothed_nll<B: Backend>(
    logits: Tensor<B, 3>,
    targets: Tensor<B, 2, Int>,
    pad: u32,
    epsilon: f64,
) -> LossSums<B> {
    let [b, s, v] = logits.dims();
    let lprobs = log_softmax(logits.cast(FloatDType::F32), 2);
    let keep = targets
        .clone()
        .not_equal_elem(pad as i64)
        .float()
        .cast(FloatDType::F32);
    let nll = -lprobs
        .clone()
        .gather(2, targets.clone().reshape([b, s, 1]))
        .reshape([b, s])
        * keep.clone();
    let smooth = -lprobs.clone().sum_dim(2).reshape([b, s]) * keep.clone();
    let eps_i = epsilon / (v as f64 - 1.0);
    let nll_sum = nll.sum();
    let loss = nll_sum.clone().mul_scalar(1.0 - epsilon - eps_i) + smooth.sum().mul_scalar(eps_i);
    let predicted = lprobs.argmax(2).reshape([b, s]);
    let correct = predicted.equal(targets).int() * keep.int();
    LossSums {
        loss,
        nll: nll_sum,
        correct: correct.sum(),
    }
}

/// The loss as one node on the CPU backend; `None` elsewhere, for non-f32 logits or targets
/// outside the vocabulary.
fn cpu_label_smoothed_nll<B: Backend>(
    logits: &Tensor<B, 3>,
    targets: &Tensor<B, 2, Int>,
    pad: u32,
    epsilon: f64,
) -> Option<LossSums<B>> {
    if !on_cpu::<B>() {
        return None;
    }
    let [_, _, vocab] = logits.dims();
    let targets: Vec<i64> = targets.to_data().iter::<i64>().collect();
    if targets.iter().any(|&t| t < 0 || t as usize >= vocab) {
        return None;
    }
    let targets: Vec<Option<usize>> = targets
        .into_iter()
        .map(|t| (t != pad as i64).then_some(t as usize))
        .collect();
    let device = logits.device();
    let (loss, totals) = match cast::<_, AdPrimitive>(logits.clone().into_primitive().tensor()) {
        Ok(ad) => {
            let (loss, smoothed, totals) = Smoothed::forward(&ad.primitive, targets, epsilon)?;
            let out: AdPrimitive = match SmoothedGrad
                .prepare::<NoCheckpointing>([ad.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(smoothed, loss),
                OpsKind::UnTracked(prep) => prep.finish(loss),
            };
            (back(out), totals)
        }
        Err(primitive) => {
            let flex = cast::<_, FlexTensor>(primitive).ok()?;
            let (loss, _, totals) = Smoothed::forward(&flex, targets, epsilon)?;
            (back(loss), totals)
        }
    };
    Some(LossSums {
        loss,
        nll: Tensor::from_floats([totals.nll as f32], &device),
        correct: Tensor::from_ints([totals.correct as i64], &device),
    })
}

/// The batch's summed negative log-likelihood and correct argmax predictions.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    nll: f64,
    correct: usize,
}

/// What the backward pass needs: the logits, each position's target (`None`: padding) and
/// log-normaliser, and the loss's weights `eps_i` and `1 - eps - eps_i` (of the target's term).
#[derive(Clone, Debug)]
struct Smoothed {
    logits: FlexTensor,
    targets: Arc<Vec<Option<usize>>>,
    lse: Arc<Vec<f32>>,
    eps_i: f32,
    on_target: f32,
}

impl Smoothed {
    /// The summed loss `[1]`, the saved state and the totals (module doc).
    fn forward(
        logits: &FlexTensor,
        targets: Vec<Option<usize>>,
        epsilon: f64,
    ) -> Option<(FlexTensor, Self, Totals)> {
        if logits.dtype() != DType::F32 {
            return None;
        }
        let logits = logits.to_contiguous();
        let vocab = *logits.layout().shape().dims::<3>().last()?;
        let eps_i = epsilon / (vocab as f64 - 1.0);
        let rows: Vec<(f32, f64, f64, bool)> = logits
            .storage::<f32>()
            .par_chunks(vocab)
            .zip(targets.par_iter())
            .map(|(z, target)| {
                let Some(t) = *target else {
                    return (0.0, 0.0, 0.0, false);
                };
                let (mut max, mut argmax) = (f32::NEG_INFINITY, 0);
                for (v, &x) in z.iter().enumerate() {
                    if x > max {
                        (max, argmax) = (x, v);
                    }
                }
                let lse = max + rows::exp_sum_of(z, max).ln();
                let z_sum = rows::sum(z);
                let nll = (lse - z[t]) as f64;
                let smooth = (vocab as f32 * lse - z_sum) as f64;
                (lse, nll, smooth, argmax == t)
            })
            .collect();
        let mut totals = Totals::default();
        let mut smooth = 0.0;
        for &(_, nll, s, correct) in &rows {
            totals.nll += nll;
            smooth += s;
            totals.correct += correct as usize;
        }
        let loss = (1.0 - epsilon - eps_i) * totals.nll + eps_i * smooth;
        let loss = FlexTensor::from_data(TensorData::new(vec![loss as f32], [1]));
        let state = Self {
            logits,
            targets: Arc::new(targets),
            lse: Arc::new(rows.into_iter().map(|(lse, ..)| lse).collect()),
            eps_i: eps_i as f32,
            on_target: (1.0 - epsilon - eps_i) as f32,
        };
        Some((loss, state, totals))
    }

    /// The gradient of the logits from the loss's gradient `d_loss` `[1]`.
    fn backward(&self, d_loss: FlexTensor) -> [FlexTensor; 1] {
        let d = d_loss.to_contiguous().storage::<f32>()[0];
        let shape = self.logits.layout().shape().clone();
        let vocab = shape[2];
        let mut grad = vec![0.0f32; self.logits.storage::<f32>().len()];
        grad.par_chunks_mut(vocab)
            .zip(self.logits.storage::<f32>().par_chunks(vocab))
            .zip(self.targets.par_iter().zip(self.lse.par_iter()))
            .for_each(|((g, z), (target, &lse))| {
                if let Some(t) = *target {
                    g.copy_from_slice(z);
                    rows::exp_sum(g, lse);
                    g.iter_mut().for_each(|g| *g = d * (*g - self.eps_i));
                    g[t] -= d * self.on_target;
                }
            });
        [FlexTensor::from_data(TensorData::new(grad, shape))]
    }
}

/// The loss's graph node, with the logits as its parent.
#[derive(Debug)]
struct SmoothedGrad;

impl Backward<Flex, 1> for SmoothedGrad {
    type State = Smoothed;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        backprop(ops, grads, |state, d_loss| state.backward(d_loss));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    use burn::tensor::{Distribution, Tolerance};
    use mtla::cpu::AdFlex;

    /// Targets of 3 rows x 5 positions over a vocabulary of 7; pad 1 marks padding, and two of
    /// the logits' rows below tie at their maximum.
    fn targets<B: Backend>(device: &B::Device) -> Tensor<B, 2, Int> {
        Tensor::from_ints([[2, 6, 0, 3, 1], [4, 4, 1, 1, 1], [5, 0, 2, 6, 3]], device)
    }

    /// The one-node loss equals burn's ops in loss, nll, correct count and the logits' gradient.
    #[test]
    fn cpu_node_matches_burn_ops_in_value_and_gradient() {
        let device = Default::default();
        let mut data =
            Tensor::<AdFlex, 3>::random([3, 5, 7], Distribution::Normal(0.0, 3.0), &device)
                .into_data()
                .to_vec::<f32>()
                .unwrap();
        // A tie (first index wins in both) and a correct prediction.
        data[0..7].copy_from_slice(&[0.0, 1.0, 5.0, 5.0, -1.0, 0.0, 2.0]);
        let data = TensorData::new(data, [3, 5, 7]);
        let leaf = || Tensor::<AdFlex, 3>::from_data(data.clone(), &device).require_grad();
        let (x_ours, x_burn) = (leaf(), leaf());
        let ours = cpu_label_smoothed_nll(&x_ours, &targets(&device), 1, 0.1).unwrap();
        let burns = burn_label_smoothed_nll(x_burn.clone(), targets(&device), 1, 0.1);
        let tolerance = Tolerance::absolute(1e-4);
        for (a, b) in [(&ours.loss, &burns.loss), (&ours.nll, &burns.nll)] {
            a.to_data().assert_approx_eq::<f32>(&b.to_data(), tolerance);
        }
        assert_eq!(
            ours.correct.into_scalar() as i64,
            burns.correct.into_scalar() as i64
        );
        let g_ours = ours.loss.mul_scalar(2.5).backward();
        let g_burn = burns.loss.mul_scalar(2.5).backward();
        let grad = |x: &Tensor<AdFlex, 3>, g| x.grad(g).unwrap().to_data();
        grad(&x_ours, &g_ours).assert_approx_eq::<f32>(&grad(&x_burn, &g_burn), tolerance);
    }

    /// Without autodiff (validation) the same sums come out.
    #[test]
    fn inference_backend_matches_burn_ops() {
        let device = Default::default();
        let x = Tensor::<B, 3>::random([3, 5, 7], Distribution::Normal(0.0, 3.0), &device);
        let ours = cpu_label_smoothed_nll(&x, &targets(&device), 1, 0.2).unwrap();
        let burns = burn_label_smoothed_nll(x, targets(&device), 1, 0.2);
        for (a, b) in [(ours.loss, burns.loss), (ours.nll, burns.nll)] {
            a.to_data()
                .assert_approx_eq::<f32>(&b.to_data(), Tolerance::absolute(1e-4));
        }
        assert_eq!(
            ours.correct.into_scalar() as i64,
            burns.correct.into_scalar() as i64
        );
    }

    #[test]
    fn matches_the_formula_and_ignores_padding() {
        let device = Default::default();
        let logits = Tensor::<B, 3>::from_floats([[[1.0, 2.0, 0.5], [0.0, 0.0, 3.0]]], &device);
        let targets = Tensor::<B, 2, Int>::from_ints([[1, 0]], &device);
        // Position 1 is padding (pad = 0).
        let sums = label_smoothed_nll(logits, targets, 0, 0.1);
        let lp: Vec<f64> = {
            let z = [1.0f64, 2.0, 0.5];
            let m = z.iter().map(|x| x.exp()).sum::<f64>().ln();
            z.iter().map(|x| x - m).collect()
        };
        let (nll, smooth) = (-lp[1], -lp.iter().sum::<f64>());
        let want = (1.0 - 0.1 - 0.05) * nll + 0.05 * smooth;
        let got: f32 = sums.loss.into_scalar();
        assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        let got_nll: f32 = sums.nll.into_scalar();
        assert!((got_nll as f64 - nll).abs() < 1e-5);
        assert_eq!(sums.correct.into_scalar() as i64, 1);
    }
}
