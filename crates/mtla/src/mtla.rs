//! Multi-head Temporal Latent Attention (Deng & Woodland, 2025), and MLA as its special case
//! without the hyper-network.
//!
//! Per token the key/value input is compressed to a LayerNorm-ed latent `c = LN(x W_r)`
//! (`kv_lora_rank` = r) and a single RoPE key `k_R` shared by all heads (`qk_rope_head_dim`).
//! MTLA merges every `s = down_rate` consecutive latents into one cache slot,
//! `ĉ = Σ_{j in chunk} w_j c_j` with `w_j` from the [`HyperNetwork`], and keeps the newest
//! token's RoPE key per slot. Attention is computed in the latent space with the key/value
//! up-projections absorbed into the query and output sides (Eq. 12/17), so keys and values
//! are never materialised: `softmax((q W_UK ĉ^T + q_R k_R^T) / sqrt(d_nope + d_R)) ĉ W_UV W_O`.
//! (A parallel pass with many queries per key expands keys and values per head instead, when
//! that costs fewer operations: [`Mtla::expands`].)
//!
//! Training uses the chunk-wise partial sums `ĉ'` (a segmented cumulative sum, O(T r)) under
//! the stride-aware causal mask, which reproduces incremental decoding exactly.

use std::ops::Range;

use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};

use crate::dropout::Dropout;
use burn::prelude::*;

use crate::attend::{decoupled_rope_attention, grouped_attention};
use crate::cache::{Cache, GrowingBuffer, LatentCache};
use crate::config::{AttentionConfig, AttentionKind};
use crate::error::{MtlaError, Result};
use crate::heads::{merge_heads, split_heads};
use crate::hypernet::HyperNetwork;
use crate::layer_norm::layer_norm;
use crate::linear::linear;
use crate::mask::{bias_tensor, ChunkLayout, KeyPadding};
use crate::merge::merged_states;
use crate::mha::{check_inputs, check_step};
use crate::rope::Rope;

/// MTLA (with `hypernet`) or MLA (without; `down_rate` 1).
#[derive(Module, Debug)]
pub struct Mtla<B: Backend> {
    /// Plain query projection (`q_lora_rank == 0`).
    pub wq: Option<Linear<B>>,
    /// Low-rank query: `wq_b(q_norm(wq_a(x)))` (`q_lora_rank > 0`).
    pub wq_a: Option<Linear<B>>,
    pub q_norm: Option<LayerNorm<B>>,
    pub wq_b: Option<Linear<B>>,
    /// `x -> [c_raw ‖ k_R]`, size `r + d_R`.
    pub wkv_a: Linear<B>,
    pub kv_norm: LayerNorm<B>,
    /// Latent up-projection `r -> heads * (d_nope + d_v)`: `W_UK` and `W_UV`, absorbed.
    pub wkv_b: Linear<B>,
    pub wo: Linear<B>,
    pub hypernet: Option<HyperNetwork<B>>,
    pub dropout: Dropout,
    pub num_heads: usize,
    pub kv_lora_rank: usize,
    pub qk_nope_head_dim: usize,
    pub qk_rope_head_dim: usize,
    pub v_head_dim: usize,
    pub down_rate: usize,
    pub rope_theta: f64,
    pub d_model: usize,
}

/// The absorbed up-projections (paper Eq. 12): `W_UK` on the query side, `W_UV` on the output
/// side, per head.
#[derive(Debug, Clone)]
pub struct Absorbed<B: Backend> {
    /// `[1, heads, d_nope, r]`.
    pub w_uk: Tensor<B, 4>,
    /// `[1, heads, r, d_v]`.
    pub w_uv: Tensor<B, 4>,
}

impl<B: Backend> Absorbed<B> {
    /// Contiguous copies, made once per decoding session so that steps read dense matrices.
    pub fn materialized(&self) -> Self {
        Self {
            w_uk: self.w_uk.clone().reshape(self.w_uk.dims()),
            w_uv: self.w_uv.clone().reshape(self.w_uv.dims()),
        }
    }
}

