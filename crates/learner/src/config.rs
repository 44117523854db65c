//! The experiment TOML: `[model]` (st-model), `[data]`, `[train]`, `[eval]`. Unknown keys are
//! rejected with the list of valid ones; impossible values are errors naming the field. Every
//! run writes its resolved config next to its outputs.

use std::path::{Path, PathBuf};

use fbank::SpecAugment;
use serde::{Deserialize, Serialize};
use st_model::ModelConfig;

use crate::decode::BeamConfig;
use crate::error::{LearnerError, Result};
use data::{BatchConfig, TargetSide};

/// Which text the model learns to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Speech translation: `tgt_text`.
    Translation,
    /// Speech recognition: `src_text` (the transcript).
    Transcript,
}

impl Task {
    pub fn side(self) -> TargetSide {
        match self {
            Self::Translation => TargetSide::Translation,
            Self::Transcript => TargetSide::Transcript,
        }
    }
}

/// Where the data is and how it is batched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// fairseq S2T TSV manifests. Every relative path in a config file is relative to the
    /// file's folder.
    pub train: PathBuf,
    pub valid: PathBuf,
    pub test: Option<PathBuf>,
    /// On-disk fbank cache shared by runs.
    pub feature_cache: PathBuf,
    pub task: Task,
    /// An existing tokenizer (ours or a SentencePiece `.model`); trained on the training
    /// targets with `model.vocab_size` pieces when absent.
    pub tokenizer: Option<PathBuf>,
    /// Batch bound in padded frames (fairseq `--max-tokens`).
    pub max_frames: usize,
    pub max_sentences: Option<usize>,
    /// Utterances outside [min_frames, max_utt_frames] are left out of training (fairseq 5, 3000).
    pub min_frames: usize,
    pub max_utt_frames: usize,
    /// Resample audio at another sample rate (otherwise such rows are skipped and reported).
    pub resample: bool,
    /// SpecAugment on training batches (fairseq LB policy by default); `None` disables it.
    pub specaugment: Option<SpecAugment>,
    /// Speed perturbation of the training set (Ko et al. 2015; Kaldi/ESPnet use 0.9, 1.0, 1.1):
    /// each training utterance once per factor, its audio played that much faster, features
    /// cached per factor. Empty: the audio as recorded. Dev and test sets are never perturbed.
    pub speed_perturb: Vec<f32>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            train: "data/demo/train.tsv".into(),
            valid: "data/demo/dev.tsv".into(),
            test: Some("data/demo/test.tsv".into()),
            feature_cache: "runs/feature-cache".into(),
            task: Task::Translation,
            tokenizer: None,
            max_frames: 40_000,
            max_sentences: None,
            min_frames: 5,
            max_utt_frames: 3000,
            resample: false,
            specaugment: Some(SpecAugment::default()),
            speed_perturb: Vec::new(),
        }
    }
}

impl DataConfig {
    /// The speed factors the training set is opened at (`[1.0]` without perturbation).
    pub fn train_speeds(&self) -> Vec<f32> {
        if self.speed_perturb.is_empty() {
            vec![1.0]
        } else {
            self.speed_perturb.clone()
        }
    }

    /// Batching of the training set for `seed`.
    pub fn train_batches(&self, seed: u64) -> BatchConfig {
        BatchConfig {
            max_frames: self.max_frames,
            max_sentences: self.max_sentences,
            shuffle: true,
            seed,
            min_frames: self.min_frames,
            max_utt_frames: self.max_utt_frames,
        }
    }

    /// Batching of dev/test sets: in order, nothing left out for length.
    pub fn eval_batches(&self, max_frames: usize) -> BatchConfig {
        BatchConfig {
            max_frames,
            max_sentences: self.max_sentences,
            shuffle: false,
            seed: 0,
            min_frames: 1,
            max_utt_frames: usize::MAX,
        }
    }
}

