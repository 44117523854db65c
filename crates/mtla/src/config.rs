//! Attention configuration: one flat, TOML-friendly struct for every kind, validated once.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::attention::Attention;
use crate::error::{MtlaError, Result};
use crate::mha::MultiHeadAttention;
use crate::mtla::Mtla;

/// Which self-attention the decoder uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionKind {
    /// Multi-head attention with RoPE (one K/V head per query head).
    Mha,
    /// Grouped-query attention (`num_kv_heads` K/V heads shared by groups of query heads).
    Gqa,
    /// Multi-query attention (one K/V head).
    Mqa,
    /// Multi-head latent attention (DeepSeek-V2): low-rank latent KV + decoupled RoPE key.
    Mla,
    /// Multi-head temporal latent attention: MLA whose latents are merged every `down_rate` steps.
    Mtla,
}

impl AttentionKind {
    /// Parses a variant name: `mha`, `gqa`, `mqa`, `mla`, or `mtla<s>` (e.g. `mtla2`; plain
    /// `mtla` means s = 2). Returns the kind and the compression rate (1 unless MTLA).
    pub fn parse_variant(name: &str) -> Result<(Self, usize)> {
        Ok(match name {
            "mha" => (Self::Mha, 1),
            "gqa" => (Self::Gqa, 1),
            "mqa" => (Self::Mqa, 1),
            "mla" => (Self::Mla, 1),
            "mtla" => (Self::Mtla, 2),
            n if n.starts_with("mtla") => {
                let s = n[4..]
                    .parse::<usize>()
                    .ok()
                    .filter(|&s| s >= 1)
                    .ok_or_else(|| {
                        MtlaError::Config(format!(
                            "variant '{n}': expected mtla<s> with s >= 1, e.g. mtla2"
                        ))
                    })?;
                (Self::Mtla, s)
            }
            n => {
                return Err(MtlaError::Config(format!(
                    "unknown attention variant '{n}' (mha, gqa, mqa, mla, mtla<s>)"
                )))
            }
        })
    }
}

impl std::fmt::Display for AttentionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            Self::Mha => "mha",
            Self::Gqa => "gqa",
            Self::Mqa => "mqa",
            Self::Mla => "mla",
            Self::Mtla => "mtla",
        };
        f.write_str(s)
    }
}

/// Sizes of an attention layer. Field names are the paper's; fields a kind does not use are
/// ignored by it (e.g. `kv_lora_rank` for MHA). Defaults are the paper's ST decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttentionConfig {
    pub kind: AttentionKind,
    /// Model width `d`.
    pub d_model: usize,
    /// Query heads `n_h`.
    pub num_heads: usize,
    /// K/V heads for GQA (MHA uses `num_heads`, MQA uses 1).
    pub num_kv_heads: usize,
    /// Latent rank `r` of the compressed KV (MLA/MTLA).
    pub kv_lora_rank: usize,
    /// Rank of the optional low-rank query (0 = a plain `W_Q`).
    pub q_lora_rank: usize,
    /// Per-head non-positional query/key size.
    pub qk_nope_head_dim: usize,
    /// Decoupled RoPE key size `d_h^R`, shared by all heads.
    pub qk_rope_head_dim: usize,
    /// Per-head value size.
    pub v_head_dim: usize,
    /// Temporal compression rate `s` (MTLA).
    pub down_rate: usize,
    /// Bias in the q/k/v/o projections; `None` = the reference's choice (MHA kinds: yes, latent: no).
    pub bias: Option<bool>,
    /// Attention-weight dropout (training only).
    pub dropout: f64,
    /// RoPE base.
    pub rope_theta: f64,
}

impl Default for AttentionConfig {
    fn default() -> Self {
        Self {
            kind: AttentionKind::Mtla,
            d_model: 512,
            num_heads: 8,
            num_kv_heads: 2,
            kv_lora_rank: 256,
            q_lora_rank: 0,
            qk_nope_head_dim: 64,
            qk_rope_head_dim: 32,
            v_head_dim: 64,
            down_rate: 2,
            bias: None,
            dropout: 0.0,
            rope_theta: 10000.0,
        }
    }
}

impl AttentionConfig {
    /// The paper-sized config of `kind` (d 512, 8 heads, r 256, rope 32, s 2, GQA with 2 KV heads).
    pub fn paper(kind: AttentionKind) -> Self {
        Self {
            kind,
            ..Self::default()
        }
    }

    /// Is this a latent (MLA/MTLA) kind?
    pub fn is_latent(&self) -> bool {
        matches!(self.kind, AttentionKind::Mla | AttentionKind::Mtla)
    }

    /// Effective number of K/V heads of the MHA kinds.
    pub fn kv_heads(&self) -> usize {
        match self.kind {
            AttentionKind::Mha => self.num_heads,
            AttentionKind::Mqa => 1,
            _ => self.num_kv_heads,
        }
    }

    /// Temporal compression rate actually used (1 for everything but MTLA).
    pub fn effective_down_rate(&self) -> usize {
        if self.kind == AttentionKind::Mtla {
            self.down_rate
        } else {
            1
        }
    }

