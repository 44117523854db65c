//! fairseq's `Conv1dSubsampler`: stride-2 Conv1d + GLU layers over time (two layers = 4x).
//! `Conv1d(80 -> 1024, k 5, s 2, p 2) -> GLU -> Conv1d(512 -> 1024, ...) -> GLU -> 512`.

use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::PaddingConfig1d;
use burn::prelude::*;
use burn::tensor::activation::glu;

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
    pub fn forward(&self, x: Tensor<B, 3>, frames: &[usize]) -> Tensor<B, 3> {
        let device = x.device();
        let mut lengths = frames.to_vec();
        let mut x = x.swap_dims(1, 2);
        for conv in &self.convs {
            x = glu(conv.forward(x), 1);
            lengths = lengths.iter().map(|&n| halve(n)).collect();
            let t = x.dims()[2];
            let keep: Vec<f32> = lengths
                .iter()
                .flat_map(|&n| (0..t).map(move |j| f32::from(j < n)))
                .collect();
            let dtype = x.dtype();
            x = x * Tensor::<B, 1>::from_data(keep.as_slice(), (&device, dtype)).reshape([
                frames.len(),
                1,
                t,
            ]);
        }
        x.swap_dims(1, 2)
    }

    /// Output length of each input length (`floor((n - 1) / 2 + 1)` per layer, as fairseq).
    pub fn output_lengths(&self, lengths: &[usize]) -> Vec<usize> {
        lengths
            .iter()
            .map(|&n| (0..self.convs.len()).fold(n, |n, _| halve(n)))
            .collect()
    }
}

/// Length after one stride-2 convolution with `kernel / 2` padding.
fn halve(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        (n - 1) / 2 + 1
    }
}
