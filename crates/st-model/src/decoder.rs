//! The decoder, in the paper's prefix layout or the classic cross-attention layout, with a
//! teacher-forced parallel forward and an incremental prefill/step over per-layer caches.
//!
//! Prefix layout (authors' `MTLADecoderOnlyLayer`): queries are the target tokens only; every
//! layer's self-attention keys/values are `[prefix ; LN(x)]` with the same projected encoder
//! output as prefix; the self-attention LayerNorm is applied before attention *and* after its
//! residual, the FFN is post-LN, and a final LayerNorm precedes the output projection.
//! Cross layout (fairseq pre-LN `TransformerDecoderLayer`): self-attention over targets,
//! cross-attention to the encoder output, FFN, each `x += drop(f(LN(x)))`.

use burn::nn::{
    Embedding, EmbeddingConfig, Initializer, LayerNorm, LayerNormConfig, Linear, LinearConfig,
};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::DType;
use mtla::dropout::Dropout;
use mtla::layer_norm::layer_norm;
use mtla::linear::linear;
use mtla::mask::bias_tensor;
use mtla::{Attention, Cache, KeyPadding};

use crate::attention::{Memory, MultiHeadAttention};
use crate::config::{DecoderStyle, ModelConfig};
use crate::error::Result;
use crate::feed_forward::FeedForward;
use crate::layout::DecoderLayout;

/// One prefix-layout layer.
#[derive(Module, Debug)]
pub struct PrefixLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub self_attn_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
    pub ffn_norm: LayerNorm<B>,
    pub dropout: Dropout,
}

/// One cross-attention-layout layer.
#[derive(Module, Debug)]
pub struct CrossLayer<B: Backend> {
    pub self_attn: Attention<B>,
    pub self_attn_norm: LayerNorm<B>,
    pub cross_attn: MultiHeadAttention<B>,
    pub cross_attn_norm: LayerNorm<B>,
    pub ffn: FeedForward<B>,
    pub ffn_norm: LayerNorm<B>,
    pub dropout: Dropout,
}

/// A decoder layer of either layout.
#[derive(Module, Debug)]
pub enum DecoderLayer<B: Backend> {
    Prefix(PrefixLayer<B>),
    Cross(CrossLayer<B>),
}

impl<B: Backend> PrefixLayer<B> {
    fn after_attention(&self, x: Tensor<B, 3>, attn: Tensor<B, 3>) -> Tensor<B, 3> {
        let x = layer_norm(&self.self_attn_norm, x + self.dropout.forward(attn));
        let h = self.dropout.forward(self.ffn.forward(x.clone()));
        layer_norm(&self.ffn_norm, x + h)
    }
}

impl<B: Backend> CrossLayer<B> {
    fn after_self_attention(
        &self,
        x: Tensor<B, 3>,
        attn: Tensor<B, 3>,
        memory: &Memory<B>,
        bias: Option<Tensor<B, 4>>,
    ) -> Tensor<B, 3> {
        let x = x + self.dropout.forward(attn);
        let cross =
            self.cross_attn
                .attend(layer_norm(&self.cross_attn_norm, x.clone()), memory, bias);
        let x = x + self.dropout.forward(cross);
        let h = self.ffn.forward(layer_norm(&self.ffn_norm, x.clone()));
        x + self.dropout.forward(h)
    }
}

impl<B: Backend> DecoderLayer<B> {
    fn new(config: &ModelConfig, device: &B::Device) -> Result<Self> {
        let d = config.d_model;
        let norm = || LayerNormConfig::new(d).init(device);
        let self_attn = config.decoder.attention.init(device)?;
        let ffn = FeedForward::new(d, config.decoder.ffn_dim, config.dropout, device);
        let dropout = Dropout::new(config.dropout);
        Ok(match config.decoder.style {
            DecoderStyle::Prefix => Self::Prefix(PrefixLayer {
                self_attn,
                self_attn_norm: norm(),
                ffn,
                ffn_norm: norm(),
                dropout,
            }),
            DecoderStyle::Cross => Self::Cross(CrossLayer {
                self_attn,
                self_attn_norm: norm(),
                cross_attn: MultiHeadAttention::new(
                    d,
                    config.decoder.cross_heads,
                    config.dropout,
                    device,
                ),
                cross_attn_norm: norm(),
                ffn,
                ffn_norm: norm(),
                dropout,
            }),
        })
    }
}

/// Everything the decoder keeps between steps: one self-attention cache per layer (the
/// speech prefix included, compressed for MLA/MTLA), cross-attention memories (cross layout),
/// and each row's next RoPE position.
#[derive(Debug, Clone)]
pub struct DecoderState<B: Backend> {
    pub caches: Vec<Cache<B>>,
    pub memories: Vec<Memory<B>>,
    pub memory_bias: Option<Tensor<B, 4>>,
    /// `[rows, 1]` RoPE position of the next token.
    pub next_position: Tensor<B, 2>,
    /// Tokens decoded so far.
    pub steps: usize,
}

