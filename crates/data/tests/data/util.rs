//! Helpers shared by the data-layer tests (`#[path = "data/util.rs"] mod util;`).
#![allow(dead_code)] // each test file uses a different subset

use std::path::{Path, PathBuf};

/// A committed fixture of this directory.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// A deterministic speech-like test signal: a few harmonics with a slow vibrato plus a
/// pseudo-random noise floor, on the int16 scale.
pub fn signal(samples: usize, seed: u32) -> Vec<i16> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..samples)
        .map(|n| {
            let t = n as f32 / 16_000.0;
            let f0 = 120.0 + 20.0 * seed as f32 + 15.0 * (6.0 * t).sin();
            let voiced: f32 = (1..6)
                .map(|h| (2.0 * std::f32::consts::PI * f0 * h as f32 * t).sin() / h as f32)
                .sum();
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32) - 0.5;
            (3000.0 * voiced + 400.0 * noise) as i16
        })
        .collect()
}

/// WAV bytes (mono, 16-bit) of `samples` at `rate`.
pub fn wav_bytes(samples: &[i16], rate: u32) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut cursor, spec).unwrap();
    samples.iter().for_each(|&s| w.write_sample(s).unwrap());
    w.finalize().unwrap();
    cursor.into_inner()
}

/// Writes a WAV file of `samples` at `rate` and returns its path.
pub fn write_wav(path: &Path, samples: &[i16], rate: u32) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, wav_bytes(samples, rate)).unwrap();
    path.to_path_buf()
}

/// A manifest in `dir` named `name` with a header and the given rows (already tab-joined).
pub fn write_manifest(dir: &Path, name: &str, rows: &[String]) -> PathBuf {
    let mut text = String::from("id\taudio\tn_frames\ttgt_text\tspeaker\tsrc_text\n");
    for r in rows {
        text.push_str(r);
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// A corpus of `n` utterances of varying length (0.3 s .. 2.2 s) under `dir/wav/`, with its
/// manifest `dir/train.tsv`; German targets and English transcripts from a small word list.
pub fn small_corpus(dir: &Path, n: usize) -> PathBuf {
    let de = [
        "das Haus ist groß",
        "ich bin hier",
        "wir gehen nach Hause",
        "es regnet heute",
        "guten Morgen",
    ];
    let en = [
        "the house is big",
        "i am here",
        "we are going home",
        "it is raining today",
        "good morning",
    ];
    let rows: Vec<String> = (0..n)
        .map(|i| {
            let len = 4800 + (i * 7919) % 30_400;
            let wav = write_wav(
                &dir.join(format!("wav/u{i:03}.wav")),
                &signal(len, i as u32 % 7),
                16_000,
            );
            format!(
                "u{i:03}\t{}\t{}\t{}.\tspk{}\t{}.",
                wav.strip_prefix(dir).unwrap().display(),
                len / 160,
                de[i % de.len()],
                i % 3,
                en[i % en.len()]
            )
        })
        .collect();
    write_manifest(dir, "train.tsv", &rows)
}
