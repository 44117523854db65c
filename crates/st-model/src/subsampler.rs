//! fairseq's `Conv1dSubsampler`: stride-2 Conv1d + GLU layers over time (two layers = 4x).
//! `Conv1d(80 -> 1024, k 5, s 2, p 2) -> GLU -> Conv1d(512 -> 1024, ...) -> GLU -> 512`.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::PaddingConfig1d;
use burn::prelude::*;
use burn::tensor::activation::{glu, sigmoid};
use burn::tensor::s;

use crate::config::ModelConfig;

#[derive(Module, Debug)]
pub struct Subsampler<B: Backend> {
    pub convs: Vec<Conv1d<B>>,
}

impl<B: Backend> Subsampler<B> {
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let e = &config.encoder;
        let convs = (0..e.conv_layers)
            .map(|i| {
                let c_in = if i == 0 {
                    config.input_dim
                } else {
                    e.conv_channels / 2
                };
                let c_out = if i + 1 < e.conv_layers {
                    e.conv_channels
                } else {
                    2 * config.d_model
                };
                Conv1dConfig::new(c_in, c_out, e.conv_kernel)
                    .with_stride(2)
                    .with_padding(PaddingConfig1d::Explicit(
                        e.conv_kernel / 2,
                        e.conv_kernel / 2,
                    ))
                    .init(device)
            })
            .collect();
        Self { convs }
    }

    /// `[batch, frames, input_dim]` with real lengths `frames` -> `[batch, frames', d_model]`.
    /// Unlike fairseq, each layer's output past a row's real length is zeroed, so the next
    /// convolution sees the same zero padding whether the row is alone or in a batch.
    ///
    /// On the CPU backend each layer is computed time-major as matrix products
    /// ([`conv_glu_time_major`]); elsewhere as burn's `conv1d` + GLU ([`conv_glu_channels`]).
    pub fn forward(&self, x: Tensor<B, 3>, frames: &[usize]) -> Tensor<B, 3> {
        if mtla::cpu::on_cpu::<B>() {
            self.run(x, frames, conv_glu_time_major)
        } else {
            self.run(x.swap_dims(1, 2), frames, conv_glu_channels)
                .swap_dims(1, 2)
        }
    }

    /// The layers with `layer` computing one convolution + GLU, and the length mask after each.
    /// `layer` returns the time axis it works on, so the mask broadcasts along the other one.
    fn run(
        &self,
        mut x: Tensor<B, 3>,
        frames: &[usize],
        layer: fn(&Conv1d<B>, Tensor<B, 3>) -> (Tensor<B, 3>, usize),
    ) -> Tensor<B, 3> {
        let device = x.device();
        let mut lengths = frames.to_vec();
        for conv in &self.convs {
            let (y, time_axis) = layer(conv, x);
            lengths = lengths.iter().map(|&n| halve(n)).collect();
            let t = y.dims()[time_axis];
            let mut shape = [frames.len(), 1, 1];
            shape[time_axis] = t;
            let dtype = y.dtype();
            x = y * keep_frames::<B>(&lengths, t, &device, dtype).reshape(shape);
        }
        x
    }

    /// Output length of each input length (`floor((n - 1) / 2 + 1)` per layer, as fairseq).
    pub fn output_lengths(&self, lengths: &[usize]) -> Vec<usize> {
        lengths
            .iter()
            .map(|&n| (0..self.convs.len()).fold(n, |n, _| halve(n)))
            .collect()
    }
}

/// `[batch · t]`, row-major: 1 for each row's first `lengths[row]` frames, 0 for its padding.
pub fn keep_frames<B: Backend>(
    lengths: &[usize],
    t: usize,
    device: &B::Device,
    dtype: burn::tensor::DType,
) -> Tensor<B, 1> {
    let keep: Vec<f32> = lengths
        .iter()
        .flat_map(|&n| (0..t).map(move |j| f32::from(j < n)))
        .collect();
    Tensor::<B, 1>::from_data(keep.as_slice(), (device, dtype))
}

/// Channel-major layer `[batch, C, T] -> [batch, C', T']`: burn's `conv1d`, then GLU over
/// channels. Returns the time axis (2).
fn conv_glu_channels<B: Backend>(conv: &Conv1d<B>, x: Tensor<B, 3>) -> (Tensor<B, 3>, usize) {
    (glu(conv.forward(x), 1), 2)
}

