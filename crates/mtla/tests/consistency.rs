//! Property tests: for every attention kind, the parallel (training) forward and the
//! incremental prefill + step-by-step decode give the same outputs (<= 1e-5 relative), for
//! random shapes, compression rates, prefix lengths, position offsets and padding.

use burn::prelude::*;
use mtla::{Attention, AttentionConfig, AttentionKind, Cache, KeyPadding};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type B = burn::backend::Flex;

fn kinds() -> Vec<(AttentionKind, usize)> {
    use AttentionKind::*;
    vec![
        (Mha, 1),
        (Gqa, 1),
        (Mqa, 1),
        (Mla, 1),
        (Mtla, 1),
        (Mtla, 2),
        (Mtla, 3),
        (Mtla, 4),
    ]
}

fn config(kind: AttentionKind, down_rate: usize, rng: &mut StdRng) -> AttentionConfig {
    let heads = [2, 4][rng.random_range(0..2)];
    AttentionConfig {
        kind,
        d_model: heads * 8,
        num_heads: heads,
        num_kv_heads: heads / 2,
        kv_lora_rank: 16,
        q_lora_rank: [0, 12][rng.random_range(0..2)],
        qk_nope_head_dim: 8,
        qk_rope_head_dim: 4,
        v_head_dim: 8,
        down_rate,
        bias: Some(rng.random_bool(0.5)),
        ..AttentionConfig::default()
    }
}

fn random(shape: [usize; 3], rng: &mut StdRng) -> Tensor<B, 3> {
    let n = shape.iter().product::<usize>();
    let v: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::<B, 1>::from_floats(v.as_slice(), &Default::default()).reshape(shape)
}

/// Per-row RoPE positions `offset_b + j`.
fn positions(batch: usize, len: usize, rng: &mut StdRng) -> Tensor<B, 2> {
    let v: Vec<f32> = (0..batch)
        .flat_map(|_| {
            let off = rng.random_range(0..5) as f32;
            (0..len).map(move |j| off + j as f32)
        })
        .collect();
    Tensor::<B, 1>::from_floats(v.as_slice(), &Default::default()).reshape([batch, len])
}

/// Prefills `x[:, ..start]` and decodes the rest; returns outputs for positions `start-1..`.
fn incremental(
    layer: &Attention<B>,
    x: &Tensor<B, 3>,
    pos: &Tensor<B, 2>,
    start: usize,
    padding: Option<&KeyPadding>,
) -> (Tensor<B, 3>, Cache<B>) {
    let t = x.dims()[1];
    let (first, mut cache) = layer
        .prefill(
            x.clone().slice(s![.., start - 1..start, ..]),
            x.clone().slice(s![.., 0..start, ..]),
            pos.clone().slice(s![.., 0..start]),
            padding,
        )
        .unwrap();
    let mut outs = vec![first];
    for i in start..t {
        let y = layer
            .step(
                x.clone().slice(s![.., i..i + 1, ..]),
                pos.clone().slice(s![.., i..i + 1]),
                &mut cache,
            )
            .unwrap();
        outs.push(y);
    }
    (Tensor::cat(outs, 1), cache)
}

fn relative_diff(a: Tensor<B, 3>, b: Tensor<B, 3>) -> f32 {
    let scale: f32 = b.clone().abs().max().into_scalar();
    let diff: f32 = (a - b).abs().max().into_scalar();
    diff / scale.max(1e-6)
}

#[test]
fn parallel_equals_incremental_for_every_kind() {
    let mut rng = StdRng::seed_from_u64(11);
    for (kind, s) in kinds() {
        for trial in 0..4 {
            let cfg = config(kind, s, &mut rng);
            let layer = cfg.init::<B>(&Default::default()).unwrap();
            let (b, t) = (rng.random_range(1..4), rng.random_range(2..24));
            let start = rng.random_range(1..t);
            let x = random([b, t, cfg.d_model], &mut rng);
            let pos = positions(b, t, &mut rng);
            let full = layer
                .forward(x.clone(), x.clone(), pos.clone(), None)
                .unwrap();
            let (inc, cache) = incremental(&layer, &x, &pos, start, None);
            let d = relative_diff(inc, full.slice(s![.., start - 1..t, ..]));
            assert!(
                d <= 1e-5,
                "{kind} s={s} trial {trial} b={b} t={t} prefix={start}: rel diff {d}"
            );
            let slots = if cfg.is_latent() {
                t.div_ceil(cfg.effective_down_rate())
            } else {
                t
            };
            assert_eq!(
                cache.len(),
                slots,
                "{kind} s={s}: cache slots after {t} tokens"
            );
            let per_token = cfg.kv_elements_per_token() * cfg.effective_down_rate() as f64;
            assert_eq!(
                cache.bytes(),
                (slots as f64 * per_token) as usize * b * 4,
                "{kind} s={s}: bytes"
            );
        }
    }
}

