//! Transcribing or translating audio files with a trained model: the model's weights, its
//! tokenizer and its experiment config (features, decoding settings, the longest input it was
//! trained on), each audio file decoded, resampled to 16 kHz, turned into the features training
//! used (Kaldi fbank, utterance CMVN) and beam-searched on its own.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use data::{AudioRef, DatasetOptions, Tokenizer};
use fbank::{utterance_cmvn, Fbank, WavOptions};
use serde::Serialize;
use st_model::SpeechModel;

use crate::config::{EvalConfig, ExperimentConfig};
use crate::decode::{decode_batch, NgramLm, SpecialTokens};
use crate::error::{LearnerError, Result};
use crate::eval::fusion_lm;
use crate::precision::{cast_module, Precision};

/// Audio quieter than this (RMS, dB below int16 full scale) is silence: nothing to decode.
pub const SILENCE_DBFS: f64 = -70.0;

/// The three files a usable model is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    pub weights: PathBuf,
    pub tokenizer: PathBuf,
    pub config: PathBuf,
}

impl ModelFiles {
    /// The files of `path`: a model folder holding `model.safetensors`, `tokenizer.json` and
    /// `config.toml` (as shipped under `models/`), or a checkpoint `.safetensors` with its
    /// tokenizer and config beside it or in its run folder (`RUN/checkpoints/x.safetensors`).
    /// A missing piece is an error naming the file looked for.
    pub fn find(path: &Path) -> Result<Self> {
        let weights = if path.is_dir() {
            path.join("model.safetensors")
        } else {
            path.to_path_buf()
        };
        if !weights.is_file() {
            return Err(LearnerError::io(&weights, "no model weights here"));
        }
        Ok(Self {
            tokenizer: Self::beside(path, "tokenizer.json")?,
            config: Self::beside(path, "config.toml")?,
            weights,
        })
    }

    /// The file `name` of the model at `path` (a model folder, or a checkpoint with the file
    /// beside it or in its run folder), or an error naming where it was looked for.
    pub fn beside(path: &Path, name: &str) -> Result<PathBuf> {
        let dirs = if path.is_dir() {
            vec![path.to_path_buf()]
        } else {
            let dir = path.parent().unwrap_or(Path::new("."));
            std::iter::once(dir)
                .chain(dir.parent())
                .map(Path::to_path_buf)
                .collect()
        };
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                LearnerError::io(
                    path,
                    format!(
                        "no {name} next to the weights (looked in {}); a model needs its {}",
                        dirs.iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" and "),
                        if name.starts_with("tokenizer") {
                            "tokenizer"
                        } else {
                            "config"
                        }
                    ),
                )
            })
    }
}

/// One file's result.
#[derive(Debug, Clone, Serialize)]
pub struct Decoded {
    pub file: String,
    pub text: String,
    /// Audio duration, seconds.
    pub audio_s: f64,
    /// Wall time of feature extraction, encoder and beam search, seconds.
    pub seconds: f64,
    /// Generated tokens (EOS included).
    pub tokens: usize,
    pub tokens_per_s: f64,
    /// The output ended at the length limit (`eval.max_len_a * frames + eval.max_len_b`) and
    /// may be cut short.
    pub length_limited: bool,
}

/// A loaded model ready to decode files.
pub struct Inference<B: Backend> {
    model: SpeechModel<B>,
    tokenizer: Tokenizer,
    config: ExperimentConfig,
    /// The shallow-fusion language model (`eval.lm`, when `eval.lm_weight > 0`).
    lm: Option<NgramLm>,
    fbank: Fbank,
    device: B::Device,
    precision: Precision,
}

impl<B: Backend> Inference<B> {
    /// Loads the model at `path` (see [`ModelFiles::find`]) on `device`.
    pub fn load(path: &Path, device: &B::Device) -> Result<Self> {
        let files = ModelFiles::find(path)?;
        let config = ExperimentConfig::load(&files.config)?;
        let model_config = st_model::checkpoint::stored_config(&files.weights)?;
        let model = st_model::checkpoint::load::<B>(&model_config, &files.weights, device)?;
        let tokenizer = Tokenizer::load(&files.tokenizer)?;
        if tokenizer.vocab_size() != model_config.vocab_size {
            return Err(LearnerError::Config(format!(
                "{} has {} pieces but the model in {} has a vocabulary of {}",
                files.tokenizer.display(),
                tokenizer.vocab_size(),
                files.weights.display(),
                model_config.vocab_size
            )));
        }
        let fbank = Fbank::new(DatasetOptions::default().fbank)
            .map_err(|e| LearnerError::Config(e.to_string()))?;
        let lm = fusion_lm(&config.eval, &tokenizer)?;
        Ok(Self {
            model,
            tokenizer,
            config,
            lm,
            fbank,
            device: device.clone(),
            precision: Precision::F32,
        })
    }

