//! Rotary position embedding on *adjacent* channel pairs (GPT-J / "interleaved" style, as the
//! authors' `torch.view_as_complex` code): `(x_{2k}, x_{2k+1})` is rotated by
//! `pos * theta^(-2k/dim)`, with float positions so rows may carry their own offsets.
//!
//! Computed as `x * cos + swap(x) * sin`, where `swap` exchanges the two channels of each pair
//! (a product with a permutation matrix, which is exact) and `sin` carries the sign of the
//! rotation (`-sin` on even channels): `(a cos - b sin, b cos + a sin)` exactly as the complex
//! product, with only same-shape element-wise operations.
//!
//! On the CPU backend (f32) the rotation is one pass, `y_c = x_c cos_c + x_{c^1} sin_c`, and
//! under autodiff one graph node whose backward is the transposed rotation,
//! `dx_c = dy_c cos_c + dy_{c^1} sin_{c^1}`: the op-by-op form (a product with the permutation,
//! the tables repeated over heads, three broadcast element-wise ops, and their gradients) took
//! ~28 % of an MHA layer's training step at the paper's dims (`mtla-st bench attention-train`,
//! T 256: 169 ms with it, 122 ms without).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::cpu::{back, cast, usable, AdPrimitive};

/// Rotation tables for some positions: `cos`, `sin` `[batch, time, 1, dim]` (per channel,
/// pair-duplicated, `sin` signed) and the pair-swap permutation `[dim, dim]`.
#[derive(Debug, Clone)]
pub struct Rope<B: Backend> {
    cos: Tensor<B, 4>,
    sin: Tensor<B, 4>,
    swap: Tensor<B, 2>,
}

impl<B: Backend> Rope<B> {
    /// Tables for float `positions` `[batch, time]` and `dim` channels (even), base `theta`.
    pub fn new(positions: Tensor<B, 2>, dim: usize, theta: f64) -> Self {
        let device = positions.device();
        // As the reference: freqs[k] = 1 / theta^(2k / dim) in f32; channel 2k gets -freq so that
        // sin(-a) = -sin(a) carries the sign (cos is even).
        let signed: Vec<f32> = (0..dim)
            .map(|c| {
                let f = frequency(c / 2, dim, theta as f32);
                if c % 2 == 0 {
                    -f
                } else {
                    f
                }
            })
            .collect();
        let freqs = Tensor::<B, 1>::from_floats(signed.as_slice(), &device).reshape([1, 1, 1, dim]);
        let [b, t] = positions.dims();
        // Added into fresh zeros first, so the reshape sees a contiguous tensor: burn-cubecl 0.21
        // copies a strided `[rows, 1]` column (e.g. `positions.slice(s![.., i..i + 1])`) as if it
        // were contiguous when its offset is 32-byte aligned (WebGPU/CUDA only).
        let positions = Tensor::<B, 2>::zeros([b, t], &device) + positions;
        let angles = positions.reshape([b, t, 1, 1]) * freqs;
        let swap: Vec<f32> = (0..dim * dim)
            .map(|i| f32::from(i / dim == (i % dim) ^ 1))
            .collect();
        Self {
            cos: angles.clone().cos(),
            sin: angles.sin(),
            swap: Tensor::<B, 1>::from_floats(swap.as_slice(), &device).reshape([dim, dim]),
        }
    }

    /// The tables of the last `s` time steps.
    pub fn tail(&self, s: usize) -> Self {
        let t = self.cos.dims()[1];
        Self {
            cos: self.cos.clone().slice(s![.., t - s..t, .., ..]),
            sin: self.sin.clone().slice(s![.., t - s..t, .., ..]),
            swap: self.swap.clone(),
        }
    }

    /// Rotates `x` `[batch, time, heads, dim]`.
    pub fn apply(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        match cpu_rotate(&x, &self.cos, &self.sin) {
            Some(y) => y,
            None => self.apply_ops(x),
        }
    }

