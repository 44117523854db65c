//! The encoder projector (authors' `EncoderProjectorConcat` with `ds_rate = 1`):
//! `Linear(d -> d/2) -> ReLU -> Linear(d/2 -> d)`, optionally followed by a LayerNorm
//! (`decoder.prefix_norm`, not in the paper); its output is the decoder's speech prefix.

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use mtla::layer_norm::layer_norm;
use mtla::linear::linear;

#[derive(Module, Debug)]
pub struct Projector<B: Backend> {
    pub linear1: Linear<B>,
    pub linear2: Linear<B>,
    pub norm: Option<LayerNorm<B>>,
}

impl<B: Backend> Projector<B> {
    pub fn new(d_model: usize, norm: bool, device: &B::Device) -> Self {
        Self {
            linear1: LinearConfig::new(d_model, d_model / 2).init(device),
            linear2: LinearConfig::new(d_model / 2, d_model).init(device),
            norm: norm.then(|| LayerNormConfig::new(d_model).init(device)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let y = linear(&self.linear2, relu(linear(&self.linear1, x)));
        match &self.norm {
            Some(norm) => layer_norm(norm, y),
            None => y,
        }
    }
}
