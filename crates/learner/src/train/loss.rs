//! fairseq's `label_smoothed_cross_entropy`: with `eps_i = eps / (V - 1)`,
//! `loss = (1 - eps - eps_i) * nll + eps_i * sum_v(-log p_v)`, summed over non-padding targets,
//! in f32 whatever the model's precision (fairseq's `log_softmax(logits.float())`).

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::FloatDType;

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

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

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