    /// [`apply`](Self::apply) with burn's ops (every backend).
    fn apply_ops(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        let [b, t, h, d] = x.dims();
        // Angles are f32 (positions need it); the tables follow x's precision.
        let dtype = x.dtype();
        let swapped = x
            .clone()
            .reshape([b * t * h, d])
            .matmul(self.swap.clone().cast(dtype))
            .reshape([b, t, h, d]);
        let (cos, sin) = (self.cos.clone().cast(dtype), self.sin.clone().cast(dtype));
        let (cos, sin) = if h == 1 {
            (cos, sin)
        } else {
            (cos.repeat_dim(2, h), sin.repeat_dim(2, h))
        };
        x * cos + swapped * sin
    }
}

/// The angular frequency of channel pair `k` of `dim`: `θ^(−2k/dim)` (as the reference, in f32).
pub(crate) fn frequency(k: usize, dim: usize, theta: f32) -> f32 {
    1.0 / theta.powf((2 * k) as f32 / dim as f32)
}

/// The rotation as one pass (and one graph node) on the CPU backend; `None` on other backends,
/// for non-f32 tensors, or when a table would need a gradient.
fn cpu_rotate<B: Backend>(
    x: &Tensor<B, 4>,
    cos: &Tensor<B, 4>,
    sin: &Tensor<B, 4>,
) -> Option<Tensor<B, 4>> {
    let primitive = |t: &Tensor<B, 4>| t.clone().into_primitive().tensor();
    if let Ok(xf) = cast::<_, FlexTensor>(primitive(x)) {
        let tables = Tables {
            cos: cast(primitive(cos)).ok()?,
            sin: cast(primitive(sin)).ok()?,
        };
        return Some(back(tables.rotate(&xf, false)?));
    }
    let xa: AdPrimitive = cast(primitive(x)).ok()?;
    let (ca, sa): (AdPrimitive, AdPrimitive) =
        (cast(primitive(cos)).ok()?, cast(primitive(sin)).ok()?);
    if !ca.node.requirement.is_none() || !sa.node.requirement.is_none() {
        return None;
    }
    let tables = Tables {
        cos: ca.primitive,
        sin: sa.primitive,
    };
    let y = tables.rotate(&xa.primitive, false)?;
    let out: AdPrimitive = match RopeGrad
        .prepare::<NoCheckpointing>([xa.node])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(tables, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(back(out))
}

/// `cos`, `sin` `[batch | 1, time, 1, dim]` as flex tensors.
#[derive(Clone, Debug)]
struct Tables {
    cos: FlexTensor,
    sin: FlexTensor,
}

/// Where row `(i, j, k)` of a 4-D tensor starts in its storage.
fn row_start(t: &FlexTensor, i: usize, j: usize, k: usize) -> usize {
    let s = t.layout().strides();
    t.layout().start_offset() + i * s[0] as usize + j * s[1] as usize + k * s[2] as usize
}

impl Tables {
    /// `y_c = x_c cos_c + x_{c^1} sin_c`, or the transposed rotation
    /// `y_c = x_c cos_c + x_{c^1} sin_{c^1}` (the gradient), as a new contiguous tensor.
    fn rotate(&self, x: &FlexTensor, transposed: bool) -> Option<FlexTensor> {
        let (x, cos, sin) = (
            usable(x.clone())?,
            usable(self.cos.clone())?,
            usable(self.sin.clone())?,
        );
        let shape = x.layout().shape();
        let [b, t, h, d] = [shape[0], shape[1], shape[2], shape[3]];
        let table = cos.layout().shape();
        let batched = table[0] == b && b > 1;
        if table[1] != t || table[3] != d || !(table[0] == 1 || batched) || d % 2 != 0 {
            return None;
        }
        let (xs, cs, ss): (&[f32], &[f32], &[f32]) = (x.storage(), cos.storage(), sin.storage());
        let mut out = vec![0.0f32; b * t * h * d];
        out.par_chunks_mut(h * d)
            .with_min_len(16)
            .enumerate()
            .for_each(|(row, out)| {
                let (bi, ti) = (row / t, row % t);
                let tb = if batched { bi } else { 0 };
                let c = &cs[row_start(&cos, tb, ti, 0)..][..d];
                let s = &ss[row_start(&sin, tb, ti, 0)..][..d];
                for (hi, y) in out.chunks_exact_mut(d).enumerate() {
                    let x = &xs[row_start(&x, bi, ti, hi)..][..d];
                    for ch in 0..d {
                        let sn = if transposed { s[ch ^ 1] } else { s[ch] };
                        y[ch] = x[ch] * c[ch] + x[ch ^ 1] * sn;
                    }
                }
            });
        Some(FlexTensor::from_data(TensorData::new(out, [b, t, h, d])))
    }
}

/// The rotation's graph node: its gradient is the transposed rotation of the output's.
#[derive(Debug)]
struct RopeGrad;

impl Backward<Flex, 1> for RopeGrad {
    type State = Tables;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let tables = ops.state;
        unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
            tables
                .rotate(&grad, true)
                .expect("the forward pass rotated these shapes in f32")
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    type B = burn::backend::Flex;

    #[test]
    fn rotates_adjacent_pairs_and_keeps_norms() {
        let device = Default::default();
        let x = Tensor::<B, 4>::from_floats([[[[1.0, 0.0, 0.0, 2.0]]]], &device);
        let pos = Tensor::<B, 2>::from_floats([[3.0]], &device);
        let y: Vec<f32> = Rope::new(pos, 4, 10000.0)
            .apply(x)
            .into_data()
            .to_vec()
            .unwrap();
        // Pair 0 rotates by 3 rad, pair 1 by 3 / 100 rad.
        let (a, b) = (3.0f32, 0.03f32);
        let want = [a.cos(), a.sin(), -2.0 * b.sin(), 2.0 * b.cos()];
        for (g, w) in y.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{y:?}");
        }
    }

    /// The one-pass rotation (plain and autodiff CPU backends) equals burn's ops in value and
    /// in the input's gradient: per-row positions, a strided input (a channel slice of a wider
    /// tensor), the tables of the last steps (`tail`).
    #[test]
    fn fused_rotation_matches_burn_ops() {
        use crate::cpu::AdFlex;
        use burn::tensor::{Distribution, Tolerance};
        let device = Default::default();
        let positions =
            Tensor::<AdFlex, 2>::from_floats([[0., 1., 2., 3.], [5., 6., 7., 8.]], &device);
        let rope = Rope::new(positions, 8, 10000.0).tail(3);
        let wide =
            Tensor::<AdFlex, 4>::random([2, 3, 2, 12], Distribution::Normal(0., 1.), &device);
        // One leaf per path: a backward pass consumes the graph it walks.
        let leaf = || Tensor::<AdFlex, 4>::from_data(wide.to_data(), &device).require_grad();
        let (wide_ours, wide_burn) = (leaf(), leaf());
        let channels = |w: &Tensor<AdFlex, 4>| w.clone().slice(s![.., .., .., 2..10]);
        let x = channels(&wide_ours);
        assert!(
            cpu_rotate(&x, &rope.cos, &rope.sin).is_some(),
            "the fused node runs"
        );
        let probe =
            Tensor::<AdFlex, 4>::random([2, 3, 2, 8], Distribution::Normal(0., 1.), &device);
        let ours = rope.apply(x.clone());
        let burns = rope.apply_ops(channels(&wide_burn));
        let close =
            |a: TensorData, b: TensorData| a.assert_approx_eq::<f32>(&b, Tolerance::absolute(1e-6));
        close(ours.to_data(), burns.to_data());
        let plain = Rope::new(
            Tensor::<B, 2>::from_floats([[0., 1., 2., 3.], [5., 6., 7., 8.]], &device),
            8,
            10000.0,
        )
        .tail(3)
        .apply(x.inner());
        close(plain.to_data(), burns.to_data());
        let g_ours = (ours * probe.clone()).sum().backward();
        let g_burn = (burns * probe).sum().backward();
        close(
            wide_ours.grad(&g_ours).unwrap().to_data(),
            wide_burn.grad(&g_burn).unwrap().to_data(),
        );
    }
}
