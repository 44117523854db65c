//! Kaldi's triangular mel filterbank (`mel-computations.{h,cc}`), with optional VTLN warping.

use serde::{Deserialize, Serialize};

use crate::error::{FbankError, Result};

/// Kaldi `MelBanksOptions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MelOptions {
    pub num_bins: usize,
    pub low_freq: f32,
    /// Upper edge in Hz; `<= 0` means an offset from the Nyquist frequency.
    pub high_freq: f32,
    pub vtln_low: f32,
    /// Upper VTLN cut-off; `< 0` means an offset from the Nyquist frequency.
    pub vtln_high: f32,
    /// VTLN warp factor (1.0 = no warping).
    pub vtln_warp: f32,
    /// Replicate HTK's zeroing of the first FFT bin of the first mel bin.
    pub htk_mode: bool,
}

impl Default for MelOptions {
    fn default() -> Self {
        Self {
            num_bins: 80,
            low_freq: 20.0,
            high_freq: 0.0,
            vtln_low: 100.0,
            vtln_high: -500.0,
            vtln_warp: 1.0,
            htk_mode: false,
        }
    }
}

/// Kaldi's mel scale, `1127 ln(1 + f / 700)`.
pub fn mel_scale(freq: f32) -> f32 {
    1127.0 * (1.0 + freq / 700.0).ln()
}

/// Inverse of [`mel_scale`].
pub fn inverse_mel_scale(mel: f32) -> f32 {
    700.0 * ((mel / 1127.0).exp() - 1.0)
}

/// Kaldi `VtlnWarpFreq`: piecewise-linear frequency warping.
fn vtln_warp_freq(vtln_low: f32, vtln_high: f32, low: f32, high: f32, warp: f32, freq: f32) -> f32 {
    if freq < low || freq > high {
        return freq;
    }
    let l = vtln_low * warp.max(1.0);
    let h = vtln_high * warp.min(1.0);
    let scale = 1.0 / warp;
    let (fl, fh) = (scale * l, scale * h);
    if freq < l {
        low + (fl - low) / (l - low) * (freq - low)
    } else if freq < h {
        scale * freq
    } else {
        high + (high - fh) / (high - h) * (freq - high)
    }
}

/// One triangular filter: weights for FFT bins `offset .. offset + weights.len()`.
#[derive(Debug, Clone)]
pub struct MelBin {
    pub offset: usize,
    pub weights: Vec<f32>,
}

/// The filterbank: `num_bins` sparse triangular filters over `padded_window / 2` FFT bins.
#[derive(Debug, Clone)]
pub struct MelBanks {
    pub bins: Vec<MelBin>,
}

impl MelBanks {
    /// Builds Kaldi's filters for an FFT of `padded_window` points at `samp_freq` Hz.
    pub fn new(opts: &MelOptions, samp_freq: f32, padded_window: usize) -> Result<Self> {
        let num_fft_bins = padded_window / 2;
        let nyquist = 0.5 * samp_freq;
        let high = if opts.high_freq > 0.0 {
            opts.high_freq
        } else {
            nyquist + opts.high_freq
        };
        let low = opts.low_freq;
        if opts.num_bins < 3
            || low < 0.0
            || low >= nyquist
            || high <= 0.0
            || high > nyquist
            || high <= low
        {
            return Err(FbankError::Options(format!(
                "mel bins need num_bins >= 3 and 0 <= low_freq < high_freq <= Nyquist; got num_bins={}, \
                 low_freq={low}, high_freq={high}, Nyquist={nyquist}",
                opts.num_bins
            )));
        }
        let fft_bin_width = samp_freq / padded_window as f32;
        let (mel_low, mel_high) = (mel_scale(low), mel_scale(high));
        let delta = (mel_high - mel_low) / (opts.num_bins + 1) as f32;
        let vtln_high = if opts.vtln_high < 0.0 {
            opts.vtln_high + nyquist
        } else {
            opts.vtln_high
        };
        let warp = opts.vtln_warp != 1.0;
        if warp
            && !(opts.vtln_low > low
                && opts.vtln_low < high
                && vtln_high > opts.vtln_low
                && vtln_high < high)
        {
            return Err(FbankError::Options(format!(
                "VTLN needs low_freq < vtln_low < vtln_high < high_freq; got {low} < {} < {vtln_high} < {high}",
                opts.vtln_low
            )));
        }
        let warp_mel = |mel: f32| {
            if warp {
                mel_scale(vtln_warp_freq(
                    opts.vtln_low,
                    vtln_high,
                    low,
                    high,
                    opts.vtln_warp,
                    inverse_mel_scale(mel),
                ))
            } else {
                mel
            }
        };
        let mut bins = Vec::with_capacity(opts.num_bins);
        for bin in 0..opts.num_bins {
            let left = warp_mel(mel_low + bin as f32 * delta);
            let center = warp_mel(mel_low + (bin + 1) as f32 * delta);
            let right = warp_mel(mel_low + (bin + 2) as f32 * delta);
            let mut dense = vec![0.0f32; num_fft_bins];
            for (i, w) in dense.iter_mut().enumerate() {
                let mel = mel_scale(fft_bin_width * i as f32);
                if mel > left && mel < right {
                    *w = if mel <= center {
                        (mel - left) / (center - left)
                    } else {
                        (right - mel) / (right - center)
                    };
                }
            }
            let first = dense.iter().position(|&w| w != 0.0);
            let last = dense.iter().rposition(|&w| w != 0.0);
            let (offset, mut weights) = match (first, last) {
                (Some(f), Some(l)) => (f, dense[f..=l].to_vec()),
                _ => {
                    return Err(FbankError::Options(format!(
                        "mel bin {bin} is empty: too many mel bins ({}) for a {padded_window}-point FFT",
                        opts.num_bins
                    )))
                }
            };
            if opts.htk_mode && bin == 0 && mel_low != 0.0 {
                weights[0] = 0.0;
            }
            bins.push(MelBin { offset, weights });
        }
        Ok(Self { bins })
    }

    /// Mel energies of one power (or magnitude) spectrum.
    pub fn apply(&self, spectrum: &[f32], out: &mut [f32]) {
        for (bin, o) in self.bins.iter().zip(out.iter_mut()) {
            let s = &spectrum[bin.offset..bin.offset + bin.weights.len()];
            *o = bin.weights.iter().zip(s).map(|(w, x)| w * x).sum();
        }
    }
}
