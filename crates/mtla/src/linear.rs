//! Linear layers applied to any-rank input as one matrix product over the flattened rows.
//!
//! Burn's `Linear::forward` on `[batch, time, d]` multiplies a rank-3 input by the weight with
//! batch-broadcasting, which on the CPU backend becomes one product per batch row (the weight
//! re-packed each time); flattening the rows first makes it a single product.

use burn::nn::Linear;
use burn::prelude::*;

/// `x W (+ b)` for `x` `[..., d_in]` -> `[..., d_out]`.
pub fn linear<B: Backend, const D: usize>(layer: &Linear<B>, x: Tensor<B, D>) -> Tensor<B, D> {
    let dims = x.dims();
    let d_in = dims[D - 1];
    let rows = dims[..D - 1].iter().product::<usize>();
    let y = layer.forward(x.reshape([rows, d_in]));
    let mut out = dims;
    out[D - 1] = y.dims()[1];
    y.reshape(out)
}
