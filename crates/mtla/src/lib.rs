//! Decoder self-attention layers for speech translation, generic over any Burn backend:
//! **MTLA** (Multi-head Temporal Latent Attention, Deng & Woodland, NeurIPS 2025) and the
//! baselines MHA, GQA, MQA and MLA.
//!
//! Every kind offers the same three entry points through [`Attention`]:
//! a parallel [`forward`](Attention::forward) for training (causal, and for MTLA the
//! stride-aware causal mask over chunk-wise partial states), a [`prefill`](Attention::prefill)
//! that puts a prefix (the speech encoder output) into a fresh [`Cache`] in one call, and a
//! [`step`](Attention::step) that decodes one token per row over the cache. The parallel and
//! incremental forms agree to float precision, and MTLA matches the authors' PyTorch code
//! (see `tests/reference.rs` and [`import`]).

pub mod attend;
pub mod attention;
pub mod cache;
pub mod config;
pub mod cpu;
mod decode_step;
pub mod dropout;
pub mod error;
pub mod fused;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod fused_gpu;
pub mod fused_parallel;
pub mod heads;
pub mod hypernet;
pub mod import;
pub mod inplace;
pub mod layer_norm;
pub mod linear;
pub mod mask;
pub mod merge;
pub mod mha;
pub mod mtla;
pub mod pool;
pub mod reference;
pub mod rope;
pub mod rows;
mod skinny;

pub use attention::Attention;
pub use cache::Cache;
pub use config::{AttentionConfig, AttentionKind};
pub use error::{MtlaError, Result};
pub use mask::KeyPadding;
pub use mha::MultiHeadAttention;
pub use mtla::Mtla;
