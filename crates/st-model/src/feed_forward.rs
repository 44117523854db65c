//! Position-wise feed-forward block `fc2(dropout(relu(fc1(x))))`.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use mtla::dropout::Dropout;
use mtla::linear::linear;

#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    pub fc1: Linear<B>,
    pub fc2: Linear<B>,
    pub dropout: Dropout,
}

impl<B: Backend> FeedForward<B> {
    pub fn new(d_model: usize, ffn_dim: usize, dropout: f64, device: &B::Device) -> Self {
        Self {
            fc1: LinearConfig::new(d_model, ffn_dim).init(device),
            fc2: LinearConfig::new(ffn_dim, d_model).init(device),
            dropout: Dropout::new(dropout),
        }
    }

    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        linear(&self.fc2, self.dropout.forward(relu(linear(&self.fc1, x))))
    }
}
