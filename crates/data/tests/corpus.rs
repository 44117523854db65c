//! The offline corpus recipe: `.mo` catalogs (written here, and real ones when the system has
//! them), sentence pairs from German catalogs, the text filters and splits, selection, and one
//! synthesised utterance when the TTS tools are installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use data::audio::{decode, Decoded};
use data::corpus::gettext::{find_catalogs, gettext_pairs};
use data::corpus::mo::{parse_mo, read_mo, MoEntry};
use data::corpus::select::{select, Selection};
use data::corpus::text::{build_text, normalize_en, split_of, Split};
use data::corpus::tts::{check_tools, synthesize, Engine, Voice, FREETTS_JAR, RAW};
use data::corpus::RawPair;
use data::corpus::{batch, festival, freetts};
use data::corpus::{lm_text, LmLanguage};
use fbank::WavOptions;

/// A `.mo` file holding `(original, translation)` pairs (context and plural forms already joined
/// with `\x04` and `\0`), in either byte order.
fn mo_bytes(entries: &[(&str, &str)], big_endian: bool) -> Vec<u8> {
    let mut entries = entries.to_vec();
    entries.sort();
    let n = entries.len() as u32;
    let word = |v: u32| {
        if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    };
    let (originals, translations) = (28, 28 + 8 * n);
    let mut strings_at = 28 + 16 * n;
    let mut tables = Vec::new();
    let mut strings = Vec::new();
    for column in 0..2 {
        for (o, t) in &entries {
            let s = if column == 0 { o } else { t };
            tables.extend_from_slice(&word(s.len() as u32));
            tables.extend_from_slice(&word(strings_at));
            strings.extend_from_slice(s.as_bytes());
            strings.push(0);
            strings_at += s.len() as u32 + 1;
        }
    }
    let mut out = Vec::new();
    for v in [0x950412de, 0, n, originals, translations, 0, 28 + 16 * n] {
        out.extend_from_slice(&word(v));
    }
    out.extend_from_slice(&tables);
    out.extend_from_slice(&strings);
    out
}

const HEADER: (&str, &str) = ("", "Content-Type: text/plain; charset=UTF-8\n");

#[test]
fn mo_catalogs_parse_in_both_byte_orders() {
    let entries = [
        HEADER,
        ("Open", "Öffnen"),
        ("menu\u{4}Close", "Schließen"),
        ("One file\u{0}%d files", "Eine Datei\u{0}%d Dateien"),
    ];
    for big in [false, true] {
        let parsed = parse_mo(&mo_bytes(&entries, big), Path::new("x.mo")).unwrap();
        assert_eq!(parsed.len(), 4);
        assert_eq!(parsed[0].msgid, "");
        assert!(parsed[0].msgstr[0].contains("charset=UTF-8"));
        let open = parsed.iter().find(|e| e.msgid == "Open").unwrap();
        assert_eq!(open.msgstr, ["Öffnen"]);
        let close = parsed.iter().find(|e| e.msgid == "Close").unwrap();
        assert_eq!(close.context.as_deref(), Some("menu"));
        let plural = parsed.iter().find(|e| e.msgid == "One file").unwrap();
        assert_eq!(
            plural,
            &MoEntry {
                context: None,
                msgid: "One file".into(),
                msgid_plural: Some("%d files".into()),
                msgstr: vec!["Eine Datei".into(), "%d Dateien".into()],
            }
        );
    }
}

#[test]
fn corrupt_mo_files_are_errors_naming_the_file() {
    let good = mo_bytes(&[HEADER, ("Open", "Öffnen")], false);
    let msg = parse_mo(&good[..30], Path::new("cut.mo"))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("cut.mo") && msg.contains(".mo catalog"),
        "{msg}"
    );
    let msg = parse_mo(b"not a catalog at all, really", Path::new("text.mo"))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("text.mo") && msg.contains("magic"), "{msg}");
    let mut bad_offset = good.clone();
    bad_offset[28 + 4..28 + 8].copy_from_slice(&9_999u32.to_le_bytes());
    assert!(parse_mo(&bad_offset, Path::new("off.mo")).is_err());
}

