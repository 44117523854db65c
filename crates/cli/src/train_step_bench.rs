//! `mtla-st bench attention-train`: one attention layer's training step — the parallel forward
//! and the backward pass to every weight and the input — at the paper's dims, for each kind.
//! On the CPU the same layer is also timed with the fused attention switched off
//! ([`mtla::attend::set_fused_parallel`]), and with `--python` the authors' PyTorch module and
//! `torch.nn.MultiheadAttention` are timed on the same shapes and thread count, so every ratio
//! printed is between numbers measured in this run.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::backend::Autodiff;
use burn::prelude::*;
use serde::Serialize;

use crate::backend::{run_on, BackendKind, BackendTask};
use crate::bench_cmd::{
    bench_env, cell, median, parse_kind, set_threads, write_results, LayerBenchArgs,
};

#[derive(Debug, clap::Args)]
pub struct TrainStepBenchArgs {
    /// Sequences per batch.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Sequence lengths T (scores are [B, H, T, T]).
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    pub lengths: Vec<usize>,
    /// Kinds: mha, gqa, mqa, mla, mtla<s> (e.g. mtla2).
    #[arg(long, value_delimiter = ',', default_value = "mha,mtla2")]
    pub kinds: Vec<String>,
    /// Timed steps per cell (after one warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Skip the burn-ops comparison (time only the default path, e.g. under a profiler).
    #[arg(long)]
    pub fused_only: bool,
    #[command(flatten)]
    pub common: LayerBenchArgs,
}

/// One measured cell, in milliseconds per training step.
#[derive(Debug, Clone, Serialize)]
pub struct TrainStepTiming {
    pub kind: String,
    pub length: usize,
    pub ms: f64,
    /// Median over the repetitions of this step's time over our MHA step's in the same
    /// repetition (the cells run back to back), which drift in the machine's speed between
    /// repetitions leaves alone; `None` without an `mha` cell.
    pub paired_vs_mha: Option<f64>,
    /// The same layer with burn's ops for the attention core (CPU only).
    pub burn_ops_ms: Option<f64>,
    pub torch_ms: Option<f64>,
}

