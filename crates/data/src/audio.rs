//! Audio references of manifests and their decoding: WAV (through the fbank crate), FLAC
//! (claxon) and Ogg Vorbis (lewton), both pure Rust, and precomputed features (`.npy`, as in
//! fairseq's `fbank80.zip`).

use std::fmt;
use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use fbank::{Audio, FbankError, Features, WavOptions};

use super::error::DataError;

/// Where an utterance's audio is: a whole file, or `length` bytes at `offset` inside a file
/// (fairseq's `path:offset:length`, e.g. a WAV stored uncompressed in a zip or a pack file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AudioRef {
    /// The file, resolved against the manifest's directory when it was relative.
    pub path: PathBuf,
    /// `(offset, length)` in bytes, when the audio is a slice of `path`.
    pub slice: Option<(u64, u64)>,
}

impl AudioRef {
    /// A whole file.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            slice: None,
        }
    }

    /// Parses a manifest's audio column, resolving a relative path against `base`.
    /// `a.wav:10:20` is a slice when both trailing fields are integers; otherwise the whole
    /// text is the path.
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        if text.is_empty() {
            return Err("empty audio column".into());
        }
        let mut parts = text.rsplitn(3, ':');
        let (last, mid, head) = (parts.next(), parts.next(), parts.next());
        let (path, slice) = match (
            head,
            mid.map(str::parse::<u64>),
            last.map(str::parse::<u64>),
        ) {
            (Some(p), Some(Ok(offset)), Some(Ok(length))) if !p.is_empty() => {
                if length == 0 {
                    return Err(format!("audio slice {text:?} has length 0"));
                }
                (p, Some((offset, length)))
            }
            _ => (text, None),
        };
        Ok(Self {
            path: base.join(path),
            slice,
        })
    }

    /// The manifest form, with the path relative to `base` when it lies below it.
    pub fn to_manifest_string(&self, base: &Path) -> String {
        let rel = match (std::path::absolute(&self.path), std::path::absolute(base)) {
            (Ok(p), Ok(b)) => p
                .strip_prefix(&b)
                .map(Path::to_path_buf)
                .unwrap_or_else(|_| self.path.clone()),
            _ => self.path.clone(),
        };
        match self.slice {
            Some((o, l)) => format!("{}:{o}:{l}", rel.display()),
            None => rel.display().to_string(),
        }
    }

    /// The bytes this reference points at.
    pub fn read_bytes(&self) -> Result<Vec<u8>, DataError> {
        let io = |e| DataError::io(&self.path, e);
        match self.slice {
            None => std::fs::read(&self.path).map_err(io),
            Some((offset, length)) => {
                let mut f = File::open(&self.path).map_err(io)?;
                f.seek(SeekFrom::Start(offset)).map_err(io)?;
                let mut bytes = Vec::with_capacity(length as usize);
                f.take(length).read_to_end(&mut bytes).map_err(io)?;
                if (bytes.len() as u64) < length {
                    return Err(DataError::format(
                        &self.path,
                        0,
                        format!("slice {offset}:{length} runs past the end of the file"),
                    ));
                }
                Ok(bytes)
            }
        }
    }
}

