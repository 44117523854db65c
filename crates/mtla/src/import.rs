//! Importing weights from the authors' PyTorch `MultiheadTemporalLatentAttention`
//! (`state_dict` names, safetensors), so users of the PyTorch code can bring their weights.
//!
//! PyTorch stores a linear as `[out, in]`; burn as `[in, out]`: weights are transposed on
//! load. Every tensor's shape is checked against the config, and a missing or misshapen
//! tensor is an error that names it and the file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::{LayerNorm, Linear};
use burn::prelude::*;
use safetensors::{Dtype, SafeTensors};

use crate::config::{AttentionConfig, AttentionKind};
use crate::error::{MtlaError, Result};
use crate::hypernet::HyperNetwork;
use crate::mtla::Mtla;

/// All tensors of a safetensors file as f32 host arrays, with the file's metadata.
#[derive(Debug, Clone)]
pub struct TensorFile {
    path: PathBuf,
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
    metadata: HashMap<String, String>,
}

impl TensorFile {
    /// Reads `path` (f32, f64 and i64 tensors are converted to f32).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let fail = |reason: String| MtlaError::Import {
            path: path.clone(),
            reason,
        };
        let bytes = std::fs::read(&path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let (_, meta) = SafeTensors::read_metadata(&bytes)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| fail(format!("not a safetensors file: {e}")))?;
        let mut tensors = HashMap::new();
        for (name, view) in file.iter() {
            let data = view.data();
            let values: Vec<f32> = match view.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                Dtype::I64 => data
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                other => {
                    return Err(fail(format!(
                        "tensor '{name}' has unsupported dtype {other:?}"
                    )))
                }
            };
            tensors.insert(name.to_string(), (view.shape().to_vec(), values));
        }
        Ok(Self {
            path,
            tensors,
            metadata: meta.metadata().clone().unwrap_or_default(),
        })
    }

    /// The file this came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Is there a tensor called `name`?
    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// A metadata entry of the header.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.metadata.get(key).map(String::as_str)
    }

    /// Shape and values of `name`, or an error naming the missing tensor.
    pub fn get(&self, name: &str) -> Result<(&[usize], &[f32])> {
        self.tensors
            .get(name)
            .map(|(s, v)| (s.as_slice(), v.as_slice()))
            .ok_or_else(|| MtlaError::Import {
                path: self.path.clone(),
                reason: format!("tensor '{name}' is missing"),
            })
    }

    /// `name` as a tensor of shape `shape`, or an error naming it and both shapes.
    pub fn tensor<B: Backend, const D: usize>(
        &self,
        name: &str,
        shape: [usize; D],
        device: &B::Device,
    ) -> Result<Tensor<B, D>> {
        let (found, values) = self.get(name)?;
        if found != shape {
            return Err(MtlaError::Import {
                path: self.path.clone(),
                reason: format!(
                    "tensor '{name}' has shape {found:?} but the config needs {shape:?}"
                ),
            });
        }
        Ok(Tensor::<B, 1>::from_floats(values, device).reshape(shape))
    }

    /// The attention config recorded by `mtla_reference.py` in the header's `summary`.
    pub fn reference_config(&self) -> Result<AttentionConfig> {
        let fail = |reason: String| MtlaError::Import {
            path: self.path.clone(),
            reason,
        };
        let summary = self.metadata("summary").ok_or_else(|| {
            fail("no 'summary' metadata: not written by mtla_reference.py".into())
        })?;
        let summary: serde_json::Value = serde_json::from_str(summary)
            .map_err(|e| fail(format!("bad 'summary' metadata: {e}")))?;
        let c = &summary["config"];
        let field = |k: &str| {
            c[k].as_u64()
                .map(|v| v as usize)
                .ok_or_else(|| fail(format!("the summary config has no integer '{k}'")))
        };
        let config = AttentionConfig {
            kind: AttentionKind::Mtla,
            d_model: field("embed_dim")?,
            num_heads: field("num_heads")?,
            kv_lora_rank: field("kv_lora_rank")?,
            q_lora_rank: field("q_lora_rank")?,
            qk_nope_head_dim: field("qk_nope_head_dim")?,
            qk_rope_head_dim: field("qk_rope_head_dim")?,
            v_head_dim: field("v_head_dim")?,
            down_rate: field("down_rate")?,
            bias: Some(c["bias"].as_bool().unwrap_or(false)),
            ..AttentionConfig::default()
        };
        config.validate()?;
        Ok(config)
    }

    /// A PyTorch `nn.Linear` called `name` mapping `d_in -> d_out` (bias if the file has one
    /// and `bias` is true).
    fn linear<B: Backend>(
        &self,
        name: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
        device: &B::Device,
    ) -> Result<Linear<B>> {
        let weight = self.tensor::<B, 2>(&format!("{name}.weight"), [d_out, d_in], device)?;
        let bias = if bias {
            Some(Param::from_tensor(self.tensor::<B, 1>(
                &format!("{name}.bias"),
                [d_out],
                device,
            )?))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight.transpose()),
            bias,
        })
    }

    /// A PyTorch `nn.LayerNorm` called `name` over `dim` features, into `norm`.
    fn layer_norm<B: Backend>(
        &self,
        name: &str,
        dim: usize,
        mut norm: LayerNorm<B>,
        device: &B::Device,
    ) -> Result<LayerNorm<B>> {
        norm.gamma = Param::from_tensor(self.tensor(&format!("{name}.weight"), [dim], device)?);
        norm.beta = Some(Param::from_tensor(self.tensor(
            &format!("{name}.bias"),
            [dim],
            device,
        )?));
        Ok(norm)
    }
}

