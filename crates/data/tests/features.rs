//! Audio decoding and the feature cache: cached features are the fbank crate's, a rerun reads
//! them instead of recomputing, changed audio or options are recomputed, interrupted or damaged
//! writes never surface as corrupt features, and bad audio rows are reported with file and line.

#[path = "data/util.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use data::audio::{decode, Decoded};
use data::feature_cache::FeatureCache;
use data::{AudioRef, BadRows, DataError, Dataset, DatasetOptions, IssueKind, TargetSide};
use fbank::{utterance_cmvn, Fbank, FbankOptions, WavOptions};

fn quiet() -> DatasetOptions {
    DatasetOptions {
        progress: false,
        ..DatasetOptions::default()
    }
}

fn wave(path: &Path) -> Vec<f32> {
    match decode(&AudioRef::file(path), &WavOptions::default()).unwrap() {
        Decoded::Wave(w) => w.samples,
        Decoded::Features(_) => panic!("{} is audio", path.display()),
    }
}

/// Features as the model sees them: fbank of the file's samples, utterance CMVN.
fn expected_features(path: &Path, opts: &FbankOptions) -> Vec<f32> {
    let mut f = Fbank::new(opts.clone()).unwrap().compute(&wave(path));
    utterance_cmvn(&mut f, true, true);
    f.data
}

fn shards(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(cache).unwrap() {
        for f in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            if p.extension().is_some_and(|e| e == "fbk") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn flac_is_lossless_and_vorbis_is_close() {
    let wav = wave(&util::fixture("chirp.wav"));
    assert_eq!(
        wave(&util::fixture("chirp.flac")),
        wav,
        "FLAC decodes to the WAV's samples"
    );
    let ogg = wave(&util::fixture("chirp.ogg"));
    assert!(
        ogg.len().abs_diff(wav.len()) < 1600,
        "{} vs {}",
        ogg.len(),
        wav.len()
    );
    // Lossy, but the log-mel features stay close where the signal is.
    let fb = Fbank::new(FbankOptions::default()).unwrap();
    let (a, b) = (fb.compute(&wav), fb.compute(&ogg));
    let frames = a.frames.min(b.frames);
    let diff: f32 = (0..frames * a.dim)
        .map(|i| (a.data[i] - b.data[i]).abs())
        .sum::<f32>()
        / (frames * a.dim) as f32;
    assert!(diff < 1.0, "mean |log-mel difference| {diff}");
}

#[test]
fn cached_features_equal_the_fbank_crate_for_every_format_and_slice() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The same chirp as WAV, FLAC, Vorbis, as a slice of a pack file, and as precomputed .npy.
    for ext in ["wav", "flac", "ogg"] {
        std::fs::copy(
            util::fixture(&format!("chirp.{ext}")),
            d.join(format!("chirp.{ext}")),
        )
        .unwrap();
    }
    let wav_bytes = std::fs::read(d.join("chirp.wav")).unwrap();
    let mut pack = b"some header bytes".to_vec();
    let offset = pack.len();
    pack.extend_from_slice(&wav_bytes);
    pack.extend_from_slice(b"trailing");
    std::fs::write(d.join("pack.bin"), &pack).unwrap();
    let raw = Fbank::new(FbankOptions::default())
        .unwrap()
        .compute(&wave(&d.join("chirp.wav")));
    fbank::npy::write_npy(&d.join("chirp.npy"), &[raw.frames, raw.dim], &raw.data).unwrap();
    let manifest = util::write_manifest(
        d,
        "m.tsv",
        &[
            "w\tchirp.wav\t58\tEins.\ts\tOne.".into(),
            "f\tchirp.flac\t58\tZwei.\ts\tTwo.".into(),
            "o\tchirp.ogg\t58\tDrei.\ts\tThree.".into(),
            format!(
                "p\tpack.bin:{offset}:{}\t58\tVier.\ts\tFour.",
                wav_bytes.len()
            ),
            "n\tchirp.npy\t58\tFünf.\ts\tFive.".into(),
        ],
    );
    let ds = Dataset::open(&manifest, &d.join("cache"), &quiet()).unwrap();
    assert!(ds.issues().is_empty(), "{:?}", ds.issues());
    assert_eq!(ds.len(), 5);
    let opts = FbankOptions::default();
    let from_wav = expected_features(&d.join("chirp.wav"), &opts);
    for i in [0, 1, 3, 4] {
        assert_eq!(
            ds.features(i).unwrap().data,
            from_wav,
            "utterance {}",
            ds.id(i)
        );
    }
    assert_eq!(
        ds.features(2).unwrap().data,
        expected_features(&d.join("chirp.ogg"), &opts)
    );
    assert_eq!(ds.frames(0), raw.frames);
    assert_eq!(ds.feat_dim(), 80);
    assert_eq!(
        shards(&d.join("cache")).len(),
        1,
        "one shard for the whole manifest"
    );
}

#[test]
fn a_rerun_reads_the_cache_and_changed_audio_or_options_are_recomputed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = util::small_corpus(d, 6);
    let cache = d.join("cache");
    let first = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    let before = shards(&cache);
    assert_eq!(before.len(), 1);

    // Same size and modification time, other samples: the cache is trusted, not recomputed.
    let target = d.join("wav/u002.wav");
    let mtime = std::fs::metadata(&target).unwrap().modified().unwrap();
    let n = wave(&target).len();
    let other = util::signal(n, 99);
    util::write_wav(&target, &other, 16_000);
    std::fs::File::options()
        .write(true)
        .open(&target)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let again = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    assert_eq!(shards(&cache), before, "nothing was extracted");
    assert_eq!(
        again.features(2).unwrap().data,
        first.features(2).unwrap().data
    );

    // A newer file is new audio: only it is extracted, into a new shard.
    let later = mtime + Duration::from_secs(5);
    std::fs::File::options()
        .write(true)
        .open(&target)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let changed = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    assert_eq!(shards(&cache).len(), 2);
    let opts = FbankOptions::default();
    assert_eq!(
        changed.features(2).unwrap().data,
        expected_features(&target, &opts)
    );
    assert_eq!(
        changed.features(3).unwrap().data,
        first.features(3).unwrap().data
    );

    // Other fbank options live in another cache directory.
    let mut forty = quiet();
    forty.fbank.mel.num_bins = 40;
    let ds40 = Dataset::open(&manifest, &cache, &forty).unwrap();
    assert_eq!(ds40.feat_dim(), 40);
    assert_eq!(
        ds40.features(0).unwrap().data,
        expected_features(&d.join("wav/u000.wav"), &forty.fbank)
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);
}

