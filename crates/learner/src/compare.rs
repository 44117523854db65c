//! Trains and evaluates several attention variants of one experiment with identical settings
//! and seeds, and tables quality against decoding speed and KV-cache memory, relative to MHA
//! (the paper's Table 1/5 layout). Finished runs are reused, interrupted ones resumed.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use mtla::AttentionKind;
use serde::Serialize;

use crate::average::{average_checkpoints, best_checkpoints};
use crate::config::ExperimentConfig;
use crate::error::{LearnerError, Result};
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::train::setup::{train, TrainOptions};
use crate::train::state::CheckpointDir;

/// One row of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    pub variant: String,
    pub parameters: usize,
    pub train_updates: usize,
    pub train_minutes: f64,
    /// Training throughput: updates per second of update time (validation excluded).
    pub train_updates_per_s: f64,
    /// Token accuracy and loss on the validation set of the best checkpoint: a finer measure of
    /// how well a variant learned than BLEU when the corpus is small.
    pub best_valid_accuracy: Option<f64>,
    pub best_valid_loss: Option<f64>,
    /// Does the best checkpoint listen: its audio gain (bits/token, ≈ 0 when the decoder ignores
    /// the audio) and greedy CTC WER on the dev set.
    pub best_audio_gain: Option<f64>,
    pub best_ctc_wer: Option<f64>,
    pub eval: EvalReport,
}

/// The comparison, with the honest caveats it needs.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub rows: Vec<CompareRow>,
    pub test_manifest: String,
    pub train_utterances: usize,
    pub notes: Vec<String>,
}

/// Trains (or resumes, or reuses) every variant under `out/<variant>`, averages its best
/// `average_best` checkpoints and decodes `config.data.test`.
pub fn compare<B: AutodiffBackend>(
    config: &ExperimentConfig,
    variants: &[String],
    out: &Path,
    average_best: usize,
    device: B::Device,
) -> Result<Comparison> {
    let test = config.data.test.clone().ok_or_else(|| {
        LearnerError::Config("data.test must name the manifest to evaluate on".into())
    })?;
    let mut rows = Vec::new();
    for variant in variants {
        let (kind, s) = AttentionKind::parse_variant(variant)
            .map_err(|e| LearnerError::Config(e.to_string()))?;
        let mut cfg = config.clone();
        cfg.model.decoder.attention.kind = kind;
        cfg.model.decoder.attention.down_rate = s;
        cfg.model = cfg.model.resolved()?;
        let run = out.join(variant);
        let state = CheckpointDir::new(&run)?.load()?;
        let finished = state.as_ref().is_some_and(|s| s.finished);
        if finished {
            eprintln!(
                "== {variant}: reusing the finished run in {}",
                run.display()
            );
        } else {
            eprintln!("== {variant}: training in {}", run.display());
            train::<B>(
                &TrainOptions {
                    config: cfg.clone(),
                    out: run.clone(),
                    resume: state.is_some(),
                    progress: true,
                    precision: Default::default(),
                },
                device.clone(),
            )?;
        }
        let state = CheckpointDir::new(&run)?
            .load()?
            .expect("training committed a state");
        let checkpoint = run.join("averaged.safetensors");
        average_checkpoints(&best_checkpoints(&run, average_best)?, &checkpoint)?;
        let run_cfg = ExperimentConfig::load(&run.join("config.toml"))?;
        let eval = evaluate::<B::InnerBackend>(
            &EvalOptions {
                checkpoint: checkpoint.clone(),
                manifest: test.clone(),
                tokenizer: Some(run.join("tokenizer.json")),
                eval: run_cfg.eval.clone(),
                task: run_cfg.data.task,
                feature_cache: run_cfg.data.feature_cache.clone(),
                out: run.join("eval-test"),
                progress: true,
                precision: Default::default(),
            },
            &device,
        )?;
        let model =
            st_model::checkpoint::load::<B::InnerBackend>(&run_cfg.model, &checkpoint, &device)?;
        rows.push(CompareRow {
            variant: variant.clone(),
            parameters: burn::module::Module::num_params(&model),
            train_updates: state.updates,
            train_minutes: state.elapsed_s / 60.0,
            train_updates_per_s: state.throughput().0,
            best_valid_accuracy: state.best.first().map(|k| k.valid_accuracy),
            best_valid_loss: state.best.first().map(|k| k.valid_loss),
            best_audio_gain: state.best.first().and_then(|k| k.audio_gain),
            best_ctc_wer: state.best.first().and_then(|k| k.ctc_wer),
            eval,
        });
    }
    let train_utterances = count_rows(&config.data.train);
    let sentences = rows.first().map_or(0, |r| r.eval.efficiency.sentences);
    let mut notes = Vec::new();
    if train_utterances < 20_000 || sentences < 1000 {
        notes.push(format!(
            "{train_utterances} training utterances and {sentences} test sentences are far too few for meaningful \
             BLEU/WER (the paper trains on 400 h of MuST-C): the quality columns show the pipeline works, not how \
             the attention kinds compare. Decoding time and KV-cache memory are measured for real."
        ));
    }
    let comparison = Comparison {
        rows,
        test_manifest: test.display().to_string(),
        train_utterances,
        notes,
    };
    std::fs::create_dir_all(out).map_err(|e| LearnerError::io(out, e))?;
    let json = serde_json::to_vec_pretty(&comparison).expect("serialises");
    fbank::npy::write_atomic(&out.join("comparison.json"), &json)
        .map_err(|e| LearnerError::io(out, e))?;
    fbank::npy::write_atomic(&out.join("comparison.md"), comparison.table().as_bytes())
        .map_err(|e| LearnerError::io(out, e))?;
    Ok(comparison)
}

