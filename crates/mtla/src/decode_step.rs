//! One decode step on the CPU backend as one host pass around its weight products: MLA/MTLA
//! ([`latent_step`]) and, so that the kinds are compared on equal terms, MHA/GQA/MQA ([`kv_step`]).
//!
//! Op by op ([`Mtla::step`]) a step is ~45 burn ops, most on a few thousand floats, and its
//! products of a few rows with the weights run on one core through a general GEMM that first
//! repacks each weight. At the paper's dims (batch 8, d 512, r 256) that was ~0.6 ms of fixed
//! cost per token. Here a step is: the query and `[c_raw ‖ k_R] = x W_DKV` projections,
//! `q_nope W_UK` and `o W_UV` per head (head-major operands) and `W_O`, each by
//! [`skinny`](crate::skinny) on all cores, the weights read once in place; between them one pass
//! over a few kilobytes: RoPE on `q_R` and `k_R`, the latent's LayerNorm, the hyper-network's
//! merge weight `w = sigmoid(fc_c(PE(chunk)) · fc_p(c))` (Eq. 13), the cache update `ĉ += w c`
//! in place (Sec. 4.3), and the attention over the cache by the [`fused`](crate::fused) kernel.
//! With enough rows the whole step runs on the pool with a second thread kept awake
//! ([`pool::awake`]), so its parallel parts split by work stealing rather than each waking a
//! thread; with fewer than [`PARALLEL_PAIRS`] (row, K/V head) pairs it stays on the calling
//! thread.
//! Other backends, other float types, and `set_fused_decode(false)` take the op-by-op step.

use std::any::TypeId;
use std::sync::Arc;

use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use burn::tensor::{DType, TensorData};

use crate::cache::{KvCache, LatentCache};
use crate::cpu::{back, cast};
use crate::fused::{view, Decode, SlotBias};
use crate::mha::MultiHeadAttention;
use crate::mtla::{next_chunk_index, Absorbed, Mtla};
use crate::skinny::{products, Packed};
use crate::{hypernet, layer_norm, pool, rope};

/// The fused step (see the module doc); `None`, with nothing changed, when it does not apply.
pub(crate) fn latent_step<B: Backend>(
    layer: &Mtla<B>,
    x: &Tensor<B, 3>,
    positions: &Tensor<B, 2>,
    cache: &mut LatentCache<B>,
) -> Option<Tensor<B, 3>> {
    if !applies(x, cache.slots.view().dtype()) {
        return None;
    }
    // One K/V head (the latent slots) per row.
    Some(run(x.dims()[0], |parallel| {
        fused_step(layer, x, positions, cache, parallel)
    }))
}

/// Runs `step(parallel)`: for `pairs` (row, K/V head) pairs from [`PARALLEL_PAIRS`] on, the
/// whole step on the pool with a second thread kept awake ([`pool::awake`]), so that its
/// parallel parts split by work stealing instead of each waking a thread; else on this thread.
fn run<T: Send>(pairs: usize, step: impl FnOnce(bool) -> T + Send) -> T {
    if pairs >= PARALLEL_PAIRS {
        pool::awake(|| step(true))
    } else {
        step(false)
    }
}

/// (row, K/V head) pairs, the attention's tasks, from which a step uses the pool. With fewer,
/// handing work to the pool and back costs more than it saves: MTLA s = 2 at the paper's dims,
/// one row, T 1024, 0.39-0.48 ms a step with the pool (3 rounds), 0.29-0.33 ms without; MHA with
/// one row (8 pairs) 0.30-0.47 ms with, 0.48-0.59 ms without.
const PARALLEL_PAIRS: usize = 4;

/// Whether a fused step applies: the CPU backend, fused decoding on, an f32 input and cache.
fn applies<B: Backend>(x: &Tensor<B, 3>, cache: DType) -> bool {
    TypeId::of::<B>() == TypeId::of::<Flex>()
        && crate::attend::fused_decode()
        && x.dtype() == DType::F32
        && cache == DType::F32
}

