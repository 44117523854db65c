//! Parity of the quality metrics with the oracle (sacrebleu 2.6.0, jiwer 4.0.0 through
//! `shared/oracles/score_reference.py`; fairseq's `WerScorer` for its WER form) on the fixtures
//! in `tests/data/scores/` (regenerate them with `make_fixtures.sh` and `make_fairseq_wer.py`
//! there), and the error cases.

use std::path::{Path, PathBuf};

use metrics::{
    corpus_bleu, corpus_cer, corpus_wer, read_lines, score_files, tokenize_13a, MetricsError,
    QualityReport,
};
use serde_json::Value;

/// Every fixture case; each is a directory with hyp.txt, ref.txt (ref2.txt), scores.json and
/// segments.json.
const CASES: [&str; 13] = [
    "basic",
    "german",
    "brevity",
    "perfect",
    "short",
    "smoothing",
    "no_match",
    "multiref",
    "empty_ref_line",
    "all_empty_refs",
    "ties",
    "corpus",
    "corpus_multiref",
];

/// Largest allowed difference of a real-valued score from the oracle's. The implementation
/// repeats sacreBLEU's and jiwer's floating-point operations in order, so the observed
/// difference is 0; the brief's bar is 0.01.
const TOLERANCE: f64 = 1e-9;

fn case_dir(case: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/scores")
        .join(case)
}

fn reference_files(case: &str) -> Vec<PathBuf> {
    ["ref.txt", "ref2.txt"]
        .iter()
        .map(|name| case_dir(case).join(name))
        .filter(|path| path.exists())
        .collect()
}

fn load_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn f64_of(value: &Value, what: &str) -> f64 {
    value
        .as_f64()
        .unwrap_or_else(|| panic!("{what}: not a number in the oracle JSON: {value}"))
}

fn u64_of(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what}: not a count in the oracle JSON: {value}"))
}

fn assert_close(what: &str, got: f64, want: &Value) {
    let want = f64_of(want, what);
    assert!(
        (got - want).abs() <= TOLERANCE,
        "{what}: got {got}, oracle {want} (difference {})",
        (got - want).abs()
    );
}

fn assert_count(what: &str, got: u64, want: &Value) {
    assert_eq!(got, u64_of(want, what), "{what}");
}

fn assert_bleu(case: &str, report: &QualityReport, oracle: &Value) {
    let (bleu, want) = (&report.bleu, &oracle["bleu"]);
    assert_close(&format!("{case} bleu.score"), bleu.score, &want["score"]);
    assert_close(&format!("{case} bleu.bp"), bleu.bp, &want["bp"]);
    assert_count(
        &format!("{case} bleu.sys_len"),
        bleu.sys_len,
        &want["sys_len"],
    );
    assert_count(
        &format!("{case} bleu.ref_len"),
        bleu.ref_len,
        &want["ref_len"],
    );
    for n in 0..4 {
        let what = format!("{case} bleu order {}", n + 1);
        assert_count(&format!("{what} count"), bleu.counts[n], &want["counts"][n]);
        assert_count(&format!("{what} total"), bleu.totals[n], &want["totals"][n]);
        assert_close(
            &format!("{what} precision"),
            bleu.precisions[n],
            &want["precisions"][n],
        );
    }
    assert_eq!(
        Some(bleu.signature.as_str()),
        want["signature"].as_str(),
        "{case} bleu.signature"
    );
}

fn assert_chrf(case: &str, report: &QualityReport, oracle: &Value) {
    for (name, got) in [("chrf", &report.chrf), ("chrf_pp", &report.chrf_pp)] {
        let want = &oracle[name];
        assert_close(&format!("{case} {name}.score"), got.score, &want["score"]);
        assert_eq!(
            Some(got.signature.as_str()),
            want["signature"].as_str(),
            "{case} {name}.signature"
        );
    }
}

/// WER: every count and the rate; when the oracle has no reference words (jiwer then returns
/// the insertion count as "wer"), the score must be absent.
fn assert_wer(case: &str, report: &QualityReport, oracle: &Value) {
    for (name, got) in [
        ("wer", &report.wer),
        ("wer_lc_nopunct", &report.wer_lc_nopunct),
    ] {
        let want = &oracle[name];
        let what = format!("{case} {name}");
        if u64_of(&want["ref_words"], &what) == 0 {
            assert!(
                got.is_none(),
                "{what}: undefined for the oracle, got {got:?}"
            );
            continue;
        }
        let got = got.as_ref().unwrap_or_else(|| panic!("{what}: missing"));
        assert_close(&format!("{what}.wer"), got.wer, &want["wer"]);
        assert_count(
            &format!("{what}.substitutions"),
            got.substitutions,
            &want["substitutions"],
        );
        assert_count(
            &format!("{what}.deletions"),
            got.deletions,
            &want["deletions"],
        );
        assert_count(
            &format!("{what}.insertions"),
            got.insertions,
            &want["insertions"],
        );
        assert_count(&format!("{what}.hits"), got.hits, &want["hits"]);
        assert_count(
            &format!("{what}.ref_words"),
            got.ref_words,
            &want["ref_words"],
        );
    }
}