#[test]
fn queries_may_be_a_suffix_of_the_keys() {
    // Decoder style: only the targets are queries, the prefix is key/value only.
    let mut rng = StdRng::seed_from_u64(5);
    for (kind, s) in kinds() {
        let cfg = config(kind, s, &mut rng);
        let layer = cfg.init::<B>(&Default::default()).unwrap();
        let (b, t, q) = (2, 17, 6);
        if let Attention::Latent(latent) = &layer {
            // The full pass expands keys and values per head, the suffix stays absorbed: the
            // two forms of MLA/MTLA are compared here too.
            assert!(latent.expands(t, t) && !latent.expands(q, t));
        }
        let x = random([b, t, cfg.d_model], &mut rng);
        let pos = positions(b, t, &mut rng);
        let full = layer
            .forward(x.clone(), x.clone(), pos.clone(), None)
            .unwrap();
        let suffix = layer
            .forward(x.clone().slice(s![.., t - q..t, ..]), x, pos, None)
            .unwrap();
        let d = relative_diff(suffix, full.slice(s![.., t - q..t, ..]));
        assert!(d <= 1e-6, "{kind} s={s}: {d}");
    }
}

#[test]
fn padded_prefixes_match_between_forms() {
    let mut rng = StdRng::seed_from_u64(23);
    for (kind, s) in kinds() {
        let cfg = config(kind, s, &mut rng);
        let layer = cfg.init::<B>(&Default::default()).unwrap();
        // Prefix region of 9 keys with per-row real lengths, then 7 targets.
        let (b, prefix, t) = (3, 9, 16);
        let lengths = [9, 4, 6];
        let pad: Vec<bool> = lengths
            .iter()
            .flat_map(|&l| (0..t).map(move |j| j >= l && j < prefix))
            .collect();
        let padding = KeyPadding::new(b, t, pad.clone());
        let x = random([b, t, cfg.d_model], &mut rng);
        let pos = positions(b, t, &mut rng);
        let full = layer
            .forward(x.clone(), x.clone(), pos.clone(), Some(&padding))
            .unwrap();
        let pre = KeyPadding::new(
            b,
            prefix + 1,
            lengths
                .iter()
                .flat_map(|&l| (0..=prefix).map(move |j| j >= l && j < prefix))
                .collect(),
        );
        let (inc, _) = incremental(&layer, &x, &pos, prefix + 1, Some(&pre));
        let d = relative_diff(inc, full.slice(s![.., prefix..t, ..]));
        assert!(d <= 1e-5, "{kind} s={s}: {d}");
    }
}

#[test]
fn padding_does_not_change_a_rows_result() {
    // A row whose real prefix (5 keys) is padded to a multiple of s gives the same target
    // outputs alone and inside a batch padded further: padding never enters a merged slot.
    let mut rng = StdRng::seed_from_u64(3);
    for (kind, s) in kinds() {
        let cfg = config(kind, s, &mut rng);
        let layer = cfg.init::<B>(&Default::default()).unwrap();
        let (real, targets) = (5usize, 6usize);
        let alone_prefix = real.div_ceil(s) * s;
        let batch_prefix = alone_prefix + 2 * s;
        let prefix_x = random([1, real, cfg.d_model], &mut rng);
        let target_x = random([1, targets, cfg.d_model], &mut rng);
        let mut run = |region: usize| {
            let d = cfg.d_model;
            // Padding content differs between the two runs: it must not matter.
            let mut parts = vec![prefix_x.clone()];
            if region > real {
                parts.push(random([1, region - real, d], &mut rng).mul_scalar(7.0));
            }
            parts.push(target_x.clone());
            let x = Tensor::cat(parts, 1);
            let t = region + targets;
            let pos: Vec<f32> = (0..t)
                .map(|j| {
                    if j < region {
                        j as f32
                    } else {
                        (real + j - region) as f32
                    }
                })
                .collect();
            let pos =
                Tensor::<B, 1>::from_floats(pos.as_slice(), &Default::default()).reshape([1, t]);
            let padding = KeyPadding::new(1, t, (0..t).map(|j| j >= real && j < region).collect());
            layer
                .forward(
                    x.clone().slice(s![.., region..t, ..]),
                    x,
                    pos,
                    Some(&padding),
                )
                .unwrap()
        };
        let d = relative_diff(run(batch_prefix), run(alone_prefix));
        assert!(d <= 1e-5, "{kind} s={s}: {d}");
    }
}

