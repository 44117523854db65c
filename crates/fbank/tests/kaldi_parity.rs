//! Parity with kaldi-native-fbank: fixtures in tests/data were produced by
//! `../shared/oracles/fbank_reference.py` (see data/make_fixtures.sh).

use std::path::{Path, PathBuf};

use fbank::npy::read_npy;
use fbank::{read_wav, Fbank, FbankOptions, WavOptions};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Compares our features of `wav` with the oracle's `npy`, on bins whose oracle value is > 5.
fn check(wav: &str, npy: &str, channel: Option<usize>, rate: u32, num_bins: usize) {
    let audio = read_wav(
        data(wav),
        &WavOptions {
            channel,
            expected_rate: Some(rate),
            resample: false,
        },
    )
    .unwrap();
    let mut opts = FbankOptions::default();
    opts.frame.samp_freq = rate as f32;
    opts.mel.num_bins = num_bins;
    let ours = Fbank::new(opts).unwrap().compute(&audio.samples);
    let (shape, want) = read_npy(&data(npy)).unwrap();
    assert_eq!(shape, vec![ours.frames, ours.dim], "{wav}: shape");
    let (mut sum, mut max, mut n) = (0.0f64, 0.0f32, 0usize);
    for (a, b) in ours.data.iter().zip(&want) {
        if *b > 5.0 {
            let d = (a - b).abs();
            sum += d as f64;
            max = max.max(d);
            n += 1;
        }
    }
    assert!(
        n >= 1000,
        "{wav}: too few bins above 5 ({n}) for a meaningful check"
    );
    // Digital silence hits Kaldi's floor, ln(FLT_EPSILON), in both implementations.
    for (a, b) in ours.data.iter().zip(&want) {
        if *b == f32::EPSILON.ln() {
            assert_eq!(a, b, "{wav}: floored bin");
        }
    }
    let mean = sum / n as f64;
    assert!(mean < 1e-4, "{wav}: mean |diff| {mean:e} over {n} bins");
    assert!(max < 2e-3, "{wav}: max |diff| {max:e}");
}

#[test]
fn tones_match_kaldi() {
    check("tones.wav", "tones.fbank.npy", None, 16000, 80);
}

#[test]
fn noise_matches_kaldi() {
    check("noise.wav", "noise.fbank.npy", None, 16000, 80);
}

#[test]
fn near_silence_matches_kaldi() {
    check("silence.wav", "silence.fbank.npy", None, 16000, 80);
}

#[test]
fn speech_matches_kaldi() {
    check("speech.wav", "speech.fbank.npy", None, 16000, 80);
    check("speech.wav", "speech_23bins.fbank.npy", None, 16000, 23);
}

#[test]
fn other_sample_formats_match_kaldi() {
    check("tones_pcm24.wav", "tones_pcm24.fbank.npy", None, 16000, 80);
    check("tones_pcm32.wav", "tones_pcm32.fbank.npy", None, 16000, 80);
    check("tones_float.wav", "tones_float.fbank.npy", None, 16000, 80);
}

#[test]
fn chosen_channel_matches_kaldi() {
    check("stereo.wav", "stereo_ch1.fbank.npy", Some(1), 16000, 80);
}

#[test]
fn other_rate_and_bin_count_match_kaldi() {
    check("tones_8k.wav", "tones_8k_40bins.fbank.npy", None, 8000, 40);
}

#[test]
fn shared_example_matches_kaldi_when_present() {
    // The oracle's own example; skipped where ../shared is not checked out (e.g. CI).
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/oracles/examples");
    let (wav, npy) = (dir.join("sines.wav"), dir.join("sines_fbank.npy"));
    if !wav.exists() {
        eprintln!("skipped: {} not present", wav.display());
        return;
    }
    let audio = read_wav(&wav, &WavOptions::default()).unwrap();
    let ours = Fbank::new(FbankOptions::default())
        .unwrap()
        .compute(&audio.samples);
    let (_, want) = read_npy(&npy).unwrap();
    let max = ours
        .data
        .iter()
        .zip(&want)
        .filter(|(_, b)| **b > 5.0)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 2e-3, "max |diff| {max}");
}
