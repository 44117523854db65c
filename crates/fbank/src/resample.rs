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