/// Real catalogs shipped with the system (e.g. `/usr/share/locale/de/LC_MESSAGES`), compared
/// with gettext's own `msgunfmt` when it is installed. Skipped when there is none.
#[test]
fn real_catalogs_parse_like_msgunfmt() {
    let dir = Path::new("/usr/share/locale/de/LC_MESSAGES");
    let mut catalogs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    catalogs.retain(|p| p.extension().is_some_and(|e| e == "mo"));
    catalogs.sort();
    if catalogs.is_empty() {
        eprintln!("skipped: no German catalogs in {}", dir.display());
        return;
    }
    for path in catalogs.iter().take(5) {
        let entries = read_mo(path).unwrap();
        assert!(!entries.is_empty(), "{}", path.display());
        let Ok(out) = Command::new("msgunfmt").arg(path).output() else {
            eprintln!("msgunfmt not installed: parsed {} only", path.display());
            continue;
        };
        let po = String::from_utf8_lossy(&out.stdout);
        let msgids = po.lines().filter(|l| l.starts_with("msgid ")).count();
        assert_eq!(entries.len(), msgids, "{}", path.display());
        let plurals = po
            .lines()
            .filter(|l| l.starts_with("msgid_plural "))
            .count();
        assert_eq!(
            entries.iter().filter(|e| e.msgid_plural.is_some()).count(),
            plurals
        );
        let contexts = po.lines().filter(|l| l.starts_with("msgctxt ")).count();
        assert_eq!(
            entries.iter().filter(|e| e.context.is_some()).count(),
            contexts
        );
    }
}

#[test]
fn german_catalogs_give_filtered_deduplicated_pairs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |rel: &str, entries: &[(&str, &str)]| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, mo_bytes(entries, false)).unwrap();
    };
    write(
        "usr/share/locale/de/LC_MESSAGES/app.mo",
        &[
            HEADER,
            (
                "Open the file in a new window.",
                "Die Datei in einem neuen Fenster öffnen.",
            ),
            (
                "_Save the current document now.",
                "Das aktuelle Dokument jetzt _speichern.",
            ),
            (
                "Cannot open %s for reading.",
                "%s kann nicht gelesen werden.",
            ),
            (
                "menu\u{4}Close all open windows now.",
                "Alle offenen Fenster jetzt schließen.",
            ),
            (
                "One file was deleted.\u{0}%d files were deleted.",
                "Eine Datei wurde gelöscht.\u{0}%d Dateien.",
            ),
            ("Not translated yet here.", ""),
        ],
    );
    write(
        "usr/share/locale/de_DE/LC_MESSAGES/other.mo",
        &[
            HEADER,
            (
                "Open the file in a new window.",
                "Datei in neuem Fenster öffnen.",
            ),
        ],
    );
    write(
        "usr/share/locale/de_CH/LC_MESSAGES/app.mo",
        &[HEADER, ("Swiss only here.", "Nur Schweiz hier.")],
    );
    write(
        "usr/share/game/po/game-de.mo",
        &[
            HEADER,
            ("The dragon is awake now.", "Der Drache ist jetzt wach."),
        ],
    );
    let catalogs = find_catalogs(root).unwrap();
    assert_eq!(catalogs.len(), 3, "{catalogs:?}");
    let (pairs, stats) = gettext_pairs(root).unwrap();
    let en: Vec<&str> = pairs.iter().map(|p| p.en.as_str()).collect();
    assert!(
        en.contains(&"Save the current document now."),
        "mnemonic removed: {en:?}"
    );
    assert!(
        en.contains(&"Close all open windows now."),
        "context stripped"
    );
    assert!(en.contains(&"One file was deleted."), "plural: singular");
    assert!(en.contains(&"The dragon is awake now."));
    assert!(!en.iter().any(|e| e.contains("%s") || e.contains("Swiss")));
    assert_eq!(
        en.iter().filter(|e| e.starts_with("Open the file")).count(),
        1
    );
    assert_eq!(
        (stats.catalogs, stats.duplicates, stats.rejected_en),
        (3, 1, 1)
    );
    let save = pairs.iter().find(|p| p.en.starts_with("Save")).unwrap();
    assert_eq!(save.de, "Das aktuelle Dokument jetzt speichern.");
    assert_eq!(save.source, "app.mo");
}