/// Latents of a key/value input: the (partially) merged states and the RoPE keys.
struct Latents<B: Backend> {
    /// `ĉ'` `[batch, T, r]`: row `j` is the state of `j`'s chunk right after token `j`.
    states: Tensor<B, 3>,
    /// `k_R` `[batch, T, d_R]`, rotated, one per token.
    rope_keys: Tensor<B, 3>,
}

impl<B: Backend> Mtla<B> {
    /// Fresh weights for a validated latent `config` (MLA: no hyper-network, `down_rate` 1).
    pub fn new(config: &AttentionConfig, device: &B::Device) -> Self {
        let bias = config.effective_bias();
        let lin = |i, o| LinearConfig::new(i, o).with_bias(bias).init(device);
        let h = config.num_heads;
        let qk = config.qk_nope_head_dim + config.qk_rope_head_dim;
        let r = config.kv_lora_rank;
        let low_rank_q = config.q_lora_rank > 0;
        Self {
            wq: (!low_rank_q).then(|| lin(config.d_model, h * qk)),
            wq_a: low_rank_q.then(|| lin(config.d_model, config.q_lora_rank)),
            q_norm: low_rank_q.then(|| LayerNormConfig::new(config.q_lora_rank).init(device)),
            wq_b: low_rank_q.then(|| lin(config.q_lora_rank, h * qk)),
            wkv_a: lin(config.d_model, r + config.qk_rope_head_dim),
            kv_norm: LayerNormConfig::new(r).init(device),
            wkv_b: lin(r, h * (config.qk_nope_head_dim + config.v_head_dim)),
            wo: lin(h * config.v_head_dim, config.d_model),
            hypernet: (config.kind == AttentionKind::Mtla).then(|| HyperNetwork::new(r, device)),
            dropout: Dropout::new(config.dropout),
            num_heads: h,
            kv_lora_rank: r,
            qk_nope_head_dim: config.qk_nope_head_dim,
            qk_rope_head_dim: config.qk_rope_head_dim,
            v_head_dim: config.v_head_dim,
            down_rate: config.effective_down_rate(),
            rope_theta: config.rope_theta,
            d_model: config.d_model,
        }
    }

    /// Softmax scale `1/sqrt(d_nope + d_R)` (the authors' code; the paper writes `1/sqrt(d_h)`).
    pub(crate) fn scale(&self) -> f64 {
        ((self.qk_nope_head_dim + self.qk_rope_head_dim) as f64).powf(-0.5)
    }

    /// `wkv_b` viewed as `[1, r, heads, d_nope + d_v]` (burn stores linears as `[in, out]`); a
    /// view, so the absorbed projections below are strided views, never copies.
    fn up_projection(&self) -> Tensor<B, 4> {
        let per_head = self.qk_nope_head_dim + self.v_head_dim;
        self.wkv_b
            .weight
            .val()
            .reshape([1, self.kv_lora_rank, self.num_heads, per_head])
    }

    /// The absorbed up-projections as views of `wkv_b` (no copy; training follows the weights).
    pub fn absorbed(&self) -> Absorbed<B> {
        let nope = self.qk_nope_head_dim;
        let up = self.up_projection();
        Absorbed {
            // W_UK[h] = wkv_b rows [h, 0..nope]: [1, heads, nope, r].
            w_uk: up
                .clone()
                .slice(s![.., .., .., 0..nope])
                .permute([0, 2, 3, 1]),
            // W_UV[h]^T: [1, heads, r, d_v].
            w_uv: up
                .slice(s![.., .., .., nope..nope + self.v_head_dim])
                .permute([0, 2, 1, 3]),
        }
    }

