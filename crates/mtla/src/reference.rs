//! Checks our MTLA against a file written by `mtla_reference.py` (the authors' PyTorch code):
//! the same weights and inputs run in parallel (training) form, token by token, and with the
//! prefix prefilled in one call; outputs and final compressed caches are compared.

use std::path::Path;

use burn::prelude::*;
use serde::Serialize;

use crate::cache::Cache;
use crate::error::{MtlaError, Result};
use crate::import::TensorFile;
use crate::mtla::Mtla;

/// Largest absolute differences from the reference (None where the file has no such part).
#[derive(Debug, Clone, Serialize)]
pub struct ReferenceReport {
    pub file: String,
    pub down_rate: usize,
    pub max_abs_diff_parallel: f32,
    pub max_abs_diff_incremental: f32,
    pub max_abs_diff_cache: f32,
    pub max_abs_diff_prefix: Option<f32>,
    pub max_abs_diff_prefix_cache: Option<f32>,
}

impl ReferenceReport {
    /// Are all differences within `tol`?
    pub fn within(&self, tol: f32) -> bool {
        [
            self.max_abs_diff_parallel,
            self.max_abs_diff_incremental,
            self.max_abs_diff_cache,
        ]
        .into_iter()
        .chain(self.max_abs_diff_prefix)
        .chain(self.max_abs_diff_prefix_cache)
        .all(|d| d <= tol)
    }
}

fn max_abs_diff<B: Backend, const D: usize>(ours: Tensor<B, D>, theirs: Tensor<B, D>) -> f32 {
    (ours - theirs).abs().max().into_scalar().elem()
}

/// Decodes `x[:, start..]` one token at a time after prefilling `x[:, ..start]` (queries: its
/// last position); returns the outputs for positions `start - 1..T` and the final cache.
fn decode<B: Backend>(
    layer: &Mtla<B>,
    x: &Tensor<B, 3>,
    pos: &Tensor<B, 2>,
    start: usize,
) -> Result<(Tensor<B, 3>, Cache<B>)> {
    let [_, t, _] = x.dims();
    let prefix = x.clone().slice(s![.., 0..start, ..]);
    let query = x.clone().slice(s![.., start - 1..start, ..]);
    let (first, mut cache) =
        layer.prefill(query, prefix, pos.clone().slice(s![.., 0..start]), None)?;
    let mut outs = vec![first];
    for i in start..t {
        let xi = x.clone().slice(s![.., i..i + 1, ..]);
        outs.push(layer.step(xi, pos.clone().slice(s![.., i..i + 1]), &mut cache)?);
    }
    Ok((Tensor::cat(outs, 1), cache))
}

/// Difference between our cache and the reference's `{prefix}cache.prev_kv_t` / `prev_k_pe`.
fn cache_diff<B: Backend>(
    cache: &Cache<B>,
    file: &TensorFile,
    prefix: &str,
    r: usize,
    device: &B::Device,
) -> Result<f32> {
    let Cache::Latent(cache) = cache else {
        return Err(MtlaError::Cache("expected a latent cache".into()));
    };
    let slots = cache.slots.view();
    let [b, _, t, w] = slots.dims();
    let slots = slots.reshape([b, t, w]);
    let kv = file.tensor::<B, 3>(&format!("{prefix}cache.prev_kv_t"), [b, t, r], device)?;
    let pe = file.tensor::<B, 3>(&format!("{prefix}cache.prev_k_pe"), [b, t, w - r], device)?;
    Ok(max_abs_diff(slots.clone().slice(s![.., .., 0..r]), kv)
        .max(max_abs_diff(slots.slice(s![.., .., r..w]), pe)))
}

/// Runs the check on `path` with backend `B`.
pub fn check_reference<B: Backend>(path: &Path, device: &B::Device) -> Result<ReferenceReport> {
    let file = TensorFile::open(path)?;
    let config = file.reference_config()?;
    let layer = Mtla::<B>::load_pytorch(&config, &file, "", device)?;
    let (_, x_shape) = file.get("input.x").map(|(s, v)| (v, s.to_vec()))?;
    let [b, t, d] = <[usize; 3]>::try_from(x_shape).map_err(|s| MtlaError::Import {
        path: path.to_path_buf(),
        reason: format!("input.x must be [batch, time, dim], got {s:?}"),
    })?;
    let x = file.tensor::<B, 3>("input.x", [b, t, d], device)?;
    let pos = file.tensor::<B, 2>("input.position", [b, t], device)?;
    let want_par = file.tensor::<B, 3>("output.parallel", [b, t, d], device)?;
    let want_inc = file.tensor::<B, 3>("output.incremental", [b, t, d], device)?;

    let ours = layer.forward(x.clone(), x.clone(), pos.clone(), None)?;
    let (inc, cache) = decode(&layer, &x, &pos, 1)?;
    let r = config.kv_lora_rank;
    let mut report = ReferenceReport {
        file: path.display().to_string(),
        down_rate: config.down_rate,
        max_abs_diff_parallel: max_abs_diff(ours, want_par),
        max_abs_diff_incremental: max_abs_diff(inc, want_inc),
        max_abs_diff_cache: cache_diff(&cache, &file, "", r, device)?,
        max_abs_diff_prefix: None,
        max_abs_diff_prefix_cache: None,
    };
    if file.contains("prompt.output.incremental") {
        let (shape, _) = file.get("prompt.output.incremental")?;
        let p = t - shape[1];
        let want = file.tensor::<B, 3>("prompt.output.incremental", [b, t - p, d], device)?;
        let (out, cache) = decode(&layer, &x, &pos, p + 1)?;
        report.max_abs_diff_prefix = Some(max_abs_diff(out, want));
        report.max_abs_diff_prefix_cache = Some(cache_diff(&cache, &file, "prompt.", r, device)?);
    }
    Ok(report)
}
