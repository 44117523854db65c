//! `mtla-st model summary --config FILE`: parameters per module and in total, and the decoder
//! KV cache per generated token and after a given prefix.

use std::path::PathBuf;

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
}

/// Runs `mtla-st model ...`.
pub fn run(cmd: ModelCommand) -> anyhow::Result<()> {
    let ModelCommand::Summary {
        config,
        prefix_len,
        target_len,
        json,
    } = cmd;
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
