//! `prepare`: manifests from a directory of audio plus a TSV, and from a MuST-C style release
//! (yaml segments cut into a pack of WAVs), with every dropped row reported with file and line.

#[path = "data/util.rs"]
mod util;

use std::path::Path;

use data::audio::{decode, Decoded};
use data::mustc::{prepare_mustc, read_segments};
use data::prepare::prepare_wav_dir;
use data::{BadRows, DataError, Dataset, DatasetOptions, IssueKind, Manifest, PrepareOptions};
use fbank::WavOptions;

fn quiet() -> PrepareOptions {
    PrepareOptions {
        progress: false,
        ..PrepareOptions::default()
    }
}

#[test]
fn a_directory_of_wavs_with_a_table_becomes_a_validated_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wavs = d.join("wavs");
    util::write_wav(&wavs.join("good.wav"), &util::signal(16_000, 1), 16_000);
    std::fs::copy(util::fixture("chirp.flac"), wavs.join("flac.flac")).unwrap();
    util::write_wav(&wavs.join("tiny.wav"), &util::signal(400, 2), 16_000);
    util::write_wav(&wavs.join("long.wav"), &util::signal(48_000, 3), 16_000);
    util::write_wav(&wavs.join("rate.wav"), &util::signal(8_000, 4), 8_000);
    std::fs::write(wavs.join("junk.wav"), b"RIFF....WAVEjunk").unwrap();
    util::write_wav(&wavs.join("notext.wav"), &util::signal(8_000, 5), 16_000);
    let table = d.join("table.tsv");
    let mut text = b"id\ttranscript\ttranslation\n".to_vec(); // 1: header
    text.extend_from_slice(b"good\tGood morning.\tGuten Morgen.\n"); // 2
    text.extend_from_slice(b"flac\tA chirp.\tEin Zirpen.\n"); // 3
    text.extend_from_slice(b"missing\tNo audio.\tKein Ton.\n"); // 4
    text.extend_from_slice(b"tiny\tToo short.\tZu kurz.\n"); // 5
    text.extend_from_slice(b"long\tToo long.\tZu lang.\n"); // 6
    text.extend_from_slice(b"rate\tWrong rate.\tFalsche Rate.\n"); // 7
    text.extend_from_slice(b"junk\tBroken.\tKaputt.\n"); // 8
    text.extend_from_slice(b"notext\t \t \n"); // 9
    text.extend_from_slice(b"bad\xff\tx\ty\n"); // 10
    text.extend_from_slice(b"four\tcolumns\tare\ttoo many\n"); // 11
    std::fs::write(&table, text).unwrap();
    let out = d.join("out/train.tsv");
    let opts = PrepareOptions {
        max_frames: Some(200),
        ..quiet()
    };
    let report = prepare_wav_dir(&wavs, &table, &out, &opts).unwrap();
    let got: Vec<(usize, IssueKind)> = report
        .issues
        .issues
        .iter()
        .map(|i| (i.line, i.kind))
        .collect();
    assert_eq!(
        got,
        [
            (4, IssueKind::MissingAudio),
            (5, IssueKind::TooShort),
            (6, IssueKind::TooLong),
            (7, IssueKind::SampleRate),
            (8, IssueKind::UnreadableAudio),
            (9, IssueKind::EmptyText),
            (10, IssueKind::NotUtf8),
            (11, IssueKind::Malformed),
        ]
    );
    for issue in &report.issues.issues {
        assert!(issue
            .to_string()
            .starts_with(&format!("{}:{}:", table.display(), issue.line)));
    }
    assert_eq!(report.rows, 2);
    assert!(report.to_string().contains("2 utterances"), "{report}");

    let m = Manifest::read(&out, BadRows::Fail).unwrap();
    assert_eq!(m.rows.len(), 2);
    assert_eq!(m.rows[0].n_frames, 98, "1 s at 25 ms windows every 10 ms");
    assert_eq!(m.rows[0].src_text.as_deref(), Some("Good morning."));
    assert_eq!(m.rows[1].audio.path, wavs.join("flac.flac"));
    let ds = Dataset::open(
        &out,
        &d.join("cache"),
        &DatasetOptions {
            progress: false,
            ..DatasetOptions::default()
        },
    )
    .unwrap();
    assert_eq!((ds.len(), ds.frames(0)), (2, 98));

    // Strict: the first bad row is an error naming the table line.
    let strict = PrepareOptions {
        bad_rows: BadRows::Fail,
        ..opts
    };
    let err = prepare_wav_dir(&wavs, &table, &out, &strict).unwrap_err();
    assert!(
        matches!(&err, DataError::BadRow(i) if i.line == 10),
        "{err}"
    );
}

