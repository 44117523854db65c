//! Adam (Kingma & Ba, 2015) with burn's update rule and state, and on the CPU backend one pass
//! per parameter tensor.
//!
//! burn's `Adam` step is a dozen tensor operations per parameter (the two moments, the bias
//! corrections, the square root, the division, the product with the learning rate and the
//! subtraction), each a pass over the parameter with its own buffer: at the paper's 70.8 M
//! parameters that was 4.7 % of an update. On burn-flex each parameter is updated in one pass
//! over its elements, on all cores, with burn's arithmetic:
//!
//! `m ← β₁ m + (1 − β₁) g`, `v ← β₂ v + (1 − β₂) g²`,
//! `θ ← θ − lr · m · c / (√v + ε √(1 − β₂ᵗ))` with `c = √(1 − β₂ᵗ) / (1 − β₁ᵗ)`
//! (and `g ← g + λ θ` first when weight decay is set). The state is burn's `AdamState`, so
//! checkpoints and exact resumption are unchanged; other backends take burn's `Adam` itself.

use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{
    Adam, AdamConfig, AdamState, AdaptiveMomentumState, LearningRate, SimpleOptimizer,
};
use burn::prelude::*;
use burn::tensor::DType;
use rayon::prelude::*;

/// Adam's hyper-parameters, as `AdamConfig`.
#[derive(Clone)]
pub struct FusedAdam {
    beta_1: f32,
    beta_2: f32,
    epsilon: f32,
    weight_decay: Option<f32>,
    /// burn's own optimizer, for backends other than the CPU and for non-f32 tensors.
    burn: Adam,
}

impl FusedAdam {
    /// Adam with the given betas, epsilon and (when positive) L2 weight decay.
    pub fn new(beta_1: f32, beta_2: f32, epsilon: f32, weight_decay: f32) -> Self {
        let weight_decay = (weight_decay > 0.0).then_some(weight_decay);
        let config = AdamConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(weight_decay.map(WeightDecayConfig::new));
        Self {
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
            burn: config.build(),
        }
    }

    /// The optimizer over a module's parameters.
    pub fn init<B: burn::tensor::backend::AutodiffBackend, M: burn::module::AutodiffModule<B>>(
        self,
    ) -> OptimizerAdaptor<Self, M, B> {
        OptimizerAdaptor::from(self)
    }
}

/// Elements per task of the parallel pass.
const CHUNK: usize = 1 << 14;

impl<B: Backend> SimpleOptimizer<B> for FusedAdam {
    type State<const D: usize> = AdamState<B, D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<B, D>,
        grad: Tensor<B, D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<B, D>, Option<Self::State<D>>) {
        let f32s = |t: &Tensor<B, D>| t.dtype() == DType::F32;
        let all_f32 = f32s(&tensor)
            && f32s(&grad)
            && state
                .as_ref()
                .is_none_or(|s| f32s(&s.momentum.moment_1) && f32s(&s.momentum.moment_2));
        if !mtla::cpu::on_cpu::<B>() || !all_f32 {
            return self.burn.step(lr, tensor, grad, state);
        }
        let device = tensor.device();
        let shape = tensor.shape();
        let values = |t: Tensor<B, D>| t.into_data().into_vec::<f32>().expect("f32 checked above");
        let mut theta = values(tensor);
        let g = values(grad);
        // No state yet: moments of zero give burn's first step bit for bit (`0 · β + x = x`).
        let (time, mut m, mut v) = match state {
            Some(s) => (
                s.momentum.time + 1,
                values(s.momentum.moment_1),
                values(s.momentum.moment_2),
            ),
            None => (1, vec![0.0; g.len()], vec![0.0; g.len()]),
        };
        let (b1, b2, eps, lr) = (self.beta_1, self.beta_2, self.epsilon, lr as f32);
        let correction_2 = (1.0 - b2.powi(time as i32)).sqrt();
        let factor = correction_2 / (1.0 - b1.powi(time as i32));
        let eps = eps * correction_2;
        // In place: each element's parameter and moments are read once and overwritten.
        theta
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .zip(v.par_chunks_mut(CHUNK))
            .zip(g.par_chunks(CHUNK))
            .for_each(|(((theta_c, m_c), v_c), g_c)| {
                for (((theta_i, m_i), v_i), &g_i) in theta_c.iter_mut().zip(m_c).zip(v_c).zip(g_c) {
                    let g_i = match self.weight_decay {
                        Some(penalty) => g_i + *theta_i * penalty,
                        None => g_i,
                    };
                    *m_i = *m_i * b1 + g_i * (1.0 - b1);
                    *v_i = *v_i * b2 + g_i * g_i * (1.0 - b2);
                    *theta_i -= (*m_i * factor / (v_i.sqrt() + eps)) * lr;
                }
            });
        let tensor_of =
            |v: Vec<f32>| Tensor::<B, D>::from_data(TensorData::new(v, shape.clone()), &device);
        let momentum = AdaptiveMomentumState::new(time, tensor_of(m), tensor_of(v));
        (tensor_of(theta), Some(AdamState::new(momentum)))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &B::Device) -> Self::State<D> {
        <Adam as SimpleOptimizer<B>>::to_device(state, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    type B = Flex;

    fn tensor(values: &[f32]) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(values.to_vec(), [2, values.len() / 2]),
            &Default::default(),
        )
    }

    /// Three steps (the first without state), with and without weight decay, against burn's Adam.
    #[test]
    fn cpu_pass_matches_burn_adam() {
        let n = 2 * CHUNK + 6; // several parallel chunks and a ragged last one
        let theta: Vec<f32> = (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 40.0)
            .collect();
        for decay in [0.0, 0.01] {
            let ours = FusedAdam::new(0.9, 0.98, 1e-8, decay);
            let theirs = ours.burn.clone();
            let (mut a, mut b) = (tensor(&theta), tensor(&theta));
            let (mut sa, mut sb) = (None, None);
            for step in 0..3 {
                let g: Vec<f32> = (0..n)
                    .map(|i| (((i + step) * 53 % 97) as f32 - 48.0) / 30.0)
                    .collect();
                (a, sa) = SimpleOptimizer::<B>::step(&ours, 2e-3, a, tensor(&g), sa);
                (b, sb) = SimpleOptimizer::<B>::step(&theirs, 2e-3, b, tensor(&g), sb);
                let (ma, mb) = (sa.as_ref().unwrap(), sb.as_ref().unwrap());
                assert_eq!(ma.momentum.time, mb.momentum.time);
                for (x, y) in [
                    (a.clone(), b.clone()),
                    (ma.momentum.moment_1.clone(), mb.momentum.moment_1.clone()),
                    (ma.momentum.moment_2.clone(), mb.momentum.moment_2.clone()),
                ] {
                    let diff = (x - y).abs().max().into_scalar();
                    assert!(
                        diff <= 1e-6,
                        "decay {decay}, step {step}: max difference {diff}"
                    );
                }
            }
            // The parameters moved: the comparison above is not between two unchanged tensors.
            let moved = (a - tensor(&theta)).abs().max().into_scalar();
            assert!(moved > 1e-3, "moved {moved}");
        }
    }
}