/// [`latent_step`] once it applies.
fn fused_step<B: Backend>(
    layer: &Mtla<B>,
    x: &Tensor<B, 3>,
    positions: &Tensor<B, 2>,
    cache: &mut LatentCache<B>,
    parallel: bool,
) -> Tensor<B, 3> {
    let [batch, _, _] = x.dims();
    let (heads, nope, d_r) = (
        layer.num_heads,
        layer.qk_nope_head_dim,
        layer.qk_rope_head_dim,
    );
    let r = layer.kv_lora_rank;
    let absorbed = cache
        .absorbed
        .get_or_insert_with(|| layer.absorbed().materialized());
    let weights = cache
        .step_weights
        .get_or_insert_with(|| Arc::new(LatentWeights::new(layer, absorbed)))
        .clone();
    let (_, input) = layer.query_input(x.clone());
    let q = weights.query.forward(host(input).storage(), parallel);
    let kv = weights.wkv_a.forward(host(x.clone()).storage(), parallel);
    let positions = host(positions.clone());
    let positions = positions.storage::<f32>();

    // Queries: `q_nope` head-major `[heads, batch, nope]` for the per-head product with `W_UK`;
    // `q_R` rotated.
    let per_head = nope + d_r;
    let mut q_nope = vec![0.0f32; heads * batch * nope];
    let mut q_rope = vec![0.0f32; batch * heads * d_r];
    let rotations: Vec<Rotation> = positions[..batch]
        .iter()
        .map(|&p| Rotation::new(p, d_r, layer.rope_theta as f32))
        .collect();
    for (b, rotation) in rotations.iter().enumerate() {
        for h in 0..heads {
            let row = &q[(b * heads + h) * per_head..][..per_head];
            q_nope[(h * batch + b) * nope..][..nope].copy_from_slice(&row[..nope]);
            rotation.apply(&row[nope..], &mut q_rope[(b * heads + h) * d_r..][..d_r]);
        }
    }

    // This token into the cache first: its query attends to its own slot too.
    write_slot(
        layer,
        &weights,
        &kv,
        &rotations,
        &x.device(),
        cache,
        parallel,
    );
    let q_latent = products(&q_nope, &weights.w_uk, None, parallel);

    // Latent queries `[q_nope W_UK ‖ q_R]` `[batch, heads, r + d_R]` over the slots, which are
    // also the values (Eq. 12).
    let mut queries = vec![0.0f32; batch * heads * (r + d_r)];
    for (i, query) in queries.chunks_exact_mut(r + d_r).enumerate() {
        let (b, h) = (i / heads, i % heads);
        query[..r].copy_from_slice(&q_latent[(h * batch + b) * r..][..r]);
        query[r..].copy_from_slice(&q_rope[i * d_r..][..d_r]);
    }
    // In place: the filled slots are a view of the cache's buffer.
    let slots = primitive(cache.slots.view());
    let bias = cache.slot_bias.as_ref().map(|b| host(b.view()));
    let shape = Decode {
        heads,
        kv_heads: 1,
        t: cache.slots.len(),
        d_k: r + d_r,
        d_v: r,
        scale: layer.scale() as f32,
        parallel,
    };
    let keys = view(&slots).expect("an f32 cache with a contiguous last axis");
    let latent = shape.attend(
        &queries,
        &keys,
        &keys,
        bias.as_ref().map(|b| SlotBias {
            data: b.storage(),
            per_row: b.layout().shape()[0] != 1,
        }),
    );

    // Output: per head `o_h W_UV,h` (head-major), then the heads side by side through `W_O`.
    let mut head_major = vec![0.0f32; heads * batch * r];
    for (i, o) in latent.chunks_exact(r).enumerate() {
        let (b, h) = (i / heads, i % heads);
        head_major[(h * batch + b) * r..][..r].copy_from_slice(o);
    }
    let values = products(&head_major, &weights.w_uv, None, parallel);
    let d_v = layer.v_head_dim;
    let mut merged = vec![0.0f32; batch * heads * d_v];
    for (i, out) in merged.chunks_exact_mut(d_v).enumerate() {
        let (b, h) = (i / heads, i % heads);
        out.copy_from_slice(&values[(h * batch + b) * d_v..][..d_v]);
    }
    let out = weights.wo.forward(&merged, parallel);
    let d_model = out.len() / batch;
    tensor::<B, 3>(out, [batch, 1, d_model])
}

