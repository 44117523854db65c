//! `mtla-st fbank IN.wav --out OUT.npy`: Kaldi-compatible log-mel features as a
//! `[frames, dim]` float32 `.npy` (Kaldi defaults, no CMVN). A stable contract for other tools.

use std::path::PathBuf;

use anyhow::Context;
use fbank::{read_wav, Fbank, FbankOptions, WavOptions, WindowType};

/// Arguments of `mtla-st fbank`; every Kaldi option, with Kaldi's defaults (dither 0).
#[derive(Debug, clap::Args)]
pub struct FbankArgs {
    /// Input WAV (16/24/32-bit PCM or 32-bit float).
    pub input: PathBuf,
    /// Output `.npy` ([frames, num_bins (+1 with --use-energy)], float32).
    #[arg(long)]
    pub out: PathBuf,
    /// Channel of a multi-channel file (required for more than one channel).
    #[arg(long)]
    pub channel: Option<usize>,
    /// Expected sample rate; another rate is an error unless --resample.
    #[arg(long, default_value_t = 16000)]
    pub sample_rate: u32,
    /// Resample audio at another rate to --sample-rate instead of failing.
    #[arg(long)]
    pub resample: bool,
    #[arg(long, default_value_t = 80)]
    pub num_bins: usize,
    #[arg(long, default_value_t = 25.0)]
    pub frame_length_ms: f32,
    #[arg(long, default_value_t = 10.0)]
    pub frame_shift_ms: f32,
    /// Gaussian dither (int16 scale); Kaldi's own default is 1.0.
    #[arg(long, default_value_t = 0.0)]
    pub dither: f32,
    #[arg(long, default_value_t = 0)]
    pub dither_seed: u64,
    #[arg(long, default_value_t = 0.97)]
    pub preemphasis_coefficient: f32,
    /// Keep the DC offset (Kaldi: --remove-dc-offset=false).
    #[arg(long)]
    pub no_remove_dc_offset: bool,
    #[arg(long, default_value = "povey")]
    pub window_type: String,
    #[arg(long, default_value_t = 0.42)]
    pub blackman_coeff: f32,
    /// Do not round the FFT size up to a power of two.
    #[arg(long)]
    pub no_round_to_power_of_two: bool,
    /// Reflect at the edges instead of dropping partial frames (Kaldi: --snip-edges=false).
    #[arg(long)]
    pub no_snip_edges: bool,
    #[arg(long, default_value_t = 20.0)]
    pub low_freq: f32,
    /// Upper mel edge; <= 0 is an offset from Nyquist.
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    pub high_freq: f32,
    #[arg(long, default_value_t = 100.0)]
    pub vtln_low: f32,
    #[arg(long, default_value_t = -500.0, allow_hyphen_values = true)]
    pub vtln_high: f32,
    #[arg(long, default_value_t = 1.0)]
    pub vtln_warp: f32,
    #[arg(long)]
    pub htk_mode: bool,
    /// Append the log energy (first column, last with --htk-compat).
    #[arg(long)]
    pub use_energy: bool,
    #[arg(long, default_value_t = 0.0)]
    pub energy_floor: f32,
    /// Energy after pre-emphasis and windowing (Kaldi: --raw-energy=false).
    #[arg(long)]
    pub no_raw_energy: bool,
    #[arg(long)]
    pub htk_compat: bool,
    /// Linear instead of log mel energies.
    #[arg(long)]
    pub no_log: bool,
    /// Magnitude instead of power spectrum.
    #[arg(long)]
    pub magnitude: bool,
}

impl FbankArgs {
    /// The feature options these flags describe.
    pub fn options(&self) -> anyhow::Result<FbankOptions> {
        let mut o = FbankOptions::default();
        o.frame.samp_freq = self.sample_rate as f32;
        o.frame.frame_length_ms = self.frame_length_ms;
        o.frame.frame_shift_ms = self.frame_shift_ms;
        o.frame.dither = self.dither;
        o.frame.dither_seed = self.dither_seed;
        o.frame.preemph_coeff = self.preemphasis_coefficient;
        o.frame.remove_dc_offset = !self.no_remove_dc_offset;
        o.frame.window_type = self.window_type.parse::<WindowType>()?;
        o.frame.blackman_coeff = self.blackman_coeff;
        o.frame.round_to_power_of_two = !self.no_round_to_power_of_two;
        o.frame.snip_edges = !self.no_snip_edges;
        o.mel.num_bins = self.num_bins;
        o.mel.low_freq = self.low_freq;
        o.mel.high_freq = self.high_freq;
        o.mel.vtln_low = self.vtln_low;
        o.mel.vtln_high = self.vtln_high;
        o.mel.vtln_warp = self.vtln_warp;
        o.mel.htk_mode = self.htk_mode;
        o.use_energy = self.use_energy;
        o.energy_floor = self.energy_floor;
        o.raw_energy = !self.no_raw_energy;
        o.htk_compat = self.htk_compat;
        o.use_log_fbank = !self.no_log;
        o.use_power = !self.magnitude;
        Ok(o)
    }
}

/// Runs `mtla-st fbank`.
pub fn run(args: FbankArgs) -> anyhow::Result<()> {
    let fbank = Fbank::new(args.options()?)?;
    let audio = read_wav(
        &args.input,
        &WavOptions {
            channel: args.channel,
            expected_rate: Some(args.sample_rate),
            resample: args.resample,
        },
    )?;
    let feats = fbank.compute(&audio.samples);
    if feats.frames == 0 {
        eprintln!(
            "warning: {}: {} samples is shorter than one {} ms frame; writing 0 frames",
            args.input.display(),
            audio.samples.len(),
            args.frame_length_ms
        );
    }
    fbank::npy::write_npy(&args.out, &[feats.frames, feats.dim], &feats.data)
        .with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!(
        "{}: {} frames x {} -> {}",
        args.input.display(),
        feats.frames,
        feats.dim,
        args.out.display()
    );
    Ok(())
}