#[test]
fn speed_perturbed_copies_are_the_perturbed_audio_cached_apart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = util::small_corpus(d, 3);
    let cache = d.join("cache");
    let plain = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    let sp = DatasetOptions {
        speeds: vec![0.9, 1.0, 1.1],
        ..quiet()
    };
    let ds = Dataset::open(&manifest, &cache, &sp).unwrap();
    assert!(ds.issues().is_empty(), "{:?}", ds.issues());
    assert_eq!(ds.len(), 3 * plain.len(), "one copy per factor");
    let opts = FbankOptions::default();
    for (copy, factor) in [(0, 0.9f32), (1, 1.0), (2, 1.1)] {
        for u in 0..plain.len() {
            let i = copy * plain.len() + u;
            let want_id = match copy {
                1 => plain.id(u).to_string(),
                _ => format!("sp{factor}-{}", plain.id(u)),
            };
            assert_eq!(ds.id(i), want_id);
            assert_eq!(ds.target_text(i), plain.target_text(u));
            let path = d.join(format!("wav/u{u:03}.wav"));
            let samples =
                fbank::resample::speed_perturb(&wave(&path), 16_000, factor, &path).unwrap();
            let mut f = Fbank::new(opts.clone()).unwrap().compute(&samples);
            utterance_cmvn(&mut f, true, true);
            assert_eq!(ds.features(i).unwrap().data, f.data, "{}", ds.id(i));
        }
    }
    assert!(ds.frames(0) > plain.frames(0) && ds.frames(2 * plain.len()) < plain.frames(0));
    // Speed 1 reuses the plain cache; each other factor has a directory of its own.
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 3);
    let before = shards(&cache);
    Dataset::open(&manifest, &cache, &sp).unwrap();
    assert_eq!(shards(&cache), before, "a rerun extracts nothing");
    let none = DatasetOptions {
        speeds: vec![],
        ..quiet()
    };
    let err = Dataset::open(&manifest, &cache, &none)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no speed factor") && err.contains(".tsv"),
        "{err}"
    );
}

