//! The committed demo slice (data/demo) is usable as it is: every row decodes, its frame counts
//! match the manifest, a 1000-piece tokenizer trained on the training side covers dev and test,
//! and the loader benchmark runs on it.

use std::path::{Path, PathBuf};

use data::{
    bench_loader, BadRows, BatchConfig, Dataset, DatasetOptions, LoaderBenchOptions, Manifest,
    TargetSide, Tokenizer,
};

fn demo(split: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../data/demo/{split}.tsv"))
}

fn quiet() -> DatasetOptions {
    DatasetOptions {
        bad_rows: BadRows::Fail,
        progress: false,
        ..DatasetOptions::default()
    }
}

#[test]
fn demo_slice_rows_all_load_with_their_stated_lengths() {
    let cache = tempfile::tempdir().unwrap();
    let train = Manifest::read(&demo("train"), BadRows::Fail).unwrap();
    assert_eq!(train.rows.len(), 400);
    let texts: Vec<String> = train.rows.iter().map(|r| r.tgt_text.clone()).collect();
    let tok = Tokenizer::train(&texts, 1000).unwrap();
    for split in ["dev", "test"] {
        let manifest = Manifest::read(&demo(split), BadRows::Fail).unwrap();
        let ds = Dataset::open(&demo(split), cache.path(), &quiet()).unwrap();
        assert_eq!((ds.len(), manifest.rows.len()), (50, 50));
        let (mut pieces, mut unknown) = (0, 0);
        for (i, row) in manifest.rows.iter().enumerate() {
            assert_eq!(ds.id(i), row.id);
            assert_eq!(ds.frames(i), row.n_frames, "{}", row.id);
            assert!(ds.source_text(i).is_some_and(|s| !s.is_empty()));
            let ids = tok.encode(ds.target_text(i));
            pieces += ids.len();
            unknown += ids.iter().filter(|&&t| t == tok.unk_id()).count();
        }
        assert!(
            unknown * 100 <= pieces,
            "{split}: {unknown} of {pieces} pieces unknown"
        );
    }
}

#[test]
fn loader_benchmark_runs_on_the_demo_slice() {
    let cache = tempfile::tempdir().unwrap();
    let opts = LoaderBenchOptions {
        dataset: quiet(),
        batch: BatchConfig {
            max_frames: 4000,
            ..BatchConfig::default()
        },
        epochs: 2,
        tokenizer: None,
        vocab_size: 300,
        target: TargetSide::Transcript,
        augment: true,
        threads: 1,
    };
    let report = bench_loader(&demo("dev"), cache.path(), &opts).unwrap();
    assert_eq!((report.utterances, report.threads), (50, 1));
    let frames: usize = Manifest::read(&demo("dev"), BadRows::Fail)
        .unwrap()
        .rows
        .iter()
        .map(|r| r.n_frames)
        .sum();
    let measured = report.frames_per_second / report.utterances_per_second;
    assert!(
        (measured - frames as f64 / 50.0).abs() < 1e-6,
        "mean frames per utterance"
    );
    assert!(report.padding >= 1.0 && report.batches >= 50 * 200 / 4000);
    assert!(report.to_string().contains("utterances/s"));
}
