//! `mtla-st model summary --config FILE`: parameters per module and in total, and the decoder
//! KV cache per generated token and after a given prefix. `mtla-st model deepen`: a trained
//! checkpoint with more encoder layers and/or Conformer convolution modules that computes the
//! same (Net2DeeperNet), to train on.

use std::path::PathBuf;

use anyhow::Context;
use st_model::checkpoint::{load, save, stored_config};
use st_model::deepen::{add_conv_modules, deepen_encoder};
use st_model::summary::summarize;
use st_model::{ModelConfig, SpeechModel};

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Parameter counts and KV-cache sizes of the model a config describes.
    Summary {
        /// Experiment or model config (its [model] table is used).
        #[arg(long)]
        config: PathBuf,
        /// Encoder frames after subsampling in the prefix (fbank frames / 4).
        #[arg(long, default_value_t = 150)]
        prefix_len: usize,
        /// Generated target tokens.
        #[arg(long, default_value_t = 30)]
        target_len: usize,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Grows a trained checkpoint's encoder without changing what it computes: more layers
    /// (copies of the layers they follow with their output projections at zero) and/or a
    /// Conformer convolution module in every layer (its output projection at zero). Train on it
    /// with `train.init_from` and the new sizes (`--set model.encoder.layers=N`, `--set
    /// model.encoder.conv_module_kernel=K`; same tokenizer).
    Deepen {
        /// The trained checkpoint (f32, f16 or 8-bit); its stored config is the starting point.
        #[arg(long)]
        checkpoint: PathBuf,
        /// Encoder layers of the result (at least the checkpoint's; default: the same).
        #[arg(long, required_unless_present = "conv_module_kernel")]
        encoder_layers: Option<usize>,
        /// Add a convolution module of this many taps (odd, e.g. 15) to every encoder layer.
        #[arg(long)]
        conv_module_kernel: Option<usize>,
        /// Where to write the grown checkpoint (f32).
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `mtla-st model ...`.
pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    match cmd {
        ModelCommand::Summary {
            config,
            prefix_len,
            target_len,
            json,
        } => summary(config, prefix_len, target_len, json),
        ModelCommand::Deepen {
            checkpoint,
            encoder_layers,
            conv_module_kernel,
            out,
        } => deepen(checkpoint, encoder_layers, conv_module_kernel, out),
    }
}

fn deepen(
    checkpoint: PathBuf,
    layers: Option<usize>,
    conv_module_kernel: Option<usize>,
    out: PathBuf,
) -> anyhow::Result<()> {
    type B = burn::backend::Flex;
    let config = stored_config(&checkpoint)?;
    let mut model = load::<B>(&config, &checkpoint, &Default::default())?;
    let mut grown = config.clone();
    let context = || format!("growing {}", checkpoint.display());
    if let Some(kernel) = conv_module_kernel {
        (model, grown) = add_conv_modules(model, &grown, kernel).with_context(context)?;
    }
    if let Some(layers) = layers {
        (model, grown) = deepen_encoder(model, &grown, layers).with_context(context)?;
    }
    save(&model, &grown, &out)?;
    println!(
        "{}: encoder {} -> {} layers (the added ones identities), convolution modules {} -> {} \
         taps (0: none; added ones identities), written to {}",
        checkpoint.display(),
        config.encoder.layers,
        grown.encoder.layers,
        config.encoder.conv_module_kernel,
        grown.encoder.conv_module_kernel,
        out.display()
    );
    Ok(())
}

fn summary(
    config: PathBuf,
    prefix_len: usize,
    target_len: usize,
    json: bool,
) -> anyhow::Result<()> {
    let model_config = ModelConfig::from_file(&config)?;
    let model = SpeechModel::<burn::backend::Flex>::new(&model_config, &Default::default())?;
    let s = summarize(&model, &model_config, prefix_len, target_len);
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    let a = &model_config.decoder.attention;
    println!(
        "{}: decoder self-attention {} (s = {}), {:?} layout",
        config.display(),
        a.kind,
        model_config.down_rate(),
        model_config.decoder.style
    );
    println!("| module | parameters |");
    println!("|---|---:|");
    for (name, n) in &s.modules {
        println!("| {name} | {n} |");
    }
    println!(
        "| **total** | **{} ({:.1}M)** |",
        s.total,
        s.total as f64 / 1e6
    );
    println!();
    println!(
        "KV cache per generated token: {} elements = {} bytes (f32, {} layers)",
        s.cache_elements_per_token, s.cache_bytes_per_token, model_config.decoder.layers
    );
    println!(
        "KV cache after a {}-frame prefix and {} tokens: {:.1} KiB per utterance",
        s.prefix_len,
        s.target_len,
        s.cache_bytes_total / 1024.0
    );
    Ok(())
}
