//! The speech encoder (fairseq `S2TTransformerEncoder`): subsampler, `x * sqrt(d)` plus
//! sinusoidal positions, pre-LayerNorm Transformer layers (MHA, ReLU FFN, dropout; optionally a
//! Conformer convolution module between the two), final LayerNorm. Padding masks follow the
//! subsampling.

use burn::nn::{LayerNorm, LayerNormConfig};
use burn::prelude::*;
use mtla::dropout::Dropout;
use mtla::layer_norm::layer_norm;
use mtla::mask::bias_tensor;
use mtla::KeyPadding;

use crate::attention::MultiHeadAttention;
use crate::config::ModelConfig;
use crate::conv_module::ConvModule;
use crate::feed_forward::FeedForward;
use crate::subsampler::{keep_frames, Subsampler};

/// One pre-LN encoder layer: `x += drop(attn(LN(x)))`, with a convolution module
/// `x += drop(conv(x))` (Conformer), then `x += drop(ffn(LN(x)))`.
#[derive(Module, Debug)]
pub struct EncoderLayer<B: Backend> {
    pub self_attn: MultiHeadAttention<B>,
    pub self_attn_norm: LayerNorm<B>,
    pub conv: Option<ConvModule<B>>,
    pub ffn: FeedForward<B>,
    pub ffn_norm: LayerNorm<B>,
    pub dropout: Dropout,
}

impl<B: Backend> EncoderLayer<B> {
    fn new(config: &ModelConfig, device: &B::Device) -> Self {
        let d = config.d_model;
        Self {
            self_attn: MultiHeadAttention::new(d, config.encoder.heads, config.dropout, device),
            self_attn_norm: LayerNormConfig::new(d).init(device),
            conv: (config.encoder.conv_module_kernel > 0).then(|| {
                ConvModule::new(d, config.encoder.conv_module_kernel, config.dropout, device)
            }),
            ffn: FeedForward::new(d, config.encoder.ffn_dim, config.dropout, device),
            ffn_norm: LayerNormConfig::new(d).init(device),
            dropout: Dropout::new(config.dropout),
        }
    }

    /// `keep` `[batch, t, 1]`: 1 for a real frame, 0 for padding (given when the layer has a
    /// convolution module).
    fn forward(
        &self,
        x: Tensor<B, 3>,
        key_bias: Option<Tensor<B, 4>>,
        keep: Option<&Tensor<B, 3>>,
    ) -> Tensor<B, 3> {
        let h = layer_norm(&self.self_attn_norm, x.clone());
        let memory = self.self_attn.memory(h.clone());
        let mut x = x + self
            .dropout
            .forward(self.self_attn.attend(h, &memory, key_bias));
        if let Some(conv) = &self.conv {
            let keep =
                keep.expect("the encoder builds the real-frame mask for its convolution modules");
            x = x.clone() + self.dropout.forward(conv.forward(x, keep.clone()));
        }
        let h = self.ffn.forward(layer_norm(&self.ffn_norm, x.clone()));
        x + self.dropout.forward(h)
    }
}

/// Encoder states and their lengths after subsampling.
#[derive(Debug, Clone)]
pub struct EncoderOutput<B: Backend> {
    /// `[batch, frames', d]`, after the final LayerNorm.
    pub states: Tensor<B, 3>,
    /// Real (unpadded) length of each row.
    pub lengths: Vec<usize>,
}

#[derive(Module, Debug)]
pub struct Encoder<B: Backend> {
    pub subsampler: Subsampler<B>,
    pub layers: Vec<EncoderLayer<B>>,
    pub norm: LayerNorm<B>,
    pub dropout: Dropout,
    pub d_model: usize,
}

impl<B: Backend> Encoder<B> {
    pub fn new(config: &ModelConfig, device: &B::Device) -> Self {
        Self {
            subsampler: Subsampler::new(config, device),
            layers: (0..config.encoder.layers)
                .map(|_| EncoderLayer::new(config, device))
                .collect(),
            norm: LayerNormConfig::new(config.d_model).init(device),
            dropout: Dropout::new(config.dropout),
            d_model: config.d_model,
        }
    }

    /// `features` `[batch, frames, input_dim]` with real lengths `frames` -> states.
    pub fn forward(&self, features: Tensor<B, 3>, frames: &[usize]) -> EncoderOutput<B> {
        let x = self.subsampler.forward(features, frames);
        let [b, t, d] = x.dims();
        let lengths: Vec<usize> = self
            .subsampler
            .output_lengths(frames)
            .into_iter()
            .map(|l| l.min(t))
            .collect();
        let (device, dtype) = (x.device(), x.dtype());
        let x = x.mul_scalar((d as f64).sqrt())
            + sinusoidal_positions::<B>(t, d, &device)
                .cast(dtype)
                .unsqueeze_dim(0);
        let mut x = self.dropout.forward(x);
        let key_bias = KeyPadding::from_lengths(&lengths, t)
            .key_bias()
            .map(|bias| bias_tensor(b, 1, t, bias, &device, dtype));
        // The real-frame mask only the convolution modules need.
        let keep = self
            .layers
            .iter()
            .any(|l| l.conv.is_some())
            .then(|| keep_frames::<B>(&lengths, t, &device, dtype).reshape([b, t, 1]));
        for layer in &self.layers {
            x = layer.forward(x, key_bias.clone(), keep.as_ref());
        }
        EncoderOutput {
            states: layer_norm(&self.norm, x),
            lengths,
        }
    }
}

/// fairseq's `SinusoidalPositionalEmbedding` for positions `2..t+2` (it numbers real tokens
/// from `padding_idx + 1 = 2`): `[sin(p w_k) ‖ cos(p w_k)]`, `w_k = 10000^(-k / (d/2 - 1))`.
pub fn sinusoidal_positions<B: Backend>(t: usize, d: usize, device: &B::Device) -> Tensor<B, 2> {
    let half = d / 2;
    let rate = (10000.0f64).ln() / (half as f64 - 1.0).max(1.0);
    let mut table = Vec::with_capacity(t * d);
    for p in 0..t {
        let pos = (p + 2) as f64;
        table.extend((0..half).map(|k| (pos * (-(k as f64) * rate).exp()).sin() as f32));
        table.extend((0..half).map(|k| (pos * (-(k as f64) * rate).exp()).cos() as f32));
        if d % 2 == 1 {
            table.push(0.0);
        }
    }
    Tensor::<B, 1>::from_floats(table.as_slice(), device).reshape([t, d])
}