    /// Queries per head, `q_nope` `[batch, heads, S, d_nope]` and the rotated `q_R`
    /// `[batch, heads, S, d_R]`.
    fn head_queries(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (projection, x) = self.query_input(x);
        let (h, nope, d_r) = (self.num_heads, self.qk_nope_head_dim, self.qk_rope_head_dim);
        let (weight, bias) = (
            projection.weight.val(),
            projection.bias.as_ref().map(|b| b.val()),
        );
        let [q_nope, q_rope] = head_parts(weight, bias, x, h, [0..nope, nope..nope + d_r]);
        (q_nope.swap_dims(1, 2), rope.apply(q_rope).swap_dims(1, 2))
    }

    /// The last linear of the query path: `W_Q`, or `W_UQ` with a low-rank query.
    pub(crate) fn query_projection(&self) -> &Linear<B> {
        match (&self.wq, &self.wq_b) {
            (Some(wq), _) => wq,
            (None, Some(b)) => b,
            _ => unreachable!("a query projection is always present"),
        }
    }

    /// The last linear of the query path and its input: `(W_Q, x)`, or with a low-rank query
    /// `(W_UQ, LN(x W_DQ))`; the queries are `input W (+ b)`, all heads side by side.
    pub(crate) fn query_input(&self, x: Tensor<B, 3>) -> (&Linear<B>, Tensor<B, 3>) {
        let input = match (&self.wq, &self.wq_a, &self.q_norm) {
            (None, Some(a), Some(norm)) => layer_norm(norm, linear(a, x)),
            _ => x,
        };
        (self.query_projection(), input)
    }

    /// Queries in the latent space: `[q_nope W_UK ‖ rope(q_R)]`, `[batch, heads, S, r + d_R]`.
    fn latent_queries(
        &self,
        x: Tensor<B, 3>,
        rope: &Rope<B>,
        absorbed: &Absorbed<B>,
    ) -> Tensor<B, 4> {
        let (q_nope, q_rope) = self.head_queries(x, rope);
        Tensor::cat(
            vec![per_head_matmul(q_nope, absorbed.w_uk.clone()), q_rope],
            3,
        )
    }

    /// Whether `queries` queries over `keys` states cost fewer multiply-adds with the keys and
    /// values expanded per head (`k_h = [ĉ' W_UK,hᵀ ‖ k_R]`, `v_h = ĉ' W_UV,hᵀ`, Eq. 11) than
    /// in the absorbed form (Eq. 12). Per query-key pair and head the absorbed scores and
    /// values cost `2r + d_R` against `d_nope + d_R + d_v`, but the expansion costs
    /// `r (d_nope + d_v)` per key and head, the absorption as much per query: expanding pays
    /// off when many queries attend (self-attention over a long target, the layer benchmark),
    /// not for a few target tokens over a long speech prefix, nor for a decode step.
    pub fn expands(&self, queries: usize, keys: usize) -> bool {
        let (r, d_r) = (self.kv_lora_rank, self.qk_rope_head_dim);
        let up = r * (self.qk_nope_head_dim + self.v_head_dim);
        let absorbed = queries * keys * (2 * r + d_r) + queries * up;
        let expanded = queries * keys * (self.qk_nope_head_dim + d_r + self.v_head_dim) + keys * up;
        expanded < absorbed
    }

    /// The expanded keys' content part `k_C = ĉ' W_UK,hᵀ` `[batch, heads, T, d_nope]` and the
    /// values `ĉ' W_UV,hᵀ` `[batch, heads, T, d_v]` of the states (Eq. 11; see
    /// [`expands`](Self::expands)); the RoPE part `k_R` stays one per token.
    fn expanded_keys_values(&self, latents: &Latents<B>) -> (Tensor<B, 4>, Tensor<B, 4>) {
        let (h, nope, d_v) = (self.num_heads, self.qk_nope_head_dim, self.v_head_dim);
        // The weight alone, as the absorbed form (and the authors' code): no `wkv_b` bias.
        let weight = self.wkv_b.weight.val();
        let states = latents.states.clone();
        let [keys, values] = head_parts(weight, None, states, h, [0..nope, nope..nope + d_v]);
        (keys.swap_dims(1, 2), values.swap_dims(1, 2))
    }

