//! `mtla-st bench ...`: speed benchmarks that print ratios against baselines measured in the
//! same run (our MHA, the authors' PyTorch MTLA, kaldi-native-fbank), never timed unit tests.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context};
use burn::prelude::*;
use burn::tensor::DType;
use mtla::{AttentionConfig, AttentionKind};
use rayon::prelude::*;
use serde::Serialize;

use crate::backend::{run_on, BackendArgs, BackendKind, BackendTask};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Decode-step and parallel-forward time of every attention kind at the paper's dims.
    Attention(AttentionBenchArgs),
    /// One attention layer's training step (parallel forward + backward) at the paper's dims,
    /// fused and with burn's ops, against the authors' PyTorch module.
    AttentionTrain(crate::train_step_bench::TrainStepBenchArgs),
    /// Fbank extraction throughput, single thread and all cores, vs kaldi-native-fbank.
    Fbank(FbankBenchArgs),
    /// Data loader throughput (utterances/s, frames/s) on a manifest.
    Loader(crate::loader_bench::LoaderBenchArgs),
    /// Per-token decode time and KV-cache bytes of a whole decoder (e.g. the paper's 9 layers)
    /// as the prefix + target length grows, for several beam sizes.
    Decode(DecodeBenchArgs),
    /// One Conformer convolution module's training step on the CPU, its depthwise convolution
    /// as one graph node and with burn's ops.
    ConvModule(crate::conv_module_bench::ConvModuleBenchArgs),
}

/// Runs `mtla-st bench ...`.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Attention(args) => bench_attention(args),
        BenchCommand::AttentionTrain(args) => crate::train_step_bench::run(args),
        BenchCommand::Fbank(args) => bench_fbank(args),
        BenchCommand::Loader(args) => crate::loader_bench::run(args),
        BenchCommand::Decode(args) => bench_decode(args),
        BenchCommand::ConvModule(args) => crate::conv_module_bench::run(args),
    }
}

/// Python of the oracle venv, and where the oracle scripts are.
#[derive(Debug, Clone, clap::Args)]
pub struct ReferenceArgs {
    /// Python with torch, mtla and kaldi-native-fbank (../shared/oracles/setup_venv.sh);
    /// without it the reference columns are left out.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Directory holding bench_reference.py.
    #[arg(long, default_value = "../shared/oracles")]
    pub oracles: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct AttentionBenchArgs {
    /// Rows decoded together (batch × beams).
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Cache lengths at which a decode step is timed.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024,4096")]
    pub lengths: Vec<usize>,
    /// Kinds: mha, gqa, mqa, mla, mtla<s> (e.g. mtla2).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mha,gqa,mqa,mla,mtla2,mtla3,mtla4"
    )]
    pub kinds: Vec<String>,
    /// Timed decode steps per length (the cache grows from T - steps to T).
    #[arg(long, default_value_t = 32)]
    pub steps: usize,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    /// Longest sequence for the parallel (training) forward, whose scores are [B, H, T, T].
    #[arg(long, default_value_t = 1024)]
    pub parallel_max_len: usize,
    #[command(flatten)]
    pub common: LayerBenchArgs,
}

/// Options shared by the one-layer benchmarks.
#[derive(Debug, clap::Args)]
pub struct LayerBenchArgs {
    /// CPU threads (0 = all cores); the PyTorch reference gets the same number.
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Write all numbers here as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub reference: ReferenceArgs,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// One measured cell.
#[derive(Debug, Clone, Serialize)]
pub struct AttentionTiming {
    pub kind: String,
    pub length: usize,
    pub step_ms: f64,
    pub step_min_ms: f64,
    pub parallel_ms: Option<f64>,
    pub cache_bytes: usize,
    pub cache_bytes_theory: f64,
    pub torch_step_ms: Option<f64>,
    pub torch_parallel_ms: Option<f64>,
}

pub(crate) fn parse_kind(name: &str) -> anyhow::Result<AttentionConfig> {
    let (kind, s) = AttentionKind::parse_variant(name)?;
    Ok(AttentionConfig {
        down_rate: s,
        ..AttentionConfig::paper(kind)
    })
}

/// Untimed decode steps before each timed run.
const WARMUP: usize = 4;

pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct AttentionBench<'a>(&'a AttentionBenchArgs);