/// fairseq's WER (`fairseq_wer.json`: its edit distance and reference length summed over the
/// corpus, the rate in percent); fairseq reports 0 where there are no reference words, which
/// this crate leaves undefined.
fn assert_fairseq_wer(case: &str, report: &QualityReport) {
    let want = load_json(&case_dir(case).join("fairseq_wer.json"));
    let what = format!("{case} wer_13a_lc_nopunct");
    let ref_length = u64_of(&want["ref_length"], &what);
    let got = &report.wer_13a_lc_nopunct;
    if ref_length == 0 {
        assert!(got.is_none(), "{what}: no reference words, got {got:?}");
        return;
    }
    let got = got.as_ref().unwrap_or_else(|| panic!("{what}: missing"));
    let distance = got.substitutions + got.deletions + got.insertions;
    assert_eq!(
        distance,
        u64_of(&want["distance"], &what),
        "{what}: distance"
    );
    assert_eq!(got.ref_words, ref_length, "{what}: reference words");
    assert_close(&format!("{what}.wer"), 100.0 * got.wer, &want["wer"]);
}

fn assert_cer(case: &str, report: &QualityReport, oracle: &Value) {
    let want = &oracle["cer"];
    let what = format!("{case} cer");
    let ref_chars: u64 = ["hits", "substitutions", "deletions"]
        .iter()
        .map(|k| u64_of(&want[k], &what))
        .sum();
    if ref_chars == 0 {
        assert!(report.cer.is_none(), "{what}: undefined for the oracle");
        return;
    }
    let got = report
        .cer
        .as_ref()
        .unwrap_or_else(|| panic!("{what}: missing"));
    assert_close(&format!("{what}.cer"), got.cer, &want["cer"]);
    assert_count(
        &format!("{what}.substitutions"),
        got.substitutions,
        &want["substitutions"],
    );
    assert_count(
        &format!("{what}.deletions"),
        got.deletions,
        &want["deletions"],
    );
    assert_count(
        &format!("{what}.insertions"),
        got.insertions,
        &want["insertions"],
    );
    assert_count(&format!("{what}.hits"), got.hits, &want["hits"]);
    assert_eq!(got.ref_chars, ref_chars, "{what}.ref_chars");
}

#[test]
fn corpus_scores_match_the_oracle() {
    for case in CASES {
        let oracle = load_json(&case_dir(case).join("scores.json"));
        let report = score_files(&case_dir(case).join("hyp.txt"), &reference_files(case))
            .unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            report.segments as u64,
            u64_of(&oracle["segments"], case),
            "{case} segments"
        );
        assert_bleu(case, &report, &oracle);
        assert_chrf(case, &report, &oracle);
        assert_wer(case, &report, &oracle);
        assert_fairseq_wer(case, &report);
        assert_cer(case, &report, &oracle);
    }
}

#[test]
fn report_json_has_the_documented_keys() {
    let case = "multiref";
    let report = score_files(&case_dir(case).join("hyp.txt"), &reference_files(case)).unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let oracle = load_json(&case_dir(case).join("scores.json"));
    for key in [
        "score",
        "counts",
        "totals",
        "precisions",
        "bp",
        "sys_len",
        "ref_len",
        "signature",
    ] {
        assert_eq!(json["bleu"][key], oracle["bleu"][key], "bleu.{key}");
    }
    for key in [
        "wer",
        "substitutions",
        "deletions",
        "insertions",
        "hits",
        "ref_words",
    ] {
        assert_eq!(json["wer"][key], oracle["wer"][key], "wer.{key}");
    }
    assert_eq!(json["chrf"]["signature"], oracle["chrf"]["signature"]);
}

#[test]
fn tokenize_13a_matches_sacrebleu_on_every_fixture_line() {
    for case in CASES {
        let segments = load_json(&case_dir(case).join("segments.json"));
        let tokenized = segments["tokenized_13a"]
            .as_object()
            .unwrap_or_else(|| panic!("{case}: no tokenized_13a"));
        assert!(!tokenized.is_empty(), "{case}: no lines");
        for (line, want) in tokenized {
            assert_eq!(
                Some(tokenize_13a(line).as_str()),
                want.as_str(),
                "{case}: {line:?}"
            );
        }
    }
}

