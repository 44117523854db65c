//! Fused single-query attention for decoding on the GPU backends (WebGPU and CUDA), one CubeCL
//! kernel for both: the GPU counterpart of [`fused`](crate::fused).
//!
//! Op by op, a decode step is a reshape, a matrix product for the scores, a scale, a bias add,
//! a softmax (itself several kernels) and a second matrix product, each a launch with its own
//! round trip of the `[rows, heads, T]` scores through memory. Here one launch does it all:
//! one cube per (row, query head) streams the cache in chunks of `CUBE_DIM` slots with an
//! online softmax (running maximum `m` and normaliser `l`, rescaled by `exp(m_old - m_new)`),
//!
//! ```text
//! s_t = scale · q·k_t + bias_t,   o = Σ_t exp(s_t - m) v_t / Σ_t exp(s_t - m),
//! ```
//!
//! so the scores never leave shared memory. The cache is read in place through its strides
//! (the slot views the caches hand out, no copy), and every query head of a K/V group reads the
//! same K/V head: for MLA/MTLA's absorbed latent attention all heads read the one shared
//! latent cache `[c ‖ k_R]` (paper Eq. 12/17), whose first `r` channels are the values.
//!
//! Tensors of a plain (non-fusion) `CubeBackend` are taken when q, k, v (and the bias) share
//! one float type, f32, f16 or bf16 (`--precision`; scores, softmax and sums are f32 in the
//! kernel whatever the storage type), with `d_v` no larger
//! than the device's cube size; anything else (and anything with gradients) takes the general
//! path in [`attend`](crate::attend).

use std::any::Any;

use burn::tensor::backend::Backend;
use burn::tensor::{DType, Tensor, TensorPrimitive};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::CubeRuntime;
use cubecl::{CubeCount, CubeDim};

use kernel::decode_attention_kernel;

/// The kernel, apart: CubeCL's `Tensor` and `Float` are not Burn's.
mod kernel {
    use cubecl::prelude::*;

    /// A finite stand-in for -inf (WGSL has no infinite literals): far below any masked score
    /// (masks add -1e9), so `exp(NEG - m) = 0` for every real maximum `m`.
    const NEG: f32 = -3.0e38;

    /// One cube per (row, query head); unit `u` scores slot `t0 + u` of each chunk and owns output
    /// channel `u` (`CUBE_DIM_X >= d_v`). Shapes: `q` `[B, H, 1, d_k]`, `k` `[B, G, T, d_k]`,
    /// `v` `[B, G, T, d_v]`, `bias` `[1 | B, 1, 1, T]` (read only when `has_bias`),
    /// `out` `[B, H, 1, d_v]` contiguous.
    #[cube(launch)]
    #[allow(clippy::too_many_arguments)]
    pub fn decode_attention_kernel<F: Float>(
        q: &Tensor<F>,
        k: &Tensor<F>,
        v: &Tensor<F>,
        bias: &Tensor<F>,
        out: &mut Tensor<F>,
        scale: f32,
        #[comptime] chunk: u32,
        #[comptime] has_bias: bool,
        #[define(F)] _dtype: StorageType,
    ) {
        let heads = q.shape(1);
        let row = CUBE_POS_X as usize;
        let (b, h) = (row / heads, row % heads);
        let g = h / (heads / k.shape(1));
        let t_len = k.shape(2);
        let d_k = q.shape(3);
        let d_v = v.shape(3);
        let unit = UNIT_POS_X as usize;
        let width = chunk as usize;

        let q_at = b * q.stride(0) + h * q.stride(1);
        let k_at = b * k.stride(0) + g * k.stride(1);
        let v_at = b * v.stride(0) + g * v.stride(1);
        let mut bias_at = 0;
        if has_bias && bias.shape(0) > 1 {
            bias_at = b * bias.stride(0);
        }

        // Scores, softmax and sums in f32 whatever the storage type (f16/bf16 caches included).
        let mut slots = SharedMemory::<f32>::new(width);
        let neg = f32::new(NEG);
        let mut m = neg;
        let mut l = f32::new(0.0);
        let mut acc = f32::new(0.0);
        let mut t0 = 0;
        while t0 < t_len {
            // Score of this unit's slot.
            let t = t0 + unit;
            let mut s = neg;
            if t < t_len {
                let mut dot = f32::new(0.0);
                for c in 0..d_k {
                    dot += f32::cast_from(q[q_at + c * q.stride(3)])
                        * f32::cast_from(k[k_at + t * k.stride(2) + c * k.stride(3)]);
                }
                s = dot * scale;
                if has_bias {
                    s += f32::cast_from(bias[bias_at + t * bias.stride(3)]);
                }
            }
            slots[unit] = s;
            sync_cube();
            // The chunk's new running maximum, the same in every unit.
            let mut n = t_len - t0;
            if n > width {
                n = width;
            }
            let mut m_new = m;
            for j in 0..n {
                m_new = f32::max(m_new, slots[j]);
            }
            sync_cube();
            slots[unit] = f32::exp(s - m_new);
            sync_cube();
            // Rescale what was accumulated under the old maximum, then add this chunk.
            let rescale = f32::exp(m - m_new);
            l *= rescale;
            acc *= rescale;
            for j in 0..n {
                let p = slots[j];
                l += p;
                if unit < d_v {
                    acc +=
                        p * f32::cast_from(v[v_at + (t0 + j) * v.stride(2) + unit * v.stride(3)]);
                }
            }
            m = m_new;
            sync_cube();
            t0 += width;
        }
        if unit < d_v {
            out[row * d_v + unit] = F::cast_from(acc / l);
        }
    }
}