impl BackendTask for AttentionBench<'_> {
    type Output = Vec<AttentionTiming>;
    fn run<B: Backend>(
        self,
        device: B::Device,
        _: BackendKind,
    ) -> anyhow::Result<Vec<AttentionTiming>> {
        let a = self.0;
        let mut rows = Vec::new();
        for &t in &a.lengths {
            let start = t.saturating_sub(a.steps).max(WARMUP + 1);
            let x = Tensor::<B, 3>::random(
                [a.batch, t, 512],
                burn::tensor::Distribution::Normal(0.0, 1.0),
                &device,
            );
            let pos: Vec<f32> = (0..a.batch)
                .flat_map(|_| (0..t).map(|j| j as f32))
                .collect();
            let pos = Tensor::<B, 1>::from_floats(pos.as_slice(), &device).reshape([a.batch, t]);
            let layers = a
                .kinds
                .iter()
                .map(|name| Ok((parse_kind(name)?, parse_kind(name)?.init::<B>(&device)?)))
                .collect::<anyhow::Result<Vec<_>>>()?;
            // Kinds are interleaved within each repetition, so drift in the machine's speed
            // affects them alike.
            let mut steps = vec![Vec::new(); layers.len()];
            let mut cache_bytes = vec![0; layers.len()];
            for _ in 0..a.reps {
                for (k, (_, layer)) in layers.iter().enumerate() {
                    let warm = start - WARMUP;
                    let (_, mut cache) = layer.prefill(
                        x.clone().slice(s![.., warm - 1..warm, ..]),
                        x.clone().slice(s![.., 0..warm, ..]),
                        pos.clone().slice(s![.., 0..warm]),
                        None,
                    )?;
                    cache.reserve(t - start + WARMUP);
                    // A few untimed steps first: timing starts in the steady state of a decode
                    // loop (weights and cache warm), whatever ran before.
                    for i in start - WARMUP..start {
                        layer.step(
                            x.clone().slice(s![.., i..i + 1, ..]),
                            pos.clone().slice(s![.., i..i + 1]),
                            &mut cache,
                        )?;
                    }
                    B::sync(&device)?;
                    let t0 = Instant::now();
                    for i in start..t {
                        layer.step(
                            x.clone().slice(s![.., i..i + 1, ..]),
                            pos.clone().slice(s![.., i..i + 1]),
                            &mut cache,
                        )?;
                    }
                    B::sync(&device)?;
                    steps[k].push(t0.elapsed().as_secs_f64() * 1e3 / (t - start).max(1) as f64);
                    cache_bytes[k] = cache.bytes();
                }
            }
            for (k, (name, (cfg, layer))) in a.kinds.iter().zip(&layers).enumerate() {
                let (steps, cache_bytes) = (steps[k].clone(), cache_bytes[k]);
                let parallel_ms = (t <= a.parallel_max_len)
                    .then(|| -> anyhow::Result<f64> {
                        let mut v = Vec::new();
                        for _ in 0..a.reps {
                            let t0 = Instant::now();
                            let y = layer.forward(x.clone(), x.clone(), pos.clone(), None)?;
                            let _ = y.into_data();
                            v.push(t0.elapsed().as_secs_f64() * 1e3);
                        }
                        Ok(median(v))
                    })
                    .transpose()?;
                let row = AttentionTiming {
                    kind: name.clone(),
                    length: t,
                    step_ms: median(steps.clone()),
                    step_min_ms: steps.iter().copied().fold(f64::INFINITY, f64::min),
                    parallel_ms,
                    cache_bytes,
                    cache_bytes_theory: cfg.kv_elements_per_token()
                        * t as f64
                        * a.batch as f64
                        * 4.0,
                    torch_step_ms: None,
                    torch_parallel_ms: None,
                };
                eprintln!(
                    "T={t:5} {name:6} step {:8.3} ms  parallel {:>9}  cache {:8.2} MiB",
                    row.step_ms,
                    row.parallel_ms.map_or("-".into(), |p| format!("{p:.1} ms")),
                    row.cache_bytes as f64 / 1048576.0
                );
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

/// Runs the authors' PyTorch module through bench_reference.py on the same shapes.
fn torch_reference(
    a: &AttentionBenchArgs,
    python: &Path,
    rates: &[usize],
) -> anyhow::Result<serde_json::Value> {
    let script = a.common.reference.oracles.join("bench_reference.py");
    let out = tempfile_path("bench_reference.json");
    let lengths: Vec<String> = a.lengths.iter().map(|l| l.to_string()).collect();
    let rates: Vec<String> = rates.iter().map(|r| r.to_string()).collect();
    let threads = if a.common.threads == 0 {
        rayon::current_num_threads()
    } else {
        a.common.threads
    };
    eprintln!(
        "running the PyTorch reference ({}), {threads} threads ...",
        script.display()
    );
    let status = Command::new(python)
        .arg(&script)
        .args([
            "--batch",
            &a.batch.to_string(),
            "--lengths",
            &lengths.join(","),
            "--rates",
            &rates.join(","),
        ])
        .args([
            "--reps",
            &a.reps.to_string(),
            "--decode-reps",
            "2",
            "--threads",
            &threads.to_string(),
        ])
        .arg("--json")
        .arg(&out)
        .status()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    if !status.success() {
        // No exit code: killed by a signal, at these sizes most likely the out-of-memory killer.
        let hint = if status.code().is_none() {
            "; killed, most likely out of memory: try shorter --lengths"
        } else {
            ""
        };
        bail!("{} failed ({status}{hint})", script.display());
    }
    let text =
        std::fs::read_to_string(&out).with_context(|| format!("reading {}", out.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn tempfile_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("mtla-st-{}-{name}", std::process::id()))
}

fn bench_attention(a: AttentionBenchArgs) -> anyhow::Result<()> {
    set_threads(a.common.threads);
    a.common.backend.f32_only("bench attention")?;
    let mut rows = run_on(&a.common.backend, AttentionBench(&a))?;
    let mut env = bench_env(&a.common.backend);
    if let Some(python) = &a.common.reference.python {
        let rates: Vec<usize> = a
            .kinds
            .iter()
            .filter_map(|k| k.strip_prefix("mtla")?.parse().ok())
            .collect();
        // Our timings are kept whatever happens to the reference: its columns stay empty and
        // the environment records why.
        let reference = match torch_reference(&a, python, &rates) {
            Ok(reference) => reference,
            Err(e) => {
                eprintln!("warning: no PyTorch timings ({e:#}); the table shows ours only");
                env["torch_error"] = format!("{e:#}").into();
                serde_json::Value::Null
            }
        };
        env["torch"] = reference["env"].clone();
        for r in reference["results"].as_array().into_iter().flatten() {
            let kind = match r["method"].as_str().unwrap_or("") {
                "nn.MultiheadAttention" => "mha".to_string(),
                m => m.replace("MTLA r=", "mtla"),
            };
            let length = r["T"].as_u64().unwrap_or(0) as usize;
            if let Some(row) = rows
                .iter_mut()
                .find(|row| row.kind == kind && row.length == length)
            {
                row.torch_step_ms = r["decode_step_tail_wall_s"].as_f64().map(|s| s * 1e3);
                row.torch_parallel_ms = r["parallel_wall_s"].as_f64().map(|s| s * 1e3);
            }
        }
    }
    print_attention_table(&rows, &env);
    write_results(a.common.json.as_deref(), a.batch, &env, &rows)
}

/// Sizes rayon's global pool to `threads` (0: all cores).
pub(crate) fn set_threads(threads: usize) {
    if threads > 0 {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
            .ok();
    }
}

/// Where a benchmark ran: backend, threads, CPU model and load averages.
pub(crate) fn bench_env(backend: &BackendArgs) -> serde_json::Value {
    serde_json::json!({
        "backend": backend.backend,
        "threads": rayon::current_num_threads(),
        "cpu": cpu_name(),
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
    })
}

/// Writes a benchmark's results, with its batch size and environment, as JSON to `path` if given.
pub(crate) fn write_results(
    path: Option<&Path>,
    batch: usize,
    env: &serde_json::Value,
    rows: &impl Serialize,
) -> anyhow::Result<()> {
    if let Some(path) = path {
        let json = serde_json::json!({ "batch": batch, "env": env, "results": rows });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// A table cell: `v` with `prec` decimals, or `-`.
pub(crate) fn cell(v: Option<f64>, prec: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.prec$}"))
}

fn print_attention_table(rows: &[AttentionTiming], env: &serde_json::Value) {
    println!("env: {env}");
    println!();
    println!("| T | kind | step ms | speed-up vs MHA step | KV cache MiB | memory vs MHA | parallel ms | PyTorch step ms | ours / PyTorch step | PyTorch parallel ms |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for r in rows {
        let mha = rows
            .iter()
            .find(|m| m.kind == "mha" && m.length == r.length);
        let speedup = mha.map(|m| m.step_ms / r.step_ms);
        let mem = mha.map(|m| m.cache_bytes as f64 / r.cache_bytes as f64);
        let vs_torch = r.torch_step_ms.map(|t| r.step_ms / t);
        println!(
            "| {} | {} | {:.3} | {} | {:.2} | {} | {} | {} | {} | {} |",
            r.length,
            r.kind,
            r.step_ms,
            cell(speedup, 2),
            r.cache_bytes as f64 / 1048576.0,
            cell(mem, 2),
            cell(r.parallel_ms, 1),
            cell(r.torch_step_ms, 3),
            cell(vs_torch, 2),
            cell(r.torch_parallel_ms, 1)
        );
    }
}

fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default()
}

#[derive(Debug, clap::Args)]
pub struct FbankBenchArgs {
    /// Directory of 16 kHz WAV files.
    #[arg(long)]
    pub dir: PathBuf,
    /// Repetitions; the best is reported.
    #[arg(long, default_value_t = 3)]
    pub reps: usize,
    #[command(flatten)]
    pub reference: ReferenceArgs,
}

fn bench_fbank(a: FbankBenchArgs) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(&a.dir)
        .with_context(|| format!("reading {}", a.dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "wav"))
        .collect();
    files.sort();
    let opts = fbank::WavOptions::default();
    let audio: Vec<fbank::Audio> = files
        .iter()
        .filter_map(|f| {
            fbank::read_wav(f, &opts)
                .map_err(|e| eprintln!("skipped: {e}"))
                .ok()
        })
        .collect();
    let kept: Vec<&PathBuf> = files
        .iter()
        .filter(|f| fbank::read_wav(f, &opts).is_ok())
        .collect();
    if audio.is_empty() {
        bail!("{}: no readable 16 kHz WAV files", a.dir.display());
    }
    let seconds: f64 = audio.iter().map(|x| x.duration_s()).sum();
    let extractor = fbank::Fbank::new(fbank::FbankOptions::default())?;
    let best = |f: &dyn Fn()| {
        (0..a.reps)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min)
    };
    let single = best(&|| {
        for x in &audio {
            std::hint::black_box(extractor.compute(&x.samples));
        }
    });
    let parallel = best(&|| {
        kept.par_iter().for_each(|f| {
            let x = fbank::read_wav(f, &opts).expect("read before");
            std::hint::black_box(extractor.compute(&x.samples));
        })
    });
    println!(
        "{} files, {seconds:.1} s of audio, {} threads",
        audio.len(),
        rayon::current_num_threads()
    );
    println!("| extractor | setting | audio s / wall s |");
    println!("|---|---|---|");
    println!(
        "| ours (fbank crate) | 1 thread, compute only | {:.0} |",
        seconds / single
    );
    println!(
        "| ours (fbank crate) | all cores, read + compute | {:.0} |",
        seconds / parallel
    );
    if let Some(python) = &a.reference.python {
        let out = Command::new(python)
            .args([
                "-c",
                include_str!("../scripts/knf_speed.py"),
                &a.reps.to_string(),
            ])
            .args(&kept)
            .output()
            .with_context(|| format!("running {}", python.display()))?;
        if !out.status.success() {
            bail!(
                "kaldi-native-fbank timing failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let knf: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let knf_speed =
            knf["audio_s"].as_f64().unwrap_or(0.0) / knf["compute_s"].as_f64().unwrap_or(f64::NAN);
        println!("| kaldi-native-fbank (C++) | 1 thread, compute only | {knf_speed:.0} |");
        println!();
        println!(
            "ours / kaldi-native-fbank, single thread: {:.2}x",
            seconds / single / knf_speed
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub struct DecodeBenchArgs {
    /// Model config whose decoder is measured (its attention kind is replaced by each variant).
    #[arg(long, default_value = "configs/paper_mustc.toml")]
    pub config: PathBuf,
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "mha,gqa,mqa,mla,mtla2,mtla3,mtla4"
    )]
    pub variants: Vec<String>,
    /// Total (prefix + target) lengths at which a step is timed.
    #[arg(long, value_delimiter = ',', default_value = "64,256,1024,4096")]
    pub lengths: Vec<usize>,
    /// Beam sizes (rows decoded together).
    #[arg(long, value_delimiter = ',', default_value = "1,5")]
    pub beams: Vec<usize>,
    /// Timed steps per point (the cache grows from length - steps to length).
    #[arg(long, default_value_t = 16)]
    pub steps: usize,
    /// Skip points whose KV cache would exceed this many GiB.
    #[arg(long, default_value_t = 4.0)]
    pub max_cache_gib: f64,
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Also time every point op by op (the fused decode kernels switched off) and print the
    /// fused kernels' speed-up.
    #[arg(long)]
    pub unfused: bool,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub backend: BackendArgs,
}

/// One measured point of `bench decode`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct DecodePoint {
    pub variant: String,
    pub length: usize,
    pub beam: usize,
    pub step_ms: f64,
    /// The same point with the fused decode kernels switched off (`--unfused`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_ms_unfused: Option<f64>,
    pub cache_bytes: usize,
}

struct DecodeBench<'a>(&'a DecodeBenchArgs, st_model::ModelConfig);

impl BackendTask for DecodeBench<'_> {
    type Output = Vec<DecodePoint>;
    fn run<B: Backend>(
        self,
        device: B::Device,
        _: BackendKind,
    ) -> anyhow::Result<Vec<DecodePoint>> {
        let (a, base) = (self.0, self.1);
        let mut points = Vec::new();
        for name in &a.variants {
            let (kind, s) = AttentionKind::parse_variant(name)?;
            let mut config = base.clone();
            config.decoder.attention.kind = kind;
            config.decoder.attention.down_rate = s;
            config.decoder.attention.dropout = 0.0;
            let config = config.resolved()?;
            let precision = a.backend.precision;
            let decoder = st_model::decoder::Decoder::<B>::new(&config, &device)?;
            let decoder = learner::precision::cast_module(decoder, precision);
            let per_token = config.decoder.attention.kv_elements_per_token()
                * config.decoder.layers as f64
                * DType::from(precision.dtype()).size() as f64;
            for &beam in &a.beams {
                for &length in &a.lengths {
                    let bytes = per_token * length as f64 * beam as f64;
                    if bytes > a.max_cache_gib * (1u64 << 30) as f64 {
                        eprintln!(
                            "{name} beam {beam} length {length}: skipped ({:.1} GiB of cache)",
                            bytes / (1u64 << 30) as f64
                        );
                        continue;
                    }
                    let prefix = length.saturating_sub(a.steps).max(1);
                    // Times `steps - 1` steps after a warm-up step, growing the cache to `length`.
                    let time_steps = |fused: bool| -> anyhow::Result<(f64, usize)> {
                        mtla::attend::set_fused_decode(fused);
                        let encoder = Tensor::<B, 3>::random(
                            [1, prefix, config.d_model],
                            burn::tensor::Distribution::Normal(0.0, 1.0),
                            &device,
                        )
                        .cast(precision.dtype());
                        let mut state = decoder.prefill(encoder, &[prefix])?;
                        state.reorder(Tensor::<B, 1, Int>::zeros([beam], &device));
                        state.reserve(a.steps + 1);
                        let tokens = Tensor::<B, 1, Int>::full([beam], 5, &device);
                        decoder.step(tokens.clone(), &mut state)?;
                        B::sync(&device)?;
                        let t0 = Instant::now();
                        for _ in 1..a.steps {
                            let _ = decoder.step(tokens.clone(), &mut state)?;
                        }
                        B::sync(&device)?;
                        let ms = t0.elapsed().as_secs_f64() * 1e3 / (a.steps - 1).max(1) as f64;
                        Ok((ms, state.cache_bytes()))
                    };
                    let (step_ms, cache_bytes) = time_steps(true)?;
                    let step_ms_unfused = match a.unfused {
                        true => Some(time_steps(false)?.0),
                        false => None,
                    };
                    mtla::attend::set_fused_decode(true);
                    let unfused =
                        step_ms_unfused.map_or(String::new(), |u| format!(" ({u:.3} op by op)"));
                    eprintln!("{name:6} beam {beam:2} length {length:5}: {step_ms:8.3} ms/step{unfused}, cache {:.2} MiB", cache_bytes as f64 / 1048576.0);
                    points.push(DecodePoint {
                        variant: name.clone(),
                        length,
                        beam,
                        step_ms,
                        step_ms_unfused,
                        cache_bytes,
                    });
                }
            }
        }
        Ok(points)
    }
}

fn bench_decode(a: DecodeBenchArgs) -> anyhow::Result<()> {
    set_threads(a.threads);
    let config = st_model::ModelConfig::from_file(&a.config)?;
    let points = run_on(&a.backend, DecodeBench(&a, config))?;
    println!("| beam | length | variant | ms / token | speed-up vs MHA | KV cache MiB | memory reduction vs MHA | op-by-op ms / token | fused speed-up |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for p in &points {
        let mha = points
            .iter()
            .find(|m| m.variant == "mha" && m.length == p.length && m.beam == p.beam);
        let opt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}x"));
        println!(
            "| {} | {} | {} | {:.3} | {} | {:.2} | {} | {} | {} |",
            p.beam,
            p.length,
            p.variant,
            p.step_ms,
            opt(mha.map(|m| m.step_ms / p.step_ms)),
            p.cache_bytes as f64 / 1048576.0,
            opt(mha.map(|m| m.cache_bytes as f64 / p.cache_bytes as f64)),
            p.step_ms_unfused
                .map_or("-".to_string(), |u| format!("{u:.3}")),
            opt(p.step_ms_unfused.map(|u| u / p.step_ms)),
        );
    }
    if let Some(path) = &a.json {
        let json = serde_json::json!({
            "backend": a.backend.backend,
            "threads": rayon::current_num_threads(),
            "cpu": cpu_name(),
            "config": a.config,
            "steps": a.steps,
            "points": points,
        });
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