/// Writes this token into the latent cache (Sec. 4.3): the new slot contents `w c` (or `c` for
/// MLA) after the latent's LayerNorm, with the hyper-network's merge weight
/// `w = sigmoid(fc_c(PE(chunk)) · fc_p(c))` (Eq. 13), and the rotated `k_R`, per row of
/// `kv = [c_raw ‖ k_R]`; added to the last slot (`ĉ += w c`) unless this token starts a chunk.
fn write_slot<B: Backend>(
    layer: &Mtla<B>,
    weights: &LatentWeights,
    kv: &[f32],
    rotations: &[Rotation],
    device: &B::Device,
    cache: &mut LatentCache<B>,
    parallel: bool,
) {
    let batch = rotations.len();
    let (r, d_r) = (layer.kv_lora_rank, layer.qk_rope_head_dim);
    let norm = Norm::new(&layer.kv_norm);
    let mut slot = vec![0.0f32; batch * (r + d_r)];
    for (b, slot) in slot.chunks_exact_mut(r + d_r).enumerate() {
        let row = &kv[b * (r + d_r)..][..r + d_r];
        norm.apply(&row[..r], &mut slot[..r]);
        rotations[b].apply(&row[r..], &mut slot[r..]);
    }
    let starts_chunk = cache.next_starts_chunk();
    if let Some((fc_c, fc_p)) = &weights.hypernet {
        let chunk = host(next_chunk_index(cache, starts_chunk));
        // `fc_c(PE(chunk))` once per distinct chunk index (rows share it unless padded).
        let mut indices: Vec<f32> = chunk.storage::<f32>()[..batch].to_vec();
        let of_row = indices.clone();
        indices.sort_by(f32::total_cmp);
        indices.dedup();
        let embedded: Vec<f32> = indices.iter().flat_map(|&i| sinusoidal(i, r)).collect();
        let latents: Vec<f32> = slot
            .chunks_exact(r + d_r)
            .flat_map(|s| s[..r].iter().copied())
            .collect();
        let position = fc_c.forward(&embedded, parallel);
        let latent = fc_p.forward(&latents, parallel);
        let low_rank = latent.len() / batch;
        for (b, slot) in slot.chunks_exact_mut(r + d_r).enumerate() {
            let distinct = indices.partition_point(|i| i.total_cmp(&of_row[b]).is_lt());
            let (p, l) = (
                &position[distinct * low_rank..][..low_rank],
                &latent[b * low_rank..][..low_rank],
            );
            let logit: f32 = p.iter().zip(l).map(|(p, l)| p * l).sum();
            let w = 1.0 / (1.0 + (-logit).exp());
            slot[..r].iter_mut().for_each(|v| *v *= w);
        }
    }
    if !starts_chunk {
        let last = host(cache.slots.last());
        for (b, slot) in slot.chunks_exact_mut(r + d_r).enumerate() {
            let last = &last.storage::<f32>()[b * (r + d_r)..][..r];
            slot[..r].iter_mut().zip(last).for_each(|(v, l)| *v += l);
        }
    }
    let slot = tensor::<B, 4>(slot, [batch, 1, 1, r + d_r]);
    let bias_slot = || Tensor::zeros([batch, 1, 1, 1], device);
    if starts_chunk {
        cache.slots.push(slot);
        if let Some(bias) = cache.slot_bias.as_mut() {
            bias.push(bias_slot());
        }
    } else {
        cache.slots.set_last(slot);
        if let Some(bias) = cache.slot_bias.as_mut() {
            bias.set_last(bias_slot());
        }
    }
    cache.tokens += 1;
}

/// A linear layer's weight [`Packed`] for the step's products, and its bias.
#[derive(Debug)]
pub(crate) struct PackedLinear {
    weight: Packed,
    bias: Option<Vec<f32>>,
}