/// Optimisation (defaults: the paper's ST recipe).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub seed: u64,
    /// Peak learning rate of the inverse-sqrt schedule.
    pub lr: f64,
    pub warmup_updates: usize,
    pub warmup_init_lr: f64,
    /// Stop after this many optimizer updates (0 = no limit).
    pub max_updates: usize,
    /// Stop after this many epochs (0 = no limit).
    pub max_epochs: usize,
    /// Stop after this much wall time (0 = no limit), checkpointing first.
    pub time_limit_minutes: f64,
    /// Batches whose gradients are summed into one update (fairseq `--update-freq`).
    pub update_freq: usize,
    /// Clip the global gradient norm to this (0 = no clipping).
    pub clip_norm: f64,
    pub label_smoothing: f64,
    pub adam_betas: (f64, f64),
    pub adam_eps: f64,
    pub weight_decay: f64,
    /// Validate and checkpoint every this many updates (0 = at the end of each epoch only).
    pub validate_every_updates: usize,
    /// Keep this many best checkpoints by validation accuracy (for averaging).
    pub keep_best: usize,
    /// Start from these weights (a checkpoint of the same architecture): fine-tuning.
    pub init_from: Option<PathBuf>,
    /// Keep the speech encoder (subsampler and layers) as `model.encoder_init` or `init_from`
    /// gave it and train the rest (decoder, projector, CTC head): its parameters get no
    /// gradient, so the encoder's forward is not even recorded for backpropagation. Compares
    /// decoders on one shared encoder at a fraction of the cost of a full update.
    pub freeze_encoder: bool,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            lr: 2e-3,
            warmup_updates: 10_000,
            warmup_init_lr: 0.0,
            max_updates: 100_000,
            max_epochs: 0,
            time_limit_minutes: 0.0,
            update_freq: 8,
            clip_norm: 10.0,
            label_smoothing: 0.1,
            adam_betas: (0.9, 0.999),
            adam_eps: 1e-8,
            weight_decay: 0.0,
            validate_every_updates: 0,
            keep_best: 10,
            init_from: None,
            freeze_encoder: false,
        }
    }
}

/// Evaluation: beam search settings and decoding batch size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalConfig {
    pub beam: usize,
    pub lenpen: f64,
    pub max_len_a: f64,
    pub max_len_b: usize,
    pub min_len: usize,
    /// Decoding batch bound in padded frames (the paper: 50,000).
    pub max_frames: usize,
    /// Joint CTC/attention decoding: the CTC prefix score's weight `λ` in `[0, 1]` (0: the
    /// decoder alone; needs a model trained with a CTC head, `model.ctc_weight > 0`).
    pub ctc_weight: f64,
    /// Shallow fusion: an n-gram language model over the model's pieces (`mtla-st lm`), and
    /// the weight `β ≥ 0` of its log-probability (0: none; see [`crate::decode::ngram`]).
    pub lm: Option<PathBuf>,
    pub lm_weight: f64,
    /// Word insertion bonus `γ`, added for every word-initial piece (below 0: fewer, longer
    /// words; see [`BeamConfig::word_bonus`]).
    pub word_bonus: f64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        let b = BeamConfig::default();
        Self {
            beam: b.beam,
            lenpen: b.lenpen,
            max_len_a: b.max_len_a,
            max_len_b: b.max_len_b,
            min_len: b.min_len,
            max_frames: 50_000,
            ctc_weight: b.ctc_weight,
            lm: None,
            lm_weight: b.lm_weight,
            word_bonus: b.word_bonus,
        }
    }
}

impl EvalConfig {
    /// The CTC weight is a mixing weight, `[0, 1]`; the language model's a scale, `>= 0`, and
    /// needs a language model; the word bonus any finite number.
    pub fn check_weights(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.ctc_weight) {
            return Err(format!(
                "eval.ctc_weight (--ctc-weight) must be in [0, 1], got {}",
                self.ctc_weight
            ));
        }
        if !(self.lm_weight >= 0.0 && self.lm_weight.is_finite()) {
            return Err(format!(
                "eval.lm_weight (--lm-weight) must be a finite number >= 0, got {}",
                self.lm_weight
            ));
        }
        if !self.word_bonus.is_finite() {
            return Err(format!(
                "eval.word_bonus (--word-bonus) must be a finite number, got {}",
                self.word_bonus
            ));
        }
        match self.lm_weight > 0.0 && self.lm.is_none() {
            true => Err(format!(
                "eval.lm_weight = {} needs eval.lm (--lm): an n-gram model made by `mtla-st lm`",
                self.lm_weight
            )),
            false => Ok(()),
        }
    }

    pub fn search(&self) -> BeamConfig {
        BeamConfig {
            beam: self.beam,
            lenpen: self.lenpen,
            max_len_a: self.max_len_a,
            max_len_b: self.max_len_b,
            min_len: self.min_len,
            ctc_weight: self.ctc_weight,
            lm_weight: self.lm_weight,
            word_bonus: self.word_bonus,
        }
    }
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub eval: EvalConfig,
}

impl ExperimentConfig {
    /// Reads and validates `path`; relative paths in it are relative to the file's folder.
    pub fn load(path: &Path) -> Result<Self> {
        Self::load_with(path, &[])
    }

