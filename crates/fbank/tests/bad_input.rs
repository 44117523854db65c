//! Bad audio gives an error that names the file and the problem, never a panic.

use std::path::{Path, PathBuf};

use fbank::{read_wav, Fbank, FbankError, FbankOptions, WavOptions};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Writes `bytes` to a temporary file and reads it back as WAV.
fn read_bytes(
    name: &str,
    bytes: &[u8],
    opts: &WavOptions,
) -> (PathBuf, Result<fbank::Audio, FbankError>) {
    let dir = tempfile::tempdir().unwrap().keep();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    let res = read_wav(&path, opts);
    (path, res)
}

fn assert_err_names(res: Result<fbank::Audio, FbankError>, path: &Path, words: &str) {
    let msg = res.expect_err("must be an error").to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "message must name the file: {msg}"
    );
    assert!(msg.contains(words), "message must say '{words}': {msg}");
}

fn wav_16k(samples: &[i16]) -> Vec<u8> {
    let mut cursor = std::io::Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    samples.iter().for_each(|s| w.write_sample(*s).unwrap());
    w.finalize().unwrap();
    cursor.into_inner()
}

#[test]
fn missing_file() {
    let path = PathBuf::from("/nonexistent/dir/a.wav");
    assert_err_names(
        read_wav(&path, &WavOptions::default()),
        &path,
        "cannot read",
    );
}

#[test]
fn empty_file() {
    let (p, r) = read_bytes("empty.wav", b"", &WavOptions::default());
    assert_err_names(r, &p, "empty");
}

#[test]
fn truncated_header() {
    let bytes = wav_16k(&[1, 2, 3]);
    let (p, r) = read_bytes("hdr.wav", &bytes[..20], &WavOptions::default());
    assert_err_names(r, &p, "not a readable WAV");
}

#[test]
fn truncated_data() {
    let bytes = wav_16k(&vec![100; 8000]);
    let (p, r) = read_bytes(
        "data.wav",
        &bytes[..bytes.len() - 1001],
        &WavOptions::default(),
    );
    assert_err_names(r, &p, "truncated");
}

#[test]
fn non_wav_bytes() {
    let (p, r) = read_bytes(
        "text.wav",
        b"this is certainly not a RIFF file at all",
        &WavOptions::default(),
    );
    assert_err_names(r, &p, "not a readable WAV");
}

#[test]
fn zero_length_audio() {
    let (p, r) = read_bytes("zero.wav", &wav_16k(&[]), &WavOptions::default());
    assert_err_names(r, &p, "no audio samples");
}

#[test]
fn shorter_than_one_frame_gives_zero_frames() {
    let (_, r) = read_bytes("short.wav", &wav_16k(&[5; 399]), &WavOptions::default());
    let audio = r.unwrap();
    let feats = Fbank::new(FbankOptions::default())
        .unwrap()
        .compute(&audio.samples);
    assert_eq!((feats.frames, feats.dim), (0, 80));
}

#[test]
fn non_finite_float_samples() {
    for bad in [f32::NAN, f32::INFINITY] {
        let mut cursor = std::io::Cursor::new(Vec::new());
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16000,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
        for i in 0..1000 {
            w.write_sample(if i == 321 { bad } else { 0.1f32 }).unwrap();
        }
        w.finalize().unwrap();
        let (p, r) = read_bytes("nan.wav", &cursor.into_inner(), &WavOptions::default());
        assert_err_names(r, &p, "sample 321");
    }
}

#[test]
fn wrong_sample_rate_is_rejected_naming_both_rates() {
    let path = data("tones_8k.wav");
    let msg = read_wav(&path, &WavOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("8000") && msg.contains("16000") && msg.contains("tones_8k.wav"),
        "{msg}"
    );
}

#[test]
fn wrong_sample_rate_is_resampled_on_request() {
    let opts = WavOptions {
        resample: true,
        ..WavOptions::default()
    };
    let audio = read_wav(data("tones_8k.wav"), &opts).unwrap();
    assert_eq!(audio.sample_rate, 16000);
    assert_eq!(audio.samples.len(), 16000);
    // The 300 Hz + 2500 Hz tones survive: compare with the analytic signal away from the edges.
    let max_err = (2000..14000)
        .map(|i| {
            let t = i as f32 / 16000.0;
            let want = 32768.0
                * (0.3 * (2.0 * std::f32::consts::PI * 300.0 * t).sin()
                    + 0.2 * (2.0 * std::f32::consts::PI * 2500.0 * t).sin());
            (audio.samples[i] - want).abs()
        })
        .fold(0.0f32, f32::max);
    assert!(
        max_err < 0.01 * 32768.0,
        "resampled signal deviates by {max_err}"
    );
}

#[test]
fn multichannel_needs_a_channel_choice() {
    let path = data("stereo.wav");
    let msg = read_wav(&path, &WavOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("2 channels") && msg.contains("stereo.wav"),
        "{msg}"
    );
    let opts = WavOptions {
        channel: Some(2),
        ..WavOptions::default()
    };
    let msg = read_wav(&path, &opts).unwrap_err().to_string();
    assert!(msg.contains("channel 2"), "{msg}");
}

#[test]
fn impossible_options_are_rejected() {
    let mut o = FbankOptions::default();
    o.mel.high_freq = 9000.0;
    assert!(Fbank::new(o).unwrap_err().to_string().contains("Nyquist"));
    let mut o = FbankOptions::default();
    o.frame.frame_length_ms = 0.0;
    assert!(Fbank::new(o).is_err());
}