impl PackedLinear {
    fn new<B: Backend>(layer: &Linear<B>) -> Self {
        let weight = host(layer.weight.val());
        let [d_in, d_out] = [weight.layout().shape()[0], weight.layout().shape()[1]];
        Self {
            weight: Packed::new(weight.storage(), 1, d_in, d_out),
            bias: layer
                .bias
                .as_ref()
                .map(|b| host(b.val()).storage::<f32>().to_vec()),
        }
    }

    /// `x W (+ b)` for the rows `x` `[m, d_in]` (burn stores `W` as `[in, out]`), on the pool
    /// if `parallel`.
    fn forward(&self, x: &[f32], parallel: bool) -> Vec<f32> {
        products(x, &self.weight, self.bias.as_deref(), parallel)
    }
}

/// The weights of [`latent_step`], packed once per decoding session and kept in its cache:
/// the query projection (`W_Q`, or `W_UQ` after the query LoRA), `W_DKV`, the hyper-network's
/// `fc_c` and `fc_p`, the absorbed `W_UK` and `W_UV` (per head) and `W_O`.
#[derive(Debug)]
pub(crate) struct LatentWeights {
    query: PackedLinear,
    wkv_a: PackedLinear,
    hypernet: Option<(PackedLinear, PackedLinear)>,
    w_uk: Packed,
    w_uv: Packed,
    wo: PackedLinear,
}

impl LatentWeights {
    /// From the layer and its absorbed up-projections, as made contiguous for the cache.
    fn new<B: Backend>(layer: &Mtla<B>, absorbed: &Absorbed<B>) -> Self {
        let per_head = |w: &Tensor<B, 4>| {
            let [_, heads, k, n] = w.dims();
            Packed::new(host(w.clone()).storage(), heads, k, n)
        };
        Self {
            query: PackedLinear::new(layer.query_projection()),
            wkv_a: PackedLinear::new(&layer.wkv_a),
            hypernet: layer
                .hypernet
                .as_ref()
                .map(|h| (PackedLinear::new(&h.fc_c), PackedLinear::new(&h.fc_p))),
            w_uk: per_head(&absorbed.w_uk),
            w_uv: per_head(&absorbed.w_uv),
            wo: PackedLinear::new(&layer.wo),
        }
    }
}

/// The weights of [`kv_step`] (`W_Q`, `W_K`, `W_V`, `W_O`), packed once per decoding session
/// and kept in its cache.
#[derive(Debug)]
pub(crate) struct KvWeights {
    q: PackedLinear,
    k: PackedLinear,
    v: PackedLinear,
    o: PackedLinear,
}

impl KvWeights {
    fn new<B: Backend>(layer: &MultiHeadAttention<B>) -> Self {
        Self {
            q: PackedLinear::new(&layer.q_proj),
            k: PackedLinear::new(&layer.k_proj),
            v: PackedLinear::new(&layer.v_proj),
            o: PackedLinear::new(&layer.out_proj),
        }
    }
}

/// The fused MHA/GQA/MQA step (see the module doc), so that the kinds are compared on equal
/// terms: the `W_Q`, `W_K`, `W_V` and `W_O` products by [`skinny`](crate::skinny), RoPE on the
/// host, the new key and value written into the cache in place, the attention by the
/// [`fused`](crate::fused) kernel; `None`, with nothing changed, when it does not apply.
pub(crate) fn kv_step<B: Backend>(
    layer: &MultiHeadAttention<B>,
    x: &Tensor<B, 3>,
    positions: &Tensor<B, 2>,
    cache: &mut KvCache<B>,
) -> Option<Tensor<B, 3>> {
    if !applies(x, cache.keys.view().dtype()) {
        return None;
    }
    Some(run(x.dims()[0] * layer.num_kv_heads, |parallel| {
        fused_kv_step(layer, x, positions, cache, parallel)
    }))
}

