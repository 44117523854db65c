//! WAV reading with `hound`: integer PCM (8/16/24/32 bit) and 32-bit float, one chosen channel,
//! samples on the int16 scale (as Kaldi and fairseq feed them to the filterbank).

use std::io::Read;
use std::path::{Path, PathBuf};

use hound::{SampleFormat, WavReader};

use crate::error::{FbankError, Result};
use crate::resample::resample;

/// Mono audio on the int16 scale (a full-scale 16-bit sample is +-32768).
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    /// Samples of the chosen channel, multiplied so that 16-bit PCM keeps its integer values.
    pub samples: Vec<f32>,
    /// Sample rate in Hz.
    pub sample_rate: u32,
}

impl Audio {
    /// Duration in seconds.
    pub fn duration_s(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }
}

/// How to read a WAV file.
#[derive(Debug, Clone, PartialEq)]
pub struct WavOptions {
    /// Channel to keep; `None` requires a mono file.
    pub channel: Option<usize>,
    /// Sample rate the caller needs; `None` accepts any.
    pub expected_rate: Option<u32>,
    /// Resample to `expected_rate` instead of rejecting another rate.
    pub resample: bool,
}

impl Default for WavOptions {
    fn default() -> Self {
        Self {
            channel: None,
            expected_rate: Some(16_000),
            resample: false,
        }
    }
}

/// Reads a whole WAV file (see [`read_wav_bytes`]).
pub fn read_wav(path: impl AsRef<Path>, opts: &WavOptions) -> Result<Audio> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|source| FbankError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    read_wav_bytes(&bytes, path, opts)
}

/// Reads `length` bytes at `offset` of `path` as a WAV file, as fairseq's `path:offset:length`
/// audio references do (the slice must be a complete WAV file in itself).
pub fn read_wav_slice(
    path: impl AsRef<Path>,
    offset: u64,
    length: u64,
    opts: &WavOptions,
) -> Result<Audio> {
    use std::io::{Seek, SeekFrom};
    let path = path.as_ref();
    let io = |source| FbankError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut bytes = Vec::with_capacity(length as usize);
    file.take(length).read_to_end(&mut bytes).map_err(io)?;
    if (bytes.len() as u64) < length {
        return Err(FbankError::NotWav {
            path: path.to_path_buf(),
            reason: format!("slice {offset}:{length} runs past the end of the file"),
        });
    }
    read_wav_bytes(&bytes, path, opts)
}

/// Parses WAV bytes; `path` only names the source in errors.
pub fn read_wav_bytes(bytes: &[u8], path: &Path, opts: &WavOptions) -> Result<Audio> {
    let path_buf = || PathBuf::from(path);
    if bytes.is_empty() {
        return Err(FbankError::NotWav {
            path: path_buf(),
            reason: "the file is empty".into(),
        });
    }
    let reader = WavReader::new(bytes).map_err(|e| FbankError::NotWav {
        path: path_buf(),
        reason: e.to_string(),
    })?;
    let spec = reader.spec();
    let channels = spec.channels as usize;
    let channel = match (opts.channel, channels) {
        (Some(c), n) if c >= n => {
            return Err(FbankError::NoSuchChannel {
                path: path_buf(),
                channel: c,
                channels: n,
            })
        }
        (Some(c), _) => c,
        (None, 1) => 0,
        (None, n) => {
            return Err(FbankError::MultiChannel {
                path: path_buf(),
                channels: n,
            })
        }
    };
    // Declared data length versus bytes present: hound stops silently at a short data chunk.
    let declared = reader.len() as usize;
    let samples = match (spec.sample_format, spec.bits_per_sample) {
        (SampleFormat::Int, bits @ 8..=32) => {
            // Scale to int16: v * 2^(16 - bits).
            let scale = (2.0f64).powi(16 - bits as i32) as f32;
            collect_channel(reader.into_samples::<i32>(), channels, channel, path, |v| {
                Ok(v as f32 * scale)
            })?
        }
        (SampleFormat::Float, 32) => {
            collect_channel(reader.into_samples::<f32>(), channels, channel, path, |v| {
                Ok(v * 32768.0)
            })?
        }
        (format, bits) => {
            return Err(FbankError::UnsupportedFormat {
                path: path_buf(),
                format: format!("{format:?} with {bits} bits per sample"),
            })
        }
    };
    if samples.len() * channels < declared {
        return Err(FbankError::TruncatedData {
            path: path_buf(),
            samples_read: samples.len() * channels,
            reason: format!("the header declares {declared} samples"),
        });
    }
    if samples.is_empty() {
        return Err(FbankError::Empty { path: path_buf() });
    }
    let audio = Audio {
        samples,
        sample_rate: spec.sample_rate,
    };
    match opts.expected_rate {
        Some(rate) if rate != audio.sample_rate && opts.resample => Ok(Audio {
            samples: resample(&audio.samples, audio.sample_rate, rate, path)?,
            sample_rate: rate,
        }),
        Some(rate) if rate != audio.sample_rate => Err(FbankError::SampleRate {
            path: path_buf(),
            found: audio.sample_rate,
            expected: rate,
        }),
        _ => Ok(audio),
    }
}

/// Keeps one channel of interleaved samples, converting and validating each value.
fn collect_channel<S, I>(
    samples: I,
    channels: usize,
    channel: usize,
    path: &Path,
    convert: impl Fn(S) -> Result<f32>,
) -> Result<Vec<f32>>
where
    I: Iterator<Item = hound::Result<S>>,
{
    let mut out = Vec::new();
    for (i, sample) in samples.enumerate() {
        let sample = sample.map_err(|e| FbankError::TruncatedData {
            path: path.to_path_buf(),
            samples_read: i,
            reason: e.to_string(),
        })?;
        if i % channels != channel {
            continue;
        }
        let value = convert(sample)?;
        if !value.is_finite() {
            return Err(FbankError::NonFinite {
                path: path.to_path_buf(),
                index: i / channels,
                channel,
                value,
            });
        }
        out.push(value);
    }
    Ok(out)
}
