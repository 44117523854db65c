//! One type for every attention kind, so the decoder and the beam search are written once.

use burn::prelude::*;

use crate::cache::Cache;
use crate::error::Result;
use crate::mask::KeyPadding;
use crate::mha::MultiHeadAttention;
use crate::mtla::Mtla;

/// A decoder self-attention layer of any kind (built by [`AttentionConfig::init`](crate::AttentionConfig::init)).
#[derive(Module, Debug)]
pub enum Attention<B: Backend> {
    /// MHA, GQA or MQA.
    Mha(MultiHeadAttention<B>),
    /// MLA or MTLA.
    Latent(Mtla<B>),
}

impl<B: Backend> Attention<B> {
    /// Training / teacher forcing: `queries` `[batch, S, d]` are the last `S` positions of
    /// `keys_values` `[batch, T, d]` (e.g. targets after a speech prefix), with RoPE
    /// `positions` `[batch, T]` and optional key padding. Returns `[batch, S, d]`.
    pub fn forward(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<Tensor<B, 3>> {
        match self {
            Self::Mha(m) => m.forward(queries, keys_values, positions, padding),
            Self::Latent(m) => m.forward(queries, keys_values, positions, padding),
        }
    }

    /// Puts a prefix (and the first target token(s)) into a fresh cache in one call and returns
    /// the outputs for `queries`, as [`forward`](Self::forward) would.
    pub fn prefill(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<(Tensor<B, 3>, Cache<B>)> {
        match self {
            Self::Mha(m) => m.prefill(queries, keys_values, positions, padding),
            Self::Latent(m) => m.prefill(queries, keys_values, positions, padding),
        }
    }

    /// A fresh cache holding `keys_values` `[batch, T, d]` (at RoPE `positions` `[batch, T]`),
    /// computing no output: the decoder's way to put its speech prefix into every layer.
    pub fn cache_prefix(
        &self,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<Cache<B>> {
        match self {
            Self::Mha(m) => m.cache_prefix(keys_values, positions, padding),
            Self::Latent(m) => m.cache_prefix(keys_values, positions, padding),
        }
    }

    /// One new token per row, `x` `[batch, 1, d]` at RoPE `positions` `[batch, 1]`; grows or
    /// merges the cache in place. Returns `[batch, 1, d]`.
    pub fn step(
        &self,
        x: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        cache: &mut Cache<B>,
    ) -> Result<Tensor<B, 3>> {
        match self {
            Self::Mha(m) => m.step(x, positions, cache),
            Self::Latent(m) => m.step(x, positions, cache),
        }
    }
}