/// [`kv_step`] once it applies.
fn fused_kv_step<B: Backend>(
    layer: &MultiHeadAttention<B>,
    x: &Tensor<B, 3>,
    positions: &Tensor<B, 2>,
    cache: &mut KvCache<B>,
    parallel: bool,
) -> Tensor<B, 3> {
    let [batch, _, _] = x.dims();
    let (heads, kv_heads, d) = (layer.num_heads, layer.num_kv_heads, layer.head_dim);
    let weights = cache
        .step_weights
        .get_or_insert_with(|| Arc::new(KvWeights::new(layer)))
        .clone();
    let input = host(x.clone());
    let mut q = weights.q.forward(input.storage(), parallel);
    let mut k = weights.k.forward(input.storage(), parallel);
    let v = weights.v.forward(input.storage(), parallel);
    let positions = host(positions.clone());
    for (b, &position) in positions.storage::<f32>()[..batch].iter().enumerate() {
        let rotation = Rotation::new(position, d, layer.rope_theta as f32);
        for (rows, n) in [(&mut q, heads), (&mut k, kv_heads)] {
            rows[b * n * d..][..n * d]
                .chunks_exact_mut(d)
                .for_each(|head| rotation.rotate(head));
        }
    }
    cache.keys.push(tensor::<B, 4>(k, [batch, kv_heads, 1, d]));
    cache
        .values
        .push(tensor::<B, 4>(v, [batch, kv_heads, 1, d]));
    if let Some(bias) = cache.slot_bias.as_mut() {
        bias.push(Tensor::zeros([batch, 1, 1, 1], &x.device()));
    }
    let (keys, values) = (primitive(cache.keys.view()), primitive(cache.values.view()));
    let bias = cache.slot_bias.as_ref().map(|b| host(b.view()));
    let shape = Decode {
        heads,
        kv_heads,
        t: cache.keys.len(),
        d_k: d,
        d_v: d,
        scale: (d as f32).powf(-0.5),
        parallel,
    };
    let layout = "an f32 cache with a contiguous last axis";
    // `[batch, heads, d]`: the heads already side by side, as `W_O` takes them.
    let heads_out = shape.attend(
        &q,
        &view(&keys).expect(layout),
        &view(&values).expect(layout),
        bias.as_ref().map(|b| SlotBias {
            data: b.storage(),
            per_row: b.layout().shape()[0] != 1,
        }),
    );
    let out = weights.o.forward(&heads_out, parallel);
    let d_model = out.len() / batch;
    tensor::<B, 3>(out, [batch, 1, d_model])
}

/// `t` (a tensor of the CPU backend) as its flex primitive, as laid out (a view stays a view).
fn primitive<B: Backend, const D: usize>(t: Tensor<B, D>) -> FlexTensor {
    cast::<_, FlexTensor>(t.into_primitive().tensor())
        .ok()
        .expect("the fused step runs on the CPU backend")
}

/// `t` as a contiguous flex tensor whose storage starts at its first element (a copy only if
/// it is a strided view).
fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> FlexTensor {
    primitive(t).to_contiguous()
}

/// `values` as a tensor of shape `shape` on the CPU backend.
fn tensor<B: Backend, const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<B, D> {
    back(FlexTensor::from_data(TensorData::new(values, shape)))
}

/// RoPE on adjacent channel pairs for one position, as [`Rope`](crate::rope::Rope):
/// `(a, b) -> (a cos θ_k − b sin θ_k, b cos θ_k + a sin θ_k)`, `θ_k = pos · theta^(−2k/d)`.
struct Rotation {
    cos: Vec<f32>,
    sin: Vec<f32>,
}

impl Rotation {
    fn new(position: f32, dim: usize, theta: f32) -> Self {
        let angle = |k: usize| position * rope::frequency(k, dim, theta);
        Self {
            cos: (0..dim / 2).map(|k| angle(k).cos()).collect(),
            sin: (0..dim / 2).map(|k| angle(k).sin()).collect(),
        }
    }

    /// `out` = `x` rotated.
    fn apply(&self, x: &[f32], out: &mut [f32]) {
        out.copy_from_slice(x);
        self.rotate(out);
    }

