//! Scaled dot-product attention with grouped K/V heads, shared by every kind:
//! MHA (`kv_heads = heads`), GQA, MQA (`kv_heads = 1`) and the absorbed latent attention of
//! MLA/MTLA, which is MQA-shaped: one "head" `[c ‖ k_R]` of size `r + d_R` whose first `r`
//! channels are also the value (paper Eq. 12/17).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::dropout::Dropout;
use burn::prelude::*;
use burn::tensor::activation::softmax;

/// Whether decode steps take the fused kernels ([`fused`](crate::fused) on the CPU,
/// `fused_gpu` on WebGPU/CUDA); on by default.
static FUSED_DECODE: AtomicBool = AtomicBool::new(true);

/// Whether the parallel (training) pass takes the fused forward and backward of
/// [`fused_parallel`](crate::fused_parallel) on the CPU; on by default.
static FUSED_PARALLEL: AtomicBool = AtomicBool::new(true);

/// Switches the fused parallel pass on or off for the whole process, so that a benchmark can
/// time the same layer with burn's ops in the same run (`mtla-st bench attention-train`).
pub fn set_fused_parallel(on: bool) {
    FUSED_PARALLEL.store(on, Ordering::Relaxed);
}

/// Switches the fused decode kernels on or off for the whole process, so that a benchmark can
/// time the same decode op by op (`mtla-st bench decode --unfused`).
pub fn set_fused_decode(on: bool) {
    FUSED_DECODE.store(on, Ordering::Relaxed);
}

/// Whether decode steps take the fused kernels (see [`set_fused_decode`]).
pub(crate) fn fused_decode() -> bool {
    FUSED_DECODE.load(Ordering::Relaxed)
}

/// `softmax(q k^T * scale + bias) v` for `q` `[batch, heads, queries, d_k]`,
/// `k` `[batch, kv_heads, keys, d_k]`, `v` `[batch, kv_heads, keys, d_v]`; query head `h` uses
/// K/V head `h / (heads / kv_heads)`. `bias` is `[rows, 1, queries, keys]` with `rows` 1 or
/// `batch` (0 visible, -1e9 hidden). Returns `[batch, heads, queries, d_v]`.
///
/// The query heads of a group are stacked into one matrix (`[kv_heads, group * queries, d_k]`),
/// so K/V are never repeated and a decode step is one matrix-matrix product per K/V head.
pub fn grouped_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<Tensor<B, 4>>,
    scale: f64,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    let [batch, heads, queries, d_k] = q.dims();
    let kv_heads = k.dims()[1];
    let d_v = v.dims()[3];
    let group = heads / kv_heads;
    if fused_decode() && (!B::ad_enabled(&q.device()) || dropout.prob == 0.0) {
        if let Some(out) = crate::fused::decode_attention(&q, &k, &v, bias.as_ref(), scale as f32) {
            return out;
        }
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        if let Some(out) =
            crate::fused_gpu::decode_attention(&q, &k, &v, bias.as_ref(), scale as f32)
        {
            return out;
        }
    }
    if let Some(out) = fused_parallel(&q, &k, &v, None, bias.as_ref(), scale, dropout) {
        return out;
    }
    let q = if group > 1 {
        q.reshape([batch, kv_heads, group * queries, d_k])
    } else {
        q
    };
    let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
    if let Some(bias) = bias {
        scores = add_bias(scores, bias, group);
    }
    let weights = dropout.forward(softmax(scores, 3));
    weights.matmul(v).reshape([batch, heads, queries, d_v])
}

/// Attention whose scores carry a decoupled RoPE part (MLA/MTLA, paper Eq. 11/12):
/// `softmax((q kᵀ + q_R k_Rᵀ) · scale + bias) v`, with `q_R` `[batch, heads, queries, d_R]` and
/// one RoPE key per token shared by all heads, `k_R` `[batch, 1, keys, d_R]`; other shapes as
/// [`grouped_attention`]. It equals `grouped_attention([q ‖ q_R], [k ‖ k_R], v)` with `k_R`
/// repeated over the K/V heads, which is how backends other than the CPU compute it; the CPU's
/// fused pass accumulates the second product into the same scores instead, so the two
/// concatenations (copies under autodiff, and their slicing gradients) are never made.
#[allow(clippy::too_many_arguments)]
pub fn decoupled_rope_attention<B: Backend>(
    q: Tensor<B, 4>,
    k: Tensor<B, 4>,
    q_rope: Tensor<B, 4>,
    k_rope: Tensor<B, 4>,
    v: Tensor<B, 4>,
    bias: Option<Tensor<B, 4>>,
    scale: f64,
    dropout: &Dropout,
) -> Tensor<B, 4> {
    let rope = Some((&q_rope, &k_rope));
    if let Some(out) = fused_parallel(&q, &k, &v, rope, bias.as_ref(), scale, dropout) {
        return out;
    }
    let kv_heads = k.dims()[1];
    let k_rope = if kv_heads > 1 {
        k_rope.repeat_dim(1, kv_heads)
    } else {
        k_rope
    };
    grouped_attention(
        Tensor::cat(vec![q, q_rope], 3),
        Tensor::cat(vec![k, k_rope], 3),
        v,
        bias,
        scale,
        dropout,
    )
}

/// The CPU's fused parallel pass ([`fused_parallel`](crate::fused_parallel)) unless it is
/// switched off or this is a decode step: a single query without gradients belongs to the decode
/// switch, so that `bench decode --unfused` still times burn's ops.
fn fused_parallel<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    rope: Option<(&Tensor<B, 4>, &Tensor<B, 4>)>,
    bias: Option<&Tensor<B, 4>>,
    scale: f64,
    dropout: &Dropout,
) -> Option<Tensor<B, 4>> {
    let decode_step = q.dims()[2] == 1 && !B::ad_enabled(&q.device());
    if !FUSED_PARALLEL.load(Ordering::Relaxed) || !crate::cpu::on_cpu::<B>() || decode_step {
        return None;
    }
    crate::fused_parallel::parallel_attention(q, k, v, rope, bias, scale as f32, dropout.prob)
}

/// `scores` `[batch, kv_heads, group * queries, keys]` plus `bias` `[rows, 1, queries | 1, keys]`
/// (rows 1 or `batch`), the per-query bias tiled over the heads of a group (rows of a group are
/// ordered (head, query)).
///
/// On the CPU backend the bias is first repeated (whole-row copies) to a shape whose add is one
/// vectorised pass: burn-flex adds any other broadcast element by element through a strided
/// index, which was ~4 % of a training update. Other backends broadcast in their kernels.
fn add_bias<B: Backend>(scores: Tensor<B, 4>, bias: Tensor<B, 4>, group: usize) -> Tensor<B, 4> {
    let [batch, kv_heads, rows_q, keys] = scores.dims();
    let [rows, _, bias_q, _] = bias.dims();
    if !crate::cpu::on_cpu::<B>() {
        let bias = if group > 1 && bias_q > 1 {
            bias.repeat_dim(2, group)
        } else {
            bias
        };
        return scores + bias;
    }
    let bias = bias.repeat_dim(2, rows_q / bias_q);
    if rows == 1 {
        let flat =
            scores.reshape([batch * kv_heads, rows_q * keys]) + bias.reshape([1, rows_q * keys]);
        flat.reshape([batch, kv_heads, rows_q, keys])
    } else {
        scores + bias.repeat_dim(1, kv_heads)
    }
}