#[test]
fn language_model_text_holds_every_train_sentence_and_no_held_out_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // 120 sentences: translated or not, and one multi-paragraph message of two of them.
    let sentences: Vec<String> = (0..120)
        .map(|i| format!("The old cat sat on the mat {}.", words(i)))
        .collect();
    let mut entries: Vec<(String, String)> = sentences
        .iter()
        .enumerate()
        .map(|(i, en)| {
            let de = match i % 3 {
                0 => String::new(),
                _ => format!("Die alte Katze saß auf der Matte {}.", words(i)),
            };
            (en.clone(), de)
        })
        .collect();
    entries.push((
        "The first paragraph is here now.\n\nThe second paragraph is here now.".into(),
        String::new(),
    ));
    entries.push(("Cannot open %s for reading now.".into(), String::new()));
    let entries: Vec<(&str, &str)> = std::iter::once(HEADER)
        .chain(entries.iter().map(|(a, b)| (a.as_str(), b.as_str())))
        .collect();
    let catalog = root.join("usr/share/locale/de/LC_MESSAGES/app.mo");
    std::fs::create_dir_all(catalog.parent().unwrap()).unwrap();
    std::fs::write(&catalog, mo_bytes(&entries, false)).unwrap();

    let (text, stats) = lm_text(root, LmLanguage::English).unwrap();
    let train = |s: &str| split_of(&normalize_en(s)) == Split::Train;
    let expected: Vec<&str> = sentences
        .iter()
        .map(String::as_str)
        .chain([
            "The first paragraph is here now.",
            "The second paragraph is here now.",
        ])
        .filter(|s| train(s))
        .collect();
    let held_out = sentences.len() + 2 - expected.len();
    assert!(held_out > 0, "the fixture has dev/test sentences");
    let mut got: Vec<&str> = text.iter().map(String::as_str).collect();
    got.sort();
    let mut want = expected.clone();
    want.sort();
    assert_eq!(
        got, want,
        "untranslated ones in, dev/test and format strings out"
    );
    assert_eq!((stats.kept, stats.held_out), (expected.len(), held_out));

    // German: the translations of the translated train-split sentences, nothing else.
    let (german, stats) = lm_text(root, LmLanguage::German).unwrap();
    let mut want: Vec<String> = (0..120)
        .filter(|i| i % 3 != 0 && train(&sentences[*i]))
        .map(|i| format!("Die alte Katze saß auf der Matte {}.", words(i)))
        .collect();
    want.sort();
    let mut got = german.clone();
    got.sort();
    assert!(!want.is_empty());
    assert_eq!(got, want, "translated train pairs only, their German side");
    assert_eq!(stats.read, 80, "the 80 translated messages are the pairs");
}

