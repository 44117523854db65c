//! A manifest's utterances with cached features, cut into batches and loaded as padded arrays.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use fbank::{utterance_cmvn, FbankOptions, Features, SpecAugment, WavOptions};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rayon::prelude::*;

use super::audio::AudioRef;
use super::batcher::{make_batches, mix, BatchConfig};
use super::error::DataError;
use super::feature_cache::{CacheKey, FeatureCache, Location};
use super::issue::{BadRows, IssueKind, IssueLog, RowIssue};
use super::manifest::Manifest;
use super::progress::Progress;
use super::tokenizer::Tokenizer;

/// How to open a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetOptions {
    /// Feature options (Kaldi defaults, 80 bins); part of the cache key.
    pub fbank: FbankOptions,
    /// Resample audio at another rate instead of rejecting the row.
    pub resample: bool,
    /// Skip and count bad rows, or stop at the first.
    pub bad_rows: BadRows,
    /// Show progress while extracting features.
    pub progress: bool,
    /// The text the targets are, when known: rows without it (a translation-only row for ASR,
    /// a transcript-only row for ST) are skipped and listed.
    pub side: Option<TargetSide>,
    /// Speed perturbation factors (Ko et al. 2015): every utterance appears once per factor, its
    /// audio played that much faster (`sp0.9-` id prefix, as Kaldi). `[1.0]`: as recorded.
    pub speeds: Vec<f32>,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        Self {
            fbank: FbankOptions::default(),
            resample: false,
            bad_rows: BadRows::Skip,
            progress: true,
            side: None,
            speeds: vec![1.0],
        }
    }
}

/// Which text a batch's targets are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetSide {
    /// `tgt_text`: the translation (speech translation).
    Translation,
    /// `src_text`: the transcript (speech recognition).
    Transcript,
}

/// Host-side padded batch; the trainer turns it into tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub ids: Vec<String>,
    /// `[batch, max_frames, feat_dim]`, zero padded, row-major.
    pub features: Vec<f32>,
    /// Real frames per row.
    pub frames: Vec<usize>,
    pub max_frames: usize,
    pub feat_dim: usize,
    /// Token ids per row, no BOS/EOS, unpadded.
    pub targets: Vec<Vec<u32>>,
    /// Reference text per row, as in the manifest.
    pub target_texts: Vec<String>,
}

impl Batch {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True for a batch without rows.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

#[derive(Debug)]
struct Utterance {
    id: String,
    tgt_text: String,
    src_text: Option<String>,
    /// Index of the feature cache (one per speed factor) holding the features.
    cache: usize,
    location: Location,
}

/// One manifest's utterances with cached features, ready to batch.
#[derive(Debug)]
pub struct Dataset {
    manifest: PathBuf,
    utterances: Vec<Utterance>,
    /// One feature cache per speed factor.
    caches: Vec<FeatureCache>,
    issues: IssueLog,
}

impl Dataset {
    /// Opens `manifest` (fairseq S2T TSV), extracting missing features into `cache_dir` first
    /// (all cores, progress bar). Rows with missing or undecodable audio, a wrong sample rate,
    /// empty text or a malformed line are skipped and listed in [`Dataset::issues`], or fatal
    /// with [`BadRows::Fail`].
    pub fn open(
        manifest: &Path,
        cache_dir: &Path,
        opts: &DatasetOptions,
    ) -> Result<Self, DataError> {
        let Manifest {
            path,
            rows,
            mut issues,
        } = Manifest::read(manifest, opts.bad_rows)?;
        let wav = WavOptions {
            channel: None,
            expected_rate: Some(opts.fbank.frame.samp_freq as u32),
            resample: opts.resample,
        };
        let issue = |line, kind, message| RowIssue {
            file: path.clone(),
            line,
            kind,
            message,
        };

        // Key every row (a missing file fails here), then extract what the cache lacks, once
        // per distinct audio.
        let mut keyed = Vec::with_capacity(rows.len());
        for row in rows {
            let lacks = match opts.side {
                Some(TargetSide::Translation) if row.tgt_text.is_empty() => Some("translation"),
                Some(TargetSide::Transcript) if row.src_text.is_none() => Some("transcript"),
                _ => None,
            };
            if let Some(text) = lacks {
                let msg = format!("{}: no {text}, which this task's targets are", row.id);
                issues.record(issue(row.line, IssueKind::EmptyText, msg), opts.bad_rows)?;
                continue;
            }
            match FeatureCache::key(&row.audio) {
                Ok(key) => keyed.push((row, key)),
                Err(e) => {
                    let kind = IssueKind::of_audio_error(&e);
                    issues.record(
                        issue(row.line, kind, format!("{}: {e}", row.id)),
                        opts.bad_rows,
                    )?;
                }
            }
        }
        if opts.speeds.is_empty() {
            return Err(DataError::Invalid(format!(
                "{}: no speed factor to open the data at (1.0 = as recorded)",
                path.display()
            )));
        }
        let mut caches = Vec::with_capacity(opts.speeds.len());
        let mut utterances = Vec::with_capacity(keyed.len() * opts.speeds.len());
        for &speed in &opts.speeds {
            let mut cache = FeatureCache::open(cache_dir, &opts.fbank, &wav, speed)?;
            let mut missing: Vec<(CacheKey, AudioRef)> = Vec::new();
            let mut queued = HashSet::new();
            for (row, key) in &keyed {
                if cache.get(key).is_none() && queued.insert(*key) {
                    missing.push((*key, row.audio.clone()));
                }
            }
            let mut failures = HashMap::new();
            if !missing.is_empty() {
                let label = if speed == 1.0 {
                    format!("fbank {}", manifest.display())
                } else {
                    format!("fbank {} at speed {speed}", manifest.display())
                };
                let progress = Progress::new(&label, missing.len(), opts.progress);
                let results = cache.extract(&missing, &progress)?;
                progress.finish();
                for ((key, _), r) in missing.iter().zip(results) {
                    if let Err(e) = r {
                        failures.insert(*key, e);
                    }
                }
            }
            for (row, key) in &keyed {
                let id = if speed == 1.0 {
                    row.id.clone()
                } else {
                    format!("sp{speed}-{}", row.id)
                };
                match cache.get(key) {
                    Some(location) => utterances.push(Utterance {
                        id,
                        tgt_text: row.tgt_text.clone(),
                        src_text: row.src_text.clone(),
                        cache: caches.len(),
                        location,
                    }),
                    None => {
                        let e = &failures[key];
                        let kind = IssueKind::of_audio_error(e);
                        issues
                            .record(issue(row.line, kind, format!("{id}: {e}")), opts.bad_rows)?;
                    }
                }
            }
            // Audio that failed once is reported once, not again at every other speed.
            keyed.retain(|(_, key)| !failures.contains_key(key));
            caches.push(cache);
        }
        issues.issues.sort_by_key(|i| i.line);
        Ok(Self {
            manifest: path,
            utterances,
            caches,
            issues,
        })
    }