#[test]
fn interrupted_or_damaged_writes_never_yield_corrupt_features() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = util::small_corpus(d, 5);
    let cache = d.join("cache");
    let good = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    let expected: Vec<Vec<f32>> = (0..good.len())
        .map(|i| good.features(i).unwrap().data)
        .collect();
    let shard = shards(&cache).pop().unwrap();
    let cache_dir = shard.parent().unwrap().to_path_buf();

    // A run that died while writing leaves only a temporary file: ignored, and removed once
    // it is old enough not to belong to a live writer.
    let bytes = std::fs::read(&shard).unwrap();
    let stale = cache_dir.join("shard-dead.fbk.tmp4242");
    std::fs::write(&stale, &bytes[..bytes.len() / 2]).unwrap();
    let fresh = cache_dir.join("shard-live.fbk.tmp4343");
    std::fs::write(&fresh, &bytes[..100]).unwrap();
    let hours_ago = SystemTime::now() - Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(hours_ago)
        .unwrap();
    let ds = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    assert!(!stale.exists() && fresh.exists());
    assert_eq!(shards(&cache), vec![shard.clone()]);
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(&ds.features(i).unwrap().data, e);
    }

    // A shard damaged on disk (truncated, or garbage) is dropped and its utterances recomputed.
    std::fs::write(&shard, &bytes[..bytes.len() - 7]).unwrap();
    std::fs::write(
        cache_dir.join("shard-garbage.fbk"),
        b"MTLAFBK1\xff\xff\xff\xff\xff\xff\xff\x7f",
    )
    .unwrap();
    let ds = Dataset::open(&manifest, &cache, &quiet()).unwrap();
    let now = shards(&cache);
    assert_eq!(now.len(), 1);
    assert_ne!(now[0], shard, "the damaged shard was replaced");
    for (i, e) in expected.iter().enumerate() {
        assert_eq!(&ds.features(i).unwrap().data, e);
    }
}

/// A manifest with one good row and one row per audio problem (lines 2..=7).
fn bad_audio_manifest(d: &Path) -> PathBuf {
    util::write_wav(&d.join("good.wav"), &util::signal(8000, 1), 16_000);
    util::write_wav(&d.join("narrow.wav"), &util::signal(4000, 2), 8_000);
    let mut truncated = util::wav_bytes(&util::signal(8000, 3), 16_000);
    truncated.truncate(truncated.len() / 2);
    std::fs::write(d.join("truncated.wav"), truncated).unwrap();
    std::fs::write(d.join("text.wav"), b"this is not audio at all").unwrap();
    util::write_wav(&d.join("silent.wav"), &[], 16_000);
    util::write_manifest(
        d,
        "m.tsv",
        &[
            "good\tgood.wav\t50\tGut.\ts\tGood.".into(),
            "missing\tnothere.wav\t50\tFehlt.\ts\tMissing.".into(),
            "rate\tnarrow.wav\t50\tSchmal.\ts\tNarrow.".into(),
            "trunc\ttruncated.wav\t50\tHalb.\ts\tHalf.".into(),
            "text\ttext.wav\t50\tText.\ts\tText.".into(),
            "silent\tsilent.wav\t0\tStill.\ts\tSilent.".into(),
        ],
    )
}

