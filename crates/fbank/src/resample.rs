//! Sample-rate conversion with `rubato` (FFT-based, band-limited), used only when asked for.

use std::path::Path;

use rubato::{FftFixedIn, Resampler};

use crate::error::{FbankError, Result};

/// Resamples mono `samples` from `from` Hz to `to` Hz; the output has `round(len * to / from)`
/// samples, aligned with the input (the resampler's delay is removed).
pub fn resample(samples: &[f32], from: u32, to: u32, path: &Path) -> Result<Vec<f32>> {
    let err = |reason: String| FbankError::Resample {
        path: path.to_path_buf(),
        from,
        to,
        reason,
    };
    if from == to {
        return Ok(samples.to_vec());
    }
    let chunk = 1024;
    let mut resampler = FftFixedIn::<f32>::new(from as usize, to as usize, chunk, 2, 1)
        .map_err(|e| err(e.to_string()))?;
    let delay = resampler.output_delay();
    let wanted = (samples.len() as u64 * to as u64 + from as u64 / 2) / from as u64;
    let mut out = Vec::with_capacity(wanted as usize + delay + chunk);
    let mut pos = 0;
    let mut block = Vec::with_capacity(chunk);
    while out.len() < wanted as usize + delay {
        // Past the end the input is zero-padded, which flushes the resampler's delay line.
        let need = resampler.input_frames_next();
        block.clear();
        block.extend_from_slice(&samples[pos.min(samples.len())..(pos + need).min(samples.len())]);
        block.resize(need, 0.0);
        pos += need;
        let res = resampler
            .process(&[&block], None)
            .map_err(|e| err(e.to_string()))?;
        out.extend_from_slice(&res[0]);
    }
    Ok(out[delay..delay + wanted as usize].to_vec())
}

/// Speed perturbation (Ko et al., Interspeech 2015; Kaldi's and ESPnet's `sox speed`): the audio
/// played `factor` times faster, tempo and pitch together, by reading `samples` as if sampled at
/// `factor x rate` Hz and resampling them to `rate` Hz. The result has `round(len / factor)`
/// samples.
pub fn speed_perturb(samples: &[f32], rate: u32, factor: f32, path: &Path) -> Result<Vec<f32>> {
    let from = (rate as f64 * factor as f64).round() as u32;
    resample(samples, from, rate, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zero crossings per second of `x` at `rate` Hz: twice the frequency of a sine.
    fn crossings_per_second(x: &[f32], rate: u32) -> f64 {
        let n = x
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        n as f64 * rate as f64 / x.len() as f64
    }

    #[test]
    fn speed_perturb_shortens_and_raises_pitch_by_the_factor() {
        let rate = 16_000;
        let sine: Vec<f32> = (0..32_000)
            .map(|i| (2.0 * std::f32::consts::PI * 440.0 * i as f32 / rate as f32).sin())
            .collect();
        for factor in [0.9f32, 1.1] {
            let out = speed_perturb(&sine, rate, factor, Path::new("sine")).unwrap();
            assert_eq!(out.len(), (sine.len() as f32 / factor).round() as usize);
            let hz = crossings_per_second(&out, rate) / 2.0;
            let want = 440.0 * factor as f64;
            assert!(
                (hz - want).abs() < 2.0,
                "factor {factor}: {hz} Hz, {want} expected"
            );
        }
        assert_eq!(
            speed_perturb(&sine, rate, 1.0, Path::new("sine")).unwrap(),
            sine
        );
    }
}
