//! The model's TOML configuration: every size is a field, defaults are the paper's MuST-C
//! system (12-layer encoder, 9-layer prefix decoder, d 512, 8 heads, FFN 2048, MTLA s = 2).

use std::path::PathBuf;

use mtla::{AttentionConfig, AttentionKind};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// How the decoder sees the encoder output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderStyle {
    /// The paper's "decoder-only with a speech prompt": the encoder output is prepended to the
    /// self-attention's keys/values in every layer; no cross-attention.
    Prefix,
    /// The classic encoder-decoder: self-attention over targets, cross-attention to the encoder.
    Cross,
}

/// Speech encoder sizes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    pub layers: usize,
    pub heads: usize,
    pub ffn_dim: usize,
    /// Channels of the subsampler's convolutions (before GLU halves them).
    pub conv_channels: usize,
    pub conv_kernel: usize,
    /// Number of stride-2 convolutions (2 = 4x time subsampling).
    pub conv_layers: usize,
    /// Taps of each layer's Conformer convolution module ([`crate::conv_module`]; odd), or 0 for
    /// none (the paper's Transformer encoder).
    pub conv_module_kernel: usize,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            layers: 12,
            heads: 8,
            ffn_dim: 2048,
            conv_channels: 1024,
            conv_kernel: 5,
            conv_layers: 2,
            conv_module_kernel: 0,
        }
    }
}

/// Decoder sizes and its self-attention kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecoderConfig {
    pub layers: usize,
    pub ffn_dim: usize,
    pub style: DecoderStyle,
    /// Heads of the cross-attention (`style = "cross"` only).
    pub cross_heads: usize,
    /// LayerNorm on the projector output (`style = "prefix"` only). The paper's layout has none
    /// (`false`); at initialisation its prefix is then several times smaller than the decoder's
    /// normalised token states, so attention to the audio starts diffuse.
    pub prefix_norm: bool,
    /// Self-attention: kind (`mha`, `gqa`, `mqa`, `mla`, `mtla`) and its sizes; `d_model` is
    /// always the model's.
    pub attention: AttentionConfig,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self {
            layers: 9,
            ffn_dim: 2048,
            style: DecoderStyle::Prefix,
            cross_heads: 8,
            prefix_norm: false,
            attention: AttentionConfig {
                dropout: 0.15,
                ..AttentionConfig::paper(AttentionKind::Mtla)
            },
        }
    }
}

/// The whole speech-translation (or ASR) model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelConfig {
    /// Feature dimension (80 log-mel bins).
    pub input_dim: usize,
    pub d_model: usize,
    /// Target vocabulary, special tokens included.
    pub vocab_size: usize,
    /// Dropout on embeddings, residual branches and FFN activations.
    pub dropout: f64,
    pub encoder: EncoderConfig,
    pub decoder: DecoderConfig,
    /// Weight λ of the CTC loss on the encoder (0 = no CTC head): the objective is
    /// `(1 - λ) · decoder + λ · CTC` (ESPnet's `mtlalpha`); λ = 1 trains the encoder alone,
    /// the CTC pretraining stage.
    pub ctc_weight: f64,
    /// Initialise the encoder (subsampler, layers, final norm) from this checkpoint, e.g. an
    /// ASR model, as the paper does.
    pub encoder_init: Option<PathBuf>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            input_dim: 80,
            d_model: 512,
            vocab_size: 8000,
            dropout: 0.15,
            encoder: EncoderConfig::default(),
            decoder: DecoderConfig::default(),
            ctc_weight: 0.0,
            encoder_init: None,
        }
    }
}

impl ModelConfig {
    /// Parses TOML, rejecting unknown keys (serde lists the valid ones) and impossible values.
    pub fn from_toml(text: &str) -> Result<Self> {
        let config: Self = toml::from_str(text).map_err(|e| ModelError::Config(e.to_string()))?;
        config.resolved()
    }

    /// Reads the `[model]` table of an experiment config file (or a bare model config).
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        let table: toml::Table = toml::from_str(&text)
            .map_err(|e| ModelError::Config(format!("{}: {e}", path.display())))?;
        let model = match table.get("model") {
            Some(toml::Value::Table(t)) => t.clone(),
            _ => table,
        };
        let config: Self = model.try_into().map_err(|e: toml::de::Error| {
            ModelError::Config(format!("{}: [model]: {e}", path.display()))
        })?;
        config.resolved()
    }

    /// Fills derived fields (the attention's `d_model`) and validates everything.
    pub fn resolved(mut self) -> Result<Self> {
        self.decoder.attention.d_model = self.d_model;
        self.validate()?;
        Ok(self)
    }

    /// Temporal compression rate of the decoder's self-attention (1 unless MTLA).
    pub fn down_rate(&self) -> usize {
        self.decoder.attention.effective_down_rate()
    }

    /// Checks sizes, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(ModelError::Config(m));
        let e = &self.encoder;
        if self.d_model == 0 || self.vocab_size < 4 || self.input_dim == 0 {
            return err("d_model, input_dim must be > 0 and vocab_size >= 4".into());
        }
        if e.heads == 0 || self.d_model % e.heads != 0 {
            return err(format!(
                "encoder.heads ({}) must divide d_model ({})",
                e.heads, self.d_model
            ));
        }
        if self.decoder.style == DecoderStyle::Cross
            && (self.decoder.cross_heads == 0 || self.d_model % self.decoder.cross_heads != 0)
        {
            return err(format!(
                "decoder.cross_heads ({}) must divide d_model ({})",
                self.decoder.cross_heads, self.d_model
            ));
        }
        if e.conv_layers == 0 || e.conv_kernel % 2 == 0 || e.conv_channels % 2 != 0 {
            return err(format!(
                "encoder.conv_layers must be >= 1, conv_kernel odd and conv_channels even (got {}, {}, {})",
                e.conv_layers, e.conv_kernel, e.conv_channels
            ));
        }
        if e.conv_module_kernel % 2 == 0 && e.conv_module_kernel != 0 {
            return err(format!(
                "encoder.conv_module_kernel must be odd, or 0 for no convolution module (got {})",
                e.conv_module_kernel
            ));
        }
        if self.d_model % 4 != 0 {
            return err(format!(
                "d_model ({}) must be a multiple of 4 (projector d/2)",
                self.d_model
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) || !(0.0..=1.0).contains(&self.ctc_weight) {
            return err(format!(
                "dropout must be in [0, 1) and ctc_weight in [0, 1] (got {}, {})",
                self.dropout, self.ctc_weight
            ));
        }
        if self.encoder.layers == 0 || self.decoder.layers == 0 {
            return err("encoder.layers and decoder.layers must be >= 1".into());
        }
        self.decoder
            .attention
            .validate()
            .map_err(|e| ModelError::Config(format!("decoder.attention: {e}")))
    }
}
