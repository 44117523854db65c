//! On-disk fbank cache: features are computed once (all cores) and then read back with
//! positioned reads, never recomputed.
//!
//! Layout: `<root>/fbank-<key>/` where `<key>` hashes the fbank and audio options and this
//! format's version, so other options never see these features. Inside, `shard-*.fbk` files,
//! each holding many utterances (up to ~256 MiB):
//! `b"MTLAFBK1" | header length (u64 LE) | JSON header {dim, entries: [{key, frames, offset}]} |
//! f32 LE features`. A shard is written whole to a temporary file and renamed, so an interrupted
//! run leaves only complete shards, and a rerun computes just what is still missing. Several
//! processes may fill one cache at once: each writes its own shards. An utterance is keyed by its
//! audio file's absolute path, slice, size and modification time: editing the audio re-extracts it.
//! Speed-perturbed copies of the audio (factor != 1) have caches of their own: the factor is
//! one of the options (absent from the key of unperturbed features, so earlier caches stay valid).

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fbank::resample::speed_perturb;
use fbank::{Fbank, FbankOptions, Features, WavOptions};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha1::{Digest, Sha1};

use super::audio::{decode, AudioRef, Decoded};
use super::error::DataError;
use super::fs::{read_exact_at, write_atomic};
use super::progress::Progress;

/// Version of the layout and of the key derivation; part of the directory name.
const FORMAT: &str = "mtla-fbank-cache-v1";
const MAGIC: &[u8; 8] = b"MTLAFBK1";
/// Target size of one shard; also bounds the memory used while extracting.
const SHARD_BYTES: u64 = 256 << 20;
/// Temporary files older than this belong to a run that died; they are removed on open.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// Identity of one utterance's audio (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 16]);

impl CacheKey {
    fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn from_hex(s: &str) -> Option<Self> {
        let mut k = [0u8; 16];
        if s.len() != 32 {
            return None;
        }
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(k))
    }
}

/// Where one utterance's features are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    shard: u32,
    /// Byte offset in the shard file.
    offset: u64,
    frames: u32,
}

impl Location {
    /// Number of feature frames.
    pub fn frames(&self) -> usize {
        self.frames as usize
    }
}

#[derive(Serialize, Deserialize)]
struct ShardHeader {
    format: String,
    dim: usize,
    entries: Vec<ShardEntry>,
}

#[derive(Serialize, Deserialize)]
struct ShardEntry {
    key: String,
    frames: u32,
    /// Offset in floats from the start of the shard's data.
    offset: u64,
}

/// A directory of feature shards for one set of options.
#[derive(Debug)]
pub struct FeatureCache {
    dir: PathBuf,
    fbank: Fbank,
    wav: WavOptions,
    /// Speed perturbation factor applied to the audio before fbank (1 = none).
    speed: f32,
    index: HashMap<CacheKey, Location>,
    shards: Vec<File>,
}

impl FeatureCache {
    /// Opens (creating it if needed) the cache for these options under `root`, loading the index
    /// of every complete shard. A damaged shard is reported on stderr and removed. `speed` is the
    /// speed perturbation factor of [`fbank::resample::speed_perturb`] (1 = the audio as it is).
    pub fn open(
        root: &Path,
        fbank: &FbankOptions,
        wav: &WavOptions,
        speed: f32,
    ) -> Result<Self, DataError> {
        if !(speed > 0.0 && speed.is_finite()) {
            return Err(DataError::Invalid(format!(
                "speed perturbation factor must be > 0, got {speed}"
            )));
        }
        let fbank = Fbank::new(fbank.clone())?;
        let mut options = serde_json::json!({
            "format": FORMAT,
            "fbank": fbank.options(),
            "wav": {"channel": wav.channel, "expected_rate": wav.expected_rate, "resample": wav.resample},
        });
        if speed != 1.0 {
            options["speed"] = speed.into();
        }
        let options_text = serde_json::to_string_pretty(&options).expect("options serialise");
        let digest = Sha1::digest(options_text.as_bytes());
        let name: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let dir = root.join(format!("fbank-{name}"));
        std::fs::create_dir_all(&dir).map_err(|e| DataError::io(&dir, e))?;
        let options_file = dir.join("options.json");
        if !options_file.exists() {
            write_atomic(&options_file, options_text.as_bytes())?;
        }
        let mut cache = Self {
            dir,
            fbank,
            wav: wav.clone(),
            speed,
            index: HashMap::new(),
            shards: Vec::new(),
        };
        cache.load_shards()?;
        Ok(cache)
    }