#[test]
fn text_splits_are_fixed_by_hash_and_selection_is_nested() {
    let raw: Vec<RawPair> = (0..400)
        .map(|i| {
            // Every fourth sentence has a word of its own.
            let letters: String = [i / 26, i % 26]
                .iter()
                .map(|&k| (b'a' + k as u8) as char)
                .collect();
            let rare = if i % 4 == 0 {
                format!(" zork{letters}")
            } else {
                String::new()
            };
            RawPair {
                en: format!(
                    "The {} cat sat on mat{rare} {}.",
                    ["red", "big", "old"][i % 3],
                    words(i)
                ),
                de: format!("Die Katze saß auf Matte{rare} {}.", words(i)),
                source: if i % 2 == 0 {
                    "ding".into()
                } else {
                    "x.mo".into()
                },
            }
        })
        .collect();
    let (pairs, stats) = build_text(raw.clone());
    assert_eq!((stats.input, pairs.len()), (400, 400));
    for p in &pairs {
        assert_eq!(p.split, split_of(&p.en_norm));
        assert!(p.id.starts_with("deen-") && p.id.len() == 15);
    }
    let counts = |s: Split| pairs.iter().filter(|p| p.split == s).count();
    assert!(counts(Split::Train) > 340 && counts(Split::Dev) > 0 && counts(Split::Test) > 0);
    // Rebuilding gives the same ids and splits.
    assert_eq!(build_text(raw).0, pairs);

    let sel = |n: usize, min_word_count: usize| Selection {
        train: Some(n),
        dev: Some(2),
        test: Some(2),
        min_words: 3,
        max_words: 12,
        min_word_count,
    };
    let small = select(&pairs, &sel(20, 0));
    let large = select(&pairs, &sel(60, 0));
    assert_eq!(small.len(), 24);
    assert!(
        small.iter().all(|p| large.contains(p)),
        "a larger selection contains the smaller"
    );
    assert!(small.iter().filter(|p| p.split == Split::Dev).count() == 2);
    // Frequent words only: sentences with a word of their own are left out.
    let frequent = select(&pairs, &sel(400, 2));
    assert!(!frequent.is_empty() && frequent.iter().all(|p| !p.en.contains("zork")));
    assert!(select(&pairs, &sel(400, 0))
        .iter()
        .any(|p| p.en.contains("zork")));
}

/// Two number words per index: 400 distinct combinations, each word used 40 times.
fn words(i: usize) -> String {
    const W: [&str; 20] = [
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
        "twenty",
    ];
    format!("{} {}", W[i % 20], W[(i / 20) % 20])
}

