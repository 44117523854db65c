//! The depthwise convolution over time of the Conformer convolution module
//! ([`crate::conv_module`]), time-major, zero-padded to keep the length:
//!
//! `y_{t,c} = b_c + Σ_{j<k} w_{j,c} · x_{t+j-p, c}`, `p = k / 2`, `x` zero outside `0..T`.
//!
//! With burn's ops it is one shifted slice, one product and one sum per tap, each an
//! activation-sized tensor and a graph node (and a zero-filled padded gradient per slice on the
//! way back). On the CPU backend it is one node: the forward is one pass over the output, and
//! the backward one pass for each of
//!
//! `dx_{s,c} = Σ_j w_{j,c} · dy_{s-j+p, c}`, `dw_{j,c} = Σ_{rows, t} dy_{t,c} · x_{t+j-p, c}`,
//! `db_c = Σ_{rows, t} dy_{t,c}`,
//!
//! over utterances in parallel. Other backends and dtypes take burn's ops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::{s, DType, TensorData};
use mtla::cpu::{add_pairs, back, backprop, cast, AdPrimitive};
use rayon::prelude::*;

static FUSED: AtomicBool = AtomicBool::new(true);

/// Switches the one-node CPU path on or off for the whole process, so that a benchmark can time
/// the same module with burn's ops in the same run (`mtla-st bench conv-module`).
pub fn set_fused(on: bool) {
    FUSED.store(on, Ordering::Relaxed);
}

/// `x` `[batch, t, d]`, filters `weight` `[k, d]` (odd `k`), `bias` `[d]` -> `[batch, t, d]`.
pub fn depthwise_conv<B: Backend>(
    x: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
) -> Tensor<B, 3> {
    let fused = FUSED
        .load(Ordering::Relaxed)
        .then(|| cpu_depthwise(&x, &weight, &bias))
        .flatten();
    match fused {
        Some(y) => y,
        None => depthwise_ops(x, weight, bias),
    }
}

/// With burn's ops: one shifted slice and one broadcast product per tap.
fn depthwise_ops<B: Backend>(
    x: Tensor<B, 3>,
    weight: Tensor<B, 2>,
    bias: Tensor<B, 1>,
) -> Tensor<B, 3> {
    let [batch, t, d] = x.dims();
    let kernel = weight.dims()[0];
    let pad = kernel / 2;
    let (device, dtype) = (x.device(), x.dtype());
    let zeros = || Tensor::<B, 3>::zeros([batch, pad, d], (&device, dtype));
    let padded = Tensor::cat(vec![zeros(), x, zeros()], 1);
    (0..kernel)
        .map(|j| {
            padded.clone().slice(s![.., j..j + t, ..])
                * weight.clone().slice(s![j..j + 1, ..]).unsqueeze::<3>()
        })
        .fold(bias.reshape([1, 1, d]), |sum, tap| sum + tap)
}

/// The one-node CPU path; `None` off the CPU backend or for non-f32 tensors.
fn cpu_depthwise<B: Backend>(
    x: &Tensor<B, 3>,
    weight: &Tensor<B, 2>,
    bias: &Tensor<B, 1>,
) -> Option<Tensor<B, 3>> {
    let prim = |t: Tensor<B, 2>| t.into_primitive().tensor();
    let x_p = x.clone().into_primitive().tensor();
    match cast::<_, AdPrimitive>(x_p) {
        Ok(xa) => {
            let wa = cast::<_, AdPrimitive>(prim(weight.clone())).ok()?;
            let ba = cast::<_, AdPrimitive>(bias.clone().into_primitive().tensor()).ok()?;
            let conv = Depthwise::new(&xa.primitive, &wa.primitive, &ba.primitive)?;
            let y = conv.forward();
            let out: AdPrimitive = match DepthwiseGrad
                .prepare::<NoCheckpointing>([xa.node.clone(), wa.node.clone(), ba.node.clone()])
                .compute_bound()
                .stateful()
            {
                OpsKind::Tracked(prep) => prep.finish(conv, y),
                OpsKind::UnTracked(prep) => prep.finish(y),
            };
            Some(back(out))
        }
        Err(x_p) => {
            let x = cast::<_, FlexTensor>(x_p).ok()?;
            let w = cast::<_, FlexTensor>(prim(weight.clone())).ok()?;
            let b = cast::<_, FlexTensor>(bias.clone().into_primitive().tensor()).ok()?;
            Some(back(Depthwise::new(&x, &w, &b)?.forward()))
        }
    }
}

