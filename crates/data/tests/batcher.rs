//! Batching and batch loading: frame-bounded, length-bucketed batches, each utterance once per
//! epoch, deterministic per seed, different across epochs, dev in order; padded features with
//! utterance CMVN, SpecAugment only when asked, tokenised targets.

#[path = "data/util.rs"]
mod util;

use std::collections::HashSet;

use data::batcher::make_batches;
use data::{BatchConfig, Dataset, DatasetOptions, TargetSide, Tokenizer};
use fbank::SpecAugment;

fn frames_of(n: usize) -> Vec<usize> {
    // Lengths 1..=700, with ties, in no particular order.
    (0..n).map(|i| 1 + (i * 7919 + 13) % 700).collect()
}

fn train_cfg(seed: u64) -> BatchConfig {
    BatchConfig {
        max_frames: 4000,
        max_sentences: Some(16),
        shuffle: true,
        seed,
        min_frames: 5,
        max_utt_frames: 650,
    }
}

#[test]
fn batches_respect_the_bounds_and_hold_every_utterance_once() {
    let frames = frames_of(500);
    let cfg = train_cfg(7);
    let kept: HashSet<usize> = (0..frames.len())
        .filter(|&i| cfg.keeps(frames[i]))
        .collect();
    assert!(
        kept.len() < frames.len(),
        "the fixture has utterances out of bounds"
    );
    for epoch in 0..3 {
        let batches = make_batches(&frames, &cfg, epoch);
        let mut seen = HashSet::new();
        for b in &batches {
            assert!(!b.is_empty() && b.len() <= 16);
            let longest = b.iter().map(|&i| frames[i]).max().unwrap();
            assert!(
                longest * b.len() <= cfg.max_frames,
                "{} x {}",
                b.len(),
                longest
            );
            for &i in b {
                assert!(seen.insert(i), "utterance {i} twice in epoch {epoch}");
            }
        }
        assert_eq!(seen, kept, "every kept utterance exactly once");
    }
}

#[test]
fn batches_are_length_bucketed() {
    let frames = frames_of(500);
    let batches = make_batches(&frames, &train_cfg(3), 0);
    let padded: usize = batches
        .iter()
        .map(|b| b.len() * b.iter().map(|&i| frames[i]).max().unwrap())
        .sum();
    let real: usize = batches.iter().flatten().map(|&i| frames[i]).sum();
    assert!(
        (padded as f64) < 1.1 * real as f64,
        "padding {padded} for {real} frames"
    );
}

#[test]
fn shuffling_is_deterministic_per_seed_and_changes_across_epochs() {
    let frames = frames_of(300);
    let cfg = train_cfg(11);
    assert_eq!(
        make_batches(&frames, &cfg, 4),
        make_batches(&frames, &cfg, 4)
    );
    assert_ne!(
        make_batches(&frames, &cfg, 4),
        make_batches(&frames, &cfg, 5)
    );
    assert_ne!(
        make_batches(&frames, &cfg, 4),
        make_batches(&frames, &train_cfg(12), 4)
    );
}

#[test]
fn evaluation_batches_keep_manifest_order() {
    let frames = frames_of(200);
    let cfg = BatchConfig {
        shuffle: false,
        ..train_cfg(1)
    };
    let batches = make_batches(&frames, &cfg, 9);
    assert_eq!(
        batches,
        make_batches(&frames, &cfg, 0),
        "no epoch dependence"
    );
    let order: Vec<usize> = batches.into_iter().flatten().collect();
    let expected: Vec<usize> = (0..frames.len())
        .filter(|&i| cfg.keeps(frames[i]))
        .collect();
    assert_eq!(order, expected);
}