    /// As [`load`](Self::load), after applying `key.path=value` overrides (values are TOML;
    /// bare words are strings), e.g. `model.decoder.attention.kind=mha`.
    pub fn load_with(path: &Path, overrides: &[String]) -> Result<Self> {
        let fail = |m: String| LearnerError::Config(format!("{}: {m}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| fail(e.to_string()))?;
        for o in overrides {
            apply_override(&mut table, o).map_err(fail)?;
        }
        let mut config: Self = table
            .try_into()
            .map_err(|e: toml::de::Error| fail(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.data.rebase(base);
        config
            .train
            .init_from
            .iter_mut()
            .chain(config.model.encoder_init.iter_mut())
            .chain(config.eval.lm.iter_mut())
            .for_each(|p| rebase(p, base));
        config.model = config
            .model
            .resolved()
            .map_err(|e| LearnerError::Config(format!("{}: {e}", path.display())))?;
        config
            .validate()
            .map_err(|e| LearnerError::Config(format!("{}: {e}", path.display())))?;
        Ok(config)
    }

    /// Checks values that cannot work, naming the field.
    pub fn validate(&self) -> std::result::Result<(), String> {
        let t = &self.train;
        if t.update_freq == 0 {
            return Err("train.update_freq must be >= 1".into());
        }
        if !(t.lr > 0.0) || t.warmup_init_lr < 0.0 {
            return Err(format!(
                "train.lr must be > 0 and warmup_init_lr >= 0 (got {}, {})",
                t.lr, t.warmup_init_lr
            ));
        }
        if t.max_updates == 0 && t.max_epochs == 0 && t.time_limit_minutes <= 0.0 {
            return Err(
                "set at least one of train.max_updates, train.max_epochs, train.time_limit_minutes"
                    .into(),
            );
        }
        if !(0.0..1.0).contains(&t.label_smoothing) {
            return Err(format!(
                "train.label_smoothing must be in [0, 1), got {}",
                t.label_smoothing
            ));
        }
        if self.eval.beam == 0 {
            return Err("eval.beam must be >= 1, got 0".into());
        }
        self.eval.check_weights()?;
        if self.eval.ctc_weight > 0.0 && self.model.ctc_weight == 0.0 {
            return Err(format!(
                "eval.ctc_weight = {} needs a CTC head: set model.ctc_weight > 0 (or eval.ctc_weight = 0)",
                self.eval.ctc_weight
            ));
        }
        if self.data.max_frames == 0 || self.eval.max_frames == 0 {
            return Err("data.max_frames and eval.max_frames must be > 0".into());
        }
        if t.freeze_encoder && t.init_from.is_none() && self.model.encoder_init.is_none() {
            return Err(
                "train.freeze_encoder keeps the encoder as it starts: give it weights with \
                 model.encoder_init or train.init_from"
                    .into(),
            );
        }
        let speeds = &self.data.speed_perturb;
        if let Some(f) = speeds.iter().find(|f| !(0.5..=2.0).contains(*f)) {
            return Err(format!(
                "data.speed_perturb factors must be in [0.5, 2], got {f}"
            ));
        }
        if (1..speeds.len()).any(|i| speeds[..i].contains(&speeds[i])) {
            return Err(format!(
                "data.speed_perturb lists a factor twice: {speeds:?}"
            ));
        }
        Ok(())
    }

    /// The resolved config as TOML (what a run writes next to its outputs).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("configs serialise")
    }
}

/// Sets `a.b.c=value` in `table`, creating tables on the way.
fn apply_override(table: &mut toml::Table, assignment: &str) -> std::result::Result<(), String> {
    let (key, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("override '{assignment}' is not key.path=value"))?;
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.trim().split('.').collect();
    let (last, path) = parts
        .split_last()
        .ok_or_else(|| format!("override '{assignment}' has an empty key"))?;
    let mut node = table;
    for part in path {
        node = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .ok_or_else(|| format!("override '{assignment}': '{part}' is not a table"))?;
    }
    node.insert(last.to_string(), value);
    Ok(())
}

/// Makes `p`, if relative to `base` (the config file's folder), absolute, so that the resolved
/// config a run writes next to its outputs still names the same files when read from there.
fn rebase(p: &mut PathBuf, base: &Path) {
    if p.is_relative() {
        let joined = base.join(&*p);
        *p = std::path::absolute(&joined).unwrap_or(joined);
    }
}

impl DataConfig {
    /// Makes every relative path relative to `base` (the config file's folder), absolute.
    fn rebase(&mut self, base: &Path) {
        [&mut self.train, &mut self.valid, &mut self.feature_cache]
            .into_iter()
            .chain(self.test.iter_mut())
            .chain(self.tokenizer.iter_mut())
            .for_each(|p| rebase(p, base));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn overrides_and_errors_name_the_field() {
        let (_d, path) = write("[train]\nmax_updates = 10\n");
        let c = ExperimentConfig::load_with(
            &path,
            &[
                "model.decoder.attention.kind=mha".into(),
                "eval.beam=3".into(),
            ],
        )
        .unwrap();
        assert_eq!(c.model.decoder.attention.kind, mtla::AttentionKind::Mha);
        assert_eq!(c.eval.beam, 3);
        let err = ExperimentConfig::load_with(&path, &["eval.beam=0".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("eval.beam"), "{err}");
        for (bad, what) in [
            ("eval.ctc_weight=1.5", "[0, 1]"),
            ("eval.ctc_weight=0.3", "CTC head"),
            ("eval.lm_weight=-0.5", ">= 0"),
            ("eval.lm_weight=0.5", "needs eval.lm"),
            ("eval.word_bonus=nan", "finite"),
        ] {
            let err = ExperimentConfig::load_with(&path, &[bad.into()])
                .unwrap_err()
                .to_string();
            let key = bad.split('=').next().unwrap();
            assert!(err.contains(key) && err.contains(what), "{err}");
        }
        // The language model's path is relative to the config file, as every path in it.
        let c = ExperimentConfig::load_with(
            &path,
            &["eval.lm=\"lm.bin\"".into(), "eval.lm_weight=0.5".into()],
        )
        .unwrap();
        assert_eq!(
            c.eval.lm.as_deref(),
            Some(path.parent().unwrap().join("lm.bin").as_path())
        );
        assert_eq!(c.eval.search().lm_weight, 0.5);
        let c = ExperimentConfig::load_with(
            &path,
            &["model.ctc_weight=0.3".into(), "eval.ctc_weight=0.3".into()],
        )
        .unwrap();
        assert_eq!(c.eval.search().ctc_weight, 0.3);
        assert_eq!(c.data.train_speeds(), [1.0]);
        let c = ExperimentConfig::load_with(&path, &["data.speed_perturb=[0.9, 1.0, 1.1]".into()])
            .unwrap();
        assert_eq!(c.data.train_speeds(), [0.9, 1.0, 1.1]);
        for (sp, what) in [("[0.3]", "[0.5, 2]"), ("[0.9, 0.9]", "twice")] {
            let err = ExperimentConfig::load_with(&path, &[format!("data.speed_perturb={sp}")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("data.speed_perturb") && err.contains(what),
                "{err}"
            );
        }
        let (_d, bad) = write("[train]\nmax_update = 10\n");
        let err = ExperimentConfig::load(&bad).unwrap_err().to_string();
        assert!(
            err.contains("max_update") && err.contains("max_updates"),
            "unknown keys list the valid ones: {err}"
        );
        let (_d, bad) =
            write("[model.decoder.attention]\ndown_rate = 0\n[train]\nmax_updates = 1\n");
        assert!(ExperimentConfig::load(&bad)
            .unwrap_err()
            .to_string()
            .contains("down_rate"));
    }

    /// Every config shipped in `configs/` loads and validates, and those that name data (all
    /// but the paper's, whose MuST-C manifests come with `--set`) name the demo's, which exist.
    #[test]
    fn shipped_configs_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let c =
                ExperimentConfig::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if name != "paper_mustc.toml" {
                for data in [&c.data.train, &c.data.valid] {
                    assert!(data.is_file(), "{name}: {}", data.display());
                }
            }
            names.push(name);
        }
        names.sort();
        assert_eq!(
            names,
            [
                "asr_small.toml",
                "paper_mustc.toml",
                "small_cpu.toml",
                "st_small.toml"
            ]
        );
    }

    /// A run writes its resolved config next to its outputs and `--resume` / `eval` read it
    /// from there: the checkpoints it names must be the same files, also when the original
    /// config was given by a relative path (this once made `encoder_init` relative to the
    /// working directory, so the stored config named a file inside the run folder).
    #[test]
    fn checkpoint_paths_survive_the_written_config() {
        let dir = tempfile::tempdir_in(".").unwrap();
        let relative = Path::new(dir.path().file_name().unwrap());
        std::fs::write(
            relative.join("c.toml"),
            "[model]\nencoder_init = \"enc.safetensors\"\n\
             [train]\nmax_updates = 1\ninit_from = \"../init.safetensors\"\n",
        )
        .unwrap();
        let c = ExperimentConfig::load(&relative.join("c.toml")).unwrap();
        let expected = |p: &str| std::path::absolute(relative.join(p)).unwrap();
        assert_eq!(c.model.encoder_init, Some(expected("enc.safetensors")));
        assert_eq!(c.train.init_from, Some(expected("../init.safetensors")));
        let run = relative.join("run");
        std::fs::create_dir(&run).unwrap();
        std::fs::write(run.join("config.toml"), c.to_toml()).unwrap();
        let stored = ExperimentConfig::load(&run.join("config.toml")).unwrap();
        assert_eq!(stored.model, c.model);
        assert_eq!(stored.train.init_from, c.train.init_from);
    }
}
