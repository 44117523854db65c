//! Splitting `[batch, time, heads * d]` into heads `[batch, heads, time, d]`, and merging back.
//!
//! The split is a view and the merge a copy; under autodiff each one's gradient is the other.
//! burn-flex copies a permuted 4-D tensor element by element (its fast copies cover layouts
//! that collapse to two dimensions), and profiling a training update of `configs/small_cpu.toml`
//! put ~5 % of the time in these copies: the merge of every attention output, and the merge that
//! is the gradient of every split (queries, keys, values). On the CPU backend both forms use
//! [`merge_copy`], which moves whole `d`-long runs on all cores, and under autodiff they are one
//! graph node each whose backward is the other form. Other backends take burn's own ops.

use std::any::TypeId;
use std::mem::MaybeUninit;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::Bytes;
use rayon::prelude::*;

use crate::cpu::{back, cast, AdFlex, AdPrimitive};

/// `[batch, time, heads * d]` -> `[batch, heads, time, d]` (a view of `x`).
pub fn split_heads<B: Backend>(x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
    let [b, t, hd] = x.dims();
    let dims = [b, t, heads, hd / heads];
    if TypeId::of::<B>() == TypeId::of::<AdFlex>() {
        let p: AdPrimitive = cast(x.into_primitive().tensor()).ok().expect("B is AdFlex");
        let view = |p: &FlexTensor| p.reshape(Shape::new(dims)).transpose(1, 2);
        let node = SplitHeads.prepare::<NoCheckpointing>([p.node.clone()]);
        let out = match node.compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish(dims, view(&p.primitive)),
            OpsKind::UnTracked(prep) => prep.finish(view(&p.primitive)),
        };
        return back(out);
    }
    x.reshape(dims).swap_dims(1, 2)
}

/// `[batch, heads, time, d]` -> `[batch, time, heads * d]` (a copy unless `x` is already laid
/// out time-major).
pub fn merge_heads<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 3> {
    let [b, h, t, d] = x.dims();
    if TypeId::of::<B>() == TypeId::of::<Flex>() {
        let p: FlexTensor = cast(x.into_primitive().tensor()).ok().expect("B is Flex");
        return back(merge_copy(&p));
    }
    if TypeId::of::<B>() == TypeId::of::<AdFlex>() {
        let p: AdPrimitive = cast(x.into_primitive().tensor()).ok().expect("B is AdFlex");
        let out = merge_copy(&p.primitive);
        let node = MergeHeads.prepare::<NoCheckpointing>([p.node.clone()]);
        let out = match node.compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish([b, h, t, d], out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        return back(out);
    }
    x.swap_dims(1, 2).reshape([b, t, h * d])
}

/// `x` `[b, h, t, d]` with any strides -> contiguous `[b, t, h * d]`, one `d`-run at a time
/// (a view when `x` is already time-major, as the gradient of a split of a time-major
/// activation is; burn-flex's own copy when the last axis is not unit-stride or the elements
/// are not 32-bit).
fn merge_copy(x: &FlexTensor) -> FlexTensor {
    let shape = x.layout().shape();
    let [b, h, t, d] = [shape[0], shape[1], shape[2], shape[3]];
    let strides = x.layout().strides();
    let merged = Shape::new([b, t, h * d]);
    let time_major = x.transpose(1, 2);
    let size = x.dtype().size();
    if time_major.is_contiguous()
        || strides[3] != 1
        || strides.iter().any(|&s| s < 0)
        || size != size_of::<u32>()
    {
        // Already laid out time-major: a view; otherwise (or for dtypes other than 32-bit
        // ones) burn-flex's own copy.
        return time_major.reshape(merged);
    }
    let [s0, s1, s2] = [
        strides[0] as usize,
        strides[1] as usize,
        strides[2] as usize,
    ];
    let (src, offset, run) = (x.bytes(), x.layout().start_offset(), d * size);
    // 32-bit elements, so the buffer has the alignment burn-flex keeps without another copy
    // (a `Vec<u8>` is copied once more into an aligned one), and not zero-filled: every element
    // is written below.
    let mut out: Vec<MaybeUninit<u32>> = Vec::with_capacity(b * t * h * d);
    // SAFETY: `MaybeUninit` elements need no initialisation.
    unsafe { out.set_len(b * t * h * d) };
    out.par_chunks_mut(h * d)
        .with_min_len(64)
        .enumerate()
        .for_each(|(row, dst)| {
            let (bi, ti) = (row / t, row % t);
            for (hi, dst) in dst.chunks_mut(d).enumerate() {
                let from = (offset + bi * s0 + hi * s1 + ti * s2) * size;
                let src = &src[from..from + run];
                // SAFETY: `dst` holds `d` elements of `size` bytes, `run` bytes in all.
                unsafe {
                    std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast(), run)
                };
            }
        });
    let mut out = std::mem::ManuallyDrop::new(out);
    // SAFETY: same allocation, layout and length; every element was written above.
    let out =
        unsafe { Vec::from_raw_parts(out.as_mut_ptr().cast::<u32>(), out.len(), out.capacity()) };
    FlexTensor::new(
        Bytes::from_elems(out),
        Layout::contiguous(merged),
        x.dtype(),
    )
}

