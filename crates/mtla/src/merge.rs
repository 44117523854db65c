//! MTLA's temporal merge in its training form (paper Sec. 4.2): the chunk-wise partial states
//!
//! `ĉ'_t = Σ_{j in chunk(t), j ≤ t} w_j c_j`, with `w_j = σ(p_j · l_j) · keep_j`,
//!
//! where `p = fc_c(PE(chunk))` and `l = fc_p(c)` are the hyper-network's two projections
//! ([`HyperNetwork::projections`](crate::hypernet::HyperNetwork::projections)), `keep` hides
//! padding, and chunks are `down_rate` tokens long.
//!
//! With burn's ops this is a product, a sum, a sigmoid, two broadcast products, a padded
//! reshape and a cumulative sum, each a graph node over `[batch, T, r]` on one core. On the CPU
//! training backend it is one node, one pass per batch row forward and one backward
//! (`g_j = Σ_{t in chunk(j), t ≥ j} dĉ'_t`, a reverse chunk-wise sum):
//!
//! `dc_j = w_j g_j`, `dz_j = keep_j σ'(z_j) (g_j · c_j)`, `dl_j = dz_j p_j`,
//! `dp_j = Σ_batch dz_j l_j` (summed over the batch when `p` is shared by all rows).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use burn::tensor::TensorData;
use rayon::prelude::*;

use crate::cpu::{back, backprop, cast, values, AdPrimitive};

/// `ĉ'` `[batch, T, r]` from the latents `c` `[batch, T, r]`, the hyper-network projections
/// `p` `[rows, T, k]` (`rows` 1 or `batch`) and `l` `[batch, T, k]`, and the optional padding
/// mask `keep` (`[batch * T]`, 1 real, 0 padding).
pub fn merged_states<B: Backend>(
    c: Tensor<B, 3>,
    p: Tensor<B, 3>,
    l: Tensor<B, 3>,
    keep: Option<&[f32]>,
    down_rate: usize,
) -> Tensor<B, 3> {
    if let Some(states) = cpu_merge(&c, &p, &l, keep, down_rate) {
        return states;
    }
    let [b, t, r] = c.dims();
    let mut weighted = c.clone() * sigmoid((p * l).sum_dim(2));
    if let Some(keep) = keep {
        let keep = Tensor::<B, 1>::from_data(keep, (&c.device(), weighted.dtype()));
        weighted = weighted * keep.reshape([b, t, 1]);
    }
    chunk_cumsum(weighted, down_rate, b, t, r)
}

/// `out[i] = Σ_{j in chunk(i), j <= i} x[j]` along time, chunks of `s` starting at 0.
fn chunk_cumsum<B: Backend>(
    x: Tensor<B, 3>,
    s: usize,
    b: usize,
    t: usize,
    r: usize,
) -> Tensor<B, 3> {
    if s == 1 {
        return x;
    }
    let chunks = t.div_ceil(s);
    let padded = if chunks * s > t {
        let zeros = Tensor::zeros([b, chunks * s - t, r], (&x.device(), x.dtype()));
        Tensor::cat(vec![x, zeros], 1)
    } else {
        x
    };
    padded
        .reshape([b, chunks, s, r])
        .cumsum(2)
        .reshape([b, chunks * s, r])
        .slice(s![.., 0..t, ..])
}

/// The merge as one pass (and one graph node under autodiff) on the CPU backend; `None`
/// elsewhere or for non-f32 tensors.
fn cpu_merge<B: Backend>(
    c: &Tensor<B, 3>,
    p: &Tensor<B, 3>,
    l: &Tensor<B, 3>,
    keep: Option<&[f32]>,
    down_rate: usize,
) -> Option<Tensor<B, 3>> {
    let primitive = |t: &Tensor<B, 3>| t.clone().into_primitive().tensor();
    let keep = keep.map(<[f32]>::to_vec);
    if let Ok(cf) = cast::<_, FlexTensor>(primitive(c)) {
        let merge = Merge::new(
            &cf,
            &cast(primitive(p)).ok()?,
            &cast(primitive(l)).ok()?,
            keep,
            down_rate,
        )?;
        return Some(back(merge.forward().0));
    }
    let ad = |t: &Tensor<B, 3>| cast::<_, AdPrimitive>(primitive(t)).ok();
    let (ca, pa, la) = (ad(c)?, ad(p)?, ad(l)?);
    let merge = Merge::new(&ca.primitive, &pa.primitive, &la.primitive, keep, down_rate)?;
    let out: AdPrimitive = match MergeGrad
        .prepare::<NoCheckpointing>([ca.node.clone(), pa.node.clone(), la.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (states, weights) = merge.forward();
            prep.finish(Saved { merge, weights }, states)
        }
        OpsKind::UnTracked(prep) => prep.finish(merge.forward().0),
    };
    Some(back(out))
}