#[test]
fn bad_audio_rows_are_skipped_with_file_and_line_or_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = bad_audio_manifest(d);
    let ds = Dataset::open(&manifest, &d.join("cache"), &quiet()).unwrap();
    assert_eq!(ds.len(), 1);
    assert_eq!(ds.id(0), "good");
    let got: Vec<(usize, IssueKind)> = ds
        .issues()
        .issues
        .iter()
        .map(|i| (i.line, i.kind))
        .collect();
    assert_eq!(
        got,
        [
            (3, IssueKind::MissingAudio),
            (4, IssueKind::SampleRate),
            (5, IssueKind::UnreadableAudio),
            (6, IssueKind::UnreadableAudio),
            (7, IssueKind::UnreadableAudio),
        ]
    );
    for issue in &ds.issues().issues {
        let msg = issue.to_string();
        assert!(
            msg.starts_with(&format!("{}:{}:", manifest.display(), issue.line)),
            "{msg}"
        );
    }
    assert!(
        ds.issues().issues[1].message.contains("8000 Hz"),
        "{}",
        ds.issues().issues[1]
    );

    // Strict: the first bad row stops the run, naming the manifest line.
    let strict = DatasetOptions {
        bad_rows: BadRows::Fail,
        ..quiet()
    };
    let err = Dataset::open(&manifest, &d.join("cache"), &strict).unwrap_err();
    assert!(matches!(&err, DataError::BadRow(i) if i.line == 3), "{err}");

    // With resampling allowed, the 8 kHz file is usable.
    let resampling = DatasetOptions {
        resample: true,
        ..quiet()
    };
    let ds = Dataset::open(&manifest, &d.join("cache"), &resampling).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(ds.id(1), "rate");
    assert!(
        ds.frames(1).abs_diff(48) <= 2,
        "0.5 s at 10 ms: {}",
        ds.frames(1)
    );
}

#[test]
fn a_shard_rejected_on_open_leaves_no_index_entry_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (fbank, wav) = (FbankOptions::default(), WavOptions::default());
    let cache = FeatureCache::open(dir.path(), &fbank, &wav, 1.0).unwrap();
    let (shard_dir, dim) = (cache.dir().to_path_buf(), cache.dim());
    drop(cache);
    // A well-formed first entry, then one lying outside the data: the shard fails as a whole.
    let header = serde_json::to_vec(&serde_json::json!({
        "format": "mtla-fbank-cache-v1",
        "dim": dim,
        "entries": [
            {"key": "00112233445566778899aabbccddeeff", "frames": 1, "offset": 0},
            {"key": "ffeeddccbbaa99887766554433221100", "frames": 1, "offset": 1000},
        ],
    }))
    .unwrap();
    let mut bytes = b"MTLAFBK1".to_vec();
    bytes.extend_from_slice(&(header.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&header);
    bytes.extend(std::iter::repeat_n(0u8, 2 * dim * 4));
    let shard = shard_dir.join("shard-0.fbk");
    std::fs::write(&shard, bytes).unwrap();
    let cache = FeatureCache::open(dir.path(), &fbank, &wav, 1.0).unwrap();
    assert_eq!(
        cache.len(),
        0,
        "no entry of the rejected shard may stay indexed"
    );
    assert!(!shard.exists(), "the damaged shard is removed");
}

#[test]
fn the_task_picks_the_text_and_rows_without_it_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    util::write_wav(&d.join("a.wav"), &util::signal(8000, 1), 16_000);
    util::write_wav(&d.join("b.wav"), &util::signal(8000, 2), 16_000);
    // Row 2 has both texts, row 3 a transcript only (an ASR table), row 4 neither.
    let manifest = util::write_manifest(
        d,
        "m.tsv",
        &[
            "both\ta.wav\t50\tGut.\ts\tGood.".into(),
            "asr\tb.wav\t50\t\ts\tFine.".into(),
            "none\tb.wav\t50\t\ts\t".into(),
        ],
    );
    let open = |side| {
        let opts = DatasetOptions {
            side: Some(side),
            ..quiet()
        };
        Dataset::open(&manifest, &d.join("cache"), &opts).unwrap()
    };
    let asr = open(TargetSide::Transcript);
    assert_eq!((asr.len(), asr.id(0), asr.id(1)), (2, "both", "asr"));
    assert_eq!(
        asr.texts(TargetSide::Transcript).unwrap(),
        ["Good.", "Fine."]
    );
    let lines = |ds: &Dataset| -> Vec<(usize, IssueKind)> {
        ds.issues()
            .issues
            .iter()
            .map(|i| (i.line, i.kind))
            .collect()
    };
    assert_eq!(lines(&asr), [(4, IssueKind::EmptyText)]);
    let st = open(TargetSide::Translation);
    assert_eq!((st.len(), st.id(0)), (1, "both"));
    assert_eq!(
        lines(&st),
        [(3, IssueKind::EmptyText), (4, IssueKind::EmptyText)]
    );
    let report = st.issues().report(10);
    assert!(
        report.contains(&format!("{}:3: ", manifest.display()))
            && report.contains("no translation"),
        "{report}"
    );
}