    /// The directory holding this cache's shards.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Feature dimension (80 by default).
    pub fn dim(&self) -> usize {
        self.fbank.options().dim()
    }

    /// Number of cached utterances.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// True when nothing is cached yet.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The key of `audio`; fails (as I/O "not found") when the file does not exist.
    pub fn key(audio: &AudioRef) -> Result<CacheKey, DataError> {
        let io = |e| DataError::io(&audio.path, e);
        let meta = std::fs::metadata(&audio.path).map_err(io)?;
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let abs = std::path::absolute(&audio.path).map_err(io)?;
        let (offset, length) = audio.slice.unwrap_or((0, meta.len()));
        let text = format!(
            "{FORMAT}\0{}\0{offset}\0{length}\0{}\0{mtime}",
            abs.display(),
            meta.len()
        );
        let digest = Sha1::digest(text.as_bytes());
        Ok(CacheKey(digest[..16].try_into().expect("16 bytes")))
    }

    /// Where the features of `key` are, if cached.
    pub fn get(&self, key: &CacheKey) -> Option<Location> {
        self.index.get(key).copied()
    }

    /// Computes and stores the features of every `(key, audio)` (on all cores), shard by shard.
    /// Returns, in order, each item's location or the error that kept it out of the cache.
    pub fn extract(
        &mut self,
        items: &[(CacheKey, AudioRef)],
        progress: &Progress,
    ) -> Result<Vec<Result<Location, DataError>>, DataError> {
        let mut out = Vec::with_capacity(items.len());
        for chunk in chunks_by_size(items) {
            let feats: Vec<Result<Features, DataError>> = chunk
                .par_iter()
                .map(|(_, audio)| {
                    let f = self.compute(audio);
                    progress.inc(1);
                    f
                })
                .collect();
            let kept: Vec<(CacheKey, &Features)> = chunk
                .iter()
                .zip(&feats)
                .filter_map(|((k, _), f)| f.as_ref().ok().map(|f| (*k, f)))
                .collect();
            let locations = self.write_shard(&kept)?;
            let mut locations = locations.into_iter();
            out.extend(
                feats
                    .into_iter()
                    .map(|f| f.map(|_| locations.next().expect("one location per kept item"))),
            );
        }
        Ok(out)
    }

