//! `model summary`: parameter counts per module and the KV cache bytes per generated token.

use burn::prelude::*;
use serde::Serialize;

use crate::config::{DecoderStyle, ModelConfig};
use crate::model::SpeechModel;

/// Parameter counts and cache sizes of a model.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `(module, parameters)` in model order.
    pub modules: Vec<(String, usize)>,
    pub total: usize,
    /// Theoretical self-attention KV-cache elements per generated token, all layers.
    pub cache_elements_per_token: f64,
    /// The same in bytes (f32).
    pub cache_bytes_per_token: f64,
    /// Cache bytes held after a prefix of `prefix_len` encoder frames (post-subsampling) and
    /// `target_len` target tokens, one row.
    pub prefix_len: usize,
    pub target_len: usize,
    pub cache_bytes_total: f64,
}

/// Counts the parameters of `model` and the cache sizes of `config`.
pub fn summarize<B: Backend>(
    model: &SpeechModel<B>,
    config: &ModelConfig,
    prefix_len: usize,
    target_len: usize,
) -> Summary {
    let mut modules = vec![
        (
            "encoder.subsampler".to_string(),
            model.encoder.subsampler.num_params(),
        ),
        (
            "encoder.layers".to_string(),
            model.encoder.layers.num_params(),
        ),
        ("encoder.norm".to_string(), model.encoder.norm.num_params()),
    ];
    if let Some(p) = &model.projector {
        modules.push(("projector".into(), p.num_params()));
    }
    modules.push((
        "decoder.embed_tokens".into(),
        model.decoder.embed_tokens.num_params(),
    ));
    modules.push(("decoder.layers".into(), model.decoder.layers.num_params()));
    modules.push(("decoder.norm".into(), model.decoder.norm.num_params()));
    modules.push((
        "decoder.output_projection".into(),
        model.decoder.output_projection.num_params(),
    ));
    if let Some(c) = &model.ctc {
        modules.push(("ctc".into(), c.num_params()));
    }
    let total = model.num_params();
    let layers = config.decoder.layers as f64;
    let per_token = config.decoder.attention.kv_elements_per_token() * layers;
    let s = config.down_rate();
    let cached = match config.decoder.style {
        // Prefix region rounded to s, plus the targets, in slots of s tokens.
        DecoderStyle::Prefix => (prefix_len.div_ceil(s) * s + target_len) as f64 * per_token,
        // Self-attention over targets plus the cross-attention K/V of the encoder output.
        DecoderStyle::Cross => {
            target_len as f64 * per_token + (2 * config.d_model * prefix_len) as f64 * layers
        }
    };
    Summary {
        modules,
        total,
        cache_elements_per_token: per_token,
        cache_bytes_per_token: per_token * 4.0,
        prefix_len,
        target_len,
        cache_bytes_total: cached * 4.0,
    }
}