/// Time-major layer `[batch, T, C] -> [batch, T', C']`, the same function as
/// [`conv_glu_channels`] without a layout change:
/// `a_o = b_a + Σ_j x_{2o+j-p} W_{a,j}`, `g_o = b_g + Σ_j x_{2o+j-p} W_{g,j}`, `y_o = a_o ⊙ σ(g_o)`
/// for kernel taps `j < k`, padding `p = k / 2`, and `W_a`/`W_g` the first/second half of the
/// output channels (GLU's halves). The zero-padded input is viewed as pairs of frames
/// `[batch, T/2, 2C]`, so tap `j` of every output is one strided view (pair `o + j/2`, half
/// `j % 2`) and each term is one batched matrix product with no copy of its operands.
///
/// On the CPU backend, `conv1d` and GLU's channel halves went through per-element strided
/// copies (the 1-D convolution is run as a 3-D one; a GLU half is a non-contiguous view); these
/// views and products are copy-free.
fn conv_glu_time_major<B: Backend>(conv: &Conv1d<B>, x: Tensor<B, 3>) -> (Tensor<B, 3>, usize) {
    let [batch, t, c] = x.dims();
    let [c_out, _, k] = conv.weight.dims();
    let pad = k / 2;
    let t_out = (t + 2 * pad - k) / 2 + 1;
    let pairs = t_out + (k - 1) / 2;
    let zeros = |n: usize| Tensor::<B, 3>::zeros([batch, n, c], (&x.device(), x.dtype()));
    let (left, right) = (zeros(pad), zeros(2 * pairs - t - pad));
    let x = Tensor::cat(vec![left, x, right], 1).reshape([batch, pairs, 2 * c]);
    let weight = conv.weight.val();
    let half = c_out / 2;
    let term = |channels: std::ops::Range<usize>| {
        (0..k)
            .map(|j| {
                let tap =
                    x.clone()
                        .slice(s![.., j / 2..j / 2 + t_out, (j % 2) * c..(j % 2 + 1) * c]);
                let w = weight
                    .clone()
                    .slice(s![channels.clone(), .., j])
                    .reshape([channels.len(), c])
                    .transpose();
                tap.matmul(w.unsqueeze())
            })
            .reduce(|sum, y| sum + y)
            .expect("kernel has taps")
    };
    let (mut a, mut g) = (term(0..half), term(half..c_out));
    if let Some(bias) = &conv.bias {
        let bias = bias.val();
        a = a + bias.clone().slice(s![0..half]).reshape([1, 1, half]);
        g = g + bias.slice(s![half..c_out]).reshape([1, 1, half]);
    }
    (a * sigmoid(g), 1)
}

/// Length after one stride-2 convolution with `kernel / 2` padding.
fn halve(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n - 1) / 2 + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::{Autodiff, Flex};
    use burn::tensor::{Distribution, Tolerance};

    type A = Autodiff<Flex>;

    /// The time-major layer is the same function as `conv1d` + GLU, in value and in gradient,
    /// for odd and even lengths and kernels 3 and 5.
    #[test]
    fn time_major_layer_equals_conv1d_and_glu() {
        let device = Default::default();
        for (kernel, frames) in [(5, [13, 8]), (3, [10, 7]), (5, [4, 1])] {
            let mut config = ModelConfig {
                input_dim: 6,
                d_model: 8,
                ..ModelConfig::default()
            };
            config.encoder.conv_channels = 12;
            config.encoder.conv_kernel = kernel;
            let sub = Subsampler::<A>::new(&config, &device);
            let x =
                Tensor::<A, 3>::random([2, frames[0], 6], Distribution::Normal(0., 1.), &device);
            let y_time = sub.run(x.clone(), &frames, conv_glu_time_major);
            let y_chan = sub
                .run(x.swap_dims(1, 2), &frames, conv_glu_channels)
                .swap_dims(1, 2);
            y_time
                .to_data()
                .assert_approx_eq::<f32>(&y_chan.to_data(), Tolerance::absolute(1e-5));
            let probe =
                Tensor::<A, 3>::random(y_time.shape(), Distribution::Normal(0., 1.), &device);
            let g_time = (y_time * probe.clone()).sum().backward();
            let g_chan = (y_chan * probe).sum().backward();
            for conv in &sub.convs {
                let (wt, wc) = (
                    conv.weight.grad(&g_time).unwrap(),
                    conv.weight.grad(&g_chan).unwrap(),
                );
                wt.to_data()
                    .assert_approx_eq::<f32>(&wc.to_data(), Tolerance::absolute(1e-4));
                let bias = conv.bias.as_ref().unwrap();
                bias.grad(&g_time)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(
                        &bias.grad(&g_chan).unwrap().to_data(),
                        Tolerance::absolute(1e-4),
                    );
            }
        }
    }
}
