//! `mtla-st bench conv-module`: one Conformer convolution module's training step (forward and
//! backward to every weight and the input) on the CPU, with the depthwise convolution as one
//! graph node ([`st_model::depthwise`]) and with burn's ops, back to back in the same run.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::Distribution;
use mtla::cpu::AdFlex;
use serde::Serialize;
use st_model::conv_module::ConvModule;
use st_model::depthwise::set_fused;

use crate::bench_cmd::{median, set_threads};

#[derive(Debug, clap::Args)]
pub struct ConvModuleBenchArgs {
    /// Utterances per batch.
    #[arg(long, default_value_t = 20)]
    pub batch: usize,
    /// Encoder frames per utterance (after 4x subsampling: 100 = 4 s of speech).
    #[arg(long, default_value_t = 100)]
    pub frames: usize,
    /// Model dimension.
    #[arg(long, default_value_t = 256)]
    pub d_model: usize,
    /// Depthwise convolution taps.
    #[arg(long, default_value_t = 15)]
    pub kernel: usize,
    /// Timed steps per path (after one warm-up each); the median is reported.
    #[arg(long, default_value_t = 10)]
    pub reps: usize,
    /// CPU threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

/// Milliseconds per training step of each path, and their ratio.
#[derive(Debug, Serialize)]
pub struct ConvModuleTiming {
    pub fused_ms: f64,
    pub burn_ops_ms: f64,
    /// Median over the repetitions of fused / burn-ops time, each pair run back to back.
    pub paired_ratio: f64,
}

/// Runs `mtla-st bench conv-module`.
pub fn run(a: ConvModuleBenchArgs) -> anyhow::Result<()> {
    set_threads(a.threads);
    let device = Default::default();
    let module = ConvModule::<AdFlex>::new(a.d_model, a.kernel, 0.0, &device);
    let x = Tensor::<AdFlex, 3>::random(
        [a.batch, a.frames, a.d_model],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let keep = Tensor::<AdFlex, 3>::ones([a.batch, a.frames, 1], &device);
    let step = |fused: bool| {
        set_fused(fused);
        let start = Instant::now();
        let x = x.clone().require_grad();
        let y = module.forward(x.clone(), keep.clone());
        let grads = y.powf_scalar(2.0).mean().backward();
        let dx = x.grad(&grads).expect("a gradient");
        let _ = dx.sum().into_scalar();
        start.elapsed().as_secs_f64() * 1e3
    };
    step(true);
    step(false);
    let (mut fused, mut ops) = (Vec::new(), Vec::new());
    for _ in 0..a.reps {
        fused.push(step(true));
        ops.push(step(false));
    }
    set_fused(true);
    let ratios = fused.iter().zip(&ops).map(|(f, o)| f / o).collect();
    let t = ConvModuleTiming {
        fused_ms: median(fused),
        burn_ops_ms: median(ops),
        paired_ratio: median(ratios),
    };
    println!(
        "conv module, batch {} x {} frames, d {}, {} taps, {} threads: fused {:.1} ms, burn ops {:.1} ms per training step; fused / burn ops {:.2} (paired median of {})",
        a.batch,
        a.frames,
        a.d_model,
        a.kernel,
        rayon::current_num_threads(),
        t.fused_ms,
        t.burn_ops_ms,
        t.paired_ratio,
        a.reps
    );
    println!("{}", serde_json::to_string(&t)?);
    Ok(())
}
