//! Rotary position embedding on *adjacent* channel pairs (GPT-J / "interleaved" style, as the
//! authors' `torch.view_as_complex` code): `(x_{2k}, x_{2k+1})` is rotated by
//! `pos * theta^(-2k/dim)`, with float positions so rows may carry their own offsets.

use burn::prelude::*;

/// `cos` and `sin` of the rotation angles, each `[batch, 1, time, dim/2]` (ready to broadcast
/// over heads), for float `positions` `[batch, time]`.
pub fn rope_angles<B: Backend>(
    positions: Tensor<B, 2>,
    dim: usize,
    theta: f64,
) -> (Tensor<B, 4>, Tensor<B, 4>) {
    let half = dim / 2;
    // As the reference: freqs = 1 / theta^(arange(0, dim, 2) / dim), in f32.
    let freqs: Vec<f32> = (0..half)
        .map(|k| 1.0 / (theta as f32).powf((2 * k) as f32 / dim as f32))
        .collect();
    let device = positions.device();
    let freqs = Tensor::<B, 1>::from_floats(freqs.as_slice(), &device).reshape([1, 1, 1, half]);
    let [b, t] = positions.dims();
    let angles = positions.reshape([b, 1, t, 1]) * freqs;
    (angles.clone().cos(), angles.sin())
}

/// Rotates the last dimension of `x` `[batch, heads, time, dim]` by the angles of
/// [`rope_angles`]: `(a, b) -> (a cos - b sin, a sin + b cos)` per adjacent pair.
pub fn apply_rope<B: Backend>(
    x: Tensor<B, 4>,
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
) -> Tensor<B, 4> {
    let [b, h, t, d] = x.dims();
    let pairs = x.reshape([b, h, t, d / 2, 2]);
    let even = pairs
        .clone()
        .slice(s![.., .., .., .., 0..1])
        .reshape([b, h, t, d / 2]);
    let odd = pairs
        .slice(s![.., .., .., .., 1..2])
        .reshape([b, h, t, d / 2]);
    let re = even.clone() * cos.clone() - odd.clone() * sin.clone();
    let im = even * sin + odd * cos;
    Tensor::stack::<5>(vec![re, im], 4).reshape([b, h, t, d])
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    #[test]
    fn rotates_adjacent_pairs_and_keeps_norms() {
        let device = Default::default();
        let x = Tensor::<B, 4>::from_floats([[[[1.0, 0.0, 0.0, 2.0]]]], &device);
        let pos = Tensor::<B, 2>::from_floats([[3.0]], &device);
        let (cos, sin) = rope_angles(pos, 4, 10000.0);
        let y: Vec<f32> = apply_rope(x, cos, sin).into_data().to_vec().unwrap();
        // Pair 0 rotates by 3 rad, pair 1 by 3 / 100 rad.
        let (a, b) = (3.0f32, 0.03f32);
        let want = [a.cos(), a.sin(), -2.0 * b.sin(), 2.0 * b.cos()];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{y:?}");
        }
    }
}
