//! Layer normalisation (Ba et al., 2016) over the last axis,
//! `y = (x − μ) / sqrt(σ² + ε) · γ + β`, as one graph node on the CPU training backend.
//!
//! Under autodiff burn 0.21 has no layer-norm op: `LayerNorm::forward` becomes a mean, a
//! variance, and a broadcast subtraction, division, product and sum, each a node that allocates
//! an input-sized tensor, most running on one core, and each walked again backward. Here the
//! forward is one pass per row that keeps `x̂ = (x − μ) / σ` and `1 / σ`, and the backward is
//! one more (`g = dy ⊙ γ`):
//!
//! `dx = (g − mean(g) − x̂ · mean(g ⊙ x̂)) / σ`, `dγ = Σ_rows dy ⊙ x̂`, `dβ = Σ_rows dy`.
//!
//! Without autodiff, other backends, other dtypes or a LayerNorm without `β` take
//! `LayerNorm::forward` (the CPU backend's inference op is already fused).

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use rayon::prelude::*;

use crate::cpu::{add_pairs, back, backprop, cast, values, AdPrimitive};

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 32;

/// `norm.forward(x)`, as one graph node when training on the CPU (see the module doc).
///
/// `LayerNorm` keeps its `ε` private; every LayerNorm of this workspace is built from
/// `LayerNormConfig::new(d)`, whose default `ε` the fused node uses.
pub fn layer_norm<B: Backend, const D: usize>(
    norm: &LayerNorm<B>,
    x: Tensor<B, D>,
) -> Tensor<B, D> {
    match cpu_layer_norm(norm, &x) {
        Some(y) => y,
        None => norm.forward(x),
    }
}

