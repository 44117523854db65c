//! The unigram tokenizer: training, encode/decode round trips, save/load, and reading
//! SentencePiece `.model` files with SentencePiece's own segmentation.

#[path = "data/util.rs"]
mod util;

use std::path::Path;
use std::process::Command;

use data::Tokenizer;

fn corpus() -> Vec<String> {
    let subjects = [
        "Ich",
        "Du",
        "Er",
        "Sie",
        "Wir",
        "Die Kinder",
        "Der alte Müller",
    ];
    let verbs = ["sehe", "kaufe", "öffne", "schließe", "finde", "mag"];
    let objects = [
        "das Haus",
        "die Tür",
        "den großen Hund",
        "das Fenster",
        "ein Buch",
        "die Straße",
    ];
    let mut out = Vec::new();
    for (i, s) in subjects.iter().enumerate() {
        for (j, v) in verbs.iter().enumerate() {
            let o = objects[(i + j) % objects.len()];
            let end = if (i + j) % 3 == 0 { "?" } else { "." };
            out.push(format!("{s} {v} {o} heute{end}"));
        }
    }
    out
}

#[test]
fn trains_encodes_decodes_and_round_trips_through_a_file() {
    let texts = corpus();
    let tok = Tokenizer::train(&texts, 120).unwrap();
    assert_eq!(
        (tok.bos_id(), tok.pad_id(), tok.eos_id(), tok.unk_id()),
        (0, 1, 2, 3)
    );
    assert!(
        tok.vocab_size() > 4 && tok.vocab_size() <= 120,
        "{}",
        tok.vocab_size()
    );
    let specials = [tok.bos_id(), tok.pad_id(), tok.eos_id(), tok.unk_id()];
    for t in &texts {
        let ids = tok.encode(t);
        assert!(
            !ids.is_empty() && ids.iter().all(|i| !specials.contains(i)),
            "{t}: {ids:?}"
        );
        assert!(ids.iter().all(|&i| (i as usize) < tok.vocab_size()));
        assert_eq!(&tok.decode(&ids), t);
    }
    // Subwords generalise to unseen word combinations; unseen characters become <unk>.
    assert_eq!(
        tok.decode(&tok.encode("Wir öffnen das Haus heute.")),
        "Wir öffnen das Haus heute."
    );
    assert!(tok.encode("Ωμέγα").contains(&tok.unk_id()));
    // NFKC and SentencePiece-style whitespace handling.
    assert_eq!(
        tok.encode("Ich  sehe\u{00a0}das Haus. "),
        tok.encode("Ich sehe das Haus.")
    );
    // Specials in id lists are dropped when decoding.
    let mut ids = vec![tok.bos_id()];
    ids.extend(tok.encode("Du magst die Tür."));
    ids.push(tok.eos_id());
    assert_eq!(tok.decode(&ids), "Du magst die Tür.");
    // Word-initial pieces: as many in a sentence as it has words; no special is one.
    let starts = tok.word_starts();
    assert_eq!(starts.len(), tok.vocab_size());
    assert!(specials.iter().all(|&i| !starts[i as usize]));
    for t in &texts {
        let words = tok
            .encode(t)
            .iter()
            .filter(|&&i| starts[i as usize])
            .count();
        assert_eq!(
            words,
            t.split_whitespace().count(),
            "{t}: {:?}",
            tok.pieces(t)
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spm.json");
    tok.save(&path).unwrap();
    let back = Tokenizer::load(&path).unwrap();
    assert_eq!(back.vocab_size(), tok.vocab_size());
    for t in &texts {
        assert_eq!(back.encode(t), tok.encode(t));
    }
}

#[test]
fn training_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let texts = corpus();
    let saved: Vec<String> = (0..4)
        .map(|i| {
            let path = dir.path().join(format!("t{i}.json"));
            Tokenizer::train(&texts, 60).unwrap().save(&path).unwrap();
            std::fs::read_to_string(&path).unwrap()
        })
        .collect();
    assert!(
        saved.iter().all(|s| s == &saved[0]),
        "the same texts give the same model"
    );
}

#[test]
fn training_rejects_impossible_requests() {
    assert!(
        Tokenizer::train(&corpus(), 4).is_err(),
        "no room beside the specials"
    );
    assert!(
        Tokenizer::train(&["   ".to_string()], 100).is_err(),
        "no text"
    );
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("bad.model");
    std::fs::write(&garbage, [0x0a, 0xff, 0xff, 0x01]).unwrap();
    let msg = Tokenizer::load(&garbage).unwrap_err().to_string();
    assert!(
        msg.contains("bad.model") && msg.contains("SentencePiece"),
        "{msg}"
    );
    let json = dir.path().join("bad.json");
    std::fs::write(&json, "{\"not\": \"a tokenizer\"}").unwrap();
    assert!(Tokenizer::load(&json)
        .unwrap_err()
        .to_string()
        .contains("bad.json"));
    let missing = dir.path().join("none.model");
    assert!(Tokenizer::load(&missing)
        .unwrap_err()
        .to_string()
        .contains("none.model"));
}

/// Checks `tok` against SentencePiece's own output recorded in `expected` (JSON as written by
/// make_spm_fixture.py).
fn check_against_sentencepiece(tok: &Tokenizer, expected: &serde_json::Value) {
    let meta = &expected["meta"];
    assert_eq!(tok.bos_id() as u64, meta["bos"].as_u64().unwrap());
    assert_eq!(tok.eos_id() as u64, meta["eos"].as_u64().unwrap());
    assert_eq!(tok.unk_id() as u64, meta["unk"].as_u64().unwrap());
    for case in expected["cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let ids: Vec<u32> = case["ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(
            tok.encode(text),
            ids,
            "{text:?}: pieces {:?} vs {}",
            tok.pieces(text),
            case["pieces"]
        );
        if !ids.contains(&tok.unk_id()) {
            assert_eq!(
                tok.decode(&ids),
                case["decoded"].as_str().unwrap(),
                "{text:?}"
            );
        }
    }
}

#[test]
fn reads_a_fairseq_style_sentencepiece_model() {
    let tok = Tokenizer::load(&util::fixture("spm_unigram.model")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(util::fixture("spm_expected.json")).unwrap())
            .unwrap();
    assert_eq!(
        tok.vocab_size() as u64,
        expected["meta"]["vocab_size"].as_u64().unwrap()
    );
    assert_eq!(tok.pad_id(), 1);
    check_against_sentencepiece(&tok, &expected);
}

/// With Python's sentencepiece installed: a model with SentencePiece's defaults (nmt_nfkc
/// normaliser, no padding piece) trained here, compared on tricky text. Skipped otherwise.
#[test]
fn matches_sentencepiece_defaults_when_python_has_it() {
    let has_spm = Command::new("python3")
        .args(["-c", "import sentencepiece"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_spm {
        eprintln!("skipped: python3 with sentencepiece is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("train.txt"),
        corpus().join("\n") + "\nＦｕｌｌｗｉｄｔｈ ﬁnden ½ Maß.\n",
    )
    .unwrap();
    let script = r#"
import json, sys, sentencepiece as spm
d = sys.argv[1]
spm.SentencePieceTrainer.train(input=d + "/train.txt", model_prefix=d + "/m", vocab_size=55, hard_vocab_limit=False,
                               model_type="unigram", num_threads=1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=d + "/m.model")
texts = ["Ich  sehe das Haus.", "Ｄｕ ﬁndest ½ Buch!", "  Wir mögen   die Straße  ", "Er sieht ⅞ Ω."]
cases = [{"text": t, "ids": sp.encode(t), "pieces": sp.encode(t, out_type=str), "decoded": sp.decode(sp.encode(t))} for t in texts]
meta = {"vocab_size": sp.get_piece_size(), "bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id(), "unk": sp.unk_id()}
json.dump({"meta": meta, "cases": cases}, open(d + "/expected.json", "w"))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tok = Tokenizer::load(&d.join("m.model")).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("expected.json")).unwrap()).unwrap();
    assert_eq!(expected["meta"]["pad"].as_i64(), Some(-1));
    let n = expected["meta"]["vocab_size"].as_u64().unwrap() as u32;
    assert_eq!(tok.pad_id(), n, "a missing <pad> is appended");
    check_against_sentencepiece(&tok, &expected);
    assert!(Path::new(&d.join("m.model")).exists());
}
