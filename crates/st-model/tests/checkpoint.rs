//! Checkpoints round-trip, load atomically, name the first mismatching parameter, load from
//! half-precision files (shipped models) into f32, and can initialise an encoder from another
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

/// A checkpoint whose weights are stored in f16 (`mtla-st average --half`) loads into an f32
/// model that computes what the f32 weights compute, to f16's precision.
#[test]
fn half_precision_weights_load_widened_to_f32() {
    use burn::tensor::{f16, DType};
    use safetensors::{tensor::TensorView, Dtype, SafeTensors};
    let dir = tempfile::tempdir().unwrap();
    let (full, half) = (
        dir.path().join("f32.safetensors"),
        dir.path().join("f16.safetensors"),
    );
    let config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Cross);
    let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
    save(&model, &config, &full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let narrowed: Vec<(String, Vec<usize>, Vec<u8>)> = file
        .iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32, "{name}");
            let data = view
                .data()
                .chunks_exact(4)
                .flat_map(|c| {
                    f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()
                })
                .collect();
            (name.to_string(), view.shape().to_vec(), data)
        })
        .collect();
    let views = narrowed.iter().map(|(n, shape, data)| {
        (
            n.clone(),
            TensorView::new(Dtype::F16, shape.clone(), data).unwrap(),
        )
    });
    std::fs::write(
        &half,
        safetensors::serialize(views, meta.metadata().clone()).unwrap(),
    )
    .unwrap();

    let loaded = load::<B>(&stored_config(&half).unwrap(), &half, &Default::default()).unwrap();
    let (a, b) = logits_of_both(&model, &loaded, &config);
    assert_eq!(b.dtype(), DType::F32);
    let diff = (a.clone() - b).abs().max().into_scalar();
    let scale = a.abs().max().into_scalar();
    assert!(
        diff > 0.0 && diff < 1e-2 * scale,
        "max |diff| {diff}, max |logit| {scale}"
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
