//! Kaldi's frame extraction: frame geometry (`snip_edges`), window functions, dither, DC removal
//! and pre-emphasis (Kaldi `feature-window.{h,cc}`).

use serde::{Deserialize, Serialize};

use crate::error::{FbankError, Result};

/// Window function applied to each frame (Kaldi `--window-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WindowType {
    Hamming,
    Hanning,
    Povey,
    Rectangular,
    Sine,
    Blackman,
}

impl std::str::FromStr for WindowType {
    type Err = FbankError;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "hamming" => Self::Hamming,
            "hanning" => Self::Hanning,
            "povey" => Self::Povey,
            "rectangular" => Self::Rectangular,
            "sine" => Self::Sine,
            "blackman" => Self::Blackman,
            other => {
                return Err(FbankError::Options(format!(
                    "unknown window type '{other}' (hamming, hanning, povey, rectangular, sine, blackman)"
                )))
            }
        })
    }
}

/// Kaldi `FrameExtractionOptions`, with Kaldi's defaults except `dither = 0` (deterministic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FrameOptions {
    pub samp_freq: f32,
    pub frame_shift_ms: f32,
    pub frame_length_ms: f32,
    /// Gaussian dither standard deviation on the int16 scale (Kaldi's default is 1.0).
    pub dither: f32,
    /// Seed of the dither noise, so dithered features are reproducible.
    pub dither_seed: u64,
    pub preemph_coeff: f32,
    pub remove_dc_offset: bool,
    pub window_type: WindowType,
    pub round_to_power_of_two: bool,
    pub blackman_coeff: f32,
    pub snip_edges: bool,
}

impl Default for FrameOptions {
    fn default() -> Self {
        Self {
            samp_freq: 16000.0,
            frame_shift_ms: 10.0,
            frame_length_ms: 25.0,
            dither: 0.0,
            dither_seed: 0,
            preemph_coeff: 0.97,
            remove_dc_offset: true,
            window_type: WindowType::Povey,
            round_to_power_of_two: true,
            blackman_coeff: 0.42,
            snip_edges: true,
        }
    }
}

impl FrameOptions {
    /// Samples per frame (`WindowSize()` in Kaldi).
    pub fn window_size(&self) -> usize {
        (self.samp_freq * 0.001 * self.frame_length_ms) as usize
    }

    /// Samples between frame starts (`WindowShift()`).
    pub fn window_shift(&self) -> usize {
        (self.samp_freq * 0.001 * self.frame_shift_ms) as usize
    }

    /// FFT length (`PaddedWindowSize()`).
    pub fn padded_window_size(&self) -> usize {
        let n = self.window_size();
        if self.round_to_power_of_two {
            n.next_power_of_two()
        } else {
            n
        }
    }

    /// Number of frames for `num_samples` samples (Kaldi `NumFrames`, flush = true).
    pub fn num_frames(&self, num_samples: usize) -> usize {
        let (size, shift) = (self.window_size(), self.window_shift());
        if self.snip_edges {
            if num_samples < size {
                0
            } else {
                1 + (num_samples - size) / shift
            }
        } else {
            (num_samples + shift / 2) / shift
        }
    }

    /// Checks the options describe a usable frame.
    pub fn validate(&self) -> Result<()> {
        if self.window_size() < 2 || self.window_shift() == 0 {
            return Err(FbankError::Options(format!(
                "frame length {} ms / shift {} ms at {} Hz give a {}-sample window and {}-sample shift",
                self.frame_length_ms,
                self.frame_shift_ms,
                self.samp_freq,
                self.window_size(),
                self.window_shift()
            )));
        }
        if !(0.0..=1.0).contains(&self.preemph_coeff) || self.dither < 0.0 {
            return Err(FbankError::Options(format!(
                "preemph_coeff must be in [0, 1] and dither >= 0 (got {} and {})",
                self.preemph_coeff, self.dither
            )));
        }
        Ok(())
    }

    /// The window function, one weight per sample (`FeatureWindowFunction`).
    pub fn window_function(&self) -> Vec<f32> {
        let n = self.window_size();
        let a = 2.0 * std::f64::consts::PI / (n - 1) as f64;
        let b = self.blackman_coeff as f64;
        (0..n)
            .map(|i| {
                let x = a * i as f64;
                (match self.window_type {
                    WindowType::Hanning => 0.5 - 0.5 * x.cos(),
                    WindowType::Sine => (0.5 * x).sin(),
                    WindowType::Hamming => 0.54 - 0.46 * x.cos(),
                    WindowType::Povey => (0.5 - 0.5 * x.cos()).powf(0.85),
                    WindowType::Rectangular => 1.0,
                    WindowType::Blackman => b - 0.5 * x.cos() + (0.5 - b) * (2.0 * x).cos(),
                }) as f32
            })
            .collect()
    }