#[test]
fn load_batch_pads_normalises_augments_on_request_and_tokenises() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = util::small_corpus(dir.path(), 12);
    let opts = DatasetOptions {
        progress: false,
        ..DatasetOptions::default()
    };
    let ds = Dataset::open(&manifest, &dir.path().join("cache"), &opts).unwrap();
    let tok = Tokenizer::train(&ds.texts(TargetSide::Translation).unwrap(), 60).unwrap();
    let cfg = BatchConfig {
        max_frames: 1000,
        ..BatchConfig::default()
    };
    let batches = ds.batches(&cfg, 0);
    assert_eq!(batches.iter().map(Vec::len).sum::<usize>(), ds.len());
    let idx = batches.iter().max_by_key(|b| b.len()).unwrap().clone();
    assert!(idx.len() > 1);

    let batch = ds
        .load_batch(&idx, &tok, TargetSide::Translation, None)
        .unwrap();
    let (b, t, d) = (batch.len(), batch.max_frames, batch.feat_dim);
    assert_eq!((b, d), (idx.len(), 80));
    assert_eq!(batch.features.len(), b * t * d);
    assert_eq!(t, idx.iter().map(|&i| ds.frames(i)).max().unwrap());
    for (row, &i) in idx.iter().enumerate() {
        assert_eq!(batch.ids[row], ds.id(i));
        assert_eq!(batch.frames[row], ds.frames(i));
        let feats = ds.features(i).unwrap();
        let start = row * t * d;
        assert_eq!(
            &batch.features[start..start + feats.data.len()],
            &feats.data[..]
        );
        assert!(batch.features[start + feats.data.len()..start + t * d]
            .iter()
            .all(|&x| x == 0.0));
        // Utterance CMVN: every dimension has zero mean over the real frames.
        let mean0: f32 =
            (0..feats.frames).map(|f| feats.row(f)[0]).sum::<f32>() / feats.frames as f32;
        assert!(mean0.abs() < 1e-4);
        assert_eq!(batch.target_texts[row], ds.target_text(i));
        assert_eq!(batch.targets[row], tok.encode(ds.target_text(i)));
        assert_eq!(tok.decode(&batch.targets[row]), ds.target_text(i));
    }

    // SpecAugment only when asked, and the same masks for the same seed.
    let spec = SpecAugment {
        mask_value: 0.0,
        ..SpecAugment::default()
    };
    let a = ds
        .load_batch(&idx, &tok, TargetSide::Translation, Some((&spec, 5)))
        .unwrap();
    let a2 = ds
        .load_batch(&idx, &tok, TargetSide::Translation, Some((&spec, 5)))
        .unwrap();
    let a3 = ds
        .load_batch(&idx, &tok, TargetSide::Translation, Some((&spec, 6)))
        .unwrap();
    assert_eq!(a.features, a2.features);
    assert_ne!(a.features, batch.features);
    assert_ne!(a.features, a3.features);
    let zeros = |v: &[f32]| v.iter().filter(|&&x| x == 0.0).count();
    assert!(
        zeros(&a.features) > zeros(&batch.features),
        "masks write the mask value"
    );
    assert_eq!(
        (a.targets.clone(), a.frames.clone()),
        (batch.targets.clone(), batch.frames.clone())
    );

    // Transcripts as targets (ASR).
    let asr = ds
        .load_batch(&idx, &tok, TargetSide::Transcript, None)
        .unwrap();
    assert_eq!(asr.target_texts[0], ds.source_text(idx[0]).unwrap());
    assert_eq!(asr.features, batch.features);
}

#[test]
fn transcripts_are_required_for_asr_targets() {
    let dir = tempfile::tempdir().unwrap();
    util::write_wav(&dir.path().join("a.wav"), &util::signal(3200, 1), 16_000);
    let manifest = dir.path().join("m.tsv");
    std::fs::write(
        &manifest,
        "id\taudio\tn_frames\ttgt_text\na\ta.wav\t20\tNur Deutsch.\n",
    )
    .unwrap();
    let opts = DatasetOptions {
        progress: false,
        ..DatasetOptions::default()
    };
    let ds = Dataset::open(&manifest, &dir.path().join("cache"), &opts).unwrap();
    let tok = Tokenizer::train(&["Nur Deutsch.".to_string()], 30).unwrap();
    let err = ds
        .load_batch(&[0], &tok, TargetSide::Transcript, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("m.tsv") && err.contains("src_text"), "{err}");
    assert!(ds.texts(TargetSide::Transcript).is_err());
}