impl<B: Backend> DecoderState<B> {
    /// Rows (batch × beams).
    pub fn rows(&self) -> usize {
        self.next_position.dims()[0]
    }

    /// Reorders rows for beam search: row `i` becomes old row `rows[i]`.
    pub fn reorder(&mut self, rows: Tensor<B, 1, Int>) {
        for cache in &mut self.caches {
            cache.reorder(rows.clone());
        }
        for memory in &mut self.memories {
            memory.reorder(rows.clone());
        }
        self.memory_bias = self.memory_bias.take().map(|b| b.select(0, rows.clone()));
        self.next_position = self.next_position.clone().select(0, rows);
    }

    /// Exact bytes of all layers' self-attention caches (keys/values or latents) plus the
    /// cross-attention memories.
    pub fn cache_bytes(&self) -> usize {
        self.caches.iter().map(Cache::bytes).sum::<usize>()
            + self.memories.iter().map(Memory::bytes).sum::<usize>()
    }

    /// Reserves room for `tokens` more tokens in every cache.
    pub fn reserve(&mut self, tokens: usize) {
        for cache in &mut self.caches {
            cache.reserve(tokens);
        }
    }
}

#[derive(Module, Debug)]
pub struct Decoder<B: Backend> {
    pub embed_tokens: Embedding<B>,
    pub layers: Vec<DecoderLayer<B>>,
    pub norm: LayerNorm<B>,
    pub output_projection: Linear<B>,
    pub dropout: Dropout,
    pub d_model: usize,
    pub down_rate: usize,
    /// Prefix layout (else cross).
    pub prefix: bool,
}

impl<B: Backend> Decoder<B> {
    pub fn new(config: &ModelConfig, device: &B::Device) -> Result<Self> {
        let d = config.d_model;
        Ok(Self {
            embed_tokens: EmbeddingConfig::new(config.vocab_size, d)
                .with_initializer(Initializer::Normal {
                    mean: 0.0,
                    std: (d as f64).powf(-0.5),
                })
                .init(device),
            layers: (0..config.decoder.layers)
                .map(|_| DecoderLayer::new(config, device))
                .collect::<Result<_>>()?,
            norm: LayerNormConfig::new(d).init(device),
            output_projection: LinearConfig::new(d, config.vocab_size)
                .with_bias(false)
                .init(device),
            dropout: Dropout::new(config.dropout),
            d_model: d,
            down_rate: config.down_rate(),
            prefix: config.decoder.style == DecoderStyle::Prefix,
        })
    }

    fn embed(&self, tokens: Tensor<B, 2, Int>) -> Tensor<B, 3> {
        self.dropout.forward(
            self.embed_tokens
                .forward(tokens)
                .mul_scalar((self.d_model as f64).sqrt()),
        )
    }

    /// Host-side layout of a batch: the prefix layout puts `encoder_lengths` before the
    /// targets; the cross layout's self-attention sees targets only.
    pub fn layout(
        &self,
        encoder_lengths: &[usize],
        target_lengths: &[usize],
        targets: usize,
    ) -> DecoderLayout {
        let prefix = if self.prefix {
            encoder_lengths.to_vec()
        } else {
            vec![0; encoder_lengths.len()]
        };
        DecoderLayout::new(&prefix, target_lengths, targets, self.down_rate)
    }

    /// The encoder output padded to the prefix region `[batch, region, d]`.
    fn prefix(&self, encoder: Tensor<B, 3>, layout: &DecoderLayout) -> Tensor<B, 3> {
        let [b, l, d] = encoder.dims();
        match layout.region.cmp(&l) {
            std::cmp::Ordering::Greater => {
                let pad = Tensor::zeros(
                    [b, layout.region - l, d],
                    (&encoder.device(), encoder.dtype()),
                );
                Tensor::cat(vec![encoder, pad], 1)
            }
            std::cmp::Ordering::Less => encoder.slice(s![.., 0..layout.region, ..]),
            std::cmp::Ordering::Equal => encoder,
        }
    }

    /// Teacher-forced logits `[batch, S, vocab]` for decoder inputs `tokens` `[batch, S]`
    /// (BOS + targets, real lengths `target_lengths`) after `encoder` `[batch, L, d]` (real
    /// lengths `encoder_lengths`): the prefix in the prefix layout, the memory in the cross one.
    pub fn forward(
        &self,
        tokens: Tensor<B, 2, Int>,
        encoder: Tensor<B, 3>,
        encoder_lengths: &[usize],
        target_lengths: &[usize],
    ) -> Result<Tensor<B, 3>> {
        let device = encoder.device();
        let [_, s] = tokens.dims();
        let layout = self.layout(encoder_lengths, target_lengths, s);
        let mut x = self.embed(tokens);
        let positions = layout.positions::<B>(&device);
        let padding = layout.padding();
        let prefix = self.prefix.then(|| self.prefix(encoder.clone(), &layout));
        let memory_bias = memory_bias(encoder_lengths, encoder.dims()[1], &device, encoder.dtype());
        for layer in &self.layers {
            x = match layer {
                DecoderLayer::Prefix(p) => {
                    let h = layer_norm(&p.self_attn_norm, x.clone());
                    let kv =
                        Tensor::cat(vec![prefix.clone().expect("prefix layout"), h.clone()], 1);
                    let a = p
                        .self_attn
                        .forward(h, kv, positions.clone(), Some(&padding))?;
                    p.after_attention(x, a)
                }
                DecoderLayer::Cross(c) => {
                    let h = layer_norm(&c.self_attn_norm, x.clone());
                    let a = c
                        .self_attn
                        .forward(h.clone(), h, positions.clone(), Some(&padding))?;
                    let memory = c.cross_attn.memory(encoder.clone());
                    c.after_self_attention(x, a, &memory, memory_bias.clone())
                }
            };
        }
        Ok(linear(&self.output_projection, layer_norm(&self.norm, x)))
    }