    /// Projection bias actually used.
    pub fn effective_bias(&self) -> bool {
        self.bias.unwrap_or(!self.is_latent())
    }

    /// Checks every size constraint, naming the offending field.
    pub fn validate(&self) -> Result<()> {
        let err = |m: String| Err(MtlaError::Config(m));
        if self.d_model == 0 || self.num_heads == 0 {
            return err(format!(
                "d_model ({}) and num_heads ({}) must be > 0",
                self.d_model, self.num_heads
            ));
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return err(format!("dropout must be in [0, 1), got {}", self.dropout));
        }
        if self.is_latent() {
            if self.kind == AttentionKind::Mtla && self.down_rate == 0 {
                return err("down_rate (s) must be >= 1 for mtla, got 0".into());
            }
            if self.kv_lora_rank < 4 || self.kv_lora_rank % 4 != 0 {
                return err(format!(
                    "kv_lora_rank must be a positive multiple of 4 (the hyper-network maps r -> r/4), got {}",
                    self.kv_lora_rank
                ));
            }
            if self.qk_rope_head_dim == 0 || self.qk_rope_head_dim % 2 != 0 {
                return err(format!(
                    "qk_rope_head_dim must be even and > 0, got {}",
                    self.qk_rope_head_dim
                ));
            }
            if self.qk_nope_head_dim == 0 || self.v_head_dim == 0 {
                return err("qk_nope_head_dim and v_head_dim must be > 0".into());
            }
        } else {
            if self.d_model % self.num_heads != 0 {
                return err(format!(
                    "num_heads ({}) must divide d_model ({})",
                    self.num_heads, self.d_model
                ));
            }
            let head = self.d_model / self.num_heads;
            if head % 2 != 0 {
                return err(format!(
                    "the head size d_model/num_heads = {head} must be even for RoPE"
                ));
            }
            let kv = self.kv_heads();
            if kv == 0 || self.num_heads % kv != 0 {
                return err(format!(
                    "num_kv_heads ({kv}) must be > 0 and divide num_heads ({})",
                    self.num_heads
                ));
            }
        }
        Ok(())
    }

    /// Builds the layer with fresh weights.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Result<Attention<B>> {
        self.validate()?;
        Ok(if self.is_latent() {
            Attention::Latent(Mtla::new(self, device))
        } else {
            Attention::Mha(MultiHeadAttention::new(self, device))
        })
    }

    /// Theoretical KV-cache elements per generated token and layer (paper Sec. 4.4):
    /// MHA `2 n_h d_h`, GQA `2 n_kv d_h`, MQA `2 d_h`, MLA `r + d_R`, MTLA `(r + d_R) / s`.
    pub fn kv_elements_per_token(&self) -> f64 {
        if self.is_latent() {
            (self.kv_lora_rank + self.qk_rope_head_dim) as f64 / self.effective_down_rate() as f64
        } else {
            (2 * self.kv_heads() * (self.d_model / self.num_heads)) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_token_cache_sizes_match_the_paper() {
        let size = |kind, s| {
            AttentionConfig {
                down_rate: s,
                ..AttentionConfig::paper(kind)
            }
            .kv_elements_per_token()
        };
        assert_eq!(size(AttentionKind::Mha, 2), 1024.0);
        assert_eq!(size(AttentionKind::Gqa, 2), 256.0);
        assert_eq!(size(AttentionKind::Mqa, 2), 128.0);
        assert_eq!(size(AttentionKind::Mla, 2), 288.0);
        assert_eq!(size(AttentionKind::Mtla, 2), 144.0);
        assert_eq!(size(AttentionKind::Mtla, 3), 96.0);
        assert_eq!(size(AttentionKind::Mtla, 4), 72.0);
    }

    #[test]
    fn variants_parse() {
        assert_eq!(
            AttentionKind::parse_variant("mtla3").unwrap(),
            (AttentionKind::Mtla, 3)
        );
        assert_eq!(
            AttentionKind::parse_variant("gqa").unwrap(),
            (AttentionKind::Gqa, 1)
        );
        assert!(AttentionKind::parse_variant("mtla0").is_err());
        assert!(AttentionKind::parse_variant("flash")
            .unwrap_err()
            .to_string()
            .contains("mha, gqa"));
    }

    #[test]
    fn impossible_values_are_named() {
        let bad = |c: AttentionConfig| c.validate().unwrap_err().to_string();
        assert!(bad(AttentionConfig {
            down_rate: 0,
            ..AttentionConfig::default()
        })
        .contains("down_rate"));
        assert!(bad(AttentionConfig {
            num_heads: 7,
            ..AttentionConfig::paper(AttentionKind::Mha)
        })
        .contains("must divide d_model"));
        assert!(bad(AttentionConfig {
            num_kv_heads: 3,
            ..AttentionConfig::paper(AttentionKind::Gqa)
        })
        .contains("num_kv_heads"));
        assert!(bad(AttentionConfig {
            kv_lora_rank: 30,
            ..AttentionConfig::default()
        })
        .contains("kv_lora_rank"));
        let unknown = toml::from_str::<AttentionConfig>("kind = \"mtla\"\ndownrate = 2\n");
        assert!(unknown.unwrap_err().to_string().contains("downrate"));
    }
}