#[test]
fn transcript_only_and_translation_only_tables_are_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let wavs = d.join("wavs");
    util::write_wav(&wavs.join("a.wav"), &util::signal(16_000, 1), 16_000);
    util::write_wav(&wavs.join("b.wav"), &util::signal(16_000, 2), 16_000);
    // An ASR table: id and transcript only; and one whose translation column is empty.
    let table = d.join("asr.tsv");
    std::fs::write(&table, "id\ttranscript\na\tGood morning.\nb\tGood night.\n").unwrap();
    let out = d.join("asr/train.tsv");
    let report = prepare_wav_dir(&wavs, &table, &out, &quiet()).unwrap();
    assert_eq!((report.rows, report.issues.len()), (2, 0), "{report}");
    let m = Manifest::read(&out, BadRows::Fail).unwrap();
    assert_eq!(m.rows[1].src_text.as_deref(), Some("Good night."));
    assert_eq!(m.rows[1].tgt_text, "");
    let table = d.join("st.tsv");
    std::fs::write(&table, "a\t\tGuten Morgen.\n").unwrap();
    let report = prepare_wav_dir(&wavs, &table, &d.join("st/train.tsv"), &quiet()).unwrap();
    assert_eq!(report.rows, 1, "{report}");
    // Nothing usable: zero hours, not "-0.00".
    let table = d.join("none.tsv");
    std::fs::write(&table, "c\tNo audio.\n").unwrap();
    let report = prepare_wav_dir(&wavs, &table, &d.join("none/train.tsv"), &quiet()).unwrap();
    assert!(
        report.to_string().contains("0 utterances, 0.00 h"),
        "{report}"
    );
}

/// A two-talk MuST-C style release under `root`: data/<split>/{wav,txt}.
fn mustc_release(root: &Path, split: &str) -> (Vec<i16>, Vec<i16>) {
    let talk1 = util::signal(16_000 * 4, 1);
    let talk2 = util::signal(16_000 * 3, 2);
    let data = root.join("data").join(split);
    util::write_wav(&data.join("wav/ted_1.wav"), &talk1, 16_000);
    util::write_wav(&data.join("wav/ted_2.wav"), &talk2, 16_000);
    let yaml = [
        "- {duration: 1.250000, offset: 0.500000, rW: 3, uW: 0, speaker_id: spk.1, wav: ted_1.wav}",
        "- {duration: 0.800000, offset: 2.000000, rW: 2, uW: 0, speaker_id: spk.1, wav: ted_1.wav}",
        "- {duration: 2.000000, offset: 3.000000, rW: 4, uW: 0, speaker_id: spk.1, wav: ted_1.wav}",
        "- {duration: 1.000000, offset: 0.250000, rW: 2, uW: 0, speaker_id: spk.2, wav: ted_2.wav}",
        "- {duration: 0.900000, offset: 1.500000, rW: 2, uW: 0, speaker_id: spk.2, wav: ted_2.wav}",
    ];
    std::fs::create_dir_all(data.join("txt")).unwrap();
    std::fs::write(
        data.join(format!("txt/{split}.yaml")),
        yaml.join("\n") + "\n",
    )
    .unwrap();
    let en = "Hello there.\nSecond one.\nPast the end.\nThird talk line.\nNo German.\n";
    let de = "Hallo.\nZweiter.\nÜber das Ende.\nDritte Zeile.\n\n";
    std::fs::write(data.join(format!("txt/{split}.en")), en).unwrap();
    std::fs::write(data.join(format!("txt/{split}.de")), de).unwrap();
    (talk1, talk2)
}

