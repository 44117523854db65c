//! Errors of the attention crate: every variant says what is wrong and where.

use std::path::PathBuf;

/// What went wrong building, importing or running an attention layer.
#[derive(Debug, thiserror::Error)]
pub enum MtlaError {
    /// An impossible configuration (e.g. `down_rate = 0`, heads not dividing the model size).
    #[error("invalid attention config: {0}")]
    Config(String),
    /// A weight/reference file that cannot be used.
    #[error("{path}: {reason}")]
    Import { path: PathBuf, reason: String },
    /// A cache used with inputs it was not built for.
    #[error("KV cache misuse: {0}")]
    Cache(String),
    /// Inputs whose shapes do not fit the layer.
    #[error("bad attention input: {0}")]
    Shape(String),
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, MtlaError>;
