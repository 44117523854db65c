//! Which backend a generic `B` runs on, for the few places that take a CPU-specific route, and
//! the casts between a generic tensor and the CPU backend's own primitives (also for the graph
//! nodes of other crates, such as the learner's CTC loss).

use std::any::{Any, TypeId};

use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::Ops;
use burn::backend::flex::{FlexDevice, FlexTensor};
use burn::backend::{Autodiff, Flex};
use burn::prelude::*;
use burn::tensor::backend::BackendTypes;
use burn::tensor::{DType, TensorPrimitive};

/// The training backend on the CPU, whose primitive holds a flex tensor and its graph node.
pub type AdFlex = Autodiff<Flex>;
/// The primitive of [`AdFlex`]: a flex tensor and its graph node.
pub type AdPrimitive = <AdFlex as BackendTypes>::FloatTensorPrimitive;

/// Whether `B` is the CPU backend (burn-flex), with or without autodiff (both share its device).
pub fn on_cpu<B: Backend>() -> bool {
    TypeId::of::<B::Device>() == TypeId::of::<FlexDevice>()
}

/// `t` as a `U` when it is one (a type test at run time), else `t` back.
pub fn cast<T: 'static, U: 'static>(t: T) -> Result<U, T> {
    let mut slot = Some(t);
    match (&mut slot as &mut dyn Any).downcast_mut::<Option<U>>() {
        Some(u) => Ok(u.take().expect("filled above")),
        None => Err(slot.expect("not taken")),
    }
}

/// A concrete primitive back as a `Tensor<B, D>` (`P` is `B`'s primitive, checked by the caller).
pub fn back<B: Backend, P: 'static, const D: usize>(p: P) -> Tensor<B, D> {
    let p = cast::<P, B::FloatTensorPrimitive>(p)
        .ok()
        .expect("the primitive is B's");
    Tensor::from_primitive(TensorPrimitive::Float(p))
}

/// `t` as f32 with a unit-stride last axis and non-negative strides (a copy only if needed).
pub(crate) fn usable(t: FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    let strides = t.layout().strides();
    if strides[strides.len() - 1] != 1 || strides.iter().any(|&s| s < 0) {
        return Some(t.to_contiguous());
    }
    Some(t)
}

/// The backward step of a custom CPU graph node: takes the node's output gradient, computes its
/// parents' gradients with `backward(state, d_out)` (in parent order) and registers those whose
/// parent tracks gradients.
pub fn backprop<S, const N: usize, G: IntoIterator<Item = FlexTensor>>(
    ops: Ops<S, N>,
    grads: &mut Gradients,
    backward: impl FnOnce(S, FlexTensor) -> G,
) {
    let d_out = grads.consume::<Flex>(&ops.node);
    for (parent, grad) in ops.parents.into_iter().zip(backward(ops.state, d_out)) {
        if let Some(node) = parent {
            grads.register::<Flex>(node.id, grad);
        }
    }
}

/// `t` as a contiguous f32 vector, or `None` for another dtype.
pub(crate) fn values(t: &FlexTensor) -> Option<Vec<f32>> {
    (t.dtype() == DType::F32).then(|| t.to_contiguous().storage::<f32>().to_vec())
}

/// Element-wise sums of two pairs of equally long vectors: the combining step of a parallel
/// `reduce` over per-task partial gradients (e.g. a LayerNorm's `dγ`, `dβ`).
pub fn add_pairs(
    (mut a0, mut a1): (Vec<f32>, Vec<f32>),
    (b0, b1): (Vec<f32>, Vec<f32>),
) -> (Vec<f32>, Vec<f32>) {
    a0.iter_mut().zip(b0).for_each(|(a, b)| *a += b);
    a1.iter_mut().zip(b1).for_each(|(a, b)| *a += b);
    (a0, a1)
}
