//! Evaluation: batched beam search over the compressed caches, detokenised hypotheses and
//! references, BLEU / chrF / WER (sacreBLEU / jiwer exact), and the efficiency figures the
//! paper reports: decode time, tokens/s, real-time factor, peak KV-cache and memory.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use crate::config::{EvalConfig, ExperimentConfig, Task};
use crate::decode::{decode_ensemble, NgramLm, SpecialTokens};
use crate::error::{LearnerError, Result};
use crate::infer::ModelFiles;
use crate::precision::{cast_module, Precision};
use crate::train::batch::{to_tensors, Specials};
use data::progress::Progress;
use data::{Dataset, DatasetOptions, Tokenizer, SHOW_ISSUES};
use metrics::{score_lines, QualityReport};
use st_model::SpeechModel;

/// What `mtla-st eval` was asked to do.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    pub checkpoint: PathBuf,
    /// More checkpoints over the same vocabulary decoding together with `checkpoint` (an
    /// ensemble, fairseq's `--path a.pt:b.pt`; `checkpoint`'s tokenizer and CTC head are used).
    pub ensemble: Vec<PathBuf>,
    pub manifest: PathBuf,
    /// Defaults to the `tokenizer.json` beside the checkpoint or in its run folder (an averaged
    /// `RUN/avg.safetensors` as well as `RUN/checkpoints/x.safetensors`).
    pub tokenizer: Option<PathBuf>,
    pub eval: EvalConfig,
    pub task: Task,
    pub feature_cache: PathBuf,
    /// Folder for `hyp.txt`, `ref.txt`, `report.json`.
    pub out: PathBuf,
    pub progress: bool,
    /// Decode in f32, f16 or bf16 (the loaded weights are cast once).
    pub precision: Precision,
}

impl EvalOptions {
    /// Options from the run a checkpoint belongs to (the `config.toml` beside it or in its run
    /// folder, as [`ModelFiles::beside`] looks), if any.
    pub fn run_config(checkpoint: &Path) -> Option<ExperimentConfig> {
        ExperimentConfig::load(&ModelFiles::beside(checkpoint, "config.toml").ok()?).ok()
    }
}

/// Speed and memory of a decoding run.
#[derive(Debug, Clone, Serialize)]
pub struct Efficiency {
    pub sentences: usize,
    pub beam: usize,
    /// Weight of the CTC prefix score in the search (0: the decoder alone).
    pub ctc_weight: f64,
    /// Weight of the n-gram language model in the search (0: none).
    pub lm_weight: f64,
    /// Word insertion bonus of the search (0: none).
    pub word_bonus: f64,
    pub batches: usize,
    /// Wall time of encoder + beam search over all batches (fairseq's `gen_timer`).
    pub decode_s: f64,
    /// Generated tokens (EOS included) of the returned hypotheses.
    pub tokens: usize,
    pub tokens_per_s: f64,
    /// Hypotheses that ended at the length limit `max_len_a * frames + max_len_b` (possibly cut
    /// short; 0 when the limit never bit).
    pub length_limited: usize,
    pub audio_s: f64,
    /// decode_s / audio_s.
    pub real_time_factor: f64,
    /// Largest decoder KV cache held by any batch (all layers, all beams), bytes.
    pub peak_kv_cache_bytes: usize,
    /// Peak resident memory of the process (Linux VmHWM), bytes.
    pub peak_process_bytes: Option<u64>,
}

/// Everything `mtla-st eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    /// The checkpoint, or an ensemble's joined by ` + `.
    pub checkpoint: String,
    pub manifest: String,
    pub attention: String,
    pub down_rate: usize,
    pub quality: QualityReport,
    pub efficiency: Efficiency,
}

/// Peak resident set size of this process, from `/proc/self/status`.
pub fn peak_process_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The language model `eval.lm` when `eval.lm_weight > 0`, checked against the tokenizer.
pub(crate) fn fusion_lm(eval: &EvalConfig, tokenizer: &Tokenizer) -> Result<Option<NgramLm>> {
    eval.check_weights().map_err(LearnerError::Config)?;
    let Some(path) = eval.lm.as_ref().filter(|_| eval.lm_weight > 0.0) else {
        return Ok(None);
    };
    let lm = NgramLm::load(path)?;
    if lm.vocab_size() != tokenizer.vocab_size() {
        return Err(LearnerError::io(
            path,
            format!(
                "an n-gram model over {} tokens, but the tokenizer has {} pieces (train it with \
                 the model's tokenizer)",
                lm.vocab_size(),
                tokenizer.vocab_size()
            ),
        ));
    }
    Ok(Some(lm))
}

