//! Multi-head attention with RoPE, and its grouped variants GQA (`num_kv_heads` K/V heads) and
//! MQA (one K/V head), as the paper's baselines (fairseq `RotaryMultiheadAttention` /
//! `GQARotaryMultiheadAttention`): q/k/v/o projections with bias, RoPE on the whole head
//! (adjacent pairs, theta 10000), scores scaled by `1/sqrt(d_head)`.

use burn::nn::{Linear, LinearConfig};

use crate::dropout::Dropout;
use burn::prelude::*;

use crate::attend::grouped_attention;
use crate::cache::{Cache, GrowingBuffer, KvCache};
use crate::config::AttentionConfig;
use crate::error::{MtlaError, Result};
use crate::heads::{merge_heads, split_heads};
use crate::linear::linear;
use crate::mask::{bias_tensor, ChunkLayout, KeyPadding};
use crate::rope::Rope;

/// MHA / GQA / MQA self-attention.
#[derive(Module, Debug)]
pub struct MultiHeadAttention<B: Backend> {
    pub q_proj: Linear<B>,
    pub k_proj: Linear<B>,
    pub v_proj: Linear<B>,
    pub out_proj: Linear<B>,
    pub dropout: Dropout,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
}

/// Rotated keys and values of a key/value input, `[batch, kv_heads, time, head_dim]`.
struct KeysValues<B: Backend> {
    keys: Tensor<B, 4>,
    values: Tensor<B, 4>,
}

impl<B: Backend> MultiHeadAttention<B> {
    /// Fresh weights for a validated `config`.
    pub fn new(config: &AttentionConfig, device: &B::Device) -> Self {
        let d = config.d_model;
        let head_dim = d / config.num_heads;
        let kv = config.kv_heads() * head_dim;
        let lin = |i, o| {
            LinearConfig::new(i, o)
                .with_bias(config.effective_bias())
                .init(device)
        };
        Self {
            q_proj: lin(d, d),
            k_proj: lin(d, kv),
            v_proj: lin(d, kv),
            out_proj: lin(d, d),
            dropout: Dropout::new(config.dropout),
            num_heads: config.num_heads,
            num_kv_heads: config.kv_heads(),
            head_dim,
            rope_theta: config.rope_theta,
        }
    }

    fn d_model(&self) -> usize {
        self.num_heads * self.head_dim
    }

    /// `[batch, time, width]` -> `[batch, time, heads, head_dim]` (a view).
    fn split(&self, x: Tensor<B, 3>, heads: usize) -> Tensor<B, 4> {
        let [b, t, _] = x.dims();
        x.reshape([b, t, heads, self.head_dim])
    }

