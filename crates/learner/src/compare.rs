//! Trains and evaluates several attention variants of one experiment with identical settings
//! and seeds, and tables quality against decoding speed and KV-cache memory, relative to MHA
//! (the paper's Table 1/5 layout). With several seeds per variant a second table gives each
//! variant's mean and range. Finished runs are reused, interrupted ones resumed.

use std::path::{Path, PathBuf};

use burn::tensor::backend::AutodiffBackend;
use mtla::AttentionKind;
use serde::Serialize;

use crate::average::{average_checkpoints, best_checkpoints, StoredPrecision};
use crate::config::ExperimentConfig;
use crate::error::{LearnerError, Result};
use crate::eval::{evaluate, EvalOptions, EvalReport};
use crate::train::setup::{train, TrainOptions};
use crate::train::state::CheckpointDir;

/// One row of the comparison.
#[derive(Debug, Clone, Serialize)]
pub struct CompareRow {
    pub variant: String,
    pub seed: u64,
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

/// One training run of a comparison.
#[derive(Debug, Clone)]
pub struct VariantRun {
    pub variant: String,
    pub seed: u64,
    /// Its run folder (`out/<variant>`, or `out/<variant>-seed<N>` with several seeds).
    pub dir: PathBuf,
}

/// Trains (or resumes, or reuses when finished) every variant with every seed, seed-major, so
/// that an interrupted comparison has every variant at the first seeds. Runs live under
/// `out/<variant>` with one seed (the config's when `seeds` is empty) and
/// `out/<variant>-seed<N>` with several. Nothing is evaluated: [`compare`] does that, and
/// `mtla-st compare --train-only` stops here (e.g. to train seeds in concurrent processes and
/// decode them all afterwards on a quiet machine).
pub fn train_variants<B: AutodiffBackend>(
    config: &ExperimentConfig,
    variants: &[String],
    seeds: &[u64],
    out: &Path,
    device: B::Device,
) -> Result<Vec<VariantRun>> {
    let seeds = if seeds.is_empty() {
        vec![config.train.seed]
    } else {
        seeds.to_vec()
    };
    let mut runs = Vec::new();
    for &seed in &seeds {
        for variant in variants {
            let (kind, s) = AttentionKind::parse_variant(variant)
                .map_err(|e| LearnerError::Config(e.to_string()))?;
            let mut cfg = config.clone();
            cfg.model.decoder.attention.kind = kind;
            cfg.model.decoder.attention.down_rate = s;
            cfg.model = cfg.model.resolved()?;
            cfg.train.seed = seed;
            let dir = match seeds.len() {
                1 => out.join(variant),
                _ => out.join(format!("{variant}-seed{seed}")),
            };
            let state = CheckpointDir::new(&dir)?.load()?;
            if state.as_ref().is_some_and(|s| s.finished) {
                eprintln!(
                    "== {variant}: reusing the finished run in {}",
                    dir.display()
                );
            } else {
                eprintln!("== {variant}: training in {}", dir.display());
                train::<B>(
                    &TrainOptions {
                        config: cfg,
                        out: dir.clone(),
                        resume: state.is_some(),
                        progress: true,
                        precision: Default::default(),
                    },
                    device.clone(),
                )?;
            }
            runs.push(VariantRun {
                variant: variant.clone(),
                seed,
                dir,
            });
        }
    }
    Ok(runs)
}

/// Trains every run ([`train_variants`]), then averages each run's best `average_best`
/// checkpoints and decodes `config.data.test` with it, and tables the results. Decoding follows
/// `config.eval` (so `--set eval.ctc_weight=0.2` re-decodes finished runs jointly with CTC) into
/// each run's `eval-test` (`eval-test-ctc<λ>` with a CTC weight).
pub fn compare<B: AutodiffBackend>(
    config: &ExperimentConfig,
    variants: &[String],
    seeds: &[u64],
    out: &Path,
    average_best: usize,
    device: B::Device,
) -> Result<Comparison> {
    let test = config.data.test.clone().ok_or_else(|| {
        LearnerError::Config("data.test must name the manifest to evaluate on".into())
    })?;
    let mut rows = Vec::new();
    for VariantRun { variant, seed, dir } in
        train_variants::<B>(config, variants, seeds, out, device.clone())?
    {
        let state = CheckpointDir::new(&dir)?
            .load()?
            .expect("training committed a state");
        let checkpoint = dir.join("averaged.safetensors");
        average_checkpoints(
            &best_checkpoints(&dir, average_best)?,
            &checkpoint,
            StoredPrecision::F32,
        )?;
        let run_cfg = ExperimentConfig::load(&dir.join("config.toml"))?;
        let eval = evaluate::<B::InnerBackend>(
            &EvalOptions {
                checkpoint: checkpoint.clone(),
                ensemble: Vec::new(),
                manifest: test.clone(),
                tokenizer: Some(dir.join("tokenizer.json")),
                eval: config.eval.clone(),
                task: run_cfg.data.task,
                feature_cache: run_cfg.data.feature_cache.clone(),
                out: dir.join(match config.eval.ctc_weight {
                    0.0 => "eval-test".to_string(),
                    w => format!("eval-test-ctc{w}"),
                }),
                progress: true,
                precision: Default::default(),
            },
            &device,
        )?;
        let model =
            st_model::checkpoint::load::<B::InnerBackend>(&run_cfg.model, &checkpoint, &device)?;
        rows.push(CompareRow {
            variant,
            seed,
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
    let mut notes = vec![format!(
        "Decoding: each run's {average_best} best checkpoints averaged, beam {}, length penalty {}, {}.",
        config.eval.beam,
        config.eval.lenpen,
        match config.eval.ctc_weight {
            0.0 => "the attention decoder alone".to_string(),
            w => format!("jointly with the CTC head at weight {w}"),
        }
    )];
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

impl CompareRow {
    /// The columns that vary between seeds, as numbers (`None`: not measured for this run).
    fn measures(&self) -> [Option<f64>; 10] {
        let e = &self.eval.efficiency;
        let q = &self.eval.quality;
        [
            self.best_valid_accuracy.map(|a| 100.0 * a),
            self.best_valid_loss,
            self.best_audio_gain,
            self.best_ctc_wer.map(|w| 100.0 * w),
            Some(q.bleu.score),
            Some(q.chrf.score),
            q.wer.as_ref().map(|w| 100.0 * w.wer),
            Some(e.decode_s),
            Some(e.tokens_per_s),
            Some(e.peak_kv_cache_bytes as f64 / 1e6),
        ]
    }
}

/// Header of both tables: the measures of [`CompareRow::measures`], then the ratios to MHA.
const MEASURE_COLUMNS: &str = "dev acc % | dev loss bits/token | dev audio gain bits/token | dev greedy CTC WER % | BLEU | chrF | WER % | decode s | tokens/s | peak KV cache MB | speed-up vs MHA | KV memory reduction vs MHA";
/// Decimals of each measure.
const MEASURE_DECIMALS: [usize; 10] = [2, 3, 3, 1, 2, 2, 1, 2, 0, 2];

impl Comparison {
    /// Markdown table, one row per run: quality, decode time, KV cache, speed-up and memory
    /// reduction vs MHA (the mean of its seeds), training throughput. With several seeds, a
    /// second table gives each variant's mean and, in brackets, its range over the seeds.
    pub fn table(&self) -> String {
        let seeded = self
            .rows
            .first()
            .is_some_and(|first| self.rows.iter().any(|r| r.seed != first.seed));
        let mha = self.mean_of("mha");
        // Right-aligned number columns after the first: the measures and their neighbours.
        let numbers = |others: usize| "---:|".repeat(MEASURE_COLUMNS.split(" | ").count() + others);
        let mut out = format!(
            "| variant | params | {MEASURE_COLUMNS} | updates | train min | train updates/s |\n|---|{}\n",
            numbers(4)
        );
        for r in &self.rows {
            let label = match seeded {
                true => format!("{} (seed {})", r.variant, r.seed),
                false => r.variant.clone(),
            };
            let measures = r.measures();
            let cells = measures
                .iter()
                .zip(MEASURE_DECIMALS)
                .map(|(v, d)| v.map_or("-".into(), |v| format!("{v:.d$}")));
            out.push_str(&format!(
                "| {label} | {:.2}M | {} | {} | {} | {:.1} | {:.2} |\n",
                r.parameters as f64 / 1e6,
                cells.collect::<Vec<_>>().join(" | "),
                ratios(mha.as_ref(), &measures),
                r.train_updates,
                r.train_minutes,
                r.train_updates_per_s
            ));
        }
        if seeded {
            out.push_str(&format!(
                "\nMean over seeds (range in brackets):\n\n| variant | seeds | {MEASURE_COLUMNS} |\n|---|{}\n",
                numbers(1)
            ));
            for variant in self.variants() {
                let columns = self.columns(&variant);
                let means = columns.each_ref().map(|values| mean(values));
                let cells = columns.iter().zip(MEASURE_DECIMALS).map(|(values, d)| {
                    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    mean(values).map_or("-".into(), |m| format!("{m:.d$} ({lo:.d$}–{hi:.d$})"))
                });
                out.push_str(&format!(
                    "| {variant} | {} | {} | {} |\n",
                    self.rows.iter().filter(|r| r.variant == variant).count(),
                    cells.collect::<Vec<_>>().join(" | "),
                    ratios(mha.as_ref(), &means)
                ));
            }
        }
        for n in &self.notes {
            out.push_str(&format!("\nNote: {n}\n"));
        }
        out
    }

    /// The variants in the order they ran.
    fn variants(&self) -> Vec<String> {
        let mut seen: Vec<String> = Vec::new();
        for r in &self.rows {
            if !seen.contains(&r.variant) {
                seen.push(r.variant.clone());
            }
        }
        seen
    }

    /// Mean of each measure over the runs of `variant` (None where no run measured it).
    fn mean_of(&self, variant: &str) -> Option<[Option<f64>; 10]> {
        let columns = self.columns(variant);
        self.rows
            .iter()
            .any(|r| r.variant == variant)
            .then(|| columns.each_ref().map(|values| mean(values)))
    }

    /// Each measure's values over the runs of `variant` that measured it.
    fn columns(&self, variant: &str) -> [Vec<f64>; 10] {
        let mut columns: [Vec<f64>; 10] = Default::default();
        for r in self.rows.iter().filter(|r| r.variant == variant) {
            for (column, value) in columns.iter_mut().zip(r.measures()) {
                column.extend(value);
            }
        }
        columns
    }
}

/// Mean of `values` (None when empty).
fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// "speed-up vs MHA | KV memory reduction vs MHA" cells: MHA's decode time and KV cache over
/// these (indices 7 and 9 of [`CompareRow::measures`]).
fn ratios(mha: Option<&[Option<f64>; 10]>, row: &[Option<f64>; 10]) -> String {
    let ratio = |i: usize| match (mha.and_then(|m| m[i]), row[i]) {
        (Some(b), Some(r)) => format!("{:.2}x", b / r.max(1e-12)),
        _ => "-".into(),
    };
    format!("{} | {}", ratio(7), ratio(9))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::Efficiency;

    /// A run whose hypothesis gets `wrong` of 4 reference words wrong, decoding in `decode_s`.
    fn row(variant: &str, seed: u64, wrong: usize, decode_s: f64, kv_bytes: usize) -> CompareRow {
        let reference = "the court is sitting";
        let hyp: Vec<&str> = reference
            .split(' ')
            .enumerate()
            .map(|(i, w)| if i < wrong { "x" } else { w })
            .collect();
        let quality = metrics::score_lines(&[hyp.join(" ")], &[vec![reference.to_string()]]);
        CompareRow {
            variant: variant.into(),
            seed,
            parameters: 1_500_000,
            train_updates: 100,
            train_minutes: 1.0,
            train_updates_per_s: 2.0,
            best_valid_accuracy: Some(0.5),
            best_valid_loss: Some(2.0),
            best_audio_gain: None,
            best_ctc_wer: None,
            eval: EvalReport {
                checkpoint: String::new(),
                manifest: String::new(),
                attention: variant.into(),
                down_rate: 1,
                quality,
                efficiency: Efficiency {
                    sentences: 1,
                    beam: 5,
                    ctc_weight: 0.0,
                    lm_weight: 0.0,
                    word_bonus: 0.0,
                    batches: 1,
                    decode_s,
                    tokens: 5,
                    tokens_per_s: 5.0 / decode_s,
                    audio_s: 1.0,
                    real_time_factor: decode_s,
                    peak_kv_cache_bytes: kv_bytes,
                    peak_process_bytes: None,
                    length_limited: 0,
                },
            },
        }
    }

    #[test]
    fn seeds_get_a_mean_and_range_row_and_ratios_use_mha_mean() {
        let comparison = Comparison {
            rows: vec![
                row("mha", 1, 1, 2.0, 8_000_000),
                row("mha", 2, 2, 4.0, 8_000_000),
                row("mtla2", 1, 1, 1.0, 2_000_000),
                row("mtla2", 2, 3, 2.0, 2_000_000),
            ],
            test_manifest: "test.tsv".into(),
            train_utterances: 8000,
            notes: vec![],
        };
        let table = comparison.table();
        assert!(table.contains("| mha (seed 2) |"), "{table}");
        // MHA's mean decode time is 3 s: seed 1 of MTLA (1 s) is 3x faster, its mean (1.5 s) 2x.
        let mtla1 = table
            .lines()
            .find(|l| l.starts_with("| mtla2 (seed 1)"))
            .unwrap();
        assert!(mtla1.contains("| 3.00x | 4.00x |"), "{mtla1}");
        let summary = table
            .lines()
            .find(|l| l.starts_with("| mtla2 | 2 |"))
            .unwrap();
        // WER 25 % and 75 %: mean 50, range 25-75; decode 1-2 s.
        assert!(summary.contains("| 50.0 (25.0–75.0) |"), "{summary}");
        assert!(summary.contains("| 1.50 (1.00–2.00) |"), "{summary}");
        assert!(summary.ends_with("| 2.00x | 4.00x |"), "{summary}");
        assert!(
            summary.contains("| - |"),
            "audio gain was not measured: {summary}"
        );
        // Each table's separator and rows have as many cells as its header.
        for block in table.split("\n\n").filter(|b| b.starts_with("| variant")) {
            let cells = |line: &str| line.matches('|').count();
            let header = cells(block.lines().next().unwrap());
            for line in block.lines() {
                assert_eq!(cells(line), header, "{line}");
            }
        }
    }

    #[test]
    fn one_seed_keeps_the_single_table() {
        let comparison = Comparison {
            rows: vec![row("mha", 1, 0, 2.0, 8), row("mtla2", 1, 0, 1.0, 2)],
            test_manifest: "test.tsv".into(),
            train_utterances: 8000,
            notes: vec![],
        };
        let table = comparison.table();
        assert!(!table.contains("Mean over seeds"), "{table}");
        assert!(table.contains("| mtla2 | 1.50M |"), "{table}");
        let empty = Comparison {
            rows: vec![],
            ..comparison
        };
        assert!(empty.table().starts_with("| variant | params |"));
    }
}
