//! Small models and random batches shared by the st-model tests.
#![allow(dead_code)]

use burn::prelude::*;
use mtla::{AttentionConfig, AttentionKind};
use st_model::{DecoderStyle, EncoderConfig, ModelConfig};

pub type B = burn::backend::Flex;

/// A tiny model of the given decoder attention and layout.
pub fn tiny(kind: AttentionKind, down_rate: usize, style: DecoderStyle) -> ModelConfig {
    let mut c = ModelConfig {
        input_dim: 12,
        d_model: 32,
        vocab_size: 23,
        dropout: 0.1,
        encoder: EncoderConfig {
            layers: 2,
            heads: 4,
            ffn_dim: 48,
            conv_channels: 32,
            conv_kernel: 5,
            conv_layers: 2,
            conv_module_kernel: 0,
        },
        ..ModelConfig::default()
    };
    c.decoder.layers = 2;
    c.decoder.ffn_dim = 40;
    c.decoder.style = style;
    c.decoder.cross_heads = 2;
    c.decoder.attention = AttentionConfig {
        kind,
        num_heads: 4,
        num_kv_heads: 2,
        kv_lora_rank: 16,
        qk_nope_head_dim: 8,
        qk_rope_head_dim: 4,
        v_head_dim: 8,
        down_rate,
        dropout: 0.1,
        ..AttentionConfig::default()
    };
    c.resolved().unwrap()
}

/// Every attention kind (with MTLA at s = 2, 3, 4) in both layouts.
pub fn all_configs() -> Vec<ModelConfig> {
    use AttentionKind::*;
    let mut out = Vec::new();
    for style in [DecoderStyle::Prefix, DecoderStyle::Cross] {
        for (kind, s) in [
            (Mha, 1),
            (Gqa, 1),
            (Mqa, 1),
            (Mla, 1),
            (Mtla, 2),
            (Mtla, 3),
            (Mtla, 4),
        ] {
            out.push(tiny(kind, s, style));
        }
    }
    out
}

/// Deterministic pseudo-random floats in [-1, 1).
pub fn noise(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Features `[batch, max(frames), dim]` with zero padding after each row's frames.
pub fn features(frames: &[usize], dim: usize, seed: u64) -> Tensor<B, 3> {
    let t = *frames.iter().max().unwrap();
    let mut v = noise(frames.len() * t * dim, seed);
    for (b, &n) in frames.iter().enumerate() {
        for j in n..t {
            v[(b * t + j) * dim..(b * t + j + 1) * dim]
                .iter_mut()
                .for_each(|x| *x = 0.0);
        }
    }
    Tensor::<B, 1>::from_floats(v.as_slice(), &Default::default()).reshape([frames.len(), t, dim])
}

/// Token ids `[batch, s]` (BOS = 0 first), padded with 1 after each row's length.
pub fn tokens(
    lengths: &[usize],
    s: usize,
    vocab: usize,
    seed: u64,
) -> (Vec<Vec<i64>>, Tensor<B, 2, Int>) {
    let r = noise(lengths.len() * s, seed);
    let rows: Vec<Vec<i64>> = lengths
        .iter()
        .enumerate()
        .map(|(b, &n)| {
            (0..s)
                .map(|j| match j {
                    0 => 0,
                    j if j < n => {
                        3 + ((r[b * s + j].abs() * (vocab - 3) as f32) as i64).min(vocab as i64 - 4)
                    }
                    _ => 1,
                })
                .collect()
        })
        .collect();
    let flat: Vec<i64> = rows.iter().flatten().copied().collect();
    let t = Tensor::<B, 1, Int>::from_ints(flat.as_slice(), &Default::default())
        .reshape([lengths.len(), s]);
    (rows, t)
}