/// `softmax(q k^T * scale + bias) v` for one query per head in one kernel launch (see the module
/// doc); `None` when the tensors are not float tensors of one type of a plain WebGPU or CUDA
/// `CubeBackend`, or
/// `d_v` exceeds the device's cube size. Shapes as [`fused::decode_attention`](crate::fused::decode_attention).
pub fn decode_attention<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
    scale: f32,
) -> Option<Tensor<B, 4>> {
    #[cfg(feature = "wgpu")]
    if let Some(out) = on::<B, cubecl::wgpu::WgpuRuntime>(q, k, v, bias, scale) {
        return Some(out);
    }
    #[cfg(feature = "cuda")]
    if let Some(out) = on::<B, cubecl::cuda::CudaRuntime>(q, k, v, bias, scale) {
        return Some(out);
    }
    None
}

/// [`decode_attention`] when `B`'s float tensors are `CubeTensor<R>`.
fn on<B: Backend, R: CubeRuntime>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
    scale: f32,
) -> Option<Tensor<B, 4>> {
    let [batch, heads, queries, _] = q.dims();
    let [_, kv_heads, t, _] = k.dims();
    let d_v = v.dims()[3];
    let (qc, kc, vc) = (cube::<B, R>(q)?, cube::<B, R>(k)?, cube::<B, R>(v)?);
    let bc = match bias {
        Some(b) => Some(cube::<B, R>(b)?),
        None => None,
    };
    let max_units = qc.client.properties().hardware.max_cube_dim.0 as usize;
    let width = d_v.max(32).next_power_of_two();
    // One float storage type for all (f32, f16 or bf16); the kernel computes in f32.
    let dtype = qc.dtype;
    let floats = matches!(dtype, DType::F32 | DType::F16 | DType::BF16)
        && [&kc, &vc].iter().all(|x| x.dtype == dtype)
        && bc.as_ref().is_none_or(|b| b.dtype == dtype);
    if queries != 1 || t == 0 || heads % kv_heads != 0 || width > max_units || !floats {
        return None;
    }
    let client = qc.client.clone();
    let out = empty_device_contiguous_dtype::<R>(
        client.clone(),
        qc.device.clone(),
        [batch, heads, 1, d_v].into(),
        dtype,
    );
    let has_bias = bc.is_some();
    // Without a bias the kernel never reads it; any tensor of the same type fills the slot.
    let bias_arg = bc.unwrap_or_else(|| qc.clone());
    decode_attention_kernel::launch::<R>(
        &client,
        CubeCount::Static((batch * heads) as u32, 1, 1),
        CubeDim::new_1d(width as u32),
        qc.into_tensor_arg(),
        kc.into_tensor_arg(),
        vc.into_tensor_arg(),
        bias_arg.into_tensor_arg(),
        out.clone().into_tensor_arg(),
        scale,
        width as u32,
        has_bias,
        dtype.into(),
    );
    let out: Box<dyn Any> = Box::new(out);
    let out = *out.downcast::<B::FloatTensorPrimitive>().ok()?;
    Some(Tensor::from_primitive(TensorPrimitive::Float(out)))
}

/// The `CubeTensor<R>` behind a float tensor of `B`, if `B` is a plain `CubeBackend` on `R`.
fn cube<B: Backend, R: CubeRuntime>(t: &Tensor<B, 4>) -> Option<CubeTensor<R>> {
    match t.clone().into_primitive() {
        TensorPrimitive::Float(p) => (&p as &dyn Any).downcast_ref::<CubeTensor<R>>().cloned(),
        TensorPrimitive::QFloat(_) => None,
    }
}
