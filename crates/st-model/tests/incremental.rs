//! Teacher-forced log-probabilities equal step-by-step decoding (<= 1e-4), for every attention
//! kind and both decoder layouts, on padded batches with different prefix lengths.

mod common;

use burn::prelude::*;
use burn::tensor::activation::log_softmax;
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
        let (rows, toks) = tokens(&lengths, 6, config.vocab_size, 9);
        let out = model
            .forward(feats.clone(), &frames, toks, &lengths)
            .unwrap();
        let teacher = log_softmax(out.logits, 2);
        let encoded = model.encode(feats, &frames).unwrap();
        let mut state = model.prefill(&encoded).unwrap();
        for i in 0..6 {
            let step_tokens: Vec<i64> = rows.iter().map(|r| r[i]).collect();
            let step_tokens =
                Tensor::<B, 1, Int>::from_ints(step_tokens.as_slice(), &Default::default());
            let logp = model.step(step_tokens, &mut state).unwrap();
            for (b, &n) in lengths.iter().enumerate() {
                if i >= n {
                    continue;
                }
                let want = teacher
                    .clone()
                    .slice(s![b..b + 1, i..i + 1, ..])
                    .reshape([1, config.vocab_size]);
                let got = logp.clone().slice(s![b..b + 1, ..]);
                let d: f32 = (got - want).abs().max().into_scalar();
                assert!(d <= 1e-4, "{name}: row {b} step {i}: {d}");
            }
        }
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
