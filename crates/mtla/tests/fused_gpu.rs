//! The fused GPU decode kernel gives plain softmax attention, computed op by op on the same
//! device: every kind's shapes (MHA, GQA, the latent attention's one shared head whose values
//! are a view of its keys), cache views with spare capacity, per-row padding masks, caches
//! longer than one chunk. Needs `--features wgpu`; skipped, saying so, where no adapter exists.
#![cfg(feature = "wgpu")]

use burn::backend::wgpu::{Wgpu, WgpuDevice};
use burn::prelude::*;
use burn::tensor::activation::softmax;
use burn::tensor::{DType, Distribution, FloatDType};
use mtla::fused_gpu::decode_attention;

type B = Wgpu;

fn adapter() -> Option<WgpuDevice> {
    let device = WgpuDevice::DefaultDevice;
    let probe = std::panic::catch_unwind(|| Tensor::<B, 1>::ones([4], &device).sum().into_scalar());
    match probe {
        Ok(v) if v == 4.0 => Some(device),
        _ => None,
    }
}

/// Op-by-op attention; query head `h` reads K/V head `h / (heads / kv_heads)`.
fn plain(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
    scale: f32,
) -> Tensor<B, 4> {
    let [batch, heads, _, d_k] = q.dims();
    let kv_heads = k.dims()[1];
    let q = q.clone().reshape([batch, kv_heads, heads / kv_heads, d_k]);
    let mut scores = q.matmul(k.clone().swap_dims(2, 3)).mul_scalar(scale);
    if let Some(bias) = bias {
        scores = scores + bias.clone();
    }
    softmax(scores, 3)
        .matmul(v.clone())
        .reshape([batch, heads, 1, v.dims()[3]])
}

fn max_diff(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    (a - b).abs().max().into_scalar()
}

struct Case {
    batch: usize,
    heads: usize,
    kv_heads: usize,
    t: usize,
    d_k: usize,
    d_v: usize,
    /// Values are the first `d_v` channels of the keys (the absorbed latent cache).
    latent: bool,
    masked: bool,
}

fn check(device: &WgpuDevice, c: Case) {
    check_in(device, c, FloatDType::F32);
}