    /// Rotated queries `[batch, heads, S, head_dim]`.
    fn queries(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> Tensor<B, 4> {
        rope.apply(self.split(linear(&self.q_proj, x), self.num_heads))
            .swap_dims(1, 2)
    }

    fn keys_values(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> KeysValues<B> {
        KeysValues {
            keys: rope
                .apply(self.split(linear(&self.k_proj, x.clone()), self.num_kv_heads))
                .swap_dims(1, 2),
            // Through `split_heads`: its gradient merges back in `d`-runs, where a reshape of
            // the swapped gradient is burn-flex's element-by-element copy.
            values: split_heads(linear(&self.v_proj, x), self.num_kv_heads),
        }
    }

    fn output(&self, heads: Tensor<B, 4>) -> Tensor<B, 3> {
        linear(&self.out_proj, merge_heads(heads))
    }

    fn attend(
        &self,
        q: Tensor<B, 4>,
        kv: &KeysValues<B>,
        bias: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let scale = (self.head_dim as f64).powf(-0.5);
        let heads = grouped_attention(
            q,
            kv.keys.clone(),
            kv.values.clone(),
            bias,
            scale,
            &self.dropout,
        );
        self.output(heads)
    }

    /// Shared by `forward` and `prefill`: outputs for the last `S` positions and the K/V.
    fn run(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<(Tensor<B, 3>, KeysValues<B>)> {
        let [_, s, _] = check_inputs(&queries, &keys_values, &positions, padding, self.d_model())?;
        let t = keys_values.dims()[1];
        let rope = Rope::new(positions, self.head_dim, self.rope_theta);
        let q = self.queries(queries, &rope.tail(s));
        let kv = self.keys_values(keys_values, &rope);
        let layout = ChunkLayout::new(1, t, padding);
        let (rows, bias) = layout.bias(s);
        let bias = bias_tensor(rows, s, t, bias, &q.device(), q.dtype());
        Ok((self.attend(q, &kv, Some(bias)), kv))
    }

    /// Training / teacher forcing: `queries` `[batch, S, d]` are the last `S` positions of
    /// `keys_values` `[batch, T, d]`; causal attention over `[prefix; targets]`, padded keys
    /// hidden. `positions` `[batch, T]` are the RoPE positions. Returns `[batch, S, d]`.
    pub fn forward(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<Tensor<B, 3>> {
        Ok(self.run(queries, keys_values, positions, padding)?.0)
    }

    /// As [`forward`](Self::forward), and returns the cache holding all `T` keys/values.
    pub fn prefill(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<(Tensor<B, 3>, Cache<B>)> {
        let (out, kv) = self.run(queries, keys_values, positions, padding)?;
        Ok((out, cache_from(kv, padding)))
    }

    /// The cache after the key/value tokens alone, without computing any output.
    pub fn cache_prefix(
        &self,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<Cache<B>> {
        let t = keys_values.dims()[1];
        check_inputs(
            &keys_values.clone().slice(s![.., t - 1..t, ..]),
            &keys_values,
            &positions,
            padding,
            self.d_model(),
        )?;
        let rope = Rope::new(positions, self.head_dim, self.rope_theta);
        Ok(cache_from(self.keys_values(keys_values, &rope), padding))
    }

    /// One new token per row, `x` `[batch, 1, d]` at RoPE `positions` `[batch, 1]`; appends
    /// its key/value to the cache and attends over everything cached.
    pub fn step(
        &self,
        x: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        cache: &mut Cache<B>,
    ) -> Result<Tensor<B, 3>> {
        let Cache::Kv(cache) = cache else {
            return Err(MtlaError::Cache(
                "an MHA/GQA/MQA layer was given a latent (MLA/MTLA) cache".into(),
            ));
        };
        check_step(&x, &positions, cache.keys.batch(), self.d_model())?;
        if let Some(y) = crate::decode_step::kv_step(self, &x, &positions, cache) {
            return Ok(y);
        }
        Ok(self.step_ops(x, positions, cache))
    }

    /// [`step`](Self::step) with burn's ops (every backend; the CPU fuses it,
    /// `decode_step::kv_step`).
    pub(crate) fn step_ops(
        &self,
        x: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        cache: &mut KvCache<B>,
    ) -> Tensor<B, 3> {
        let rope = Rope::new(positions, self.head_dim, self.rope_theta);
        let q = self.queries(x.clone(), &rope);
        let new = self.keys_values(x, &rope);
        cache.keys.push(new.keys);
        cache.values.push(new.values);
        if let Some(bias) = cache.slot_bias.as_mut() {
            bias.push(Tensor::zeros(
                [bias.batch(), 1, 1, 1],
                (&q.device(), q.dtype()),
            ));
        }
        let kv = KeysValues {
            keys: cache.keys.view(),
            values: cache.values.view(),
        };
        self.attend(q, &kv, cache.slot_bias.as_ref().map(|b| b.view()))
    }
}

/// A cache holding `kv`, with padded keys hidden.
fn cache_from<B: Backend>(kv: KeysValues<B>, padding: Option<&KeyPadding>) -> Cache<B> {
    let [b, _, t, _] = kv.keys.dims();
    let device = kv.keys.device();
    let slot_bias = padding
        .and_then(KeyPadding::key_bias)
        .map(|bias| GrowingBuffer::new(bias_tensor(b, 1, t, bias, &device, kv.keys.dtype()), 3));
    Cache::Kv(KvCache {
        keys: GrowingBuffer::new(kv.keys, 2),
        values: GrowingBuffer::new(kv.values, 2),
        slot_bias,
        step_weights: None,
    })
}

/// Validates forward/prefill inputs; returns the query dims.
pub(crate) fn check_inputs<B: Backend>(
    queries: &Tensor<B, 3>,
    keys_values: &Tensor<B, 3>,
    positions: &Tensor<B, 2>,
    padding: Option<&KeyPadding>,
    d_model: usize,
) -> Result<[usize; 3]> {
    let q = queries.dims();
    let kv = keys_values.dims();
    let p = positions.dims();
    if q[2] != d_model || kv[2] != d_model {
        return Err(MtlaError::Shape(format!(
            "the layer expects width {d_model}, got queries {q:?} and keys/values {kv:?}"
        )));
    }
    if q[0] != kv[0] || p != [kv[0], kv[1]] || q[1] == 0 || q[1] > kv[1] {
        return Err(MtlaError::Shape(format!(
            "queries {q:?} must be the last positions of keys/values {kv:?}, with positions [batch, T] (got {p:?})"
        )));
    }
    if let Some(pad) = padding {
        if pad.batch() != kv[0] || pad.len() != kv[1] {
            return Err(MtlaError::Shape(format!(
                "padding covers [{}, {}] but keys/values are {kv:?}",
                pad.batch(),
                pad.len()
            )));
        }
    }
    Ok(q)
}

/// Validates a decode step's inputs against the cache's rows.
pub(crate) fn check_step<B: Backend>(
    x: &Tensor<B, 3>,
    positions: &Tensor<B, 2>,
    rows: usize,
    d_model: usize,
) -> Result<()> {
    let [b, s, d] = x.dims();
    if b != rows {
        return Err(MtlaError::Cache(format!(
            "the cache holds {rows} rows but the step got {b}; reorder it to the new batch first"
        )));
    }
    if s != 1 || d != d_model || positions.dims() != [b, 1] {
        return Err(MtlaError::Shape(format!(
            "a step takes x [batch, 1, {d_model}] and positions [batch, 1]; got {:?} and {:?}",
            x.dims(),
            positions.dims()
        )));
    }
    Ok(())
}