/// Runs `mtla-st bench attention-train`.
pub fn run(a: TrainStepBenchArgs) -> anyhow::Result<()> {
    set_threads(a.common.threads);
    a.common.backend.f32_only("bench attention-train")?;
    let mut rows = run_on(&a.common.backend, TrainStepBench(&a))?;
    let mut env = bench_env(&a.common.backend);
    if let Some(python) = &a.common.reference.python {
        eprintln!("running the PyTorch reference ...");
        let out = Command::new(python)
            .args(["-c", include_str!("../scripts/torch_train_step.py")])
            .arg(&a.common.reference.oracles)
            .args([
                rayon::current_num_threads().to_string(),
                a.reps.to_string(),
                a.batch.to_string(),
            ])
            .arg(
                a.lengths
                    .iter()
                    .map(|t| t.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg(a.kinds.join(","))
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !out.status.success() {
            bail!(
                "the PyTorch reference failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let r: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("the PyTorch reference printed {line:?}"))?;
            env["torch"] = r["torch"].clone();
            let (kind, length) = (
                r["kind"].as_str().unwrap_or(""),
                r["T"].as_u64().unwrap_or(0),
            );
            if let Some(row) = rows
                .iter_mut()
                .find(|row| row.kind == kind && row.length as u64 == length)
            {
                row.torch_ms = r["wall_s"].as_f64().map(|s| s * 1e3);
            }
        }
    }
    print_table(&rows, &env);
    write_results(a.common.json.as_deref(), a.batch, &env, &rows)
}

fn print_table(rows: &[TrainStepTiming], env: &serde_json::Value) {
    println!("env: {env}");
    println!();
    println!("| T | kind | fwd+bwd ms | vs our MHA | vs our MHA, paired | burn-ops ms | fused / burn-ops | PyTorch ms | ours / PyTorch |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let mha = rows
            .iter()
            .find(|m| m.kind == "mha" && m.length == r.length);
        println!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |",
            r.length,
            r.kind,
            r.ms,
            cell(mha.map(|m| r.ms / m.ms), 2),
            cell(r.paired_vs_mha, 2),
            cell(r.burn_ops_ms, 1),
            cell(r.burn_ops_ms.map(|b| r.ms / b), 2),
            cell(r.torch_ms, 1),
            cell(r.torch_ms.map(|t| r.ms / t), 2),
        );
    }
}

struct TrainStepBench<'a>(&'a TrainStepBenchArgs);

impl BackendTask for TrainStepBench<'_> {
    type Output = Vec<TrainStepTiming>;

    fn run<B: Backend>(self, device: B::Device, _: BackendKind) -> anyhow::Result<Self::Output> {
        type Ad<B> = Autodiff<B>;
        let a = self.0;
        let modes: &[bool] = if mtla::cpu::on_cpu::<B>() && !a.fused_only {
            &[true, false]
        } else {
            &[true]
        };
        let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
        let mut rows = Vec::new();
        for &t in &a.lengths {
            let x = Tensor::<Ad<B>, 3>::random([a.batch, t, 512], normal, &device);
            let probe = Tensor::<Ad<B>, 3>::random([a.batch, t, 512], normal, &device);
            let pos: Vec<f32> = (0..a.batch)
                .flat_map(|_| (0..t).map(|j| j as f32))
                .collect();
            let pos =
                Tensor::<Ad<B>, 1>::from_floats(pos.as_slice(), &device).reshape([a.batch, t]);
            let layers = a
                .kinds
                .iter()
                .map(|name| {
                    let config = mtla::AttentionConfig {
                        dropout: 0.0,
                        ..parse_kind(name)?
                    };
                    Ok(config.init::<Ad<B>>(&device)?)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let step = |layer: &mtla::Attention<Ad<B>>, fused: bool| -> anyhow::Result<f64> {
                mtla::attend::set_fused_parallel(fused);
                let x = x.clone().require_grad();
                B::sync(&device)?;
                let t0 = Instant::now();
                // On a pool thread with the other kept awake, as OpenMP's threads spin between
                // the parallel regions of the PyTorch reference: otherwise every parallel op
                // starts with a futex wake-up and puts this thread to sleep until it ends.
                let (dx, grads) = mtla::pool::awake_on::<B, _>(|| -> anyhow::Result<_> {
                    let y = layer.forward(x.clone(), x.clone(), pos.clone(), None)?;
                    let grads = (y * probe.clone()).sum().backward();
                    let dx = x.grad(&grads).context("the input has a gradient")?;
                    B::sync(&device)?;
                    Ok((dx, grads))
                })?;
                let ms = t0.elapsed().as_secs_f64() * 1e3;
                drop((dx, grads));
                Ok(ms)
            };
            // One untimed step of every cell, then the cells interleaved within each
            // repetition, so drift in the machine's speed affects them alike.
            let mut times = vec![vec![Vec::new(); modes.len()]; layers.len()];
            for rep in 0..=a.reps {
                for (k, layer) in layers.iter().enumerate() {
                    for (m, &fused) in modes.iter().enumerate() {
                        let ms = step(layer, fused)?;
                        if rep > 0 {
                            times[k][m].push(ms);
                        }
                    }
                }
            }
            mtla::attend::set_fused_parallel(true);
            let mha = a.kinds.iter().position(|k| k == "mha");
            let paired = |mine: &[f64]| {
                mha.map(|m| median(mine.iter().zip(&times[m][0]).map(|(a, b)| a / b).collect()))
            };
            for (name, cells) in a.kinds.iter().zip(&times) {
                let row = TrainStepTiming {
                    kind: name.clone(),
                    length: t,
                    ms: median(cells[0].clone()),
                    paired_vs_mha: paired(&cells[0]),
                    burn_ops_ms: cells.get(1).map(|v| median(v.clone())),
                    torch_ms: None,
                };
                eprintln!(
                    "T={t:5} {name:6} fwd+bwd {:9.1} ms  burn ops {:>9}",
                    row.ms,
                    row.burn_ops_ms.map_or("-".into(), |b| format!("{b:.1} ms")),
                );
                rows.push(row);
            }
        }
        Ok(rows)
    }
}
