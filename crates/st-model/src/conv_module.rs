//! The Conformer's convolution module (Gulati et al., Interspeech 2020, Fig. 2), added to an
//! encoder layer between its self-attention and its feed-forward block: self-attention sees
//! the whole utterance, this sees a window of `kernel` neighbouring frames, the local acoustic
//! detail that spelling a word depends on.
//!
//! `conv(x) = W_o · swish(LN(dwconv_k(GLU(W_a·LN(x), W_g·LN(x)))))`, `GLU(a, g) = a ⊙ σ(g)`,
//! `dwconv_k` a depthwise convolution over time (one `kernel`-tap filter per channel, zero
//! padding `kernel / 2` either side). The normalisation after the depthwise convolution is a
//! LayerNorm, not the paper's BatchNorm (WeNet's `cnn_module_norm = "layer_norm"`): a row then
//! computes the same alone or in a batch, and small CPU batches give no batch statistics to trust.
//! Frames past a row's length are zeroed before the depthwise convolution, so padding never
//! reaches a real frame.

use burn::module::Param;
use burn::nn::{Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::{sigmoid, silu};
use mtla::dropout::Dropout;
use mtla::layer_norm::layer_norm;
use mtla::linear::linear;

use crate::depthwise::depthwise_conv;

/// The convolution module of one encoder layer; the layer adds `dropout(conv(x))` to `x`.
#[derive(Module, Debug)]
pub struct ConvModule<B: Backend> {
    pub norm: LayerNorm<B>,
    /// `W_a`, the GLU's value half of the first pointwise convolution.
    pub pointwise_value: Linear<B>,
    /// `W_g`, the GLU's gate half.
    pub pointwise_gate: Linear<B>,
    /// The depthwise filters `[kernel, d]` (tap-major, so tap `j` is one row).
    pub depthwise_weight: Param<Tensor<B, 2>>,
    pub depthwise_bias: Param<Tensor<B, 1>>,
    pub depthwise_norm: LayerNorm<B>,
    /// `W_o`, the second pointwise convolution.
    pub pointwise_out: Linear<B>,
    pub dropout: Dropout,
}

impl<B: Backend> ConvModule<B> {
    /// A module of `kernel` taps (odd) on `d`-dim states; its depthwise filters initialised as a
    /// PyTorch `Conv1d(d, d, kernel, groups=d)` (uniform, bound `1/sqrt(kernel)`).
    pub fn new(d: usize, kernel: usize, dropout: f64, device: &B::Device) -> Self {
        let bound = 1.0 / (kernel as f64).sqrt();
        let uniform = Initializer::Uniform {
            min: -bound,
            max: bound,
        };
        Self {
            norm: LayerNormConfig::new(d).init(device),
            pointwise_value: LinearConfig::new(d, d).init(device),
            pointwise_gate: LinearConfig::new(d, d).init(device),
            depthwise_weight: uniform.init([kernel, d], device),
            depthwise_bias: uniform.init([d], device),
            depthwise_norm: LayerNormConfig::new(d).init(device),
            pointwise_out: LinearConfig::new(d, d).init(device),
            dropout: Dropout::new(dropout),
        }
    }

    /// `x` `[batch, t, d]`, `keep` `[batch, t, 1]` (1 for a real frame, 0 for padding) ->
    /// `conv(x)` `[batch, t, d]`.
    pub fn forward(&self, x: Tensor<B, 3>, keep: Tensor<B, 3>) -> Tensor<B, 3> {
        let h = layer_norm(&self.norm, x);
        let h = linear(&self.pointwise_value, h.clone()) * sigmoid(linear(&self.pointwise_gate, h));
        let h = depthwise_conv(
            h * keep,
            self.depthwise_weight.val(),
            self.depthwise_bias.val(),
        );
        let h = silu(layer_norm(&self.depthwise_norm, h));
        self.dropout.forward(linear(&self.pointwise_out, h))
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;

    type B = Flex;

    /// Padding does not reach real frames: a row computes the same alone as padded in a batch.
    #[test]
    fn padding_never_reaches_a_real_frame() {
        let device = Default::default();
        let (d, kernel) = (8, 7);
        let m = ConvModule::<B>::new(d, kernel, 0.0, &device);
        let x = Tensor::<B, 3>::random([1, 5, d], burn::tensor::Distribution::Default, &device);
        let alone = m.forward(x.clone(), Tensor::ones([1, 5, 1], &device));
        let noise = Tensor::<B, 3>::random([1, 4, d], burn::tensor::Distribution::Default, &device);
        let padded = Tensor::cat(vec![x, noise.mul_scalar(100.0)], 1);
        let keep = Tensor::<B, 1>::from_floats([1., 1., 1., 1., 1., 0., 0., 0., 0.], &device)
            .reshape([1, 9, 1]);
        let batched = m.forward(padded, keep).slice(s![.., 0..5, ..]);
        let diff = (alone - batched).abs().max().into_scalar();
        assert!(diff < 1e-5, "{diff}");
    }
}