/// Short texts spoken in one festival process, when festival is installed: each output is
/// text2wave's, the batch stops at a voice festival lacks, and a finished item is not spoken
/// again.
#[test]
fn festival_batches_write_what_text2wave_writes() {
    if check_tools(&[Engine::Festival]).is_err() {
        eprintln!("skipped: festival or sox is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let texts = [
        (
            "kal_diphone",
            "The court is sitting in the old town hall today.",
        ),
        (
            "cmu_us_slt_arctic_hts",
            "Please send an e-mail by Friday. Thanks!",
        ),
        ("ked_diphone", "You run, but you shall not escape death!"),
        ("no_such_voice", "This one festival cannot speak."),
        (
            "kal_diphone",
            "Never reached: the batch stops at the error.",
        ),
    ];
    let items: Vec<batch::Item> = texts
        .iter()
        .enumerate()
        .map(|(i, (voice, text))| batch::Item {
            text,
            voice,
            tmp: dir.path().join(format!("u{i}")),
        })
        .collect();
    let result = festival::render(&items, &dir.path().join("batch"));
    assert!(result.is_err(), "the unknown voice stops festival");
    for (i, item) in items.iter().enumerate() {
        let done = item.done().exists();
        assert_eq!(done, i < 3, "item {i}: done-marker");
        if !done {
            continue;
        }
        let single = dir.path().join(format!("single{i}.wav"));
        assert_batch_output_is_the_single_runs(
            item,
            Command::new("text2wave")
                .args(["-eval", &format!("(voice_{})", item.voice), "-o"])
                .arg(&single)
                .arg(item.tmp.join(festival::TEXT)),
            &single,
        );
    }
    assert_finished_item_is_not_spoken_again(&items[0], Engine::Festival, "kal_diphone");
}

/// Texts of one sentence spoken in one FreeTTS run, when FreeTTS is installed: each output is
/// byte for byte what `-dumpAudio` writes for the text alone, a batch that FreeTTS could cut
/// into more utterances than lines or that mixes voices is refused, an interrupted batch's
/// leftovers do not spoil the next, and a finished item is not spoken again.
#[test]
fn freetts_batches_write_what_single_runs_write() {
    if check_tools(&[Engine::Freetts]).is_err() {
        eprintln!("skipped: FreeTTS (java) or sox is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let item = |i: usize, voice, text| batch::Item {
        text,
        voice,
        tmp: dir.path().join(format!("u{i}")),
    };
    let refused = [
        vec![item(0, "kevin16", "Done. Close the window.")],
        vec![
            item(0, "kevin16", "Open the file."),
            item(1, "alan", "Close the file."),
        ],
    ];
    for items in &refused {
        assert!(freetts::render(items, &dir.path().join("batch")).is_err());
        assert!(items.iter().all(|i| !i.done().exists()));
    }
    let texts = [
        "The court is sitting in the old town hall today.",
        "You run, but you shall not escape death!",
        "Enter new addresses or edit the addresses for mail merge documents.",
    ];
    let items: Vec<batch::Item> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| item(i, "kevin16", text))
        .collect();
    // An interrupted batch's output left in the work directory is not taken for this one's.
    std::fs::create_dir_all(dir.path().join("batch")).unwrap();
    std::fs::write(dir.path().join("batch").join("out3.wav"), b"stale").unwrap();
    freetts::render(&items, &dir.path().join("batch")).unwrap();
    for (i, item) in items.iter().enumerate() {
        assert!(item.done().exists(), "item {i}: done-marker");
        let single = dir.path().join(format!("single{i}.wav"));
        assert_batch_output_is_the_single_runs(
            item,
            Command::new("java")
                .args(["-jar", FREETTS_JAR, "-voice", "kevin16", "-dumpAudio"])
                .arg(&single)
                .args(["-text", item.text]),
            &single,
        );
    }
    assert_finished_item_is_not_spoken_again(&items[0], Engine::Freetts, "kevin16");
}

/// Runs `single_run` (the engine speaking `item` alone into `single`) and checks that the
/// batch's raw output for `item` is byte for byte the same.
fn assert_batch_output_is_the_single_runs(
    item: &batch::Item,
    single_run: &mut Command,
    single: &Path,
) {
    let status = single_run
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "{single_run:?}");
    assert_eq!(
        std::fs::read(item.tmp.join(RAW)).unwrap(),
        std::fs::read(single).unwrap(),
        "{:?}: the batch's output is the single run's",
        item.text
    );
}

/// A finished item is not spoken again: with its raw output replaced by junk, synthesis in its
/// voice goes straight to sox, which rejects the junk.
fn assert_finished_item_is_not_spoken_again(
    item: &batch::Item,
    engine: Engine,
    voice: &'static str,
) {
    std::fs::write(item.tmp.join(RAW), b"not a wave").unwrap();
    let voice = Voice::Recorded {
        engine,
        voice,
        cents: 0,
        tempo: 1.0,
    };
    let dst = item.tmp.with_extension("flac");
    let err = synthesize(item.text, &voice, &dst, &item.tmp, true, 0).unwrap_err();
    assert!(err.to_string().contains("sox"), "{err}");
}

/// One utterance through flite and sox, when they are installed.
#[test]
fn synthesises_speech_when_the_tools_are_installed() {
    if check_tools(&[Engine::Flite]).is_err() {
        eprintln!("skipped: flite or sox is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for ext in ["flac", "ogg"] {
        let dst = dir.path().join(format!("u.{ext}"));
        let voice = Voice::pick("deen-0000000001", &[Engine::Flite]);
        synthesize(
            "Good morning, how are you?",
            &voice,
            &dst,
            dir.path(),
            true,
            0,
        )
        .unwrap();
        let Decoded::Wave(w) = decode(&data::AudioRef::file(&dst), &WavOptions::default()).unwrap()
        else {
            panic!("audio")
        };
        assert_eq!(w.sample_rate, 16_000);
        assert!(
            w.duration_s() > 0.8 && w.duration_s() < 5.0,
            "{}",
            w.duration_s()
        );
    }
}