    /// Attention output `[batch, heads, S, r]` in the latent space -> `[batch, S, d]`.
    fn output(&self, latent: Tensor<B, 4>, absorbed: &Absorbed<B>) -> Tensor<B, 3> {
        let heads = per_head_matmul(latent, absorbed.w_uv.clone());
        linear(&self.wo, merge_heads(heads))
    }

    /// Latent `c` and rotated RoPE key of every key/value token.
    fn compress(&self, x: Tensor<B, 3>, rope: &Rope<B>) -> (Tensor<B, 3>, Tensor<B, 3>) {
        let [b, t, _] = x.dims();
        let (r, d_r) = (self.kv_lora_rank, self.qk_rope_head_dim);
        let (weight, bias) = (
            self.wkv_a.weight.val(),
            self.wkv_a.bias.as_ref().map(|b| b.val()),
        );
        let [c, k_rope] = head_parts(weight, bias, x, 1, [0..r, r..r + d_r]);
        let c = layer_norm(&self.kv_norm, c.reshape([b, t, r]));
        (c, rope.apply(k_rope).reshape([b, t, d_r]))
    }

    /// Training-form states `ĉ'` (paper Sec. 4.2) as a segmented cumulative sum of `w_j c_j`
    /// inside each chunk; padding contributes nothing.
    fn latents(&self, x: Tensor<B, 3>, rope: &Rope<B>, layout: &ChunkLayout) -> Latents<B> {
        let (c, mut rope_keys) = self.compress(x, rope);
        if let Some(source) = layout.rope_source() {
            let [b, t, d_r] = rope_keys.dims();
            // Repeated on the host: see `cache_from` on stride-0 tensors and burn-cubecl 0.21.
            let source: Vec<i64> = source
                .iter()
                .flat_map(|&i| std::iter::repeat_n(i, d_r))
                .collect();
            let index = Tensor::<B, 1, Int>::from_ints(source.as_slice(), &rope_keys.device())
                .reshape([b, t, d_r]);
            rope_keys = rope_keys.gather(1, index);
        }
        let Some(hypernet) = &self.hypernet else {
            return Latents {
                states: c,
                rope_keys,
            };
        };
        let device = c.device();
        let t = c.dims()[1];
        let (rows, index) = layout.chunk_index();
        let index = Tensor::<B, 1>::from_floats(index.as_slice(), &device).reshape([rows, t]);
        let (pos, lat) = hypernet.projections(c.clone(), index);
        Latents {
            states: merged_states(c, pos, lat, layout.keep().as_deref(), self.down_rate),
            rope_keys,
        }
    }

    /// Attention of latent queries over `slots` `[batch, 1, T, r + d_R]` (a view of the cache:
    /// only slicing and transposition, no copy): the first `r` channels are also the values.
    fn attend(
        &self,
        q: Tensor<B, 4>,
        slots: Tensor<B, 4>,
        bias: Option<Tensor<B, 4>>,
        absorbed: &Absorbed<B>,
    ) -> Tensor<B, 3> {
        let values = slots.clone().slice(s![.., .., .., 0..self.kv_lora_rank]);
        self.output(
            grouped_attention(q, slots, values, bias, self.scale(), &self.dropout),
            absorbed,
        )
    }

