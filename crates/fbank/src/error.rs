//! Errors of the fbank crate. Every variant names the file (when there is one) and the problem.

use std::path::PathBuf;

/// What went wrong while reading audio or computing features.
#[derive(Debug, thiserror::Error)]
pub enum FbankError {
    /// The file could not be opened or read at all.
    #[error("{path}: cannot read audio file: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a WAV file we can parse (empty, truncated header, not RIFF/WAVE, ...).
    #[error("{path}: not a readable WAV file: {reason}")]
    NotWav { path: PathBuf, reason: String },
    /// The WAV header is fine but the sample data ends early or is unreadable.
    #[error("{path}: truncated or corrupt audio data after {samples_read} samples: {reason}")]
    TruncatedData {
        path: PathBuf,
        samples_read: usize,
        reason: String,
    },
    /// A sample format the reader does not support.
    #[error("{path}: unsupported sample format: {format}")]
    UnsupportedFormat { path: PathBuf, format: String },
    /// The file holds no samples.
    #[error("{path}: the file contains no audio samples (zero-length audio)")]
    Empty { path: PathBuf },
    /// A float sample is NaN or infinite.
    #[error("{path}: sample {index} (channel {channel}) is not finite ({value})")]
    NonFinite {
        path: PathBuf,
        index: usize,
        channel: usize,
        value: f32,
    },
    /// The requested channel does not exist.
    #[error("{path}: channel {channel} requested but the file has {channels} channel(s)")]
    NoSuchChannel {
        path: PathBuf,
        channel: usize,
        channels: usize,
    },
    /// Multi-channel audio without an explicit channel choice.
    #[error("{path}: the file has {channels} channels; choose one (e.g. --channel 0)")]
    MultiChannel { path: PathBuf, channels: usize },
    /// The file's sample rate differs from the expected one and resampling was not requested.
    #[error(
        "{path}: sample rate is {found} Hz but {expected} Hz is expected \
         (resample it, or pass --resample to resample on the fly)"
    )]
    SampleRate {
        path: PathBuf,
        found: u32,
        expected: u32,
    },
    /// The resampler failed.
    #[error("{path}: resampling {from} Hz -> {to} Hz failed: {reason}")]
    Resample {
        path: PathBuf,
        from: u32,
        to: u32,
        reason: String,
    },
    /// Feature options that cannot work together.
    #[error("invalid fbank options: {0}")]
    Options(String),
    /// Malformed statistics or feature files (CMVN, .npy).
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, FbankError>;