    /// The model decoding in `precision` (its weights cast once; f16/bf16 on GPU backends).
    pub fn in_precision(mut self, precision: Precision) -> Self {
        self.model = cast_module(self.model, precision);
        self.precision = precision;
        self
    }

    /// Decodes jointly with the model's CTC head at weight `ctc_weight` in `[0, 1]` (see
    /// [`crate::decode::ctc_prefix`]); an error for a model without a CTC head.
    pub fn with_ctc_weight(mut self, ctc_weight: f64) -> Result<Self> {
        let eval = EvalConfig {
            ctc_weight,
            ..self.config.eval.clone()
        };
        eval.check_weights().map_err(LearnerError::Config)?;
        if ctc_weight > 0.0 && self.model.ctc.is_none() {
            return Err(LearnerError::Config(format!(
                "CTC weight {ctc_weight}: this model has no CTC head (trained with model.ctc_weight = 0)"
            )));
        }
        self.config.eval = eval;
        Ok(self)
    }

    /// Decodes with shallow fusion of the n-gram model `lm` (default: the config's `eval.lm`)
    /// at weight `lm_weight` (default: `eval.lm_weight`; 0 decodes without it).
    pub fn with_lm(mut self, lm: Option<PathBuf>, lm_weight: Option<f64>) -> Result<Self> {
        let eval = EvalConfig {
            lm: lm.or(self.config.eval.lm.take()),
            lm_weight: lm_weight.unwrap_or(self.config.eval.lm_weight),
            ..self.config.eval.clone()
        };
        self.lm = fusion_lm(&eval, &self.tokenizer)?;
        self.config.eval = eval;
        Ok(self)
    }

    /// The experiment config the model was trained with.
    pub fn config(&self) -> &ExperimentConfig {
        &self.config
    }

    /// Decodes one audio file (WAV, FLAC or Ogg Vorbis, any sample rate). Empty or silent audio,
    /// and audio longer than the model was trained on, are errors naming the file.
    pub fn decode_file(&self, file: &Path, beam: usize) -> Result<Decoded> {
        let t0 = Instant::now();
        let audio = AudioRef::file(file);
        let wav = WavOptions {
            channel: None,
            expected_rate: Some(16_000),
            resample: true,
        };
        let data::audio::Decoded::Wave(wave) = data::audio::decode(&audio, &wav)? else {
            return Err(LearnerError::io(file, "not audio (precomputed features?)"));
        };
        let rms = (wave
            .samples
            .iter()
            .map(|&s| (s as f64).powi(2))
            .sum::<f64>()
            / wave.samples.len().max(1) as f64)
            .sqrt();
        let dbfs = 20.0 * (rms / 32768.0).max(1e-12).log10();
        if dbfs < SILENCE_DBFS {
            return Err(LearnerError::io(
                file,
                format!("silence (RMS {dbfs:.0} dBFS < {SILENCE_DBFS} dBFS): nothing to decode"),
            ));
        }
        // The features training saw: Kaldi fbank, then utterance CMVN (as the dataset reads them).
        let mut features = self.fbank.compute(&wave.samples);
        let limit = self.config.data.max_utt_frames;
        if features.frames > limit {
            return Err(LearnerError::io(
                file,
                format!(
                    "{:.1} s is longer than this model accepts ({:.1} s, data.max_utt_frames = {limit}); \
                     cut it into shorter pieces",
                    features.frames as f64 / 100.0,
                    limit as f64 / 100.0
                ),
            ));
        }
        if features.frames < self.config.data.min_frames {
            return Err(LearnerError::io(
                file,
                format!(
                    "{} ms of audio is too short to decode",
                    features.frames * 10
                ),
            ));
        }
        utterance_cmvn(&mut features, true, true);
        let input = Tensor::<B, 1>::from_floats(features.data.as_slice(), &self.device).reshape([
            1,
            features.frames,
            features.dim,
        ]);
        let input = input.cast(self.precision.dtype());
        let search = EvalConfig {
            beam,
            ..self.config.eval.clone()
        }
        .search();
        let (found, stats) = decode_batch(
            &self.model,
            input,
            &[features.frames],
            &search,
            &SpecialTokens::of(&self.tokenizer),
            self.lm.as_ref(),
        )?;
        let seconds = t0.elapsed().as_secs_f64();
        Ok(Decoded {
            file: file.display().to_string(),
            text: self.tokenizer.decode(&found[0].tokens),
            audio_s: features.frames as f64 / 100.0,
            seconds,
            tokens: stats.tokens,
            tokens_per_s: stats.tokens as f64 / seconds.max(1e-9),
            length_limited: stats.length_limited > 0,
        })
    }
}
