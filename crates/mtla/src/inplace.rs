//! Writing one time slot of a cache buffer in place on the CPU backend.
//!
//! burn-flex's `slice_assign` copies the whole destination (it keeps a second reference to the
//! buffer while writing), which would make every decode step copy every layer's cache. The
//! cache owns its buffer uniquely, so on flex the slot is written straight into the storage;
//! other backends take the generic `slice_assign` path.

use std::any::Any;

use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::TensorPrimitive;

/// Writes `value` (size 1 along `time_dim`) at index `at` of `buffer`; returns the buffer, or
/// both tensors back when the fast path does not apply.
pub fn write_slot<B: Backend, const D: usize>(
    buffer: Tensor<B, D>,
    time_dim: usize,
    at: usize,
    value: Tensor<B, D>,
) -> Result<Tensor<B, D>, (Tensor<B, D>, Tensor<B, D>)> {
    let dims = buffer.dims();
    let mut buf = buffer.into_primitive().tensor();
    let val = value.into_primitive().tensor();
    let written = match (
        (&mut buf as &mut dyn Any).downcast_mut::<FlexTensor>(),
        (&val as &dyn Any).downcast_ref::<FlexTensor>(),
    ) {
        (Some(b), Some(v)) => write_flex(b, v, &dims, time_dim, at),
        _ => false,
    };
    let back = |p| Tensor::<B, D>::from_primitive(TensorPrimitive::Float(p));
    if written {
        Ok(back(buf))
    } else {
        Err((back(buf), back(val)))
    }
}

fn write_flex(
    buf: &mut FlexTensor,
    val: &FlexTensor,
    dims: &[usize],
    time_dim: usize,
    at: usize,
) -> bool {
    if buf.dtype() != burn::tensor::DType::F32 || val.dtype() != buf.dtype() {
        return false;
    }
    if !buf.layout().is_contiguous() || buf.layout().start_offset() != 0 || !buf.is_unique() {
        return false;
    }
    let val = val.to_contiguous();
    let src: &[f32] = val.storage();
    let outer: usize = dims[..time_dim].iter().product();
    let inner: usize = dims[time_dim + 1..].iter().product();
    let cap = dims[time_dim];
    if src.len() != outer * inner || at >= cap {
        return false;
    }
    let Some(dst) = buf.try_storage_mut::<f32>() else {
        return false;
    };
    for o in 0..outer {
        let d = (o * cap + at) * inner;
        dst[d..d + inner].copy_from_slice(&src[o * inner..(o + 1) * inner]);
    }
    true
}