/// Per-segment S/D/I/H against jiwer (rapidfuzz's alignment), stricter than the corpus sums.
#[test]
fn segment_edit_counts_match_jiwer() {
    for case in CASES {
        let segments = load_json(&case_dir(case).join("segments.json"));
        let hyps = read_lines(&case_dir(case).join("hyp.txt")).unwrap();
        let refs = read_lines(&case_dir(case).join("ref.txt")).unwrap();
        let want = segments["wer_counts"].as_array().unwrap();
        assert_eq!(want.len(), hyps.len(), "{case}");
        for (i, (hyp, reference)) in hyps.iter().zip(&refs).enumerate() {
            let what = format!("{case} line {}", i + 1);
            let [s, d, ins, h] = [0, 1, 2, 3].map(|k| u64_of(&want[i][k], &what));
            match corpus_wer(std::slice::from_ref(hyp), std::slice::from_ref(reference)) {
                Ok(got) => assert_eq!(
                    [got.substitutions, got.deletions, got.insertions, got.hits],
                    [s, d, ins, h],
                    "{what}: {reference:?} / {hyp:?}"
                ),
                Err(e) => {
                    assert_eq!(s + d + h, 0, "{what}: {e}");
                    assert!(
                        matches!(e, MetricsError::EmptyReferences { .. }),
                        "{what}: {e}"
                    );
                }
            }
        }
    }
}

fn temp_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn line_count_mismatch_names_both_files_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let hyp = temp_file(dir.path(), "hyp.txt", b"a\nb\nc\n");
    let good = temp_file(dir.path(), "good.txt", b"a\nb\nc\n");
    let short = temp_file(dir.path(), "short.txt", b"a\nb\n");
    let err = score_files(&hyp, &[good, short.clone()]).unwrap_err();
    assert!(matches!(
        err,
        MetricsError::LineCountMismatch {
            hyp_lines: 3,
            ref_lines: 2,
            ..
        }
    ));
    let msg = err.to_string();
    for part in [hyp.display().to_string(), short.display().to_string()] {
        assert!(msg.contains(&part), "message must name {part}: {msg}");
    }
    assert!(msg.contains("2 lines") && msg.contains("has 3"), "{msg}");
}

#[test]
fn non_utf8_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = temp_file(dir.path(), "ref.txt", b"one\ntwo\nthree\n");
    let bad = temp_file(dir.path(), "hyp.txt", b"one\r\ntwo \xff\xfe\nthree\n");
    let err = score_files(&bad, &[good]).unwrap_err();
    assert!(
        matches!(err, MetricsError::NotUtf8 { line: 2, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains(&bad.display().to_string()) && msg.contains("line 2"),
        "{msg}"
    );
}

#[test]
fn unreadable_and_missing_inputs_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let hyp = temp_file(dir.path(), "hyp.txt", b"a\n");
    let missing = dir.path().join("missing.txt");
    let err = score_files(&hyp, &[missing.clone()]).unwrap_err();
    assert!(matches!(err, MetricsError::Io { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );
    assert!(matches!(
        score_files(&hyp, &[]),
        Err(MetricsError::NoReferences)
    ));
}

#[test]
fn wer_and_cer_are_undefined_without_reference_words() {
    let hyps = vec!["some words".to_string(), "more".to_string()];
    let refs = vec!["".to_string(), " \t ".to_string()];
    for err in [
        corpus_wer(&hyps, &refs).unwrap_err(),
        corpus_cer(&hyps, &refs).unwrap_err(),
    ] {
        assert!(
            matches!(err, MetricsError::EmptyReferences { segments: 2, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("undefined"), "{err}");
    }
}

#[test]
fn lines_are_read_like_python_text_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(
        dir.path(),
        "t.txt",
        "\u{feff}a\r\nb\rc\n\n  d \t\ne".as_bytes(),
    );
    assert_eq!(
        read_lines(&path).unwrap(),
        ["\u{feff}a", "b", "c", "", "  d \t", "e"]
    );
    let path = temp_file(dir.path(), "empty.txt", b"");
    assert!(read_lines(&path).unwrap().is_empty());
    let path = temp_file(dir.path(), "newline.txt", b"\n");
    assert_eq!(read_lines(&path).unwrap(), [""]);
}

#[test]
#[should_panic(expected = "reference stream 1 has 1 segments but there are 2 hypotheses")]
fn misaligned_reference_streams_panic() {
    let hyps = vec!["a".to_string(), "b".to_string()];
    corpus_bleu(&hyps, &[hyps.clone(), vec!["a".to_string()]]);
}
