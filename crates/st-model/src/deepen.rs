//! A deeper encoder that computes exactly what a trained one computes (Net2DeeperNet, Chen,
//! Goodfellow & Shlens, ICLR 2016), so that training goes on with more capacity from where it
//! stood instead of from scratch.
//!
//! A pre-LN encoder layer adds `attn(LN(x))` and then `ffn(LN(x))` to its input; with the two
//! output projections (`self_attn.out_proj`, `ffn.fc2`, weights and biases) at zero both sums
//! add exactly zero, and the layer is the identity. The new layers are copies of the layer they
//! follow with those projections zeroed, spread evenly over the stack: their attention and first
//! FFN weights start as features the model already uses, and gradients reach the zeroed
//! projections from the first update on (the gradient of a zero weight is its input times the
//! upstream gradient, neither of which is zero).
//!
//! The same holds for a Conformer convolution module ([`add_conv_modules`]): with its output
//! projection `pointwise_out` at zero it adds zero, and every layer can gain one.

use burn::module::{Module, ModuleMapper, Param};
use burn::nn::Linear;
use burn::prelude::*;

use crate::config::ModelConfig;
use crate::conv_module::ConvModule;
use crate::encoder::EncoderLayer;
use crate::error::{ModelError, Result};
use crate::model::SpeechModel;

/// `model` (built from `config`) with `layers` encoder layers, and its config; the outputs are
/// bit for bit those of `model`. `layers` must be at least the current number.
pub fn deepen_encoder<B: Backend>(
    model: SpeechModel<B>,
    config: &ModelConfig,
    layers: usize,
) -> Result<(SpeechModel<B>, ModelConfig)> {
    let old = model.encoder.layers.len();
    if layers < old || old == 0 {
        return Err(ModelError::Config(format!(
            "encoder.layers: cannot deepen {old} layers to {layers} (only add layers to a trained encoder)"
        )));
    }
    let added = layers - old;
    let mut model = model;
    let mut stack = Vec::with_capacity(layers);
    for (i, layer) in std::mem::take(&mut model.encoder.layers)
        .into_iter()
        .enumerate()
    {
        // Layer i is followed by floor((i+1)·added/old) - floor(i·added/old) identity copies.
        let copies = (i + 1) * added / old - i * added / old;
        let identity: Vec<EncoderLayer<B>> =
            (0..copies).map(|_| identity_copy(layer.clone())).collect();
        stack.push(layer);
        stack.extend(identity);
    }
    model.encoder.layers = stack;
    let mut config = config.clone();
    config.encoder.layers = layers;
    Ok((model, config))
}

/// `model` (built from `config`) with a convolution module of `kernel` taps in every encoder
/// layer, and its config; the outputs are bit for bit those of `model` (each module's output
/// projection at zero, the rest initialised as a fresh module).
pub fn add_conv_modules<B: Backend>(
    model: SpeechModel<B>,
    config: &ModelConfig,
    kernel: usize,
) -> Result<(SpeechModel<B>, ModelConfig)> {
    let mut config = config.clone();
    if config.encoder.conv_module_kernel != 0 {
        return Err(ModelError::Config(format!(
            "encoder.conv_module_kernel: the encoder already has convolution modules ({} taps)",
            config.encoder.conv_module_kernel
        )));
    }
    config.encoder.conv_module_kernel = kernel;
    config.validate()?;
    let mut model = model;
    for layer in &mut model.encoder.layers {
        let device = layer.ffn_norm.gamma.device();
        let mut conv = ConvModule::new(config.d_model, kernel, config.dropout, &device);
        conv.pointwise_out = zeroed(conv.pointwise_out);
        layer.conv = Some(conv);
    }
    Ok((model, config))
}

/// `layer` with fresh parameter ids and its output projections at zero: the identity.
fn identity_copy<B: Backend>(layer: EncoderLayer<B>) -> EncoderLayer<B> {
    let mut layer = layer.map(&mut FreshIds);
    layer.self_attn.out_proj = zeroed(layer.self_attn.out_proj);
    layer.ffn.fc2 = zeroed(layer.ffn.fc2);
    if let Some(conv) = layer.conv.as_mut() {
        conv.pointwise_out = zeroed(conv.pointwise_out.clone());
    }
    layer
}

fn zeroed<B: Backend>(mut linear: Linear<B>) -> Linear<B> {
    linear.weight = Param::from_tensor(linear.weight.val().zeros_like());
    linear.bias = linear
        .bias
        .map(|b| Param::from_tensor(b.val().zeros_like()));
    linear
}

/// Gives every float parameter a new id, so that a copied layer's parameters are its own (the
/// optimizer keys its state by parameter id).
struct FreshIds;

impl<B: Backend> ModuleMapper<B> for FreshIds {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<B, D>>) -> Param<Tensor<B, D>> {
        Param::from_tensor(param.val())
    }
}