    /// Prepares decoding: the speech prefix into every layer's cache (prefix layout) or the
    /// cross-attention memories (cross layout).
    pub fn prefill(
        &self,
        encoder: Tensor<B, 3>,
        encoder_lengths: &[usize],
    ) -> Result<DecoderState<B>> {
        let device = encoder.device();
        let layout = self.layout(encoder_lengths, &vec![0; encoder_lengths.len()], 0);
        let mut caches = Vec::with_capacity(self.layers.len());
        let mut memories = Vec::new();
        if self.prefix {
            let prefix = self.prefix(encoder.clone(), &layout);
            let (positions, padding) = (
                layout.prefix_positions::<B>(&device),
                layout.prefix_padding(),
            );
            for layer in &self.layers {
                if let DecoderLayer::Prefix(p) = layer {
                    caches.push(p.self_attn.cache_prefix(
                        prefix.clone(),
                        positions.clone(),
                        Some(&padding),
                    )?);
                }
            }
        } else {
            for layer in &self.layers {
                if let DecoderLayer::Cross(c) = layer {
                    memories.push(c.cross_attn.memory(encoder.clone()));
                }
            }
        }
        Ok(DecoderState {
            caches,
            memories,
            memory_bias: memory_bias(encoder_lengths, encoder.dims()[1], &device, encoder.dtype()),
            next_position: layout.first_target_positions(&device),
            steps: 0,
        })
    }

    /// Decodes one token per row, `tokens` `[rows]`; returns log-probabilities `[rows, vocab]`.
    /// On the CPU the whole step runs on the pool with a second thread kept awake
    /// ([`mtla::pool::awake`]): its layers alternate small parallel ops with serial ones.
    pub fn step(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: &mut DecoderState<B>,
    ) -> Result<Tensor<B, 2>> {
        mtla::pool::awake_on::<B, _>(|| self.step_layers(tokens, state))
    }

    /// [`Self::step`]'s work.
    fn step_layers(
        &self,
        tokens: Tensor<B, 1, Int>,
        state: &mut DecoderState<B>,
    ) -> Result<Tensor<B, 2>> {
        let rows = tokens.dims()[0];
        let mut x = self.embed(tokens.reshape([rows, 1]));
        let position = state.next_position.clone();
        let mut caches = std::mem::take(&mut state.caches).into_iter();
        let mut kept = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            let mut cache = caches.next();
            x = match layer {
                DecoderLayer::Prefix(p) => {
                    let cache = cache.as_mut().expect("prefill filled every layer");
                    let a = p.self_attn.step(
                        layer_norm(&p.self_attn_norm, x.clone()),
                        position.clone(),
                        cache,
                    )?;
                    p.after_attention(x, a)
                }
                DecoderLayer::Cross(c) => {
                    let h = layer_norm(&c.self_attn_norm, x.clone());
                    let a = match cache.as_mut() {
                        Some(cache) => c.self_attn.step(h, position.clone(), cache)?,
                        None => {
                            let (a, fresh) =
                                c.self_attn.prefill(h.clone(), h, position.clone(), None)?;
                            cache = Some(fresh);
                            a
                        }
                    };
                    c.after_self_attention(x, a, &state.memories[i], state.memory_bias.clone())
                }
            };
            kept.extend(cache);
        }
        state.caches = kept;
        state.next_position = position.add_scalar(1.0);
        state.steps += 1;
        let logits = linear(&self.output_projection, layer_norm(&self.norm, x))
            .reshape([rows, self.output_projection.weight.dims()[1]]);
        Ok(log_softmax(logits, 1))
    }
}

/// `[batch, 1, 1, L]` bias hiding padded encoder frames from cross-attention, in `dtype`.
fn memory_bias<B: Backend>(
    lengths: &[usize],
    l: usize,
    device: &B::Device,
    dtype: DType,
) -> Option<Tensor<B, 4>> {
    KeyPadding::from_lengths(lengths, l)
        .key_bias()
        .map(|bias| bias_tensor(lengths.len(), 1, l, bias, device, dtype))
}