    /// Shared by `forward` and `prefill`: outputs for the last `S` positions and the latents.
    fn run(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<(Tensor<B, 3>, Latents<B>)> {
        let [_, s, _] = check_inputs(&queries, &keys_values, &positions, padding, self.d_model)?;
        let t = keys_values.dims()[1];
        let rope = Rope::new(positions, self.qk_rope_head_dim, self.rope_theta);
        let layout = ChunkLayout::new(self.down_rate, t, padding);
        let (rows, bias) = layout.bias(s);
        let bias = bias_tensor(rows, s, t, bias, &queries.device(), queries.dtype());
        let latents = self.latents(keys_values, &rope, &layout);
        let (q_nope, q_rope) = self.head_queries(queries, &rope.tail(s));
        let rope_keys = latents.rope_keys.clone().unsqueeze_dim(1);
        if self.expands(s, t) {
            let (keys, values) = self.expanded_keys_values(&latents);
            let heads = decoupled_rope_attention(
                q_nope,
                keys,
                q_rope,
                rope_keys,
                values,
                Some(bias),
                self.scale(),
                &self.dropout,
            );
            return Ok((linear(&self.wo, merge_heads(heads)), latents));
        }
        // Absorbed (Eq. 12): latent queries `q_nope W_UK` over the states, which are also the
        // values.
        let absorbed = self.absorbed();
        let states = latents.states.clone().unsqueeze_dim(1);
        let latent = decoupled_rope_attention(
            per_head_matmul(q_nope, absorbed.w_uk.clone()),
            states.clone(),
            q_rope,
            rope_keys,
            states,
            Some(bias),
            self.scale(),
            &self.dropout,
        );
        Ok((self.output(latent, &absorbed), latents))
    }

    /// Training / teacher forcing: `queries` `[batch, S, d]` are the last `S` positions of
    /// `keys_values` `[batch, T, d]`; each attends to the states the incremental decoder would
    /// hold at its position (stride-aware causal mask; padding hidden and never merged).
    /// `positions` `[batch, T]` are the RoPE positions. Returns `[batch, S, d]`.
    pub fn forward(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<Tensor<B, 3>> {
        Ok(self.run(queries, keys_values, positions, padding)?.0)
    }

    /// As [`forward`](Self::forward), and returns the compressed cache after all `T` tokens:
    /// one slot per chunk, the chunk-end states plus the (possibly partial) last chunk
    /// (the reference's `recompute_prompt_attn = false` prefix path).
    pub fn prefill(
        &self,
        queries: Tensor<B, 3>,
        keys_values: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        padding: Option<&KeyPadding>,
    ) -> Result<(Tensor<B, 3>, Cache<B>)> {
        let t = keys_values.dims()[1];
        let (out, latents) = self.run(queries, keys_values, positions, padding)?;
        Ok((
            out,
            self.cache_from(latents, &ChunkLayout::new(self.down_rate, t, padding)),
        ))
    }

    /// The cache after the key/value tokens alone, without computing any output: how a
    /// decoder puts its speech prefix into every layer before the first target token.
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
            self.d_model,
        )?;
        let rope = Rope::new(positions, self.qk_rope_head_dim, self.rope_theta);
        let layout = ChunkLayout::new(self.down_rate, t, padding);
        let latents = self.latents(keys_values, &rope, &layout);
        Ok(self.cache_from(latents, &layout))
    }