    /// Copies frame `index` of `wave` into `frame` (length `window_size()`), reflecting at the
    /// edges when `snip_edges` is false (`ExtractWindow`).
    pub fn extract_frame(&self, wave: &[f32], index: usize, frame: &mut [f32]) {
        let (size, shift) = (self.window_size(), self.window_shift());
        let start = if self.snip_edges {
            (index * shift) as i64
        } else {
            (index * shift + shift / 2) as i64 - (size / 2) as i64
        };
        let n = wave.len() as i64;
        if start >= 0 && start + size as i64 <= n {
            frame.copy_from_slice(&wave[start as usize..start as usize + size]);
            return;
        }
        for (s, out) in frame.iter_mut().enumerate() {
            let mut t = start + s as i64;
            while t < 0 || t >= n {
                t = if t < 0 { -t - 1 } else { 2 * n - 1 - t };
            }
            *out = wave[t as usize];
        }
    }
}

/// Subtracts the mean (`remove_dc_offset`).
pub fn remove_dc(frame: &mut [f32]) {
    let mean = frame.iter().sum::<f32>() / frame.len() as f32;
    frame.iter_mut().for_each(|x| *x -= mean);
}

/// Kaldi's in-place pre-emphasis `x[i] -= c * x[i-1]`, with `x[0] -= c * x[0]`.
pub fn preemphasize(frame: &mut [f32], coeff: f32) {
    for i in (1..frame.len()).rev() {
        frame[i] -= coeff * frame[i - 1];
    }
    frame[0] -= coeff * frame[0];
}

/// Gaussian noise source for dithering (Box-Muller on a seeded generator).
pub struct Dither {
    rng: rand::rngs::StdRng,
    scale: f32,
}

impl Dither {
    /// Noise with standard deviation `scale`, reproducible from `seed`.
    pub fn new(scale: f32, seed: u64) -> Self {
        use rand::SeedableRng;
        Self {
            rng: rand::rngs::StdRng::seed_from_u64(seed),
            scale,
        }
    }

    /// Adds noise to every sample of `frame`.
    pub fn apply(&mut self, frame: &mut [f32]) {
        use rand::Rng;
        for x in frame.iter_mut() {
            let u1: f32 = self.rng.random::<f32>().max(f32::MIN_POSITIVE);
            let u2: f32 = self.rng.random();
            *x += self.scale * (-2.0 * u1.ln()).sqrt() * (2.0 * std::f32::consts::PI * u2).cos();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_follow_kaldi() {
        let o = FrameOptions::default();
        assert_eq!(
            (o.window_size(), o.window_shift(), o.padded_window_size()),
            (400, 160, 512)
        );
        assert_eq!(o.num_frames(399), 0);
        assert_eq!(o.num_frames(400), 1);
        assert_eq!(o.num_frames(16000), 98);
        let o = FrameOptions {
            snip_edges: false,
            ..FrameOptions::default()
        };
        assert_eq!(o.num_frames(16000), 100);
        assert_eq!(o.num_frames(79), 0);
        assert_eq!(o.num_frames(80), 1);
    }

    #[test]
    fn edge_frames_reflect_without_snip_edges() {
        let o = FrameOptions {
            snip_edges: false,
            ..FrameOptions::default()
        };
        let wave: Vec<f32> = (0..1000).map(|x| x as f32).collect();
        let mut frame = vec![0.0; 400];
        o.extract_frame(&wave, 0, &mut frame);
        // Frame 0 starts at 80 - 200 = -120: samples -120..-1 reflect to 119..0.
        assert_eq!(&frame[..3], &[119.0, 118.0, 117.0]);
        assert_eq!(frame[120], 0.0);
    }

    #[test]
    fn preemphasis_and_dither_are_kaldi_like() {
        let mut x = vec![1.0, 2.0, 4.0];
        preemphasize(&mut x, 0.5);
        assert_eq!(x, vec![0.5, 1.5, 3.0]);
        let mut a = vec![0.0f32; 10000];
        let mut b = a.clone();
        Dither::new(1.0, 9).apply(&mut a);
        Dither::new(1.0, 9).apply(&mut b);
        assert_eq!(a, b);
        let var = a.iter().map(|v| v * v).sum::<f32>() / a.len() as f32;
        assert!((var - 1.0).abs() < 0.05, "dither variance {var}");
    }

    #[test]
    fn windows_have_the_documented_shapes() {
        let win = |t| {
            FrameOptions {
                window_type: t,
                ..FrameOptions::default()
            }
            .window_function()
        };
        let p = win(WindowType::Povey);
        assert_eq!(p[0], 0.0);
        assert!((p[200] - 1.0).abs() < 1e-4);
        assert!(win(WindowType::Rectangular).iter().all(|&w| w == 1.0));
        assert!((win(WindowType::Hamming)[0] - 0.08).abs() < 1e-6);
        assert!("bogus".parse::<WindowType>().is_err());
    }
}
