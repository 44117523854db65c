//! fairseq S2T manifests: parsing (plain paths and `path:offset:length`), bad rows reported with
//! file and line, skipped by default or fatal on request, and writing them back.

#[path = "data/util.rs"]
mod util;

use std::path::Path;

use data::{AudioRef, BadRows, DataError, IssueKind, Manifest, ManifestRow};

#[test]
fn reads_rows_slices_and_optional_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = util::write_manifest(
        dir.path(),
        "m.tsv",
        &[
            "a\twav/a.wav\t120\tHallo Welt.\tspk1\tHello world.".into(),
            "b\tpack.bin:44:3200\t8\tZweiter Satz.\tspk2\t".into(),
            "c\t/abs/c.flac\t300\tDritter.\t\tThird.".into(),
        ],
    );
    let m = Manifest::read(&path, BadRows::Fail).unwrap();
    assert!(m.issues.is_empty());
    assert_eq!(m.rows.len(), 3);
    let a = &m.rows[0];
    assert_eq!((a.line, a.id.as_str(), a.n_frames), (2, "a", 120));
    assert_eq!(a.audio, AudioRef::file(dir.path().join("wav/a.wav")));
    assert_eq!(
        (a.tgt_text.as_str(), a.src_text.as_deref()),
        ("Hallo Welt.", Some("Hello world."))
    );
    let b = &m.rows[1];
    assert_eq!(b.audio.path, dir.path().join("pack.bin"));
    assert_eq!(b.audio.slice, Some((44, 3200)));
    assert_eq!(b.src_text, None, "an empty src_text is no transcript");
    assert_eq!(m.rows[2].audio.path, Path::new("/abs/c.flac"));

    // Without speaker and src_text columns, and with columns in another order.
    std::fs::write(&path, "tgt_text\tn_frames\taudio\tid\nJa.\t50\tx.wav\tx\n").unwrap();
    let m = Manifest::read(&path, BadRows::Fail).unwrap();
    assert_eq!(
        (m.rows[0].id.as_str(), m.rows[0].speaker.as_str()),
        ("x", "")
    );
    assert_eq!(m.rows[0].src_text, None);
}

/// One manifest with every kind of structural problem, one per line.
fn bad_manifest(dir: &Path) -> std::path::PathBuf {
    let mut bytes = b"id\taudio\tn_frames\ttgt_text\tspeaker\tsrc_text\n".to_vec();
    bytes.extend_from_slice(b"ok1\ta.wav\t100\tGut.\ts\tGood.\n"); // line 2
    bytes.extend_from_slice(b"few\ta.wav\t100\tGut.\n"); // 3: columns
    bytes.extend_from_slice(b"num\ta.wav\tmany\tGut.\ts\tGood.\n"); // 4: n_frames
    bytes.extend_from_slice(b"empty\ta.wav\t100\t  \ts\t \n"); // 5: empty texts
    bytes.extend_from_slice(b"latin\ta.wav\t100\tGr\xfc\xdfe.\ts\tHi.\n"); // 6: not UTF-8
    bytes.extend_from_slice(b"ok1\tb.wav\t100\tNochmal.\ts\tAgain.\n"); // 7: duplicate id
    bytes.extend_from_slice(b"\ta.wav\t100\tGut.\ts\tGood.\n"); // 8: empty id
    bytes.extend_from_slice(b"zero\tp.bin:0:0\t100\tGut.\ts\tGood.\r\n"); // 9: empty slice, CRLF
    bytes.extend_from_slice(b"ok2\tb.wav\t7\tAuch gut.\ts\tFine.\r\n"); // 10
    let path = dir.join("bad.tsv");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn bad_rows_are_skipped_and_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = bad_manifest(dir.path());
    let m = Manifest::read(&path, BadRows::Skip).unwrap();
    let ids: Vec<&str> = m.rows.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["ok1", "ok2"]);
    assert_eq!(m.rows[1].line, 10);
    let got: Vec<(usize, IssueKind)> = m.issues.issues.iter().map(|i| (i.line, i.kind)).collect();
    assert_eq!(
        got,
        [
            (3, IssueKind::Malformed),
            (4, IssueKind::Malformed),
            (5, IssueKind::EmptyText),
            (6, IssueKind::NotUtf8),
            (7, IssueKind::DuplicateId),
            (8, IssueKind::Malformed),
            (9, IssueKind::Malformed),
        ]
    );
    let shown = m.issues.issues[3].to_string();
    assert!(
        shown.starts_with(&format!("{}:6: not UTF-8", path.display())),
        "{shown}"
    );
    assert!(
        m.issues.summary().contains("4 malformed"),
        "{}",
        m.issues.summary()
    );
}

#[test]
fn bad_rows_are_fatal_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = bad_manifest(dir.path());
    let err = Manifest::read(&path, BadRows::Fail).unwrap_err();
    assert!(matches!(&err, DataError::BadRow(i) if i.line == 3), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("{}:3:", path.display())) && msg.contains("columns"),
        "{msg}"
    );
}

#[test]
fn unusable_manifests_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.tsv");
    std::fs::write(&path, "").unwrap();
    let msg = Manifest::read(&path, BadRows::Skip)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("m.tsv") && msg.contains("no header"), "{msg}");
    std::fs::write(&path, "id\taudio\ttgt_text\nx\ta.wav\tJa.\n").unwrap();
    let msg = Manifest::read(&path, BadRows::Skip)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("'n_frames'"), "{msg}");
    let missing = dir.path().join("nope.tsv");
    let msg = Manifest::read(&missing, BadRows::Skip)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("nope.tsv"), "{msg}");
}

#[test]
fn write_then_read_round_trips_with_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let rows = vec![
        ManifestRow {
            line: 0,
            id: "a".into(),
            audio: AudioRef::file(dir.path().join("audio/a.flac")),
            n_frames: 321,
            tgt_text: "Tab\tim Text.".into(),
            speaker: "flite:kal16".into(),
            src_text: Some("Tab in\ntext.".into()),
        },
        ManifestRow {
            line: 0,
            id: "b".into(),
            audio: AudioRef {
                path: dir.path().join("pack.bin"),
                slice: Some((10, 20)),
            },
            n_frames: 5,
            tgt_text: "Zwei.".into(),
            speaker: String::new(),
            src_text: None,
        },
    ];
    let path = dir.path().join("out.tsv");
    Manifest::write(&path, &rows).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.contains("\taudio/a.flac\t") && text.contains("\tpack.bin:10:20\t"),
        "{text}"
    );
    let back = Manifest::read(&path, BadRows::Fail).unwrap();
    assert_eq!(back.rows.len(), 2);
    assert_eq!(back.rows[0].audio, rows[0].audio);
    assert_eq!(back.rows[0].tgt_text, "Tab im Text.");
    assert_eq!(back.rows[0].src_text.as_deref(), Some("Tab in text."));
    assert_eq!(back.rows[1].audio, rows[1].audio);
    assert_eq!(back.rows[1].src_text, None);
}
