//! Gradient clipping on the *global* norm (fairseq `--clip-norm`, torch `clip_grad_norm_`):
//! every gradient is scaled by `min(1, max_norm / (||g||_2 + 1e-6))` with `||g||` over all
//! parameters together. (Burn's built-in clipping works per tensor.) Under f16 loss scaling
//! the same pass first divides by the loss scale; squares are summed in f32 whatever the
//! gradients' precision, so a half-precision norm cannot overflow.

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::FloatDType;

/// Collects the ids and ranks of a module's float parameters.
struct ParamIds(Vec<(ParamId, usize)>);

impl<B: Backend> ModuleVisitor<B> for ParamIds {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        self.0.push((param.id, D));
    }
}

fn for_rank<B: Backend, R>(
    rank: usize,
    grads: &GradientsParams,
    id: ParamId,
    f: impl Fn(Tensor<B, 1>) -> R,
) -> Option<R> {
    match rank {
        1 => grads.get::<B, 1>(id).map(f),
        2 => grads.get::<B, 2>(id).map(|g| f(g.flatten(0, 1))),
        3 => grads.get::<B, 3>(id).map(|g| f(g.flatten(0, 2))),
        4 => grads.get::<B, 4>(id).map(|g| f(g.flatten(0, 3))),
        _ => None,
    }
}

fn scale_rank<B: Backend>(rank: usize, grads: &mut GradientsParams, id: ParamId, scale: f64) {
    fn go<B: Backend, const D: usize>(grads: &mut GradientsParams, id: ParamId, scale: f64) {
        if let Some(g) = grads.remove::<B, D>(id) {
            grads.register::<B, D>(id, g.mul_scalar(scale));
        }
    }
    match rank {
        1 => go::<B, 1>(grads, id, scale),
        2 => go::<B, 2>(grads, id, scale),
        3 => go::<B, 3>(grads, id, scale),
        4 => go::<B, 4>(grads, id, scale),
        _ => {}
    }
}

/// The global L2 norm of `grads` (the gradients of `model`'s parameters).
pub fn global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &GradientsParams,
) -> f64 {
    let mut ids = ParamIds(Vec::new());
    model.visit(&mut ids);
    let squares: Vec<Tensor<B::InnerBackend, 1>> = ids
        .0
        .iter()
        .filter_map(|&(id, rank)| {
            for_rank::<B::InnerBackend, _>(rank, grads, id, |g| {
                g.cast(FloatDType::F32).powi_scalar(2).sum()
            })
        })
        .collect();
    if squares.is_empty() {
        return 0.0;
    }
    let total: f32 = Tensor::cat(squares, 0).sum().into_scalar().elem();
    (total as f64).sqrt()
}

/// Divides `grads` by `loss_scale` (1 unless f16 training scales its loss) and clips them to a
/// global norm of at most `max_norm`, in one pass; returns the norm before clipping (of the
/// unscaled gradients). `max_norm <= 0` does not clip. A non-finite norm (an f16
/// overflow) leaves `grads` as they are.
pub fn clip_global_norm<B: AutodiffBackend, M: AutodiffModule<B>>(
    model: &M,
    grads: &mut GradientsParams,
    max_norm: f64,
    loss_scale: f64,
) -> f64 {
    let norm = global_norm::<B, M>(model, grads) / loss_scale;
    let clip = if max_norm > 0.0 && norm > max_norm {
        max_norm / (norm + 1e-6)
    } else {
        1.0
    };
    if norm.is_finite() && (clip != 1.0 || loss_scale != 1.0) {
        let scale = clip / loss_scale;
        let mut ids = ParamIds(Vec::new());
        model.visit(&mut ids);
        for (id, rank) in ids.0 {
            scale_rank::<B::InnerBackend>(rank, grads, id, scale);
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Autodiff;
    use burn::nn::{Linear, LinearConfig};
    type B = Autodiff<burn::backend::Flex>;

    #[test]
    fn clips_all_parameters_together() {
        let device = Default::default();
        let model: Linear<B> = LinearConfig::new(3, 2).init(&device);
        let x = Tensor::<B, 2>::from_floats([[10.0, -20.0, 30.0]], &device);
        let loss = model.forward(x).sum().mul_scalar(100.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        let before = global_norm::<B, _>(&model, &grads);
        // d/dW = 100 x (per output), d/db = 100: norm = 100 * sqrt(2 * (100+400+900) + 2).
        let want = 100.0 * (2.0f64 * 1400.0 + 2.0).sqrt();
        assert!((before - want).abs() / want < 1e-5, "{before} vs {want}");
        let reported = clip_global_norm::<B, _>(&model, &mut grads, 1.0, 1.0);
        assert!((reported - want).abs() / want < 1e-5);
        let after = global_norm::<B, _>(&model, &grads);
        assert!((after - 1.0).abs() < 1e-4, "{after}");
    }

    #[test]
    fn unscales_the_loss_scale_and_reports_the_true_norm() {
        let device = Default::default();
        let model: Linear<B> = LinearConfig::new(3, 2).init(&device);
        let x = Tensor::<B, 2>::from_floats([[1.0, -2.0, 2.0]], &device);
        // The loss scaled by 128, as f16 training does: gradients 128x, reported norm true.
        let loss = model.forward(x).sum().mul_scalar(128.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        // d/dW = x (per output), d/db = 1: norm = sqrt(2 * 9 + 2).
        let want = 20.0f64.sqrt();
        let reported = clip_global_norm::<B, _>(&model, &mut grads, 0.0, 128.0);
        assert!(
            (reported - want).abs() / want < 1e-5,
            "{reported} vs {want}"
        );
        let after = global_norm::<B, _>(&model, &grads);
        assert!((after - want).abs() / want < 1e-5, "{after}");
        // Clipping on top of unscaling, in the same pass.
        let loss = model
            .forward(Tensor::<B, 2>::from_floats([[1.0, -2.0, 2.0]], &device))
            .sum()
            .mul_scalar(128.0);
        let mut grads = GradientsParams::from_grads(loss.backward(), &model);
        clip_global_norm::<B, _>(&model, &mut grads, 1.0, 128.0);
        let after = global_norm::<B, _>(&model, &grads);
        assert!((after - 1.0).abs() < 1e-4, "{after}");
    }
}
