//! Teacher-forced log-probabilities equal step-by-step decoding (<= 1e-4,
//! `SpeechModel::incremental_mismatch`), for every attention kind and both decoder layouts, on
//! padded batches with different prefix and target lengths.

mod common;

use burn::prelude::*;
use common::*;
use st_model::SpeechModel;

#[test]
fn teacher_forcing_equals_incremental_decoding() {
    for config in all_configs() {
        let name = format!(
            "{} s={} {:?}",
            config.decoder.attention.kind,
            config.down_rate(),
            config.decoder.style
        );
        let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
        let frames = [37, 21, 29];
        let lengths = [6, 3, 5];
        let feats = features(&frames, config.input_dim, 7);
        let (rows, _) = tokens(&lengths, 6, config.vocab_size, 9);
        let real: Vec<Vec<i64>> = rows
            .iter()
            .zip(lengths)
            .map(|(r, n)| r[..n].to_vec())
            .collect();
        let d = model
            .incremental_mismatch(feats.clone(), &frames, &real)
            .unwrap();
        assert!(d <= 1e-4, "{name}: {d}");
        let state = model
            .prefill(&model.encode(feats, &frames).unwrap())
            .unwrap();
        assert!(model.cache_bytes(&state) > 0);
    }
}

#[test]
fn a_row_decodes_the_same_alone_or_in_a_padded_batch() {
    for config in all_configs() {
        let name = format!(
            "{} s={} {:?}",
            config.decoder.attention.kind,
            config.down_rate(),
            config.decoder.style
        );
        let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
        let batch = features(&[41, 23], config.input_dim, 3);
        let alone = batch.clone().slice(s![1..2, 0..23, ..]);
        let (_, toks) = tokens(&[5, 5], 5, config.vocab_size, 4);
        let in_batch = model
            .forward(batch, &[41, 23], toks.clone(), &[5, 5])
            .unwrap()
            .logits
            .slice(s![1..2, .., ..]);
        let single = model
            .forward(alone, &[23], toks.slice(s![1..2, ..]), &[5])
            .unwrap()
            .logits;
        let d: f32 = (in_batch - single).abs().max().into_scalar();
        assert!(d <= 1e-4, "{name}: {d}");
    }
}

#[test]
fn bad_inputs_are_errors() {
    let config = tiny(mtla::AttentionKind::Mtla, 2, st_model::DecoderStyle::Prefix);
    let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
    let feats = features(&[20, 20], config.input_dim, 1);
    let (_, toks) = tokens(&[3, 3], 3, config.vocab_size, 2);
    let err = model
        .forward(feats.clone(), &[20], toks.clone(), &[3, 3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("features must be"), "{err}");
    let err = model
        .forward(feats.clone(), &[20, 20], toks, &[3, 4])
        .unwrap_err()
        .to_string();
    assert!(err.contains("real tokens per row"), "{err}");
    let encoded = model.encode(feats, &[20, 20]).unwrap();
    let mut state = model.prefill(&encoded).unwrap();
    let err = model
        .step(
            Tensor::<B, 1, Int>::from_ints([0, 0, 0], &Default::default()),
            &mut state,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("3 tokens for a decoder state of 2 rows"),
        "{err}"
    );
}
