//! The speech-translation network of the MTLA paper on Burn: a Conv1d-subsampling Transformer
//! encoder, a projector, and a decoder whose self-attention sees the encoder output as a prefix
//! ("decoder-only with a speech prompt"), with MHA/GQA/MQA/MLA/MTLA self-attention chosen in
//! config; or the classic cross-attention layout. Teacher-forced training and incremental
//! decoding (`prefill` / `step` / `reorder` over compressed caches) agree to float precision.

pub mod attention;
pub mod checkpoint;
pub mod config;
pub mod conv_module;
pub mod decoder;
pub mod deepen;
pub mod depthwise;
pub mod encoder;
pub mod error;
pub mod feed_forward;
pub mod layout;
pub mod model;
pub mod projector;
pub mod stored;
pub mod subsampler;
pub mod summary;

pub use config::{DecoderConfig, DecoderStyle, EncoderConfig, ModelConfig};
pub use decoder::DecoderState;
pub use encoder::EncoderOutput;
pub use error::{ModelError, Result};
pub use model::{ModelOutput, SpeechModel};
