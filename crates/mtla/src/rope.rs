//! Rotary position embedding on *adjacent* channel pairs (GPT-J / "interleaved" style, as the
//! authors' `torch.view_as_complex` code): `(x_{2k}, x_{2k+1})` is rotated by
//! `pos * theta^(-2k/dim)`, with float positions so rows may carry their own offsets.
//!
//! Computed as `x * cos + swap(x) * sin`, where `swap` exchanges the two channels of each pair
//! (a product with a permutation matrix, which is exact) and `sin` carries the sign of the
//! rotation (`-sin` on even channels): `(a cos - b sin, b cos + a sin)` exactly as the complex
//! product, with only same-shape element-wise operations.

use burn::prelude::*;

/// Rotation tables for some positions: `cos`, `sin` `[batch, time, 1, dim]` (per channel,
/// pair-duplicated, `sin` signed) and the pair-swap permutation `[dim, dim]`.
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
    swap: Tensor<B, 2>,
}

impl<B: Backend> Rope<B> {
    /// Tables for float `positions` `[batch, time]` and `dim` channels (even), base `theta`.
    pub fn new(positions: Tensor<B, 2>, dim: usize, theta: f64) -> Self {
        let device = positions.device();
        // As the reference: freqs[k] = 1 / theta^(2k / dim) in f32; channel 2k gets -freq so that
        // sin(-a) = -sin(a) carries the sign (cos is even).
        let signed: Vec<f32> = (0..dim)
            .map(|c| {
                let f = 1.0 / (theta as f32).powf((c / 2 * 2) as f32 / dim as f32);
                if c % 2 == 0 {
                    -f
                } else {
                    f
                }
            })
            .collect();
        let freqs = Tensor::<B, 1>::from_floats(signed.as_slice(), &device).reshape([1, 1, 1, dim]);
        let [b, t] = positions.dims();
        // Added into fresh zeros first, so the reshape sees a contiguous tensor: burn-cubecl 0.21
        // copies a strided `[rows, 1]` column (e.g. `positions.slice(s![.., i..i + 1])`) as if it
        // were contiguous when its offset is 32-byte aligned (WebGPU/CUDA only).
        let positions = Tensor::<B, 2>::zeros([b, t], &device) + positions;
        let angles = positions.reshape([b, t, 1, 1]) * freqs;
        let swap: Vec<f32> = (0..dim * dim)
            .map(|i| f32::from(i / dim == (i % dim) ^ 1))
            .collect();
        Self {
            cos: angles.clone().cos(),
            sin: angles.sin(),
            swap: Tensor::<B, 1>::from_floats(swap.as_slice(), &device).reshape([dim, dim]),
        }
    }

    /// The tables of the last `s` time steps.
    pub fn tail(&self, s: usize) -> Self {
        let t = self.cos.dims()[1];
        Self {
            cos: self.cos.clone().slice(s![.., t - s..t, .., ..]),
            sin: self.sin.clone().slice(s![.., t - s..t, .., ..]),
            swap: self.swap.clone(),
        }
    }

    /// Rotates `x` `[batch, time, heads, dim]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, t, h, d] = x.dims();
        // Angles are f32 (positions need it); the tables follow x's precision.
        let dtype = x.dtype();
        let swapped = x
            .clone()
            .reshape([b * t * h, d])
            .matmul(self.swap.clone().cast(dtype))
            .reshape([b, t, h, d]);
        let (cos, sin) = (self.cos.clone().cast(dtype), self.sin.clone().cast(dtype));
        let (cos, sin) = if h == 1 {
            (cos, sin)
        } else {
            (cos.repeat_dim(2, h), sin.repeat_dim(2, h))
        };
        x * cos + swapped * sin
    }
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
        let y: Vec<f32> = Rope::new(pos, 4, 10000.0)
            .apply(x)
            .into_data()
            .to_vec()
            .unwrap();
        // Pair 0 rotates by 3 rad, pair 1 by 3 / 100 rad.
        let (a, b) = (3.0f32, 0.03f32);
        let want = [a.cos(), a.sin(), -2.0 * b.sin(), 2.0 * b.cos()];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{y:?}");
        }
    }
}
