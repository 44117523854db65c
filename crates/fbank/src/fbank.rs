//! Kaldi-compatible log-mel filterbank (`compute-fbank-feats`, Kaldi `feature-fbank.{h,cc}`).
//!
//! Per frame: extract -> dither -> remove DC -> (raw energy) -> pre-emphasis -> window ->
//! zero-pad to the FFT size -> power spectrum -> triangular mel filters -> log (floored at
//! `f32::EPSILON`). Results match kaldi-native-fbank to ~1e-5 (see tests/kaldi_parity.rs).

use std::sync::Arc;

use realfft::{RealFftPlanner, RealToComplex};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::features::Features;
use crate::mel::{MelBanks, MelOptions};
use crate::window::{preemphasize, remove_dc, Dither, FrameOptions};

/// Kaldi `FbankOptions` with Kaldi's defaults (and `dither = 0`, 80 mel bins).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FbankOptions {
    pub frame: FrameOptions,
    pub mel: MelOptions,
    /// Append the log frame energy as an extra coefficient.
    pub use_energy: bool,
    /// Floor on the energy (absolute, not log); 0 disables.
    pub energy_floor: f32,
    /// Compute the energy before pre-emphasis and windowing.
    pub raw_energy: bool,
    /// Put the energy last instead of first (HTK layout).
    pub htk_compat: bool,
    /// Log of the mel energies (otherwise linear).
    pub use_log_fbank: bool,
    /// Power spectrum (otherwise magnitude).
    pub use_power: bool,
}

impl Default for FbankOptions {
    fn default() -> Self {
        Self {
            frame: FrameOptions::default(),
            mel: MelOptions::default(),
            use_energy: false,
            energy_floor: 0.0,
            raw_energy: true,
            htk_compat: false,
            use_log_fbank: true,
            use_power: true,
        }
    }
}

impl FbankOptions {
    /// Output dimension: mel bins plus one for energy.
    pub fn dim(&self) -> usize {
        self.mel.num_bins + usize::from(self.use_energy)
    }
}

/// A ready-to-use extractor: window, mel filters and FFT plan computed once.
#[derive(Clone)]
pub struct Fbank {
    opts: FbankOptions,
    window: Vec<f32>,
    mel: MelBanks,
    fft: Arc<dyn RealToComplex<f32>>,
}

impl std::fmt::Debug for Fbank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fbank").field("opts", &self.opts).finish()
    }
}

impl Fbank {
    /// Validates `opts` and precomputes everything that does not depend on the audio.
    pub fn new(opts: FbankOptions) -> Result<Self> {
        opts.frame.validate()?;
        let padded = opts.frame.padded_window_size();
        let mel = MelBanks::new(&opts.mel, opts.frame.samp_freq, padded)?;
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(padded);
        Ok(Self {
            window: opts.frame.window_function(),
            mel,
            fft,
            opts,
        })
    }

    /// The options this extractor was built with.
    pub fn options(&self) -> &FbankOptions {
        &self.opts
    }