    /// The manifest this dataset was read from.
    pub fn manifest(&self) -> &Path {
        &self.manifest
    }

    /// Rows of the manifest that were skipped, with file, line and reason.
    pub fn issues(&self) -> &IssueLog {
        &self.issues
    }

    /// Number of usable utterances.
    pub fn len(&self) -> usize {
        self.utterances.len()
    }

    /// True when no utterance is usable.
    pub fn is_empty(&self) -> bool {
        self.utterances.is_empty()
    }

    /// Feature dimension.
    pub fn feat_dim(&self) -> usize {
        self.caches[0].dim()
    }

    /// fbank frames of utterance `i`.
    pub fn frames(&self, i: usize) -> usize {
        self.utterances[i].location.frames()
    }

    /// `tgt_text` of utterance `i`.
    pub fn target_text(&self, i: usize) -> &str {
        &self.utterances[i].tgt_text
    }

    /// `src_text` (the transcript) of utterance `i`, if the manifest has one.
    pub fn source_text(&self, i: usize) -> Option<&str> {
        self.utterances[i].src_text.as_deref()
    }

    /// Id of utterance `i`.
    pub fn id(&self, i: usize) -> &str {
        &self.utterances[i].id
    }

    /// The texts of one side, e.g. to train a tokenizer; fails when a transcript is missing.
    pub fn texts(&self, side: TargetSide) -> Result<Vec<String>, DataError> {
        (0..self.len())
            .map(|i| self.text(i, side).map(str::to_string))
            .collect()
    }

    fn text(&self, i: usize, side: TargetSide) -> Result<&str, DataError> {
        match side {
            TargetSide::Translation => Ok(self.target_text(i)),
            TargetSide::Transcript => self.source_text(i).ok_or_else(|| {
                DataError::Invalid(format!(
                    "{}: utterance {} has no src_text (transcript), needed for ASR targets",
                    self.manifest.display(),
                    self.id(i)
                ))
            }),
        }
    }

    /// Index batches: bounded by `max_frames` (sum over the batch of padded frames, like
    /// fairseq max-tokens), length-bucketed, shuffled from `(seed, epoch)` when `shuffle`,
    /// else in order. Deterministic.
    pub fn batches(&self, cfg: &BatchConfig, epoch: u64) -> Vec<Vec<usize>> {
        let frames: Vec<usize> = (0..self.len()).map(|i| self.frames(i)).collect();
        make_batches(&frames, cfg, epoch)
    }

    /// Reads the features of utterance `i` with utterance CMVN applied.
    pub fn features(&self, i: usize) -> Result<Features, DataError> {
        let u = &self.utterances[i];
        let mut f = self.caches[u.cache].read(u.location)?;
        utterance_cmvn(&mut f, true, true);
        Ok(f)
    }

    /// Loads a batch: features with utterance CMVN, SpecAugment when `augment` is given
    /// (each utterance's masks drawn from the seed and its index), tokenised targets.
    pub fn load_batch(
        &self,
        indices: &[usize],
        tokenizer: &Tokenizer,
        target: TargetSide,
        augment: Option<(&SpecAugment, u64)>,
    ) -> Result<Batch, DataError> {
        let rows: Vec<(Features, Vec<u32>)> = indices
            .par_iter()
            .map(|&i| {
                let mut f = self.features(i)?;
                if let Some((spec, seed)) = augment {
                    spec.apply(&mut f, &mut StdRng::seed_from_u64(mix(seed, i as u64)));
                }
                Ok((f, tokenizer.encode(self.text(i, target)?)))
            })
            .collect::<Result<_, DataError>>()?;
        let feat_dim = self.feat_dim();
        let max_frames = rows.iter().map(|(f, _)| f.frames).max().unwrap_or(0);
        let mut features = vec![0.0f32; indices.len() * max_frames * feat_dim];
        for (b, (f, _)) in rows.iter().enumerate() {
            let start = b * max_frames * feat_dim;
            features[start..start + f.data.len()].copy_from_slice(&f.data);
        }
        Ok(Batch {
            ids: indices.iter().map(|&i| self.id(i).to_string()).collect(),
            frames: rows.iter().map(|(f, _)| f.frames).collect(),
            targets: rows.into_iter().map(|(_, t)| t).collect(),
            target_texts: indices
                .iter()
                .map(|&i| self.text(i, target).map(str::to_string))
                .collect::<Result<_, _>>()?,
            features,
            max_frames,
            feat_dim,
        })
    }
}