/// The split's graph node: its gradient `[b, h, t, d]` merges back to `[b, t, h * d]`.
#[derive(Debug)]
struct SplitHeads;

impl Backward<Flex, 1> for SplitHeads {
    /// `[b, t, h, d]`.
    type State = [usize; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| merge_copy(&grad));
    }
}

/// The merge's graph node: its gradient `[b, t, h * d]` is viewed as `[b, h, t, d]`.
#[derive(Debug)]
struct MergeHeads;

impl Backward<Flex, 1> for MergeHeads {
    /// `[b, h, t, d]`.
    type State = [usize; 4];

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [b, h, t, d] = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            grad.reshape(Shape::new([b, t, h, d])).transpose(1, 2)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// Values and gradients equal burn's reshape/swap_dims, on the plain and autodiff CPU
    /// backends, for contiguous and strided inputs.
    #[test]
    fn split_and_merge_match_burn_ops() {
        let device = Default::default();
        let x = Tensor::<AdFlex, 3>::random([2, 5, 12], Distribution::Normal(0., 1.), &device)
            .require_grad();
        let probe = Tensor::<AdFlex, 3>::random([2, 5, 12], Distribution::Normal(0., 1.), &device);
        // split -> scale each head -> merge, against the same with burn's ops.
        let head_scale =
            Tensor::<AdFlex, 1>::from_floats([1., 2., 3.], &device).reshape([1, 3, 1, 1]);
        let ours = merge_heads(split_heads(x.clone(), 3) * head_scale.clone());
        let burns = (x.clone().reshape([2, 5, 3, 4]).swap_dims(1, 2) * head_scale)
            .swap_dims(1, 2)
            .reshape([2, 5, 12]);
        ours.to_data()
            .assert_approx_eq::<f32>(&burns.to_data(), Tolerance::absolute(1e-6));
        let g_ours = x.grad(&(ours * probe.clone()).sum().backward()).unwrap();
        let g_burn = x.grad(&(burns * probe).sum().backward()).unwrap();
        g_ours
            .to_data()
            .assert_approx_eq::<f32>(&g_burn.to_data(), Tolerance::absolute(1e-6));

        // A strided input (a time-major view) without autodiff.
        let y = Tensor::<Flex, 4>::random([2, 5, 3, 4], Distribution::Normal(0., 1.), &device)
            .swap_dims(1, 2);
        merge_heads(y.clone()).to_data().assert_approx_eq::<f32>(
            &y.swap_dims(1, 2).reshape([2, 5, 12]).to_data(),
            Tolerance::absolute(0.0),
        );
    }
}