    /// Features of `samples` (int16 scale, at `samp_freq`). Audio shorter than one frame gives
    /// zero frames (with `snip_edges`), as in Kaldi.
    pub fn compute(&self, samples: &[f32]) -> Features {
        let o = &self.opts;
        let frames = if samples.is_empty() {
            0
        } else {
            o.frame.num_frames(samples.len())
        };
        let dim = o.dim();
        let size = o.frame.window_size();
        let mel_offset = usize::from(o.use_energy && !o.htk_compat);
        let energy_index = if o.htk_compat { o.mel.num_bins } else { 0 };
        let log_energy_floor = (o.energy_floor > 0.0).then(|| o.energy_floor.ln());

        let mut out = vec![0.0f32; frames * dim];
        let mut dither =
            (o.frame.dither > 0.0).then(|| Dither::new(o.frame.dither, o.frame.dither_seed));
        let mut input = self.fft.make_input_vec();
        let mut spectrum = self.fft.make_output_vec();
        let mut scratch = self.fft.make_scratch_vec();
        let mut power = vec![0.0f32; spectrum.len()];

        for (t, row) in out.chunks_exact_mut(dim.max(1)).enumerate().take(frames) {
            let frame = &mut input[..size];
            o.frame.extract_frame(samples, t, frame);
            if let Some(d) = dither.as_mut() {
                d.apply(frame);
            }
            if o.frame.remove_dc_offset {
                remove_dc(frame);
            }
            let energy_of = |x: &[f32]| x.iter().map(|v| v * v).sum::<f32>().max(f32::EPSILON).ln();
            let raw_log_energy = (o.use_energy && o.raw_energy).then(|| energy_of(frame));
            if o.frame.preemph_coeff != 0.0 {
                preemphasize(frame, o.frame.preemph_coeff);
            }
            frame
                .iter_mut()
                .zip(&self.window)
                .for_each(|(x, w)| *x *= w);
            let log_energy = raw_log_energy.or_else(|| o.use_energy.then(|| energy_of(frame)));
            input[size..].iter_mut().for_each(|x| *x = 0.0);

            self.fft
                .process_with_scratch(&mut input, &mut spectrum, &mut scratch)
                .expect("FFT buffers are sized by the plan");
            for (p, c) in power.iter_mut().zip(&spectrum) {
                let e = c.norm_sqr();
                *p = if o.use_power { e } else { e.sqrt() };
            }

            let mel_row = &mut row[mel_offset..mel_offset + o.mel.num_bins];
            self.mel.apply(&power, mel_row);
            if o.use_log_fbank {
                mel_row
                    .iter_mut()
                    .for_each(|x| *x = x.max(f32::EPSILON).ln());
            }
            if let Some(mut e) = log_energy {
                if let Some(floor) = log_energy_floor {
                    e = e.max(floor);
                }
                row[energy_index] = e;
            }
        }
        Features::new(frames, dim, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone() -> Vec<f32> {
        (0..8000)
            .map(|i| 10000.0 * (i as f32 * 0.2).sin())
            .collect()
    }

    #[test]
    fn energy_goes_first_or_last() {
        let mut o = FbankOptions {
            use_energy: true,
            ..FbankOptions::default()
        };
        let first = Fbank::new(o.clone()).unwrap().compute(&tone());
        o.htk_compat = true;
        let last = Fbank::new(o).unwrap().compute(&tone());
        let plain = Fbank::new(FbankOptions::default())
            .unwrap()
            .compute(&tone());
        assert_eq!(first.dim, 81);
        assert_eq!(first.row(3)[0], last.row(3)[80]);
        assert_eq!(&first.row(3)[1..], plain.row(3));
        // log energy of a ~10000-amplitude sine over 400 samples is about ln(400 * 5e7) ~ 23.7.
        assert!((first.row(3)[0] - 23.7).abs() < 0.3, "{}", first.row(3)[0]);
    }

    #[test]
    fn dither_is_reproducible_from_its_seed() {
        let o = FbankOptions {
            frame: FrameOptions {
                dither: 1.0,
                dither_seed: 5,
                ..FrameOptions::default()
            },
            ..FbankOptions::default()
        };
        let silence = vec![0.0; 4000];
        let a = Fbank::new(o.clone()).unwrap().compute(&silence);
        let b = Fbank::new(o).unwrap().compute(&silence);
        assert_eq!(a, b);
        assert!(
            a.data.iter().all(|&x| x > f32::EPSILON.ln()),
            "dither lifts silence off the floor"
        );
    }

    #[test]
    fn magnitude_spectrum_and_linear_output() {
        let o = FbankOptions {
            use_power: false,
            use_log_fbank: false,
            ..FbankOptions::default()
        };
        let mag = Fbank::new(o).unwrap().compute(&tone());
        assert!(mag.data.iter().all(|&x| x >= 0.0));
    }

    #[test]
    fn vtln_warp_moves_the_filters() {
        let warped = FbankOptions {
            mel: MelOptions {
                vtln_warp: 1.1,
                ..MelOptions::default()
            },
            ..FbankOptions::default()
        };
        let a = Fbank::new(warped).unwrap().compute(&tone());
        let b = Fbank::new(FbankOptions::default())
            .unwrap()
            .compute(&tone());
        assert_ne!(a, b);
        assert_eq!(a.frames, b.frames);
    }
}
