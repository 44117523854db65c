//! Saving and loading model weights as safetensors (burn-store), atomically, with errors that
//! name the first parameter that does not fit the config.

use std::path::Path;
use std::rc::Rc;

use burn::prelude::*;
use burn::store::{ApplyError, ModuleAdapter, ModuleSnapshot, SafetensorsStore, TensorSnapshot};
use burn::tensor::DType;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::model::SpeechModel;

fn fail(path: &Path, reason: impl Into<String>) -> ModelError {
    ModelError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Writes `model`'s weights to `path` (through a temporary file and a rename, so a crash never
/// leaves a truncated checkpoint); `config` is stored in the header metadata.
pub fn save<B: Backend>(model: &SpeechModel<B>, config: &ModelConfig, path: &Path) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| fail(path, e.to_string()))?;
    }
    let config_toml = toml::to_string(config).map_err(|e| fail(path, e.to_string()))?;
    let mut store = SafetensorsStore::from_file(&tmp)
        .overwrite(true)
        .metadata("model_config", config_toml);
    model
        .save_into(&mut store)
        .map_err(|e| fail(path, e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| fail(path, e.to_string()))
}

/// The model config stored in a checkpoint's header.
pub fn stored_config(path: &Path) -> Result<ModelConfig> {
    let bytes = std::fs::read(path).map_err(|e| fail(path, format!("cannot read: {e}")))?;
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| fail(path, format!("not a safetensors checkpoint: {e}")))?;
    let text = meta
        .metadata()
        .as_ref()
        .and_then(|m| m.get("model_config"))
        .ok_or_else(|| {
            fail(
                path,
                "no model_config in the header: not written by mtla-st",
            )
        })?;
    ModelConfig::from_toml(text).map_err(|e| fail(path, e.to_string()))
}

/// Loads the weights at `path` into `model` (built from the config they must fit), widened to
/// f32 whatever format they are stored in ([`crate::stored`]). With `prefix` (e.g.
/// `"encoder."`), loads only the parameters under it.
pub fn load_into<B: Backend>(
    model: &mut SpeechModel<B>,
    path: &Path,
    prefix: Option<&str>,
) -> Result<()> {
    if !path.exists() {
        return Err(fail(path, "no such checkpoint"));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(path, format!("cannot read: {e}")))?;
    let widened = crate::stored::widen(&bytes).map_err(|e| fail(path, e))?;
    let mut store = SafetensorsStore::from_bytes(Some(widened.unwrap_or(bytes)))
        .validate(false)
        .allow_partial(true)
        .with_from_adapter(WidenHalf);
    if let Some(p) = prefix {
        store = store.with_regex(format!("^{}", regex_escape(p)));
    }
    let result = model
        .load_from(&mut store)
        .map_err(|e| fail(path, e.to_string()))?;
    if let Some(e) = result.errors.first() {
        return Err(fail(
            path,
            match e {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => format!(
                    "parameter '{path}' has shape {:?} in the checkpoint but the config needs {:?} \
                     (a checkpoint of another architecture?)",
                    found.as_slice(), expected.as_slice()
                ),
                other => format!("{other:?}"),
            },
        ));
    }
    let missing: Vec<&String> = result
        .missing
        .iter()
        .map(|(p, _)| p)
        .filter(|p| prefix.is_none_or(|pre| p.starts_with(pre)))
        .collect();
    if let Some(first) = missing.first() {
        return Err(fail(
            path,
            format!("parameter '{first}' is missing from the checkpoint ({} missing; another architecture?)", missing.len()),
        ));
    }
    if prefix.is_none() {
        if let Some(extra) = result.unused.first() {
            return Err(fail(
                path,
                format!("the checkpoint has '{extra}', which this config's model lacks (another architecture?)"),
            ));
        }
    }
    if result.applied.is_empty() {
        return Err(fail(path, "no parameter was loaded"));
    }
    Ok(())
}

/// Widens half-precision weights (a shipped model written by `mtla-st average --half`) to f32
/// as they load, so the model computes in f32 whatever the file stores. Unlike burn-store's
/// `HalfPrecisionAdapter`, which converts only the parameters of burn's own module types, it
/// converts every tensor (the attention layers' parameters included).
#[derive(Debug, Clone)]
struct WidenHalf;

impl ModuleAdapter for WidenHalf {
    fn adapt(&self, snapshot: &TensorSnapshot) -> TensorSnapshot {
        if !matches!(snapshot.dtype, DType::F16 | DType::BF16) {
            return snapshot.clone();
        }
        let data = snapshot.clone_data_fn();
        TensorSnapshot::from_closure(
            Rc::new(move || Ok(data()?.convert_dtype(DType::F32))),
            DType::F32,
            snapshot.shape.clone(),
            snapshot.path_stack.clone().unwrap_or_default(),
            snapshot.container_stack.clone().unwrap_or_default(),
            snapshot.tensor_id.unwrap_or_default(),
        )
    }

    fn clone_box(&self) -> Box<dyn ModuleAdapter> {
        Box::new(self.clone())
    }
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if "\\.+*?()|[]{}^$".contains(c) {
                vec!['\\', c]
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Builds the model of `config` and loads its weights from `path`.
pub fn load<B: Backend>(
    config: &ModelConfig,
    path: &Path,
    device: &B::Device,
) -> Result<SpeechModel<B>> {
    let mut model = SpeechModel::new(config, device)?;
    load_into(&mut model, path, None)?;
    Ok(model)
}

/// Builds the model of `config`, initialising its encoder from `config.encoder_init` if set.
pub fn init<B: Backend>(config: &ModelConfig, device: &B::Device) -> Result<SpeechModel<B>> {
    let mut model = SpeechModel::new(config, device)?;
    if let Some(path) = &config.encoder_init {
        load_into(&mut model, path, Some("encoder."))?;
    }
    Ok(model)
}
