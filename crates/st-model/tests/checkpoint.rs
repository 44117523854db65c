//! Checkpoints round-trip, load atomically, name the first mismatching parameter, load from
//! f16 or 8-bit files (shipped models) into f32, and can initialise an encoder from another
//! model.

mod common;

use burn::prelude::Tensor;
use common::*;
use mtla::AttentionKind;
use st_model::checkpoint::{init, load, save, stored_config};
use st_model::{DecoderStyle, ModelConfig, SpeechModel};

/// The logits of two models of `config` on the same random utterance and target prefix.
fn logits_of_both(
    a: &SpeechModel<B>,
    b: &SpeechModel<B>,
    config: &ModelConfig,
) -> (Tensor<B, 3>, Tensor<B, 3>) {
    let feats = features(&[30], config.input_dim, 1);
    let (_, toks) = tokens(&[4], 4, config.vocab_size, 2);
    let logits = |m: &SpeechModel<B>| {
        m.forward(feats.clone(), &[30], toks.clone(), &[4])
            .unwrap()
            .logits
    };
    (logits(a), logits(b))
}

#[test]
fn save_load_round_trip_and_mismatch_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Prefix);
    let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
    save(&model, &config, &path).unwrap();
    assert_eq!(stored_config(&path).unwrap(), config);
    let loaded = load::<B>(&config, &path, &Default::default()).unwrap();
    let (a, b) = logits_of_both(&model, &loaded, &config);
    assert_eq!((a - b).abs().max().into_scalar(), 0.0);

    // Another architecture: the first mismatching parameter is named.
    let mut other = config.clone();
    other.decoder.attention.kv_lora_rank = 24;
    let err = load::<B>(&other.resolved().unwrap(), &path, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("model.safetensors")
            && err.contains("decoder.layers")
            && err.contains("shape"),
        "{err}"
    );
    let mha = tiny(AttentionKind::Mha, 1, DecoderStyle::Prefix);
    let err = load::<B>(&mha, &path, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("another architecture"), "{err}");
    let err = load::<B>(
        &config,
        &dir.path().join("none.safetensors"),
        &Default::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no such checkpoint"), "{err}");
    assert!(std::fs::read_dir(dir.path()).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("tmp")));
}

/// A checkpoint whose weights are stored in f16 or 8-bit blocks (`mtla-st average --half`,
/// `--q8`) loads into an f32 model that computes what the f32 weights compute, to the stored
/// precision.
#[test]
fn smaller_stored_weights_load_widened_to_f32() {
    use burn::tensor::DType;
    use safetensors::SafeTensors;
    use st_model::stored::{encode, float_values, StoredPrecision};
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("f32.safetensors");
    let config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Cross);
    let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
    save(&model, &config, &full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut diffs = vec![];
    for precision in [StoredPrecision::F16, StoredPrecision::Q8] {
        let stored: Vec<_> = file
            .iter()
            .flat_map(|(name, view)| {
                encode(name, view.shape(), &float_values(&view).unwrap(), precision)
            })
            .collect();
        let path = dir.path().join(format!("{precision:?}.safetensors"));
        let views = stored.iter().map(|t| (t.name.clone(), t.view()));
        std::fs::write(
            &path,
            safetensors::serialize(views, meta.metadata().clone()).unwrap(),
        )
        .unwrap();

        let loaded = load::<B>(&stored_config(&path).unwrap(), &path, &Default::default()).unwrap();
        let (a, b) = logits_of_both(&model, &loaded, &config);
        assert_eq!(b.dtype(), DType::F32);
        let diff = (a.clone() - b).abs().max().into_scalar();
        let scale = a.abs().max().into_scalar();
        assert!(
            diff > 0.0 && diff < 2e-2 * scale,
            "{precision:?}: max |diff| {diff}, max |logit| {scale}"
        );
        diffs.push(diff);
    }
    assert!(
        diffs[0] < diffs[1],
        "f16 is the closer of the two: {diffs:?}"
    );
}

#[test]
fn encoder_init_copies_only_the_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let asr_path = dir.path().join("asr.safetensors");
    let asr_config = tiny(AttentionKind::Mha, 1, DecoderStyle::Cross);
    let asr = SpeechModel::<B>::new(&asr_config, &Default::default()).unwrap();
    save(&asr, &asr_config, &asr_path).unwrap();
    let mut st_config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Prefix);
    st_config.encoder_init = Some(asr_path);
    let st = init::<B>(&st_config, &Default::default()).unwrap();
    let feats = features(&[25], st_config.input_dim, 5);
    let a = asr.encode(feats.clone(), &[25]).unwrap().states;
    let b = st.encode(feats, &[25]).unwrap().states;
    assert_eq!((a - b).abs().max().into_scalar(), 0.0);
}
