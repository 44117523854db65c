//! `mtla-st compare`: every variant trains once per seed, `--train-only` stops before decoding,
//! and a later comparison over the same folder reuses the finished runs (no update is trained
//! again) and tables them with their test scores.

#[path = "support/run.rs"]
mod run_util;

use burn::backend::{Autodiff, Flex};
use learner::compare::{compare, train_variants};
use run_util::{repo, tiny_config};

type B = Autodiff<Flex>;

#[test]
fn trained_runs_are_reused_by_the_comparison() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut c = tiny_config(&d.join("cache"), 0.0);
    c.train.max_updates = 2;
    c.train.validate_every_updates = 2;
    c.eval.beam = 2;
    c.eval.max_len_b = 5;
    // Four test utterances are enough to decode and score.
    let demo = repo().join("data/demo");
    let test: String = std::fs::read_to_string(demo.join("test.tsv"))
        .unwrap()
        .lines()
        .take(5)
        .map(|l| l.replace("\taudio/", &format!("\t{}/audio/", demo.display())) + "\n")
        .collect();
    std::fs::write(d.join("test.tsv"), test).unwrap();
    c.data.test = Some(d.join("test.tsv"));
    let variants = ["mha".to_string(), "mtla2".to_string()];
    let out = d.join("cmp");

    let runs = train_variants::<B>(&c, &variants, &[3, 4], &out, Default::default()).unwrap();
    let names: Vec<String> = runs
        .iter()
        .map(|r| r.dir.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        names,
        ["mha-seed3", "mtla2-seed3", "mha-seed4", "mtla2-seed4"]
    );
    for r in &runs {
        assert!(r.dir.join("checkpoints/u00000002.safetensors").is_file());
        assert!(!r.dir.join("eval-test").exists(), "--train-only decoded");
    }
    let logged = |r: &learner::compare::VariantRun| {
        std::fs::read_to_string(r.dir.join("train_log.jsonl")).unwrap()
    };
    let logs: Vec<String> = runs.iter().map(logged).collect();

    let comparison = compare::<B>(&c, &variants, &[3, 4], &out, 1, Default::default()).unwrap();
    assert_eq!(comparison.rows.len(), 4);
    for (r, log) in runs.iter().zip(&logs) {
        assert_eq!(&logged(r), log, "{}: trained again", r.dir.display());
        assert!(r.dir.join("eval-test/report.json").is_file());
    }
    for row in &comparison.rows {
        assert_eq!(row.train_updates, 2);
        assert_eq!(row.eval.efficiency.sentences, 4);
    }
    let table = comparison.table();
    assert!(table.contains("mtla2") && table.contains("mha"), "{table}");
    assert!(table.contains("the attention decoder alone"), "{table}");

    // Decoding settings come from the comparison's config, not the runs' stored ones: a finished
    // run (here one with a CTC head) is decoded again, jointly with CTC, into a folder of its own.
    c.model.ctc_weight = 0.3;
    c.train.max_updates = 1;
    let variants = ["mtla2".to_string()];
    let plain = compare::<B>(&c, &variants, &[5], &out, 1, Default::default()).unwrap();
    assert_eq!(plain.rows[0].eval.efficiency.ctc_weight, 0.0);
    let log = std::fs::read_to_string(out.join("mtla2/train_log.jsonl")).unwrap();
    c.eval.ctc_weight = 0.5;
    let joint = compare::<B>(&c, &variants, &[5], &out, 1, Default::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(out.join("mtla2/train_log.jsonl")).unwrap(),
        log
    );
    assert_eq!(joint.rows[0].eval.efficiency.ctc_weight, 0.5);
    assert!(out.join("mtla2/eval-test/report.json").is_file());
    assert!(out.join("mtla2/eval-test-ctc0.5/report.json").is_file());
    assert!(joint
        .table()
        .contains("jointly with the CTC head at weight 0.5"));
}