#[test]
fn reorder_follows_beams_and_bad_steps_are_errors() {
    let mut rng = StdRng::seed_from_u64(8);
    for (kind, s) in kinds() {
        let cfg = config(kind, s, &mut rng);
        let layer = cfg.init::<B>(&Default::default()).unwrap();
        let (b, t) = (3, 9);
        let x = random([b, t, cfg.d_model], &mut rng);
        let pos = positions(b, t, &mut rng);
        let (_, mut cache) = incremental(&layer, &x, &pos, 4, None);
        // Expand to 2 beams per row, reversed, then step: row k must equal the step of row src[k].
        let src = [2i64, 2, 1, 1, 0, 0];
        let rows = Tensor::<B, 1, Int>::from_ints(src, &Default::default());
        let mut beams = cache.clone();
        beams.reorder(rows.clone());
        assert_eq!(beams.batch(), 6);
        let xs = x.clone().slice(s![.., 5..6, ..]);
        let ps = pos.clone().slice(s![.., 5..6]);
        let y_beams = layer
            .step(
                xs.clone().select(0, rows.clone()),
                ps.clone().select(0, rows.clone()),
                &mut beams,
            )
            .unwrap();
        let y = layer.step(xs.clone(), ps.clone(), &mut cache).unwrap();
        let d = relative_diff(y_beams, y.select(0, rows));
        assert!(d <= 1e-6, "{kind} s={s}: {d}");
        let err = layer
            .step(
                xs.slice(s![0..2, .., ..]),
                ps.slice(s![0..2, ..]),
                &mut cache,
            )
            .unwrap_err();
        assert!(err.to_string().contains("3 rows"), "{err}");
    }
}

#[test]
fn reserved_caches_do_not_change_results() {
    let mut rng = StdRng::seed_from_u64(9);
    let cfg = config(AttentionKind::Mtla, 2, &mut rng);
    let layer = cfg.init::<B>(&Default::default()).unwrap();
    let x = random([2, 150, cfg.d_model], &mut rng);
    let pos = positions(2, 150, &mut rng);
    let (a, cache_a) = incremental(&layer, &x, &pos, 3, None);
    assert!(cache_a.capacity_bytes() > cache_a.bytes(), "grew in blocks");
    let (first, mut cache) = layer
        .prefill(
            x.clone().slice(s![.., 2..3, ..]),
            x.clone().slice(s![.., 0..3, ..]),
            pos.clone().slice(s![.., 0..3]),
            None,
        )
        .unwrap();
    cache.reserve(147);
    let reserved = cache.capacity_bytes();
    let mut outs = vec![first];
    for i in 3..150 {
        outs.push(
            layer
                .step(
                    x.clone().slice(s![.., i..i + 1, ..]),
                    pos.clone().slice(s![.., i..i + 1]),
                    &mut cache,
                )
                .unwrap(),
        );
    }
    assert_eq!(cache.capacity_bytes(), reserved, "no growth after reserve");
    assert_eq!(cache.bytes(), cache_a.bytes());
    assert_eq!(relative_diff(Tensor::cat(outs, 1), a), 0.0);
}

#[test]
fn cache_prefix_then_steps_equals_the_parallel_form() {
    // The decoder's path: the prefix goes into the cache without queries, then one step per
    // target token (the prefix region is a multiple of s, so targets start a new chunk).
    let mut rng = StdRng::seed_from_u64(31);
    for (kind, s) in kinds() {
        let cfg = config(kind, s, &mut rng);
        let layer = cfg.init::<B>(&Default::default()).unwrap();
        let (b, prefix, t) = (2, 3 * s, 3 * s + 7);
        let pad = KeyPadding::new(
            b,
            t,
            (0..b)
                .flat_map(|r| (0..t).map(move |j| r == 1 && j >= 2 && j < prefix))
                .collect(),
        );
        let pre = KeyPadding::new(
            b,
            prefix,
            (0..b)
                .flat_map(|r| (0..prefix).map(move |j| r == 1 && j >= 2))
                .collect(),
        );
        let x = random([b, t, cfg.d_model], &mut rng);
        let pos = positions(b, t, &mut rng);
        let full = layer
            .forward(
                x.clone().slice(s![.., prefix..t, ..]),
                x.clone(),
                pos.clone(),
                Some(&pad),
            )
            .unwrap();
        let mut cache = layer
            .cache_prefix(
                x.clone().slice(s![.., 0..prefix, ..]),
                pos.clone().slice(s![.., 0..prefix]),
                Some(&pre),
            )
            .unwrap();
        let outs: Vec<_> = (prefix..t)
            .map(|i| {
                layer
                    .step(
                        x.clone().slice(s![.., i..i + 1, ..]),
                        pos.clone().slice(s![.., i..i + 1]),
                        &mut cache,
                    )
                    .unwrap()
            })
            .collect();
        let d = relative_diff(Tensor::cat(outs, 1), full);
        assert!(d <= 1e-5, "{kind} s={s}: {d}");
    }
}