fn contiguous(t: &FlexTensor) -> Option<Arc<Vec<f32>>> {
    (t.dtype() == DType::F32).then(|| Arc::new(t.to_contiguous().storage::<f32>().to_vec()))
}

/// The inputs as contiguous f32, which the backward pass also needs.
#[derive(Clone, Debug)]
struct Depthwise {
    x: Arc<Vec<f32>>,
    weight: Arc<Vec<f32>>,
    bias: Arc<Vec<f32>>,
    batch: usize,
    t: usize,
    d: usize,
    kernel: usize,
}

impl Depthwise {
    fn new(x: &FlexTensor, weight: &FlexTensor, bias: &FlexTensor) -> Option<Self> {
        let (shape, w_shape) = (x.layout().shape(), weight.layout().shape());
        if shape.num_dims() != 3 || w_shape.num_dims() != 2 {
            return None;
        }
        let (batch, t, d, kernel) = (shape[0], shape[1], shape[2], w_shape[0]);
        if w_shape[1] != d || kernel % 2 == 0 || d == 0 {
            return None;
        }
        let bias = contiguous(bias)?;
        (bias.len() == d).then_some(())?;
        Some(Self {
            x: contiguous(x)?,
            weight: contiguous(weight)?,
            bias,
            batch,
            t,
            d,
            kernel,
        })
    }

    /// The output frames `o` whose tap `j` reads a frame inside `0..t` (`s = o + j - p`).
    fn outputs_of_tap(&self, j: usize) -> std::ops::Range<usize> {
        let pad = self.kernel / 2;
        pad.saturating_sub(j).min(self.t)..(self.t + pad).saturating_sub(j).min(self.t)
    }

    fn forward(&self) -> FlexTensor {
        let (t, d, pad) = (self.t, self.d, self.kernel / 2);
        let mut y = vec![0.0f32; self.batch * t * d];
        y.par_chunks_mut(t * d)
            .zip(self.x.par_chunks(t * d))
            .for_each(|(y, x)| {
                for row in y.chunks_mut(d) {
                    row.copy_from_slice(&self.bias);
                }
                for (j, w) in self.weight.chunks(d).enumerate() {
                    for o in self.outputs_of_tap(j) {
                        let src = &x[(o + j - pad) * d..][..d];
                        let dst = &mut y[o * d..][..d];
                        for ((y, &x), &w) in dst.iter_mut().zip(src).zip(w) {
                            *y += w * x;
                        }
                    }
                }
            });
        FlexTensor::from_data(TensorData::new(y, [self.batch, t, d]))
    }

    /// Gradients of `x`, `weight` and `bias` from the output's gradient `dy`.
    fn backward(&self, dy: FlexTensor) -> [FlexTensor; 3] {
        let (t, d, k, pad) = (self.t, self.d, self.kernel, self.kernel / 2);
        let dy = dy.to_contiguous();
        let dys: &[f32] = dy.storage();
        let mut dx = vec![0.0f32; dys.len()];
        let (dw, db) = dx
            .par_chunks_mut(t * d)
            .zip(dys.par_chunks(t * d))
            .zip(self.x.par_chunks(t * d))
            .map(|((dx, dy), x)| {
                let (mut dw, mut db) = (vec![0.0f32; k * d], vec![0.0f32; d]);
                for row in dy.chunks(d) {
                    db.iter_mut().zip(row).for_each(|(b, &g)| *b += g);
                }
                for (j, (w, dw)) in self.weight.chunks(d).zip(dw.chunks_mut(d)).enumerate() {
                    for o in self.outputs_of_tap(j) {
                        let s = o + j - pad;
                        let (g, xs) = (&dy[o * d..][..d], &x[s * d..][..d]);
                        let dx = &mut dx[s * d..][..d];
                        for (((dx, dw), (&g, &x)), &w) in dx
                            .iter_mut()
                            .zip(dw.iter_mut())
                            .zip(g.iter().zip(xs))
                            .zip(w)
                        {
                            *dx += w * g;
                            *dw += g * x;
                        }
                    }
                }
                (dw, db)
            })
            .reduce(|| (vec![0.0f32; k * d], vec![0.0f32; d]), add_pairs);
        [
            FlexTensor::from_data(TensorData::new(dx, [self.batch, t, d])),
            FlexTensor::from_data(TensorData::new(dw, [k, d])),
            FlexTensor::from_data(TensorData::new(db, [d])),
        ]
    }
}

