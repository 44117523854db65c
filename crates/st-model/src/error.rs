//! Errors of the model crate.

use std::path::PathBuf;

/// What went wrong configuring, running, saving or loading the model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("invalid model config: {0}")]
    Config(String),
    #[error(transparent)]
    Attention(#[from] mtla::MtlaError),
    #[error("bad model input: {0}")]
    Input(String),
    #[error("{path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