fn count_rows(manifest: &PathBuf) -> usize {
    std::fs::read_to_string(manifest).map_or(0, |t| t.lines().count().saturating_sub(1))
}

impl Comparison {
    /// Markdown table: quality, decode time, KV cache, speed-up and memory reduction vs MHA.
    pub fn table(&self) -> String {
        let base = self.rows.iter().find(|r| r.variant == "mha");
        let mut out = String::from(
"| variant | params | dev acc % | dev loss bits/token | dev audio gain bits/token | dev greedy CTC WER % | BLEU | chrF | WER % | decode s | tokens/s | peak KV cache MB | speed-up vs MHA | KV memory reduction vs MHA | updates | train min | train updates/s |\n\
             |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for r in &self.rows {
            let e = &r.eval.efficiency;
            let q = &r.eval.quality;
            let ratio = |f: &dyn Fn(&CompareRow) -> f64| {
                base.map_or("-".to_string(), |b| {
                    format!("{:.2}x", f(b) / f(r).max(1e-12))
                })
            };
            out.push_str(&format!(
                "| {} | {:.2}M | {} | {} | {} | {} | {:.2} | {:.2} | {} | {:.2} | {:.0} | {:.2} | {} | {} | {} | {:.1} | {:.2} |\n",
                r.variant,
                r.parameters as f64 / 1e6,
                r.best_valid_accuracy
                    .map_or("-".into(), |a| format!("{:.2}", 100.0 * a)),
                r.best_valid_loss.map_or("-".into(), |l| format!("{l:.3}")),
                r.best_audio_gain.map_or("-".into(), |g| format!("{g:.3}")),
                r.best_ctc_wer.map_or("-".into(), |w| format!("{:.1}", 100.0 * w)),
                q.bleu.score,
                q.chrf.score,
                q.wer.as_ref().map_or("-".into(), |w| format!("{:.1}", 100.0 * w.wer)),
                e.decode_s,
                e.tokens_per_s,
                e.peak_kv_cache_bytes as f64 / 1e6,
                ratio(&|r| r.eval.efficiency.decode_s),
                ratio(&|r| r.eval.efficiency.peak_kv_cache_bytes as f64),
                r.train_updates,
                r.train_minutes,
                r.train_updates_per_s
            ));
        }
        for n in &self.notes {
            out.push_str(&format!("\nNote: {n}\n"));
        }
        out
    }
}