/// The ensemble member at `path` (`--ensemble`), cast as `opts` says; an error naming it when
/// its vocabulary or its tokenizer (where one lies beside it) is not the first checkpoint's.
fn ensemble_member<B: Backend>(
    path: &Path,
    opts: &EvalOptions,
    model_config: &st_model::ModelConfig,
    tokenizer_path: &Path,
    device: &B::Device,
) -> Result<SpeechModel<B>> {
    let config = st_model::checkpoint::stored_config(path)?;
    if config.vocab_size != model_config.vocab_size {
        return Err(LearnerError::io(
            path,
            format!(
                "an ensemble member over {} tokens, but {} has {}: ensembles need one vocabulary",
                config.vocab_size,
                opts.checkpoint.display(),
                model_config.vocab_size
            ),
        ));
    }
    // Same vocabulary size is not enough: the pieces must be the same ones.
    if let Ok(theirs) = ModelFiles::beside(path, "tokenizer.json") {
        if std::fs::read(&theirs).ok() != std::fs::read(tokenizer_path).ok() {
            return Err(LearnerError::io(
                path,
                format!(
                    "an ensemble member trained with another tokenizer ({} is not {})",
                    theirs.display(),
                    tokenizer_path.display()
                ),
            ));
        }
    }
    let member = st_model::checkpoint::load::<B>(&config, path, device)?;
    Ok(cast_module(member, opts.precision))
}

/// Decodes `opts.manifest` with the checkpoint on `device` and scores the result.
pub fn evaluate<B: Backend>(opts: &EvalOptions, device: &B::Device) -> Result<EvalReport> {
    let model_config = st_model::checkpoint::stored_config(&opts.checkpoint)?;
    let model = st_model::checkpoint::load::<B>(&model_config, &opts.checkpoint, device)?;
    let model = cast_module(model, opts.precision);
    let tokenizer_path = match &opts.tokenizer {
        Some(path) => path.clone(),
        None => ModelFiles::beside(&opts.checkpoint, "tokenizer.json")?,
    };
    let tokenizer = Tokenizer::load(&tokenizer_path)?;
    if tokenizer.vocab_size() != model_config.vocab_size {
        return Err(LearnerError::Config(format!(
            "{} has {} pieces but the checkpoint's model has a vocabulary of {}",
            tokenizer_path.display(),
            tokenizer.vocab_size(),
            model_config.vocab_size
        )));
    }
    let lm = fusion_lm(&opts.eval, &tokenizer)?;
    let mut members = vec![model];
    for path in &opts.ensemble {
        members.push(ensemble_member(
            path,
            opts,
            &model_config,
            &tokenizer_path,
            device,
        )?);
    }
    let models: Vec<&SpeechModel<B>> = members.iter().collect();
    let dataset = Dataset::open(
        &opts.manifest,
        &opts.feature_cache,
        &DatasetOptions {
            progress: opts.progress,
            side: Some(opts.task.side()),
            ..DatasetOptions::default()
        },
    )?;
    if !dataset.issues().is_empty() {
        eprintln!(
            "{}: {}",
            opts.manifest.display(),
            dataset.issues().report(SHOW_ISSUES)
        );
    }
    if dataset.len() == 0 {
        return Err(LearnerError::io(
            &opts.manifest,
            "nothing to decode: the manifest has no usable row (skipped rows are listed above)",
        ));
    }
    let side = opts.task.side();
    let batching = ExperimentConfig::default()
        .data
        .eval_batches(opts.eval.max_frames);
    let batches = dataset.batches(&batching, 0);
    let search = opts.eval.search();
    let special = SpecialTokens::of(&tokenizer);
    let (mut hyps, mut refs) = (Vec::new(), Vec::new());
    let (mut decode_s, mut tokens, mut peak_cache, mut audio_frames, mut length_limited) =
        (0.0, 0usize, 0usize, 0usize, 0usize);
    let progress = Progress::new("decoding", dataset.len(), opts.progress);
    for indices in &batches {
        let host = dataset.load_batch(indices, &tokenizer, side, None)?;
        let batch = to_tensors::<B>(&host, Specials::of(&tokenizer), device);
        B::sync(device)
            .map_err(|e| LearnerError::Training(format!("device sync failed: {e:?}")))?;
        let t0 = Instant::now();
        let features = batch.features.cast(opts.precision.dtype());
        let (found, stats) = decode_ensemble(
            &models,
            features,
            &batch.frames,
            &search,
            &special,
            lm.as_ref(),
        )?;
        B::sync(device)
            .map_err(|e| LearnerError::Training(format!("device sync failed: {e:?}")))?;
        decode_s += t0.elapsed().as_secs_f64();
        tokens += stats.tokens;
        length_limited += stats.length_limited;
        peak_cache = peak_cache.max(stats.peak_cache_bytes);
        audio_frames += host.frames.iter().sum::<usize>();
        hyps.extend(found.iter().map(|h| tokenizer.decode(&h.tokens)));
        refs.extend(host.target_texts.iter().cloned());
        progress.inc(host.frames.len() as u64);
    }
    progress.finish();
    if length_limited > 0 {
        eprintln!(
            "warning: {length_limited} of {} hypotheses ended at the length limit \
             (max_len_a {} x frames + max_len_b {}) and may be cut short; raise eval.max_len_a or \
             eval.max_len_b (--max-len-a, --max-len-b)",
            hyps.len(),
            search.max_len_a,
            search.max_len_b
        );
    }
    std::fs::create_dir_all(&opts.out).map_err(|e| LearnerError::io(&opts.out, e))?;
    for (name, lines) in [("hyp.txt", &hyps), ("ref.txt", &refs)] {
        let path = opts.out.join(name);
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        fbank::npy::write_atomic(&path, text.as_bytes()).map_err(|e| LearnerError::io(&path, e))?;
    }
    // 10 ms frame shift.
    let audio_s = audio_frames as f64 * 0.01;
    let report = EvalReport {
        checkpoint: std::iter::once(&opts.checkpoint)
            .chain(&opts.ensemble)
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        manifest: opts.manifest.display().to_string(),
        attention: model_config.decoder.attention.kind.to_string(),
        down_rate: model_config.down_rate(),
        quality: score_lines(&hyps, &[refs]),
        efficiency: Efficiency {
            sentences: hyps.len(),
            beam: search.beam,
            ctc_weight: search.ctc_weight,
            lm_weight: search.lm_weight,
            word_bonus: search.word_bonus,
            batches: batches.len(),
            decode_s,
            tokens,
            tokens_per_s: tokens as f64 / decode_s.max(1e-9),
            length_limited,
            audio_s,
            real_time_factor: decode_s / audio_s.max(1e-9),
            peak_kv_cache_bytes: peak_cache,
            peak_process_bytes: peak_process_bytes(),
        },
    };
    let path = opts.out.join("report.json");
    let json = serde_json::to_vec_pretty(&report).expect("report serialises");
    fbank::npy::write_atomic(&path, &json).map_err(|e| LearnerError::io(&path, e))?;
    Ok(report)
}