    /// Rotates `x` in place.
    fn rotate(&self, x: &mut [f32]) {
        for (k, (c, s)) in self.cos.iter().zip(&self.sin).enumerate() {
            let (a, b) = (x[2 * k], x[2 * k + 1]);
            x[2 * k] = a * c - b * s;
            x[2 * k + 1] = b * c + a * s;
        }
    }
}

/// A LayerNorm's parameters on the host: `y = (x − μ) / sqrt(σ² + ε) · γ + β`.
struct Norm {
    gamma: FlexTensor,
    beta: Option<FlexTensor>,
}

impl Norm {
    fn new<B: Backend>(norm: &LayerNorm<B>) -> Self {
        Self {
            gamma: host(norm.gamma.val()),
            beta: norm.beta.as_ref().map(|b| host(b.val())),
        }
    }

    fn apply(&self, x: &[f32], out: &mut [f32]) {
        let (mean, inv) = layer_norm::moments(x, layer_norm::epsilon());
        let gamma = self.gamma.storage::<f32>();
        for ((o, v), g) in out.iter_mut().zip(x).zip(gamma) {
            *o = (v - mean) * inv * g;
        }
        if let Some(beta) = &self.beta {
            out.iter_mut()
                .zip(beta.storage::<f32>())
                .for_each(|(o, b)| *o += b);
        }
    }
}

