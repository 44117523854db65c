//! Writing one time slot of a cache buffer, and reordering its rows, in place on the CPU backend.
//!
//! burn-flex's `slice_assign` copies the whole destination (it keeps a second reference to the
//! buffer while writing), which would make every decode step copy every layer's cache. The
//! cache owns its buffer uniquely, so on flex the slot is written straight into the storage;
//! other backends take the generic `slice_assign` path. Likewise `select` copies every row's
//! whole capacity at every beam-search step, filled or not; in place, only the rows whose
//! parent changed are rewritten, and only their filled slots.

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

/// Row `i` of `buffer` (dimension 0) becomes old row `rows[i]`, in place, copying only the
/// first `filled` slots along `time_dim` of the rows that change; returns the buffer, or gives
/// it back when the fast path does not apply (another backend, a shared or strided buffer, more
/// rows than before). Fewer rows (beam search dropping a finished sentence) keep the storage:
/// the result is a view of its first `rows.len()` rows.
pub fn reorder_rows<B: Backend, const D: usize>(
    buffer: Tensor<B, D>,
    time_dim: usize,
    filled: usize,
    rows: &Tensor<B, 1, Int>,
) -> Result<Tensor<B, D>, Tensor<B, D>> {
    let dims = buffer.dims();
    let mut buf = buffer.into_primitive().tensor();
    let done = match (&mut buf as &mut dyn Any).downcast_mut::<FlexTensor>() {
        Some(b) if time_dim > 0 && (1..=dims[0]).contains(&rows.dims()[0]) => {
            let rows: Vec<usize> = rows.to_data().iter::<i64>().map(|r| r as usize).collect();
            reorder_flex(b, &dims, time_dim, filled, &rows)
        }
        _ => false,
    };
    let back = Tensor::<B, D>::from_primitive(TensorPrimitive::Float(buf));
    if done {
        Ok(back.narrow(0, 0, rows.dims()[0]))
    } else {
        Err(back)
    }
}

fn reorder_flex(
    buf: &mut FlexTensor,
    dims: &[usize],
    time_dim: usize,
    filled: usize,
    rows: &[usize],
) -> bool {
    if buf.dtype() != burn::tensor::DType::F32
        || !buf.layout().is_contiguous()
        || buf.layout().start_offset() != 0
        || rows.iter().any(|&r| r >= dims[0])
    {
        return false;
    }
    // Per row: `runs` runs (the dims between rows and time) of `cap × inner` elements, of
    // which the first `filled × inner` are filled.
    let runs: usize = dims[1..time_dim].iter().product();
    let (cap, inner) = (
        dims[time_dim],
        dims[time_dim + 1..].iter().product::<usize>(),
    );
    let (row_len, run_len, used) = (runs * cap * inner, cap * inner, filled.min(cap) * inner);
    let Some(data) = buf.try_storage_mut::<f32>() else {
        return false;
    };
    // Every source of a row that changes, saved before any row is overwritten.
    let mut saved: Vec<Option<Vec<f32>>> = vec![None; dims[0]];
    for (i, &src) in rows.iter().enumerate() {
        if src != i && saved[src].is_none() {
            let row = &data[src * row_len..(src + 1) * row_len];
            saved[src] = Some(
                (0..runs)
                    .flat_map(|r| &row[r * run_len..r * run_len + used])
                    .copied()
                    .collect(),
            );
        }
    }
    for (i, &src) in rows.iter().enumerate() {
        if let (true, Some(from)) = (src != i, &saved[src]) {
            let row = &mut data[i * row_len..(i + 1) * row_len];
            for r in 0..runs {
                row[r * run_len..r * run_len + used]
                    .copy_from_slice(&from[r * used..(r + 1) * used]);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    type B = burn::backend::Flex;

    #[test]
    fn reordering_in_place_matches_select_on_the_filled_slots() {
        let device = Default::default();
        // [rows, heads, capacity, dim] with 4 of 6 slots filled; rows duplicated, kept, moved.
        let dims = [4, 2, 6, 3];
        let n: usize = dims.iter().product();
        let values: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let buffer = Tensor::<B, 1>::from_floats(values.as_slice(), &device).reshape(dims);
        for order in [[2, 0, 2, 3], [1, 1, 1, 1], [0, 1, 2, 3], [3, 2, 1, 0]] {
            let rows = Tensor::<B, 1, Int>::from_ints(order, &device);
            let want = buffer.clone().select(0, rows.clone());
            // A copy the reorder owns alone (as a cache does).
            let own = Tensor::<B, 1>::from_floats(values.as_slice(), &device).reshape(dims);
            let got = reorder_rows(own, 2, 4, &rows).expect("fast path on flex");
            let filled = |t: Tensor<B, 4>| t.slice(s![.., .., 0..4, ..]).into_data();
            assert_eq!(filled(got), filled(want), "{order:?}");
        }
        // Fewer rows: a view of the first ones, written in place, then writable again.
        for order in [vec![3, 1], vec![0], vec![2, 2, 0]] {
            let rows = Tensor::<B, 1, Int>::from_ints(order.as_slice(), &device);
            let want = buffer.clone().select(0, rows.clone());
            let own = Tensor::<B, 1>::from_floats(values.as_slice(), &device).reshape(dims);
            let got = reorder_rows(own, 2, 4, &rows).expect("fast path on flex");
            assert_eq!(got.dims(), [order.len(), 2, 6, 3]);
            let filled = |t: Tensor<B, 4>| t.slice(s![.., .., 0..4, ..]).into_data();
            assert_eq!(filled(got.clone()), filled(want.clone()), "{order:?}");
            let slot = Tensor::<B, 4>::ones([order.len(), 2, 1, 3], &device);
            let written = match write_slot(got, 2, 4, slot.clone()) {
                Ok(t) => t,
                Err(_) => panic!("a narrowed cache stays writable in place"),
            };
            assert_eq!(
                written.slice(s![.., .., 0..5, ..]).into_data(),
                Tensor::cat(vec![want.slice(s![.., .., 0..4, ..]), slot], 2).into_data()
            );
        }
        // Shared buffers and more rows than before take the generic path.
        let rows = Tensor::<B, 1, Int>::from_ints([1, 0, 3, 2, 0], &device);
        assert!(reorder_rows(buffer.clone(), 2, 4, &rows).is_err());
        let shared = buffer.clone();
        let rows = Tensor::<B, 1, Int>::from_ints([1, 0, 3, 2], &device);
        assert!(reorder_rows(buffer, 2, 4, &rows).is_err());
        drop(shared);
    }
}