impl<B: Backend> Mtla<B> {
    /// Builds the layer of `config` from the authors' `state_dict` tensors in `file`, whose
    /// names start with `prefix` (e.g. `""` or `"decoder.layers.0.self_attn."`).
    pub fn load_pytorch(
        config: &AttentionConfig,
        file: &TensorFile,
        prefix: &str,
        device: &B::Device,
    ) -> Result<Self> {
        config.validate()?;
        if !config.is_latent() {
            return Err(MtlaError::Config(format!(
                "cannot load MTLA weights into a '{}' layer",
                config.kind
            )));
        }
        let mut layer = Mtla::<B>::new(config, device);
        let bias = config.effective_bias();
        let n = |s: &str| format!("{prefix}{s}");
        let (d, h, r) = (config.d_model, config.num_heads, config.kv_lora_rank);
        let qk = config.qk_nope_head_dim + config.qk_rope_head_dim;
        if config.q_lora_rank == 0 {
            layer.wq = Some(file.linear(&n("wq"), d, h * qk, bias, device)?);
        } else {
            let q = config.q_lora_rank;
            layer.wq_a = Some(file.linear(&n("wq_a"), d, q, bias, device)?);
            let norm = layer.q_norm.take().expect("low-rank query has a norm");
            layer.q_norm = Some(file.layer_norm(&n("q_norm"), q, norm, device)?);
            layer.wq_b = Some(file.linear(&n("wq_b"), q, h * qk, bias, device)?);
        }
        layer.wkv_a = file.linear(&n("wkv_a"), d, r + config.qk_rope_head_dim, bias, device)?;
        layer.kv_norm = file.layer_norm(&n("kv_norm"), r, layer.kv_norm, device)?;
        layer.wkv_b = file.linear(
            &n("wkv_b"),
            r,
            h * (config.qk_nope_head_dim + config.v_head_dim),
            bias,
            device,
        )?;
        layer.wo = file.linear(&n("wo"), h * config.v_head_dim, d, bias, device)?;
        if config.kind == AttentionKind::Mtla {
            layer.hypernet = Some(HyperNetwork {
                fc_c: file.linear(&n("hypernet_down.fc_c"), r, r / 4, true, device)?,
                fc_p: file.linear(&n("hypernet_down.fc_p"), r, r / 4, true, device)?,
                kv_lora_rank: r,
            });
        }
        Ok(layer)
    }
}
