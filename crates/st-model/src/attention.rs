//! Plain multi-head attention (no RoPE): the encoder's self-attention and the cross-attention
//! of the classic layout. The decoder self-attention kinds live in the `mtla` crate.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use mtla::attend::grouped_attention;
use mtla::dropout::Dropout;
use mtla::heads::{merge_heads, split_heads};
use mtla::linear::linear;

#[derive(Module, Debug)]
pub struct MultiHeadAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub out_proj: Linear<B>,
    pub dropout: Dropout,
    pub heads: usize,
}

/// Projected keys and values of a memory, `[batch, heads, time, head_dim]` (computed once per
/// utterance for cross-attention).
#[derive(Debug, Clone)]
pub struct Memory<B: Backend> {
    pub keys: Tensor<B, 4>,
    pub values: Tensor<B, 4>,
}

impl<B: Backend> Memory<B> {
    /// Reorders rows (beam search).
    pub fn reorder(&mut self, rows: Tensor<B, 1, Int>) {
        self.keys = self.keys.clone().select(0, rows.clone());
        self.values = self.values.clone().select(0, rows);
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        2 * self.keys.shape().num_elements() * self.keys.dtype().size()
    }
}

impl<B: Backend> MultiHeadAttention<B> {
    pub fn new(d_model: usize, heads: usize, dropout: f64, device: &B::Device) -> Self {
        let lin = || LinearConfig::new(d_model, d_model).init(device);
        Self {
            q_proj: lin(),
            k_proj: lin(),
            v_proj: lin(),
            out_proj: lin(),
            dropout: Dropout::new(dropout),
            heads,
        }
    }

    fn split(&self, x: Tensor<B, 3>) -> Tensor<B, 4> {
        split_heads(x, self.heads)
    }

    /// Keys and values of `memory` `[batch, T, d]`.
    pub fn memory(&self, memory: Tensor<B, 3>) -> Memory<B> {
        Memory {
            keys: self.split(linear(&self.k_proj, memory.clone())),
            values: self.split(linear(&self.v_proj, memory)),
        }
    }

    /// `queries` `[batch, S, d]` attend to `memory`, with `key_bias` `[batch, 1, 1, T]`
    /// (0 / -1e9) hiding padded keys.
    pub fn attend(
        &self,
        queries: Tensor<B, 3>,
        memory: &Memory<B>,
        key_bias: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let d = queries.dims()[2];
        let q = self.split(linear(&self.q_proj, queries));
        let scale = ((d / self.heads) as f64).powf(-0.5);
        let out = grouped_attention(
            q,
            memory.keys.clone(),
            memory.values.clone(),
            key_bias,
            scale,
            &self.dropout,
        );
        linear(&self.out_proj, merge_heads(out))
    }
}