impl EvalReport {
    /// A readable summary table.
    pub fn table(&self) -> String {
        let q = &self.quality;
        let e = &self.efficiency;
        let percent = |w: &Option<metrics::WerScore>| {
            w.as_ref()
                .map_or("-".to_string(), |w| format!("{:.2}", 100.0 * w.wer))
        };
        let (wer, wer_fairseq) = (percent(&q.wer), percent(&q.wer_13a_lc_nopunct));
        format!(
            "| metric | value |\n|---|---|\n| model | {} (s = {}) |\n| sentences | {} (beam {}{}) |\n| BLEU | {:.2} |\n| chrF | {:.2} |\n\
             | WER (%) | {wer} |\n| WER lower-cased, no punctuation (fairseq's 13a) (%) | {wer_fairseq} |\n| decode time (s) | {:.3} |\n| tokens/s | {:.1} |\n| real-time factor | {:.4} |\n\
             | peak KV cache (MiB) | {:.3} |\n| peak process memory (MiB) | {} |\n\n{}",
            self.attention,
            self.down_rate,
            e.sentences,
            e.beam,
            [("CTC weight", e.ctc_weight), ("LM weight", e.lm_weight), ("word bonus", e.word_bonus)]
                .iter()
                .filter(|(_, w)| *w != 0.0)
                .map(|(name, w)| format!(", {name} {w}"))
                .collect::<String>(),
            q.bleu.score,
            q.chrf.score,
            e.decode_s,
            e.tokens_per_s,
            e.real_time_factor,
            e.peak_kv_cache_bytes as f64 / 1048576.0,
            e.peak_process_bytes.map_or("n/a".into(), |b| format!("{:.0}", b as f64 / 1048576.0)),
            q.bleu.signature
        )
    }
}