/// The convolution's graph node, with parents `x`, `weight`, `bias`.
#[derive(Debug)]
struct DepthwiseGrad;

impl Backward<Flex, 3> for DepthwiseGrad {
    type State = Depthwise;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backprop(ops, grads, |state, dy| state.backward(dy));
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance};
    use mtla::cpu::AdFlex;

    use super::*;

    /// burn's grouped `conv1d` with the same filters gives the same values.
    #[test]
    fn burns_ops_are_a_grouped_convolution() {
        let device = Default::default();
        let (d, kernel) = (6, 5);
        let x = Tensor::<Flex, 3>::random([2, 9, d], Distribution::Default, &device);
        let w = Tensor::<Flex, 2>::random([kernel, d], Distribution::Default, &device);
        let b = Tensor::<Flex, 1>::random([d], Distribution::Default, &device);
        let ours = depthwise_ops(x.clone(), w.clone(), b.clone());
        let theirs = burn::tensor::module::conv1d(
            x.swap_dims(1, 2),
            w.transpose().reshape([d, 1, kernel]),
            Some(b),
            burn::tensor::ops::ConvOptions::new([1], [kernel / 2], [1], d),
        )
        .swap_dims(1, 2);
        ours.to_data()
            .assert_approx_eq::<f32>(&theirs.to_data(), Tolerance::absolute(1e-5));
    }

    /// The one-node CPU path equals burn's ops in value (with and without autodiff) and in the
    /// gradients of the input, the filters and the bias; also for utterances shorter than the
    /// kernel and on a strided (transposed) input.
    #[test]
    fn the_cpu_node_matches_burns_ops_in_value_and_gradient() {
        let device = Default::default();
        let normal = Distribution::Normal(0.0, 1.0);
        for (t, kernel) in [(11, 5), (3, 7), (1, 3)] {
            let d = 10;
            let data = Tensor::<AdFlex, 3>::random([3, d, t], normal, &device).into_data();
            let w_data = Tensor::<AdFlex, 2>::random([kernel, d], normal, &device).into_data();
            let b_data = Tensor::<AdFlex, 1>::random([d], normal, &device).into_data();
            let leaves = || {
                (
                    Tensor::<AdFlex, 3>::from_data(data.clone(), &device).require_grad(),
                    Tensor::<AdFlex, 2>::from_data(w_data.clone(), &device).require_grad(),
                    Tensor::<AdFlex, 1>::from_data(b_data.clone(), &device).require_grad(),
                )
            };
            let ((x1, w1, b1), (x2, w2, b2)) = (leaves(), leaves());
            let x_view = |x: &Tensor<AdFlex, 3>| x.clone().swap_dims(1, 2);
            assert!(cpu_depthwise(&x_view(&x1), &w1, &b1).is_some());
            let ours = depthwise_conv(x_view(&x1), w1.clone(), b1.clone());
            let burns = depthwise_ops(x_view(&x2), w2.clone(), b2.clone());
            let tolerance = Tolerance::absolute(1e-4);
            ours.to_data()
                .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
            let inference = depthwise_conv(
                Tensor::<Flex, 3>::from_data(data.clone(), &device).swap_dims(1, 2),
                Tensor::from_data(w_data.clone(), &device),
                Tensor::from_data(b_data.clone(), &device),
            );
            inference
                .to_data()
                .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
            let probe = Tensor::<AdFlex, 3>::random([3, t, d], normal, &device);
            let g1 = (ours * probe.clone()).sum().backward();
            let g2 = (burns * probe).sum().backward();
            let grad = |x: Option<Tensor<Flex, 3>>| x.unwrap().to_data();
            grad(x1.grad(&g1)).assert_approx_eq::<f32>(&grad(x2.grad(&g2)), tolerance);
            w1.grad(&g1)
                .unwrap()
                .to_data()
                .assert_approx_eq::<f32>(&w2.grad(&g2).unwrap().to_data(), tolerance);
            b1.grad(&g1)
                .unwrap()
                .to_data()
                .assert_approx_eq::<f32>(&b2.grad(&g2).unwrap().to_data(), tolerance);
        }
    }
}