impl fmt::Display for AudioRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.slice {
            Some((o, l)) => write!(f, "{}:{o}:{l}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// What an audio reference decodes to.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A waveform on the int16 scale, at the expected rate.
    Wave(Audio),
    /// Features computed elsewhere (a `[frames, dim]` float32 `.npy`).
    Features(Features),
}

/// Decodes `audio`, recognising the format by its first bytes (`RIFF`, `fLaC`, `OggS`,
/// `\x93NUMPY`). Sample-rate and channel rules are those of `opts`, for every format.
pub fn decode(audio: &AudioRef, opts: &WavOptions) -> Result<Decoded, DataError> {
    let bytes = audio.read_bytes()?;
    let path = audio.path.as_path();
    if bytes.starts_with(b"fLaC") {
        Ok(Decoded::Wave(decode_flac(&bytes, path, opts)?))
    } else if bytes.starts_with(b"OggS") {
        Ok(Decoded::Wave(decode_vorbis(&bytes, path, opts)?))
    } else if bytes.starts_with(b"\x93NUMPY") {
        let (shape, data) = fbank::npy::from_npy_bytes(&bytes, path)?;
        match shape[..] {
            [frames, dim] => Ok(Decoded::Features(Features::new(frames, dim, data))),
            _ => Err(DataError::format(
                path,
                0,
                format!("features must be [frames, dim], found shape {shape:?}"),
            )),
        }
    } else {
        Ok(Decoded::Wave(fbank::read_wav_bytes(&bytes, path, opts)?))
    }
}

/// The channel to keep of a `channels`-channel stream, per `opts` (mono needs no choice).
fn pick_channel(channels: usize, path: &Path, opts: &WavOptions) -> Result<usize, DataError> {
    match (opts.channel, channels) {
        (Some(c), n) if c >= n => Err(FbankError::NoSuchChannel {
            path: path.to_path_buf(),
            channel: c,
            channels: n,
        }
        .into()),
        (Some(c), _) => Ok(c),
        (None, 1) => Ok(0),
        (None, n) => Err(FbankError::MultiChannel {
            path: path.to_path_buf(),
            channels: n,
        }
        .into()),
    }
}

/// An error for a compressed stream that does not decode.
fn corrupt(path: &Path, format: &str, e: impl fmt::Display) -> DataError {
    DataError::Audio(FbankError::Format {
        path: path.to_path_buf(),
        reason: format!("corrupt {format} audio: {e}"),
    })
}

/// Checks decoded samples and applies the rate rules of `opts`.
fn finish(
    samples: Vec<f32>,
    rate: u32,
    path: &Path,
    opts: &WavOptions,
) -> Result<Audio, DataError> {
    if samples.is_empty() {
        return Err(FbankError::Empty {
            path: path.to_path_buf(),
        }
        .into());
    }
    conform_rate(
        Audio {
            samples,
            sample_rate: rate,
        },
        path,
        opts,
    )
}

/// Decodes FLAC bytes to one channel on the int16 scale.
fn decode_flac(bytes: &[u8], path: &Path, opts: &WavOptions) -> Result<Audio, DataError> {
    let mut reader =
        claxon::FlacReader::new(Cursor::new(bytes)).map_err(|e| corrupt(path, "FLAC", e))?;
    let info = reader.streaminfo();
    let channel = pick_channel(info.channels as usize, path, opts)?;
    let scale = (2.0f64).powi(16 - info.bits_per_sample as i32) as f32;
    let mut samples = Vec::with_capacity(info.samples.unwrap_or(0) as usize);
    let mut blocks = reader.blocks();
    let mut buffer = Vec::new();
    while let Some(block) = blocks
        .read_next_or_eof(buffer)
        .map_err(|e| corrupt(path, "FLAC", e))?
    {
        samples.extend(
            block
                .channel(channel as u32)
                .iter()
                .map(|&v| v as f32 * scale),
        );
        buffer = block.into_buffer();
    }
    if let Some(declared) = info.samples.filter(|&n| n != samples.len() as u64) {
        return Err(FbankError::TruncatedData {
            path: path.to_path_buf(),
            samples_read: samples.len(),
            reason: format!("the stream info declares {declared} samples"),
        }
        .into());
    }
    finish(samples, info.sample_rate, path, opts)
}

/// Decodes Ogg Vorbis bytes to one channel on the int16 scale.
fn decode_vorbis(bytes: &[u8], path: &Path, opts: &WavOptions) -> Result<Audio, DataError> {
    let mut reader = lewton::inside_ogg::OggStreamReader::new(Cursor::new(bytes))
        .map_err(|e| corrupt(path, "Ogg Vorbis", e))?;
    let channels = reader.ident_hdr.audio_channels as usize;
    let channel = pick_channel(channels, path, opts)?;
    let mut samples = Vec::new();
    while let Some(packet) = reader
        .read_dec_packet_itl()
        .map_err(|e| corrupt(path, "Ogg Vorbis", e))?
    {
        samples.extend(
            packet
                .iter()
                .skip(channel)
                .step_by(channels)
                .map(|&v| v as f32),
        );
    }
    finish(samples, reader.ident_hdr.audio_sample_rate, path, opts)
}

/// Applies `opts.expected_rate`: resample when allowed, otherwise reject another rate.
fn conform_rate(audio: Audio, path: &Path, opts: &WavOptions) -> Result<Audio, DataError> {
    match opts.expected_rate {
        Some(rate) if rate != audio.sample_rate && opts.resample => Ok(Audio {
            samples: fbank::resample::resample(&audio.samples, audio.sample_rate, rate, path)?,
            sample_rate: rate,
        }),
        Some(rate) if rate != audio.sample_rate => Err(FbankError::SampleRate {
            path: path.to_path_buf(),
            found: audio.sample_rate,
            expected: rate,
        }
        .into()),
        _ => Ok(audio),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_paths_and_slices() {
        let base = Path::new("/data");
        let a = AudioRef::parse("wav/a.wav", base).unwrap();
        assert_eq!(
            (a.path.as_path(), a.slice),
            (Path::new("/data/wav/a.wav"), None)
        );
        let b = AudioRef::parse("pack.zip:44:1000", base).unwrap();
        assert_eq!(b.path, Path::new("/data/pack.zip"));
        assert_eq!(b.slice, Some((44, 1000)));
        // A colon that is not followed by two integers belongs to the path.
        let c = AudioRef::parse("/abs/odd:name.wav", base).unwrap();
        assert_eq!(
            (c.path.as_path(), c.slice),
            (Path::new("/abs/odd:name.wav"), None)
        );
        assert!(AudioRef::parse("", base).is_err());
        assert!(AudioRef::parse("a.bin:0:0", base).is_err());
        assert_eq!(b.to_manifest_string(base), "pack.zip:44:1000");
        assert_eq!(c.to_manifest_string(base), "/abs/odd:name.wav");
    }
}
