//! Checkpoints round-trip, load atomically, name the first mismatching parameter, and can
//! initialise an encoder from another model.

mod common;

use common::*;
use mtla::AttentionKind;
use st_model::checkpoint::{init, load, save, stored_config};
use st_model::{DecoderStyle, SpeechModel};

#[test]
fn save_load_round_trip_and_mismatch_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Prefix);
    let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
    save(&model, &config, &path).unwrap();
    assert_eq!(stored_config(&path).unwrap(), config);
    let loaded = load::<B>(&config, &path, &Default::default()).unwrap();
    let feats = features(&[30], config.input_dim, 1);
    let (_, toks) = tokens(&[4], 4, config.vocab_size, 2);
    let a = model
        .forward(feats.clone(), &[30], toks.clone(), &[4])
        .unwrap()
        .logits;
    let b = loaded.forward(feats, &[30], toks, &[4]).unwrap().logits;
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