/// [`check`] with q, k, v and the bias stored as `dtype` (`--precision f16|bf16`): the kernel
/// computes in f32, so it must match plain f32 attention of the same rounded inputs up to the
/// rounding of its output.
fn check_in(device: &WgpuDevice, c: Case, dtype: FloatDType) {
    let Case {
        batch,
        heads,
        kv_heads,
        t,
        d_k,
        d_v,
        latent,
        masked,
    } = c;
    let q = Tensor::<B, 4>::random(
        [batch, heads, 1, d_k],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    // A cache buffer with spare capacity, read through a slot view as the caches hand it out.
    let capacity = t + 7;
    let k_buf = Tensor::<B, 4>::random(
        [batch, kv_heads, capacity, d_k],
        Distribution::Normal(0.0, 1.0),
        device,
    );
    let k = k_buf.clone().slice([0..batch, 0..kv_heads, 0..t, 0..d_k]);
    let v = if latent {
        k_buf.slice([0..batch, 0..kv_heads, 0..t, 0..d_v])
    } else {
        Tensor::<B, 4>::random(
            [batch, kv_heads, t, d_v],
            Distribution::Normal(0.0, 1.0),
            device,
        )
    };
    // Row r hides its last r slots (padding), as the decoder's per-row prefix masks do.
    let bias = masked.then(|| {
        let rows: Vec<f32> = (0..batch)
            .flat_map(|r| (0..t).map(move |i| if i + r >= t && r > 0 { -1e9 } else { 0.0 }))
            .collect();
        Tensor::<B, 1>::from_floats(rows.as_slice(), device).reshape([batch, 1, 1, t])
    });
    let scale = 1.0 / (d_k as f32).sqrt();
    let stored = |x: &Tensor<B, 4>| x.clone().cast(dtype);
    let (q, k, v, bias) = (
        stored(&q),
        stored(&k),
        stored(&v),
        bias.as_ref().map(stored),
    );
    let fused = decode_attention(&q, &k, &v, bias.as_ref(), scale)
        .expect("the fused kernel takes plain float wgpu tensors");
    assert_eq!(fused.dims(), [batch, heads, 1, d_v]);
    assert_eq!(fused.dtype(), DType::from(dtype));
    let f32s = |x: &Tensor<B, 4>| x.clone().cast(FloatDType::F32);
    let reference = plain(
        &f32s(&q),
        &f32s(&k),
        &f32s(&v),
        bias.as_ref().map(f32s).as_ref(),
        scale,
    );
    let diff = max_diff(f32s(&fused), reference);
    // Outputs are convex combinations of values within ±5: the output's own rounding.
    let tolerance = match dtype {
        FloatDType::F16 => 5e-3,
        FloatDType::BF16 => 4e-2,
        _ => 1e-5,
    };
    assert!(
        diff < tolerance,
        "{dtype:?} heads {heads}/{kv_heads}, T {t}, d {d_k}/{d_v}: max |fused - plain| = {diff}"
    );
}

#[test]
fn fused_gpu_decode_matches_plain_attention() {
    let Some(device) = adapter() else {
        eprintln!("skipped: no WebGPU adapter (install mesa-vulkan-drivers for lavapipe)");
        return;
    };
    // MHA, one chunk and several (the kernel streams the cache 32..256 slots at a time).
    check(
        &device,
        Case {
            batch: 2,
            heads: 4,
            kv_heads: 4,
            t: 1,
            d_k: 16,
            d_v: 16,
            latent: false,
            masked: false,
        },
    );
    check(
        &device,
        Case {
            batch: 3,
            heads: 4,
            kv_heads: 4,
            t: 300,
            d_k: 16,
            d_v: 16,
            latent: false,
            masked: true,
        },
    );
    // GQA and MQA.
    check(
        &device,
        Case {
            batch: 2,
            heads: 4,
            kv_heads: 2,
            t: 77,
            d_k: 32,
            d_v: 32,
            latent: false,
            masked: true,
        },
    );
    check(
        &device,
        Case {
            batch: 2,
            heads: 8,
            kv_heads: 1,
            t: 40,
            d_k: 8,
            d_v: 24,
            latent: false,
            masked: false,
        },
    );
    // The absorbed latent attention of MLA/MTLA: one head [c ‖ k_R], values = c.
    check(
        &device,
        Case {
            batch: 3,
            heads: 4,
            kv_heads: 1,
            t: 600,
            d_k: 80,
            d_v: 64,
            latent: true,
            masked: true,
        },
    );
}

#[test]
fn fused_gpu_decode_in_half_precision() {
    let Some(device) = adapter() else {
        eprintln!("skipped: no WebGPU adapter");
        return;
    };
    for dtype in [FloatDType::F16, FloatDType::BF16] {
        if !B::supports_dtype(&device, dtype.into()) {
            eprintln!("skipped {dtype:?}: this adapter has no {dtype:?} arithmetic");
            continue;
        }
        for latent in [false, true] {
            let (kv_heads, d_k) = if latent { (1, 80) } else { (2, 32) };
            let case = Case {
                batch: 3,
                heads: 4,
                kv_heads,
                t: 300,
                d_k,
                d_v: 32,
                latent,
                masked: true,
            };
            check_in(&device, case, dtype);
        }
    }
}

#[test]
fn fused_gpu_declines_what_it_does_not_cover() {
    let Some(device) = adapter() else {
        eprintln!("skipped: no WebGPU adapter");
        return;
    };
    let q = Tensor::<B, 4>::ones([1, 2, 3, 8], &device);
    let k = Tensor::<B, 4>::ones([1, 2, 5, 8], &device);
    // More than one query per head is the training / prefill path's work.
    assert!(decode_attention(&q, &k, &k, None, 1.0).is_none());
}

/// The authors' PyTorch MTLA fixtures on WebGPU: the incremental path now decodes through the
/// fused kernel, and every output and the final cache stay within 1e-4 of their module.
#[test]
fn authors_fixtures_on_wgpu_through_the_fused_kernel() {
    let Some(device) = adapter() else {
        eprintln!("skipped: no WebGPU adapter");
        return;
    };
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for name in [
        "s1",
        "s2_offsets",
        "s3_bias",
        "s3_long",
        "s4_qlora",
        "paper_s2",
    ] {
        let path = dir.join(format!("{name}.safetensors"));
        let report = mtla::reference::check_reference::<B>(&path, &device).unwrap();
        assert!(
            report.max_abs_diff_prefix.is_some(),
            "{name}: fixture has a prefix path"
        );
        assert!(report.within(1e-4), "{name} on wgpu: {report:?}");
    }
}