fn cpu_layer_norm<B: Backend, const D: usize>(
    norm: &LayerNorm<B>,
    x: &Tensor<B, D>,
) -> Option<Tensor<B, D>> {
    let ad = |p: B::FloatTensorPrimitive| cast::<_, AdPrimitive>(p).ok();
    let xa = ad(x.clone().into_primitive().tensor())?;
    let ga = ad(norm.gamma.val().into_primitive().tensor())?;
    let ba = ad(norm.beta.as_ref()?.val().into_primitive().tensor())?;
    let (y, saved) = Normalized::forward(&xa.primitive, &ga.primitive, &ba.primitive)?;
    let out: AdPrimitive = match LayerNormGrad
        .prepare::<NoCheckpointing>([xa.node.clone(), ga.node.clone(), ba.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(saved, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(back(out))
}

/// The `ε` of every LayerNorm of this workspace: `LayerNorm` keeps its own private, and all are
/// built from `LayerNormConfig::new(d)`.
pub(crate) fn epsilon() -> f32 {
    LayerNormConfig::new(1).epsilon as f32
}

/// A row's mean `μ` and inverse deviation `1 / sqrt(σ² + ε)`.
pub(crate) fn moments(x: &[f32], epsilon: f32) -> (f32, f32) {
    let d = x.len();
    let mean = lane_sum(x, x, |x, _| x) / d as f32;
    let var = lane_sum(x, x, |x, _| (x - mean) * (x - mean)) / d as f32;
    (mean, 1.0 / (var + epsilon).sqrt())
}

/// `Σ_c f(a_c, b_c)` over two rows of one length, in [`LANES`] interleaved partial sums, which
/// the compiler keeps in vector registers (one running sum would be a chain of dependent scalar
/// additions). Whole lanes are walked as fixed-size chunks: no bounds checks, so the loop
/// vectorises.
fn lane_sum(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let (a_lanes, b_lanes) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_lanes
        .remainder()
        .iter()
        .zip(b_lanes.remainder())
        .map(|(&a, &b)| f(a, b))
        .sum();
    for (a, b) in a_lanes.zip(b_lanes) {
        for ((lane, &a), &b) in lanes.iter_mut().zip(a).zip(b) {
            *lane += f(a, b);
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// Partial sums of [`lane_sum`]: one AVX-512 register of f32.
const LANES: usize = 16;

/// What the backward pass needs: `x̂` `[rows, d]`, `1 / σ` per row, `γ` and the input's shape.
#[derive(Clone, Debug)]
struct Normalized {
    x_hat: Arc<Vec<f32>>,
    inv_std: Arc<Vec<f32>>,
    gamma: Arc<Vec<f32>>,
    shape: Shape,
}

impl Normalized {
    /// `y = x̂ γ + β` and the saved state.
    fn forward(
        x: &FlexTensor,
        gamma: &FlexTensor,
        beta: &FlexTensor,
    ) -> Option<(FlexTensor, Self)> {
        if x.dtype() != DType::F32 {
            return None;
        }
        let shape = x.layout().shape().clone();
        let d = shape[shape.num_dims() - 1];
        let (gamma, beta) = (values(gamma)?, values(beta)?);
        if d == 0 || gamma.len() != d || beta.len() != d {
            return None;
        }
        let x = x.to_contiguous();
        let xs: &[f32] = x.storage();
        let rows = xs.len() / d;
        let epsilon = epsilon();
        let mut x_hat = vec![0.0f32; rows * d];
        let mut inv_std = vec![0.0f32; rows];
        let mut y = vec![0.0f32; rows * d];
        x_hat
            .par_chunks_mut(ROWS_PER_TASK * d)
            .zip(y.par_chunks_mut(ROWS_PER_TASK * d))
            .zip(inv_std.par_chunks_mut(ROWS_PER_TASK))
            .zip(xs.par_chunks(ROWS_PER_TASK * d))
            .for_each(|(((x_hat, y), inv_std), x)| {
                for (((x_hat, y), inv), x) in x_hat
                    .chunks_mut(d)
                    .zip(y.chunks_mut(d))
                    .zip(inv_std.iter_mut())
                    .zip(x.chunks(d))
                {
                    let mean;
                    (mean, *inv) = moments(x, epsilon);
                    let rows = x_hat.iter_mut().zip(y.iter_mut()).zip(x);
                    for (((x_hat, y), &x), (&g, &b)) in rows.zip(gamma.iter().zip(&beta)) {
                        *x_hat = (x - mean) * *inv;
                        *y = *x_hat * g + b;
                    }
                }
            });
        let y = FlexTensor::from_data(TensorData::new(y, shape.clone()));
        Some((
            y,
            Self {
                x_hat: Arc::new(x_hat),
                inv_std: Arc::new(inv_std),
                gamma: Arc::new(gamma),
                shape,
            },
        ))
    }

    /// Gradients of `x`, `γ` and `β` from the output's gradient `dy`.
    fn backward(&self, dy: FlexTensor) -> [FlexTensor; 3] {
        let d = self.gamma.len();
        let dy = dy.to_contiguous();
        let dys: &[f32] = dy.storage();
        let mut dx = vec![0.0f32; dys.len()];
        let (d_gamma, d_beta) = dx
            .par_chunks_mut(ROWS_PER_TASK * d)
            .zip(dys.par_chunks(ROWS_PER_TASK * d))
            .zip(self.x_hat.par_chunks(ROWS_PER_TASK * d))
            .zip(self.inv_std.par_chunks(ROWS_PER_TASK))
            .map(|(((dx, dy), x_hat), inv_std)| {
                let (mut d_gamma, mut d_beta) = (vec![0.0f32; d], vec![0.0f32; d]);
                let mut g = vec![0.0f32; d];
                for (((dx, dy), x_hat), inv) in dx
                    .chunks_mut(d)
                    .zip(dy.chunks(d))
                    .zip(x_hat.chunks(d))
                    .zip(inv_std)
                {
                    for ((g, &dy), &gamma) in g.iter_mut().zip(dy).zip(self.gamma.iter()) {
                        *g = dy * gamma;
                    }
                    let mean_g = lane_sum(&g, &g, |g, _| g) / d as f32;
                    let mean_gx = lane_sum(&g, x_hat, |g, x_hat| g * x_hat) / d as f32;
                    let sums = d_gamma.iter_mut().zip(d_beta.iter_mut());
                    for ((d_gamma, d_beta), (&dy, &x_hat)) in sums.zip(dy.iter().zip(x_hat)) {
                        *d_gamma += dy * x_hat;
                        *d_beta += dy;
                    }
                    for ((dx, &g), &x_hat) in dx.iter_mut().zip(&g).zip(x_hat) {
                        *dx = (g - mean_g - x_hat * mean_gx) * inv;
                    }
                }
                (d_gamma, d_beta)
            })
            .reduce(|| (vec![0.0f32; d], vec![0.0f32; d]), add_pairs);
        let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [d]));
        [
            FlexTensor::from_data(TensorData::new(dx, self.shape.clone())),
            vector(d_gamma),
            vector(d_beta),
        ]
    }
}

/// The normalisation's graph node, with parents `x`, `γ`, `β`.
#[derive(Debug)]
struct LayerNormGrad;

impl Backward<Flex, 3> for LayerNormGrad {
    type State = Normalized;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backprop(ops, grads, |state, dy| state.backward(dy));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::AdFlex;
    use burn::tensor::{Distribution, Tolerance};

    /// Values and the gradients of the input, `γ` and `β` equal burn's `LayerNorm::forward`,
    /// on a strided input (a transposed view) with non-trivial `γ`, `β`.
    #[test]
    fn matches_burn_layer_norm_in_value_and_gradient() {
        let device = Default::default();
        let normal = Distribution::Normal(0.5, 2.0);
        let mut norm = LayerNormConfig::new(12).init::<AdFlex>(&device);
        norm.gamma = norm.gamma.map(|g| g.random_like(normal).require_grad());
        norm.beta = norm
            .beta
            .map(|b| b.map(|b| b.random_like(normal).require_grad()));
        let data = Tensor::<AdFlex, 3>::random([5, 12, 37], normal, &device).into_data();
        let leaf = || Tensor::<AdFlex, 3>::from_data(data.clone(), &device).require_grad();
        let (x_ours, x_burn) = (leaf(), leaf());
        let probe = Tensor::<AdFlex, 3>::random([5, 37, 12], normal, &device);
        let ours = layer_norm(&norm, x_ours.clone().swap_dims(1, 2));
        assert!(cpu_layer_norm(&norm, &x_ours.clone().swap_dims(1, 2)).is_some());
        let burns = norm.forward(x_burn.clone().swap_dims(1, 2));
        let tolerance = Tolerance::absolute(1e-4);
        ours.to_data()
            .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
        let g_ours = (ours * probe.clone()).sum().backward();
        let g_burn = (burns * probe).sum().backward();
        let grad = |t: &Tensor<AdFlex, 1>, g| t.grad(g).unwrap().to_data();
        x_ours
            .grad(&g_ours)
            .unwrap()
            .to_data()
            .assert_approx_eq::<f32>(&x_burn.grad(&g_burn).unwrap().to_data(), tolerance);
        let (gamma, beta) = (norm.gamma.val(), norm.beta.as_ref().unwrap().val());
        grad(&gamma, &g_ours).assert_approx_eq::<f32>(&grad(&gamma, &g_burn), tolerance);
        grad(&beta, &g_ours).assert_approx_eq::<f32>(&grad(&beta, &g_burn), tolerance);
    }
}