    /// Keeps one slot per chunk of the training-form states: the chunk-end rows, plus the
    /// last row when the last chunk is still open.
    fn cache_from(&self, latents: Latents<B>, layout: &ChunkLayout) -> Cache<B> {
        let [b, t, _] = latents.states.dims();
        let (device, dtype) = (latents.states.device(), latents.states.dtype());
        let s = self.down_rate;
        let ends: Vec<i64> = (0..t.div_ceil(s))
            .map(|c| (((c + 1) * s).min(t) - 1) as i64)
            .collect();
        let ends = Tensor::<B, 1, Int>::from_ints(ends.as_slice(), &device);
        let slots = Tensor::cat(
            vec![
                latents.states.select(1, ends.clone()),
                latents.rope_keys.select(1, ends),
            ],
            2,
        );
        let last = layout.last_chunk_state();
        let column = |values: Vec<f32>| {
            Tensor::<B, 1>::from_floats(values.as_slice(), &device).reshape([values.len(), 1])
        };
        // One value per row, built on the host: burn-cubecl 0.21 reshapes a stride-0 (expanded)
        // tensor as if it were contiguous, so an expanded row 1 read past the data on WebGPU/CUDA.
        let per_row = |v: Vec<f32>| -> Vec<f32> { (0..b).map(|row| v[row % v.len()]).collect() };
        let chunk_index = column(per_row(last.iter().map(|(i, _)| *i).collect()));
        let last_empty = layout.padding.map(|_| {
            column(
                last.iter()
                    .map(|(_, nonempty)| f32::from(!nonempty))
                    .collect(),
            )
        });
        let slot_bias = layout.slot_bias().map(|bias| {
            let n = bias.len() / b;
            GrowingBuffer::new(bias_tensor(b, 1, n, bias, &device, dtype), 3)
        });
        Cache::Latent(LatentCache {
            slots: GrowingBuffer::new(slots.unsqueeze_dim(1), 2),
            tokens: t,
            down_rate: s,
            chunk_index,
            last_empty,
            slot_bias,
            absorbed: Some(self.absorbed().materialized()),
            step_weights: None,
        })
    }

    /// One new token per row, `x` `[batch, 1, d]` at RoPE `positions` `[batch, 1]`. With the
    /// paper's 1-based counter `n` over the whole prefix + target sequence: if `n % s == 1`
    /// a slot `w c` is appended, otherwise `w c` is added into the last slot in place and its
    /// RoPE key overwritten (Sec. 4.1, 4.3). The query then attends to every slot.
    pub fn step(
        &self,
        x: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        cache: &mut Cache<B>,
    ) -> Result<Tensor<B, 3>> {
        let Cache::Latent(cache) = cache else {
            return Err(MtlaError::Cache(
                "an MLA/MTLA layer was given an MHA/GQA/MQA cache".into(),
            ));
        };
        check_step(&x, &positions, cache.slots.batch(), self.d_model)?;
        if let Some(y) = crate::decode_step::latent_step(self, &x, &positions, cache) {
            return Ok(y);
        }
        Ok(self.step_ops(x, positions, cache))
    }

    /// [`step`](Self::step) with burn's ops (every backend; the CPU fuses it,
    /// [`decode_step`](crate::decode_step)).
    pub(crate) fn step_ops(
        &self,
        x: Tensor<B, 3>,
        positions: Tensor<B, 2>,
        cache: &mut LatentCache<B>,
    ) -> Tensor<B, 3> {
        let rope = Rope::new(positions, self.qk_rope_head_dim, self.rope_theta);
        let absorbed = cache
            .absorbed
            .get_or_insert_with(|| self.absorbed().materialized())
            .clone();
        let q = self.latent_queries(x.clone(), &rope, &absorbed);
        let (c, k_rope) = self.compress(x, &rope);
        let starts_chunk = cache.next_starts_chunk();
        let weighted = match &self.hypernet {
            Some(hypernet) => {
                let index = next_chunk_index(cache, starts_chunk);
                c.clone() * hypernet.weights(c, index)
            }
            None => c,
        };
        if starts_chunk {
            cache
                .slots
                .push(Tensor::cat(vec![weighted, k_rope], 2).unsqueeze_dim(1));
            if let Some(bias) = cache.slot_bias.as_mut() {
                bias.push(Tensor::zeros(
                    [bias.batch(), 1, 1, 1],
                    (&q.device(), q.dtype()),
                ));
            }
        } else {
            let merged = cache
                .slots
                .last()
                .slice(s![.., .., .., 0..self.kv_lora_rank])
                + weighted.unsqueeze_dim(1);
            cache
                .slots
                .set_last(Tensor::cat(vec![merged, k_rope.unsqueeze_dim(1)], 3));
            if let Some(bias) = cache.slot_bias.as_mut() {
                bias.set_last(Tensor::zeros(
                    [bias.batch(), 1, 1, 1],
                    (&q.device(), q.dtype()),
                ));
            }
        }
        cache.tokens += 1;
        self.attend(
            q,
            cache.slots.view(),
            cache.slot_bias.as_ref().map(|b| b.view()),
            &absorbed,
        )
    }
}