/// One merge call: contiguous copies of its inputs and their sizes.
#[derive(Clone, Debug)]
struct Merge {
    c: Vec<f32>,
    p: Vec<f32>,
    l: Vec<f32>,
    keep: Option<Vec<f32>>,
    down_rate: usize,
    batch: usize,
    /// 1 when `p` is shared by every batch row, else `batch`.
    p_rows: usize,
    time: usize,
    r: usize,
    k: usize,
}

/// What the backward pass needs: the call and `σ(z_j)` per token.
#[derive(Clone, Debug)]
struct Saved {
    merge: Merge,
    weights: Vec<f32>,
}

impl Merge {
    fn new(
        c: &FlexTensor,
        p: &FlexTensor,
        l: &FlexTensor,
        keep: Option<Vec<f32>>,
        down_rate: usize,
    ) -> Option<Self> {
        let (cs, ps, ls) = (c.layout().shape(), p.layout().shape(), l.layout().shape());
        let (batch, time, r, k) = (cs[0], cs[1], cs[2], ls[2]);
        let fits = ls[0] == batch
            && ls[1] == time
            && (ps[0] == 1 || ps[0] == batch)
            && ps[1] == time
            && ps[2] == k
            && keep.as_ref().is_none_or(|m| m.len() == batch * time)
            && down_rate > 0;
        if !fits {
            return None;
        }
        Some(Self {
            c: values(c)?,
            p: values(p)?,
            l: values(l)?,
            keep,
            down_rate,
            batch,
            p_rows: ps[0],
            time,
            r,
            k,
        })
    }

    /// Row `j` of batch row `b` of `p` (shared or per row).
    fn p_row(&self, b: usize, j: usize) -> &[f32] {
        let row = if self.p_rows == 1 { 0 } else { b };
        &self.p[(row * self.time + j) * self.k..][..self.k]
    }

    fn keep(&self, b: usize, j: usize) -> f32 {
        self.keep.as_ref().map_or(1.0, |m| m[b * self.time + j])
    }

    /// `ĉ'` `[batch, T, r]` and `σ(z)` `[batch * T]`.
    fn forward(&self) -> (FlexTensor, Vec<f32>) {
        let (t, r, k) = (self.time, self.r, self.k);
        let mut states = vec![0.0f32; self.batch * t * r];
        let mut weights = vec![0.0f32; self.batch * t];
        states
            .par_chunks_mut(t * r)
            .zip(weights.par_chunks_mut(t))
            .enumerate()
            .for_each(|(b, (states, weights))| {
                for j in 0..t {
                    let l = &self.l[(b * t + j) * k..][..k];
                    let z: f32 = self.p_row(b, j).iter().zip(l).map(|(p, l)| p * l).sum();
                    weights[j] = 1.0 / (1.0 + (-z).exp());
                    let w = weights[j] * self.keep(b, j);
                    let c = &self.c[(b * t + j) * r..][..r];
                    let (before, row) = states.split_at_mut(j * r);
                    let row = &mut row[..r];
                    if j % self.down_rate == 0 {
                        row.iter_mut().zip(c).for_each(|(s, c)| *s = w * c);
                    } else {
                        let prev = &before[(j - 1) * r..];
                        for ((s, c), prev) in row.iter_mut().zip(c).zip(prev) {
                            *s = prev + w * c;
                        }
                    }
                }
            });
        let states = FlexTensor::from_data(TensorData::new(states, [self.batch, t, r]));
        (states, weights)
    }