#[test]
fn mustc_segments_are_cut_into_a_pack_with_slices() {
    let dir = tempfile::tempdir().unwrap();
    let (root, out) = (dir.path().join("en-de"), dir.path().join("prepared"));
    let (talk1, talk2) = mustc_release(&root, "dev");
    let report = prepare_mustc(&root, "dev", "en", "de", &out, &quiet(), false).unwrap();
    assert_eq!(report.rows, 3);
    let yaml = root.join("data/dev/txt/dev.yaml");
    let got: Vec<(usize, IssueKind)> = report
        .issues
        .issues
        .iter()
        .map(|i| (i.line, i.kind))
        .collect();
    assert_eq!(
        got,
        [(3, IssueKind::UnreadableAudio), (5, IssueKind::EmptyText)]
    );
    assert!(report.issues.issues[0]
        .to_string()
        .starts_with(&format!("{}:3:", yaml.display())));

    let m = Manifest::read(&out.join("dev.tsv"), BadRows::Fail).unwrap();
    let ids: Vec<&str> = m.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["ted_1_0", "ted_1_1", "ted_2_0"]);
    assert_eq!(
        (m.rows[0].speaker.as_str(), m.rows[2].speaker.as_str()),
        ("spk.1", "spk.2")
    );
    assert_eq!(m.rows[2].src_text.as_deref(), Some("Third talk line."));
    assert_eq!(m.rows[2].tgt_text, "Dritte Zeile.");
    // Each slice of the pack is a WAV holding exactly the segment's samples.
    let expect = [
        (&talk1, 8_000, 20_000),
        (&talk1, 32_000, 12_800),
        (&talk2, 4_000, 16_000),
    ];
    for (row, (talk, start, len)) in m.rows.iter().zip(expect) {
        assert_eq!(row.audio.path, out.join("dev_audio.bin"));
        assert!(row.audio.slice.is_some());
        let Decoded::Wave(w) = decode(&row.audio, &WavOptions::default()).unwrap() else {
            panic!("audio")
        };
        let want: Vec<f32> = talk[start..start + len].iter().map(|&s| s as f32).collect();
        assert_eq!(w.samples, want, "{}", row.id);
        assert_eq!(row.n_frames, (len - 400) / 160 + 1);
    }

    // Rerun: already prepared; --force redoes it, leaving no temporary files.
    let again = prepare_mustc(&root, "dev", "en", "de", &out, &quiet(), false).unwrap();
    assert!(again.reused);
    let forced = prepare_mustc(&root, "dev", "en", "de", &out, &quiet(), true).unwrap();
    assert_eq!(forced.rows, 3);
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn mustc_long_segments_are_dropped_from_training_splits_only() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("en-de");
    mustc_release(&root, "train");
    mustc_release(&root, "tst-COMMON");
    let opts = PrepareOptions {
        max_frames: Some(90),
        ..quiet()
    };
    let train = prepare_mustc(
        &root,
        "train",
        "en",
        "de",
        &dir.path().join("o"),
        &opts,
        false,
    )
    .unwrap();
    let test = prepare_mustc(
        &root,
        "tst-COMMON",
        "en",
        "de",
        &dir.path().join("o"),
        &opts,
        false,
    )
    .unwrap();
    assert_eq!(train.rows, 1, "only the 0.8 s segment is short enough");
    assert!(train
        .issues
        .issues
        .iter()
        .any(|i| i.kind == IssueKind::TooLong));
    assert_eq!(test.rows, 3);
}

#[test]
fn malformed_mustc_files_are_errors_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("en-de");
    mustc_release(&root, "dev");
    let txt = root.join("data/dev/txt");
    std::fs::write(txt.join("dev.de"), "Nur eine Zeile.\n").unwrap();
    let err = prepare_mustc(
        &root,
        "dev",
        "en",
        "de",
        &dir.path().join("o"),
        &quiet(),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("dev.de") && err.contains("5 segments"),
        "{err}"
    );

    let yaml = txt.join("dev.yaml");
    std::fs::write(
        &yaml,
        "- {duration: 1.0, offset: 0.0, wav: a.wav}\n- {duration: x, offset: 0, wav: a.wav}\n",
    )
    .unwrap();
    let err = read_segments(&yaml).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:2:", yaml.display())) && err.contains("duration"),
        "{err}"
    );
    std::fs::write(&yaml, "segments:\n").unwrap();
    let err = read_segments(&yaml).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}:1:", yaml.display())), "{err}");
}