/// The hyper-network index of the chunk the next token joins, `[batch, 1]`, updating the
/// cache's chunk bookkeeping: a new chunk follows the last one unless that held only padding.
pub(crate) fn next_chunk_index<B: Backend>(
    cache: &mut LatentCache<B>,
    starts_chunk: bool,
) -> Tensor<B, 2> {
    if starts_chunk {
        let advance = match cache.last_empty.take() {
            Some(empty) => {
                cache.last_empty = Some(empty.zeros_like());
                empty.neg().add_scalar(1.0)
            }
            None => cache.chunk_index.ones_like(),
        };
        cache.chunk_index = cache.chunk_index.clone() + advance;
    } else if let Some(empty) = cache.last_empty.as_mut() {
        *empty = empty.zeros_like();
    }
    cache.chunk_index.clone()
}

/// Channel ranges `ranges` of every head of the projection `x weight (+ bias)` (`heads` heads,
/// each `weight.dims()[1] / heads` wide) for `x` `[batch, S, d_in]`, each as
/// `[batch, S, heads, range.len()]`.
///
/// Under autodiff each part is its own product with the matching columns of the weight (a copy
/// of the small weight, not of the activations): slicing the whole output instead costs, backward,
/// a zero-filled output-sized gradient per slice. Without gradients one product and views of it
/// cost least (a decode step would otherwise copy the weights at every token).
fn head_parts<B: Backend, const N: usize>(
    weight: Tensor<B, 2>,
    bias: Option<Tensor<B, 1>>,
    x: Tensor<B, 3>,
    heads: usize,
    ranges: [Range<usize>; N],
) -> [Tensor<B, 4>; N] {
    let [b, s, d] = x.dims();
    let width = weight.dims()[1] / heads;
    let x = x.reshape([b * s, d]);
    let project = |weight: Tensor<B, 2>, bias: Option<Tensor<B, 2>>| {
        let y = x.clone().matmul(weight);
        match bias {
            Some(bias) => y + bias,
            None => y,
        }
    };
    if !B::ad_enabled(&x.device()) {
        let y = project(weight, bias.map(|b| b.unsqueeze())).reshape([b, s, heads, width]);
        return ranges.map(|range| y.clone().slice(s![.., .., .., range]));
    }
    ranges.map(|range| {
        let n = range.len();
        let columns = |w: Tensor<B, 2>| {
            let rows = w.dims()[0];
            w.reshape([rows, heads, width])
                .slice(s![.., .., range.clone()])
                .reshape([rows, heads * n])
        };
        let y = project(
            columns(weight.clone()),
            bias.clone().map(|b| columns(b.unsqueeze())),
        );
        // A view of `y`, whose gradient (heads-major, from the attention) goes back through the
        // heads' merge copy instead of burn-flex's element-by-element reshape.
        split_heads(y.reshape([b, s, heads * n]), heads).swap_dims(1, 2)
    })
}

/// `x[b, h] @ w[0, h]` for every head: `x` `[batch, heads, S, k]`, `w` `[1, heads, k, n]`. With one
/// query per row (decoding) the batch rows of a head are stacked into one matrix (a transposed
/// view, no copy), so each head is one product with `batch` rows instead of `batch` products
/// with one row.
fn per_head_matmul<B: Backend>(x: Tensor<B, 4>, w: Tensor<B, 4>) -> Tensor<B, 4> {
    if x.dims()[2] == 1 {
        x.swap_dims(0, 2).matmul(w).swap_dims(0, 2)
    } else {
        x.matmul(w)
    }
}