    /// Gradients of `c`, `p` and `l` from the states' gradient `d_states` and `σ(z)`.
    fn backward(&self, weights: &[f32], d_states: FlexTensor) -> [FlexTensor; 3] {
        let (t, r, k) = (self.time, self.r, self.k);
        let ds = values(&d_states).expect("the states' gradient is f32");
        let mut dc = vec![0.0f32; self.batch * t * r];
        let mut dl = vec![0.0f32; self.batch * t * k];
        // Per batch row its `dz` (then reduced into `dp`).
        let mut dz = vec![0.0f32; self.batch * t];
        dc.par_chunks_mut(t * r)
            .zip(dl.par_chunks_mut(t * k))
            .zip(dz.par_chunks_mut(t))
            .enumerate()
            .for_each_init(Vec::new, |g, (b, ((dc, dl), dz))| {
                g.resize(r, 0.0);
                // Tokens from last to first: `g` accumulates dĉ' over the rest of the chunk.
                for j in (0..t).rev() {
                    let d = &ds[(b * t + j) * r..][..r];
                    if j % self.down_rate == self.down_rate - 1 || j == t - 1 {
                        g.copy_from_slice(d);
                    } else {
                        g.iter_mut().zip(d).for_each(|(g, d)| *g += d);
                    }
                    let sig = weights[b * t + j];
                    let keep = self.keep(b, j);
                    let c = &self.c[(b * t + j) * r..][..r];
                    let w = sig * keep;
                    dc[j * r..][..r]
                        .iter_mut()
                        .zip(g.iter())
                        .for_each(|(dc, g)| *dc = w * g);
                    let gc: f32 = g.iter().zip(c).map(|(g, c)| g * c).sum();
                    dz[j] = keep * sig * (1.0 - sig) * gc;
                    dl[j * k..][..k]
                        .iter_mut()
                        .zip(self.p_row(b, j))
                        .for_each(|(dl, p)| *dl = dz[j] * p);
                }
            });
        let mut dp = vec![0.0f32; self.p_rows * t * k];
        for b in 0..self.batch {
            let row = if self.p_rows == 1 { 0 } else { b };
            for j in 0..t {
                let dz = dz[b * t + j];
                let l = &self.l[(b * t + j) * k..][..k];
                dp[(row * t + j) * k..][..k]
                    .iter_mut()
                    .zip(l)
                    .for_each(|(dp, l)| *dp += dz * l);
            }
        }
        let tensor =
            |v: Vec<f32>, dims: [usize; 3]| FlexTensor::from_data(TensorData::new(v, dims));
        [
            tensor(dc, [self.batch, t, r]),
            tensor(dp, [self.p_rows, t, k]),
            tensor(dl, [self.batch, t, k]),
        ]
    }
}

/// The merge's graph node, with parents `c`, `p`, `l`.
#[derive(Debug)]
struct MergeGrad;

impl Backward<Flex, 3> for MergeGrad {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        backprop(ops, grads, |Saved { merge, weights }, d_states| {
            merge.backward(&weights, d_states)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::AdFlex;
    use burn::tensor::{Distribution, Tolerance};

    /// Values and the gradients of `c`, `p` and `l` equal burn's ops, for a shared and a
    /// per-row `p`, with and without padding, a ragged last chunk and `s` 1, 2, 3; without
    /// autodiff the values too.
    #[test]
    fn fused_merge_matches_burn_ops() {
        let device = Default::default();
        let normal = Distribution::Normal(0., 1.);
        for (p_rows, padded, s) in [(1, false, 2), (2, true, 3), (1, true, 1), (2, false, 2)] {
            let (b, t, r, k) = (2, 7, 8, 2);
            let leaf = |dims: [usize; 3]| {
                let data = Tensor::<AdFlex, 3>::random(dims, normal, &device).into_data();
                let make = || Tensor::<AdFlex, 3>::from_data(data.clone(), &device).require_grad();
                (make(), make())
            };
            let (c, p, l) = (leaf([b, t, r]), leaf([p_rows, t, k]), leaf([b, t, k]));
            let keep: Vec<f32> = (0..b * t)
                .map(|i| f32::from(!padded || i % t < t - 2 || i < t))
                .collect();
            let keep = padded.then_some(keep.as_slice());
            let probe = Tensor::<AdFlex, 3>::random([b, t, r], normal, &device);
            assert!(cpu_merge(&c.0, &p.0, &l.0, keep, s).is_some());
            let ours = merged_states(c.0.clone(), p.0.clone(), l.0.clone(), keep, s);
            let mut weighted = c.1.clone() * sigmoid((p.1.clone() * l.1.clone()).sum_dim(2));
            if let Some(keep) = keep {
                let keep = Tensor::<AdFlex, 1>::from_floats(keep, &device);
                weighted = weighted * keep.reshape([b, t, 1]);
            }
            let burns = chunk_cumsum(weighted, s, b, t, r);
            let want = burns.to_data();
            let tolerance = Tolerance::absolute(1e-5);
            ours.to_data().assert_approx_eq::<f32>(&want, tolerance);
            let plain = merged_states(
                c.0.clone().inner(),
                p.0.clone().inner(),
                l.0.clone().inner(),
                keep,
                s,
            );
            plain.to_data().assert_approx_eq::<f32>(&want, tolerance);
            let g_ours = (ours * probe.clone()).sum().backward();
            let g_burn = (burns * probe).sum().backward();
            for (a, z) in [(&c.0, &c.1), (&p.0, &p.1), (&l.0, &l.1)] {
                a.grad(&g_ours)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(&z.grad(&g_burn).unwrap().to_data(), tolerance);
            }
        }
    }
}