/// The hyper-network's interleaved sinusoidal embedding of one chunk index, as
/// [`hypernet::sinusoidal`](crate::hypernet::sinusoidal).
fn sinusoidal(position: f32, dim: usize) -> Vec<f32> {
    hypernet::frequencies(dim)
        .into_iter()
        .enumerate()
        .map(|(c, frequency)| {
            let angle = position * frequency;
            if c % 2 == 0 {
                angle.sin()
            } else {
                angle.cos()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, Tolerance};

    use super::*;
    use crate::cache::Cache;
    use crate::config::{AttentionConfig, AttentionKind};
    use crate::mask::KeyPadding;
    use crate::Attention;

    type B = Flex;

    /// The fused MHA/GQA/MQA step and the op-by-op step give the same outputs and caches, with
    /// and without biases and a padded prefix.
    #[test]
    fn fused_kv_step_matches_the_op_by_op_step() {
        let device = Default::default();
        // 3 (row, K/V head) pairs stay on the calling thread, more use the pool (`PARALLEL_PAIRS`).
        for (kind, kv_heads, bias, batch) in [
            (AttentionKind::Mha, 4, true, 3),
            (AttentionKind::Gqa, 2, false, 1),
            (AttentionKind::Mqa, 1, true, 3),
            (AttentionKind::Mqa, 1, true, 5),
        ] {
            let config = AttentionConfig {
                kind,
                d_model: 32,
                num_heads: 4,
                num_kv_heads: kv_heads,
                bias: Some(bias),
                ..AttentionConfig::default()
            };
            let Attention::Mha(layer) = config.init::<B>(&device).unwrap() else {
                panic!("an MHA kind")
            };
            let (x, positions) = inputs(batch, 12, 32);
            let padding = KeyPadding::from_lengths(&[4, 2, 5, 5, 1][..batch], 5);
            for padding in [None, Some(&padding)] {
                let start = || {
                    let cache = layer.cache_prefix(
                        x.clone().slice(s![.., 0..5, ..]),
                        positions.clone().slice(s![.., 0..5]),
                        padding,
                    );
                    match cache.unwrap() {
                        Cache::Kv(cache) => cache,
                        Cache::Latent(_) => panic!("a K/V cache"),
                    }
                };
                let (mut fused, mut ops) = (start(), start());
                for i in 5..12 {
                    let xi = x.clone().slice(s![.., i..i + 1, ..]);
                    let pi = positions.clone().slice(s![.., i..i + 1]);
                    let y_fused =
                        kv_step(&layer, &xi, &pi, &mut fused).expect("the fused step runs");
                    let y_ops = layer.step_ops(xi, pi, &mut ops);
                    close(y_fused.to_data(), y_ops.to_data());
                    close(fused.keys.view().to_data(), ops.keys.view().to_data());
                    close(fused.values.view().to_data(), ops.values.view().to_data());
                    if let (Some(a), Some(b)) = (&fused.slot_bias, &ops.slot_bias) {
                        close(a.view().to_data(), b.view().to_data());
                    }
                }
            }
        }
    }

    /// Inputs `[batch, len, width]` and per-row RoPE positions `b + j`.
    fn inputs(batch: usize, len: usize, width: usize) -> (Tensor<B, 3>, Tensor<B, 2>) {
        let device = Default::default();
        let x = Tensor::<B, 3>::random([batch, len, width], Distribution::Normal(0., 1.), &device);
        let positions: Vec<f32> = (0..batch)
            .flat_map(|b| (0..len).map(move |j| (b + j) as f32))
            .collect();
        let positions =
            Tensor::<B, 1>::from_floats(positions.as_slice(), &device).reshape([batch, len]);
        (x, positions)
    }

    fn close(a: TensorData, b: TensorData) {
        a.assert_approx_eq::<f32>(&b, Tolerance::absolute(1e-5))
    }

    /// The fused step and the op-by-op step give the same outputs and caches, step after step
    /// (chunks opened and merged into), for MLA and MTLA s = 2, 3, with and without a low-rank
    /// query, biases and a padded prefix (hidden slots, an all-padding last chunk), on the calling
    /// thread and on the pool.
    #[test]
    fn fused_step_matches_the_op_by_op_step() {
        let device = Default::default();
        // 3 rows stay on the calling thread, 5 use the pool (`PARALLEL_PAIRS`).
        let variants = [
            (AttentionKind::Mla, 1, 0, false, 3),
            (AttentionKind::Mtla, 2, 0, true, 5),
            (AttentionKind::Mtla, 3, 12, false, 3),
            (AttentionKind::Mtla, 2, 12, true, 5),
        ];
        for (kind, down_rate, q_lora_rank, bias, batch) in variants {
            let config = AttentionConfig {
                kind,
                d_model: 32,
                num_heads: 4,
                num_kv_heads: 4,
                kv_lora_rank: 16,
                q_lora_rank,
                qk_nope_head_dim: 8,
                qk_rope_head_dim: 4,
                v_head_dim: 8,
                down_rate,
                bias: Some(bias),
                ..AttentionConfig::default()
            };
            let Attention::Latent(layer) = config.init::<B>(&device).unwrap() else {
                panic!("a latent kind")
            };
            let (prefix, steps) = (5, 7);
            let (x, positions) = inputs(batch, prefix + steps, 32);
            // Row 1's prefix ends in padding, row 2 has none.
            let padding = KeyPadding::from_lengths(&[4, 2, 5, 5, 1][..batch], prefix);
            let start = |padding| {
                layer
                    .cache_prefix(
                        x.clone().slice(s![.., 0..prefix, ..]),
                        positions.clone().slice(s![.., 0..prefix]),
                        padding,
                    )
                    .unwrap()
            };
            for padding in [None, Some(&padding)] {
                let (mut fused, mut ops) = (start(padding), start(padding));
                let (Cache::Latent(fused), Cache::Latent(ops)) = (&mut fused, &mut ops) else {
                    panic!("latent caches")
                };
                for i in prefix..prefix + steps {
                    let xi = x.clone().slice(s![.., i..i + 1, ..]);
                    let pi = positions.clone().slice(s![.., i..i + 1]);
                    let y_fused =
                        latent_step(&layer, &xi, &pi, fused).expect("the fused step runs");
                    let y_ops = layer.step_ops(xi, pi, ops);
                    close(y_fused.to_data(), y_ops.to_data());
                    close(fused.slots.view().to_data(), ops.slots.view().to_data());
                    assert_eq!(fused.tokens, ops.tokens);
                    close(fused.chunk_index.to_data(), ops.chunk_index.to_data());
                    if let (Some(a), Some(b)) = (&fused.slot_bias, &ops.slot_bias) {
                        close(a.view().to_data(), b.view().to_data());
                    }
                }
            }
        }
    }
}