    /// Reads the features at `loc`.
    pub fn read(&self, loc: Location) -> Result<Features, DataError> {
        let dim = self.dim();
        let mut bytes = vec![0u8; loc.frames() * dim * 4];
        let shard = &self.shards[loc.shard as usize];
        read_exact_at(shard, &mut bytes, loc.offset).map_err(|e| DataError::io(&self.dir, e))?;
        let data = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Features::new(loc.frames(), dim, data))
    }

    /// Features of one utterance, from its audio (speed-perturbed when asked).
    fn compute(&self, audio: &AudioRef) -> Result<Features, DataError> {
        match decode(audio, &self.wav)? {
            Decoded::Wave(wave) if self.speed == 1.0 => Ok(self.fbank.compute(&wave.samples)),
            Decoded::Wave(wave) => {
                let samples =
                    speed_perturb(&wave.samples, wave.sample_rate, self.speed, &audio.path)?;
                Ok(self.fbank.compute(&samples))
            }
            Decoded::Features(_) if self.speed != 1.0 => Err(DataError::format(
                &audio.path,
                0,
                "precomputed features cannot be speed-perturbed (speed perturbation needs audio)"
                    .to_string(),
            )),
            Decoded::Features(f) if f.dim == self.dim() => Ok(f),
            Decoded::Features(f) => Err(DataError::format(
                &audio.path,
                0,
                format!(
                    "precomputed features have {} dims, {} expected",
                    f.dim,
                    self.dim()
                ),
            )),
        }
    }

    /// Writes one shard holding `items` and indexes it.
    fn write_shard(&mut self, items: &[(CacheKey, &Features)]) -> Result<Vec<Location>, DataError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        let mut entries = Vec::with_capacity(items.len());
        let mut offset = 0u64;
        for (key, f) in items {
            entries.push(ShardEntry {
                key: key.hex(),
                frames: f.frames as u32,
                offset,
            });
            offset += f.data.len() as u64;
        }
        let header = serde_json::to_vec(&ShardHeader {
            format: FORMAT.into(),
            dim: self.dim(),
            entries,
        })
        .expect("shard header serialises");
        let mut bytes = Vec::with_capacity(16 + header.len() + offset as usize * 4);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&header);
        for (_, f) in items {
            for v in &f.data {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = self
            .dir
            .join(format!("shard-{nanos:x}-{}.fbk", std::process::id()));
        write_atomic(&path, &bytes)?;
        self.add_shard(&path)
    }

    /// Reads every shard's header, oldest first (a later shard wins for a duplicate key), and
    /// removes temporary files left by runs that died.
    fn load_shards(&mut self) -> Result<(), DataError> {
        let read_dir = std::fs::read_dir(&self.dir).map_err(|e| DataError::io(&self.dir, e))?;
        let mut shards = Vec::new();
        for entry in read_dir {
            let path = entry.map_err(|e| DataError::io(&self.dir, e))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("shard-") && name.ends_with(".fbk") {
                shards.push(path);
            } else if name.contains(".tmp") && is_older_than(&path, STALE_TMP) {
                // Best effort: a leftover that cannot be removed does no harm.
                let _ = std::fs::remove_file(&path);
            }
        }
        shards.sort();
        for path in shards {
            if let Err(e) = self.add_shard(&path) {
                eprintln!("warning: removing damaged feature cache shard: {e}");
                std::fs::remove_file(&path).map_err(|e| DataError::io(&path, e))?;
            }
        }
        Ok(())
    }

    /// Validates the shard at `path`, keeps it open and indexes its entries.
    fn add_shard(&mut self, path: &Path) -> Result<Vec<Location>, DataError> {
        let bad = |reason: String| DataError::format(path, 0, reason);
        let file = File::open(path).map_err(|e| DataError::io(path, e))?;
        let size = file.metadata().map_err(|e| DataError::io(path, e))?.len();
        let mut head = [0u8; 16];
        read_exact_at(&file, &mut head, 0).map_err(|e| bad(format!("no header: {e}")))?;
        if &head[..8] != MAGIC {
            return Err(bad("not a feature cache shard (bad magic)".into()));
        }
        let header_len = u64::from_le_bytes(head[8..].try_into().expect("8 bytes"));
        if header_len > size.saturating_sub(16) {
            return Err(bad(format!(
                "header of {header_len} bytes in a {size}-byte file"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        read_exact_at(&file, &mut header, 16).map_err(|e| bad(e.to_string()))?;
        let header: ShardHeader =
            serde_json::from_slice(&header).map_err(|e| bad(format!("bad header: {e}")))?;
        let dim = self.dim() as u64;
        if header.format != FORMAT || header.dim as u64 != dim {
            return Err(bad(format!(
                "format {} with dim {}, expected {FORMAT} with dim {dim}",
                header.format, header.dim
            )));
        }
        let data_start = 16 + header_len;
        let floats: u64 = header.entries.iter().map(|e| e.frames as u64 * dim).sum();
        if size != data_start + floats * 4 {
            return Err(bad(format!(
                "{size} bytes where the header describes {}",
                data_start + floats * 4
            )));
        }
        // Every entry is checked before any reaches the index: a shard that fails leaves no
        // entry pointing at its number, which the next shard would reuse.
        let shard = self.shards.len() as u32;
        let mut entries = Vec::with_capacity(header.entries.len());
        for e in &header.entries {
            let key =
                CacheKey::from_hex(&e.key).ok_or_else(|| bad(format!("bad key {}", e.key)))?;
            if (e.offset + e.frames as u64 * dim) > floats {
                return Err(bad(format!("entry {} lies outside the data", e.key)));
            }
            let loc = Location {
                shard,
                offset: data_start + e.offset * 4,
                frames: e.frames,
            };
            entries.push((key, loc));
        }
        self.index.extend(entries.iter().copied());
        self.shards.push(file);
        Ok(entries.into_iter().map(|(_, loc)| loc).collect())
    }
}

/// Splits `items` into runs whose features should fill about one shard each. Feature bytes are
/// estimated from the audio bytes (16-bit 16 kHz PCM gives about as many feature bytes as audio
/// bytes; compressed audio gives more, hence the factor 2).
fn chunks_by_size(items: &[(CacheKey, AudioRef)]) -> Vec<&[(CacheKey, AudioRef)]> {
    let mut chunks = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, (_, audio)) in items.iter().enumerate() {
        bytes += 2 * audio.slice.map_or_else(
            || std::fs::metadata(&audio.path).map_or(0, |m| m.len()),
            |(_, len)| len,
        );
        if bytes >= SHARD_BYTES {
            chunks.push(&items[start..=i]);
            (start, bytes) = (i + 1, 0);
        }
    }
    if start < items.len() {
        chunks.push(&items[start..]);
    }
    chunks
}

fn is_older_than(path: &Path, age: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|e| e > age)
}
