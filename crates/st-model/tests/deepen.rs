//! A deepened encoder computes exactly what the trained one computed, saves and loads under its
//! new config, and its added layers learn (their zeroed projections get gradients); so do
//! added Conformer convolution modules.

mod common;

use burn::backend::Autodiff;
use burn::module::{Module, ParamId};
use burn::prelude::*;
use common::*;
use mtla::AttentionKind;
use st_model::checkpoint::{load, save, stored_config};
use st_model::deepen::{add_conv_modules, deepen_encoder};
use st_model::{DecoderStyle, ModelConfig, SpeechModel};

fn outputs<Bk: Backend>(m: &SpeechModel<Bk>, c: &ModelConfig) -> (Vec<f32>, Vec<f32>) {
    let dev = Default::default();
    let feats = Tensor::<Bk, 3>::from_data(features(&[30, 22], c.input_dim, 1).into_data(), &dev);
    let (_, toks) = tokens(&[4, 3], 4, c.vocab_size, 2);
    let toks = Tensor::<Bk, 2, Int>::from_data(toks.into_data(), &dev);
    let out = m.forward(feats.clone(), &[30, 22], toks, &[4, 3]).unwrap();
    let encoded = m.encode(feats, &[30, 22]).unwrap();
    let ctc = m.ctc_log_probs(&encoded).unwrap();
    (
        out.logits.into_data().to_vec().unwrap(),
        ctc.into_data().to_vec().unwrap(),
    )
}

fn ids<Bk: Backend>(m: &SpeechModel<Bk>) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl<Bk: Backend> burn::module::ModuleVisitor<Bk> for Ids {
        fn visit_float<const D: usize>(&mut self, p: &burn::module::Param<Tensor<Bk, D>>) {
            self.0.push(p.id);
        }
    }
    let mut v = Ids(Vec::new());
    m.visit(&mut v);
    v.0
}

#[test]
fn a_deepened_encoder_computes_the_same_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    for style in [DecoderStyle::Prefix, DecoderStyle::Cross] {
        let mut config = tiny(AttentionKind::Mtla, 2, style);
        config.ctc_weight = 0.3;
        let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
        let before = outputs(&model, &config);
        for layers in [2, 3, 5] {
            let (deeper, c) = deepen_encoder(model.clone(), &config, layers).unwrap();
            assert_eq!(c.encoder.layers, layers);
            assert_eq!(deeper.encoder.layers.len(), layers);
            assert_eq!(outputs(&deeper, &c), before, "{style:?}, {layers} layers");
            let ids = ids(&deeper);
            let distinct: std::collections::HashSet<_> = ids.iter().collect();
            assert_eq!(distinct.len(), ids.len(), "every parameter has its own id");
            // Saved under the new config, loaded as a model of it.
            let path = dir.path().join(format!("{style:?}{layers}.safetensors"));
            save(&deeper, &c, &path).unwrap();
            assert_eq!(stored_config(&path).unwrap(), c);
            let loaded = load::<B>(&c, &path, &Default::default()).unwrap();
            assert_eq!(outputs(&loaded, &c), before);
        }
        let err = deepen_encoder(model, &config, 1).unwrap_err().to_string();
        assert!(
            err.contains("encoder.layers") && err.contains("2 layers to 1"),
            "{err}"
        );
    }
}

#[test]
fn the_added_layers_learn_from_the_first_update() {
    type A = Autodiff<B>;
    let mut config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Cross);
    config.dropout = 0.0;
    config.decoder.attention.dropout = 0.0;
    let model = SpeechModel::<A>::new(&config, &Default::default()).unwrap();
    let (deeper, c) = deepen_encoder(model, &config, 4).unwrap();
    let dev = Default::default();
    let feats = Tensor::<A, 3>::from_data(features(&[30], c.input_dim, 1).into_data(), &dev);
    let (_, toks) = tokens(&[4], 4, c.vocab_size, 2);
    let toks = Tensor::<A, 2, Int>::from_data(toks.into_data(), &dev);
    let loss = deeper
        .forward(feats, &[30], toks, &[4])
        .unwrap()
        .logits
        .powf_scalar(2.0)
        .mean();
    let grads = loss.backward();
    // Layers 1 and 3 are the added identities.
    for i in [1, 3] {
        let layer = &deeper.encoder.layers[i];
        for (what, w) in [
            ("out_proj", &layer.self_attn.out_proj.weight),
            ("fc2", &layer.ffn.fc2.weight),
        ] {
            assert_eq!(
                w.val().abs().max().into_scalar(),
                0.0,
                "{what} starts at zero"
            );
            let g = w.grad(&grads).expect("a gradient");
            assert!(g.abs().max().into_scalar() > 0.0, "layer {i} {what} learns");
        }
    }
}

#[test]
fn conv_modules_start_as_identities_and_learn() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = tiny(AttentionKind::Mtla, 2, DecoderStyle::Cross);
    config.ctc_weight = 0.3;
    let model = SpeechModel::<B>::new(&config, &Default::default()).unwrap();
    let before = outputs(&model, &config);
    let err = add_conv_modules(model.clone(), &config, 4)
        .unwrap_err()
        .to_string();
    assert!(err.contains("conv_module_kernel must be odd"), "{err}");
    let (conformer, c) = add_conv_modules(model, &config, 5).unwrap();
    assert_eq!(c.encoder.conv_module_kernel, 5);
    assert!(conformer.encoder.layers.iter().all(|l| l.conv.is_some()));
    assert_eq!(outputs(&conformer, &c), before);
    // Deepened after, saved and loaded: still the same function.
    let (deeper, c) = deepen_encoder(conformer.clone(), &c, 3).unwrap();
    assert_eq!(outputs(&deeper, &c), before);
    let path = dir.path().join("conformer.safetensors");
    save(&deeper, &c, &path).unwrap();
    let loaded = load::<B>(&stored_config(&path).unwrap(), &path, &Default::default()).unwrap();
    assert_eq!(outputs(&loaded, &c), before);
    let err = add_conv_modules(conformer, &c, 5).unwrap_err().to_string();
    assert!(err.contains("already has convolution modules"), "{err}");

    // The zeroed output projections get gradients from the first update on.
    type A = Autodiff<B>;
    let mut config = config.clone();
    config.dropout = 0.0;
    let model = SpeechModel::<A>::new(&config, &Default::default()).unwrap();
    let (conformer, c) = add_conv_modules(model, &config, 5).unwrap();
    let dev = Default::default();
    let feats = Tensor::<A, 3>::from_data(features(&[30], c.input_dim, 1).into_data(), &dev);
    let (_, toks) = tokens(&[4], 4, c.vocab_size, 2);
    let toks = Tensor::<A, 2, Int>::from_data(toks.into_data(), &dev);
    let grads = conformer
        .forward(feats, &[30], toks, &[4])
        .unwrap()
        .logits
        .powf_scalar(2.0)
        .mean()
        .backward();
    for layer in &conformer.encoder.layers {
        let w = &layer.conv.as_ref().unwrap().pointwise_out.weight;
        assert_eq!(w.val().abs().max().into_scalar(), 0.0);
        let g = w.grad(&grads).expect("a gradient");
        assert!(g.abs().max().into_scalar() > 0.0);
    }
}
