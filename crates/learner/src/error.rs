//! Errors of the learner: each names the file, step or setting at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum LearnerError {
    #[error("invalid config: {0}")]
    Config(String),
    #[error(transparent)]
    Data(#[from] data::DataError),
    #[error(transparent)]
    Model(#[from] st_model::ModelError),
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    #[error("{path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{0}")]
    Training(String),
}

impl LearnerError {
    pub fn io(path: impl Into<PathBuf>, e: impl std::fmt::Display) -> Self {
        Self::Io {
            path: path.into(),
            reason: e.to_string(),
        }
    }
}

pub type Result<T> = std::result::Result<T, LearnerError>;
