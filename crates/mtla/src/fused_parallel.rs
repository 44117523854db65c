//! Fused attention for the parallel (training) pass on the CPU backend, forward *and* backward.
//!
//! `O = (P ⊙ M) v` with `P = softmax(q kᵀ · scale + bias)` and the inverted-dropout mask `M`
//! (`m / (1 - p)`), written with burn ops, is a dozen graph nodes over the
//! `[batch, heads, queries, keys]` scores under autodiff: the scale, the bias, the softmax's
//! passes, the mask and its product, each saving a score-sized tensor for the backward pass and
//! each walked again there. Here it is one node. For every (row, K/V head) pair, on all cores,
//! and every block of 64 queries, the scores are one matrix product per head straight into a
//! block-sized buffer (any strides: heads split as views are read in place), the bias and the
//! softmax are one pass over each row, and the block's output is one product. Only each query
//! row's softmax normaliser is kept for the backward pass, which recomputes the block's scores
//! and `P` from it (FlashAttention's recomputation: no `[batch, heads, queries, keys]` tensor
//! exists at any time); the dropout mask is redrawn there from its counter-based stream
//! ([`MaskDraw`]), so the mask values and their order are those of
//! [`Dropout`](crate::dropout::Dropout) on the unfused path.
//!
//! Backward, with `P̃ = P ⊙ M` (FlashAttention's identities, Dao et al. 2022, Eq. in App. B.2):
//! `dP̃ = dO vᵀ`, `dv = P̃ᵀ dO`, `dS = P̃ ⊙ dP̃ − P ⊙ D` with `D = rowsum(dP̃ ⊙ P̃)`,
//! `dq = scale · dS k`, `dk = scale · dSᵀ q`. The bias (masks) takes no gradient.
//!
//! MLA/MTLA's scores carry a decoupled RoPE part (DeepSeek-V2 Eq. 10, paper Eq. 11/12),
//! `S = (q kᵀ + q_R k_Rᵀ) · scale` with one `k_R` per token shared by all heads: it is a second
//! product accumulated into the same scores, so neither `[q ‖ q_R]` nor `[k ‖ k_R]` (with `k_R`
//! repeated per head) is ever built; backward, `dq_R = scale · dS k_R` and
//! `dk_R = scale · Σ_heads dSᵀ q_R`, written column-major (see [`Grad`]) and transposed per pair.
//!
//! Used by [`grouped_attention`](crate::attend::grouped_attention) and
//! [`decoupled_rope_attention`](crate::attend::decoupled_rope_attention) on the CPU backend for
//! every kind (MHA/GQA/MQA and MLA/MTLA, expanded or absorbed with values a view of the latent
//! states), with or without autodiff; other backends, and dtypes other than f32, take burn's ops.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::Flex;
use burn::prelude::*;
use burn::tensor::{DType, TensorData};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::cpu::{back, backprop, cast, usable, AdPrimitive};
use crate::dropout::MaskDraw;
use crate::rows;

/// `softmax((q kᵀ + q_R k_Rᵀ) · scale + bias) ⊙ M · v` on the CPU backend (see the module doc),
/// the RoPE part only when `rope` (`q_R`, `k_R`) is given, with the dropout `prob` applied only
/// under autodiff; `None` on other backends, for non-f32 tensors, or when `bias` would need a
/// gradient. Shapes as [`grouped_attention`](crate::attend::grouped_attention); `q_R`
/// `[batch, heads, queries, d_R]`, `k_R` `[batch, rope_heads, keys, d_R]` with `rope_heads`
/// dividing the K/V heads.
pub fn parallel_attention<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    rope: Option<(&Tensor<B, 4>, &Tensor<B, 4>)>,
    bias: Option<&Tensor<B, 4>>,
    scale: f32,
    prob: f64,
) -> Option<Tensor<B, 4>> {
    let primitive = |t: &Tensor<B, 4>| t.clone().into_primitive().tensor();
    if let Ok(qf) = cast::<_, FlexTensor>(primitive(q)) {
        let (kf, vf) = (cast(primitive(k)).ok()?, cast(primitive(v)).ok()?);
        let bf = match bias {
            Some(b) => Some(cast(primitive(b)).ok()?),
            None => None,
        };
        let rf = match rope {
            Some((qr, kr)) => Some((cast(primitive(qr)).ok()?, cast(primitive(kr)).ok()?)),
            None => None,
        };
        let attention = Fused::new([qf, kf, vf], rf, bf, scale, None)?;
        return Some(back(attention.forward().0));
    }
    let ad = |t: &Tensor<B, 4>| cast::<_, AdPrimitive>(primitive(t)).ok();
    let (qa, ka, va) = (ad(q)?, ad(k)?, ad(v)?);
    let bf = match bias {
        Some(b) => {
            let ba = ad(b)?;
            if !ba.node.requirement.is_none() {
                return None;
            }
            Some(ba.primitive)
        }
        None => None,
    };
    let [batch, heads, queries, _] = q.dims();
    let keys = k.dims()[2];
    let mask = (prob > 0.0).then(|| MaskDraw::take(batch * heads * queries * keys, 1.0 - prob));
    let out = match rope {
        None => {
            let primitives = [&qa, &ka, &va].map(|a| a.primitive.clone());
            tracked(
                Fused::new(primitives, None, bf, scale, mask)?,
                [&qa, &ka, &va],
            )
        }
        Some((qr, kr)) => {
            let (qra, kra) = (ad(qr)?, ad(kr)?);
            let primitives = [&qa, &ka, &va].map(|a| a.primitive.clone());
            let rope = Some((qra.primitive.clone(), kra.primitive.clone()));
            let attention = Fused::new(primitives, rope, bf, scale, mask)?;
            tracked(attention, [&qa, &ka, &va, &qra, &kra])
        }
    };
    Some(back(out))
}

/// Runs `attention` as one graph node over its `N` `inputs` (`q`, `k`, `v`[, `q_R`, `k_R`]).
fn tracked<const N: usize>(attention: Fused, inputs: [&AdPrimitive; N]) -> AdPrimitive {
    match FusedAttention::<N>
        .prepare::<NoCheckpointing>(inputs.map(|a| a.node.clone()))
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let (out, norms) = attention.forward();
            prep.finish(
                Saved {
                    attention,
                    norms: Arc::new(norms),
                },
                out,
            )
        }
        OpsKind::UnTracked(prep) => prep.finish(attention.forward().0),
    }
}

/// One fused attention call: its inputs (f32 flex tensors, last axis contiguous), sizes and
/// dropout draw.
#[derive(Clone, Debug)]
struct Fused {
    q: FlexTensor,
    k: FlexTensor,
    v: FlexTensor,
    /// The decoupled RoPE part of the scores, if any.
    rope: Option<RopePart>,
    /// `[rows, 1, 1 | queries, keys]`, contiguous.
    bias: Option<FlexTensor>,
    scale: f32,
    mask: Option<MaskDraw>,
    /// Per bias row (or one for all), the query blocks and the keys they need.
    blocks: Vec<Vec<KeyBlock>>,
    batch: usize,
    heads: usize,
    kv_heads: usize,
    queries: usize,
    keys: usize,
    d_k: usize,
    d_v: usize,
}

/// `q_R` `[batch, heads, queries, d]` and `k_R` `[batch, heads, keys, d]` (last axes contiguous):
/// query head `h` meets RoPE key head `h / (heads / heads_R)`.
#[derive(Clone, Debug)]
struct RopePart {
    q: FlexTensor,
    k: FlexTensor,
    heads: usize,
    d: usize,
}

/// What the backward pass needs: the call and every query row's softmax normaliser
/// (`[batch, heads, queries]`, see [`rows::softmax_in_place`]), from which `P` is recomputed
/// block by block, as FlashAttention does, instead of keeping `[batch, heads, queries, keys]`.
#[derive(Clone, Debug)]
struct Saved {
    attention: Fused,
    norms: Arc<Vec<(f32, f32)>>,
}

/// A matrix operand of [`matmul`]: its first element and row/column strides (in elements).
#[derive(Clone, Copy)]
struct Mat {
    ptr: *const f32,
    rs: isize,
    cs: isize,
}

impl Mat {
    /// The same matrix from row `row` on.
    fn rows_from(self, row: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(row as isize * self.rs),
            ..self
        }
    }

    /// The rows of the keys `run` (of a keys × d operand).
    fn run_rows(self, run: Run) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(run.first as isize * self.rs),
            rs: self.rs * run.stride as isize,
            ..self
        }
    }

    /// The columns of the keys `run` (of a d × keys operand).
    fn run_cols(self, run: Run) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(run.first as isize * self.cs),
            cs: self.cs * run.stride as isize,
            ..self
        }
    }

    /// The columns from `col` on.
    fn cols_from(self, col: usize) -> Self {
        Self {
            ptr: self.ptr.wrapping_offset(col as isize * self.cs),
            ..self
        }
    }
}

/// Where [`matmul`] writes: its first element and row/column strides (in elements).
#[derive(Clone, Copy)]
struct Dst {
    ptr: *mut f32,
    rs: isize,
    cs: isize,
}

impl Dst {
    /// Row-major, rows `ld` apart.
    fn rows(ptr: *mut f32, ld: usize) -> Self {
        Self {
            ptr,
            rs: ld as isize,
            cs: 1,
        }
    }
}

/// A pair's gradient of `d` channels per row (query or key), row-major, or column-major with
/// columns `ld` apart. gemm walks a row-major destination transposed, `d` becoming its rows:
/// the RoPE part's 32 channels would run on its half-width (32-row) kernel, while the column-
/// major transpose runs its rows (queries of a block, keys of a run) on the full-width one.
#[derive(Clone, Copy)]
struct Grad {
    ptr: *mut f32,
    d: usize,
    column_major: Option<usize>,
}

impl Grad {
    /// Rows `first`, `first + stride`, … as a destination.
    fn rows_from(self, first: usize, stride: usize) -> Dst {
        match self.column_major {
            None => Dst::rows(self.ptr.wrapping_add(first * self.d), stride * self.d),
            Some(ld) => Dst {
                ptr: self.ptr.wrapping_add(first),
                rs: stride as isize,
                cs: ld as isize,
            },
        }
    }
}

/// `dst[m × n] = beta · lhs · rhs`, or `+=` when `accumulate`.
///
/// # Safety
/// The operands must address `m × k`, `k × n` and `m × n` valid elements with the strides given.
#[allow(clippy::too_many_arguments)]
unsafe fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: Dst,
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    beta: f32,
    parallelism: Parallelism,
) {
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.cs,
            dst.rs,
            accumulate,
            lhs.ptr,
            lhs.cs,
            lhs.rs,
            rhs.ptr,
            rhs.cs,
            rhs.rs,
            1.0f32,
            beta,
            false,
            false,
            false,
            parallelism,
        )
    }
}

impl Fused {
    fn new(
        [q, k, v]: [FlexTensor; 3],
        rope: Option<(FlexTensor, FlexTensor)>,
        bias: Option<FlexTensor>,
        scale: f32,
        mask: Option<MaskDraw>,
    ) -> Option<Self> {
        let (q, k, v) = (usable(q)?, usable(k)?, usable(v)?);
        let bias = match bias {
            Some(b) if b.dtype() == DType::F32 => Some(b.to_contiguous()),
            Some(_) => return None,
            None => None,
        };
        let (qs, ks, vs) = (q.layout().shape(), k.layout().shape(), v.layout().shape());
        let (batch, heads, queries, d_k) = (qs[0], qs[1], qs[2], qs[3]);
        let (kv_heads, keys, d_v) = (ks[1], ks[2], vs[3]);
        if keys == 0 || queries == 0 || ks[3] != d_k || heads % kv_heads != 0 {
            return None;
        }
        let rope = match rope {
            Some((qr, kr)) => {
                let (qr, kr) = (usable(qr)?, usable(kr)?);
                let (qrs, krs) = (qr.layout().shape(), kr.layout().shape());
                let (rope_heads, d) = (krs[1], qrs[3]);
                let fits = qrs[..3] == qs[..3]
                    && krs[0] == batch
                    && krs[2] == keys
                    && krs[3] == d
                    && kv_heads % rope_heads == 0;
                if !fits {
                    return None;
                }
                Some(RopePart {
                    q: qr,
                    k: kr,
                    heads: rope_heads,
                    d,
                })
            }
            None => None,
        };
        Some(Self {
            blocks: key_blocks(bias.as_ref(), queries, keys),
            q,
            k,
            v,
            rope,
            bias,
            scale,
            mask,
            batch,
            heads,
            kv_heads,
            queries,
            keys,
            d_k,
            d_v,
        })
    }

    fn group(&self) -> usize {
        self.heads / self.kv_heads
    }

    /// Rows of one (row, K/V head) pair: the group's query heads, each `queries` long.
    fn rows(&self) -> usize {
        self.group() * self.queries
    }

    /// Matrix products inside a pair run on all cores only when pairs are too few to share.
    fn parallelism(&self) -> Parallelism {
        if self.batch * self.kv_heads < rayon::current_num_threads() {
            Parallelism::Rayon(0)
        } else {
            Parallelism::None
        }
    }

    /// `[rows, d]` of `t` `[batch, heads, rows, d]` at (b, h), row-major with its row stride.
    fn operand(t: &FlexTensor, b: usize, h: usize) -> Mat {
        let layout = t.layout();
        let s = layout.strides();
        let data: &[f32] = t.storage();
        let at = layout.start_offset() as isize + b as isize * s[0] + h as isize * s[1];
        Mat {
            ptr: data[at as usize..].as_ptr(),
            rs: s[2],
            cs: 1,
        }
    }

    /// The RoPE part's query rows of head `h` at batch row `b`, if there is a RoPE part.
    fn rope_queries(&self, b: usize, h: usize) -> Option<Mat> {
        Some(Self::operand(&self.rope.as_ref()?.q, b, h))
    }

    /// The RoPE part's keys met by K/V head `kv_head` at batch row `b`, if there is a RoPE part.
    fn rope_keys(&self, b: usize, kv_head: usize) -> Option<Mat> {
        let r = self.rope.as_ref()?;
        Some(Self::operand(&r.k, b, kv_head / (self.kv_heads / r.heads)))
    }

    /// Bias row of query `query` at batch row `b`, if any.
    fn bias_row(&self, b: usize, query: usize) -> Option<&[f32]> {
        Some(bias_row(self.bias.as_ref()?, b, query))
    }

    /// `P̃ = P ⊙ M` of `p`, the rows `first..` of pair `pair` over their first `seen` keys, into
    /// `out` (`p` itself when there is no dropout): the mask elements the unfused path draws
    /// for the same scores.
    fn dropped<'a>(
        &self,
        pair: usize,
        first: usize,
        block: &KeyBlock,
        p: &'a [f32],
        out: &'a mut Vec<f32>,
    ) -> &'a [f32] {
        let Some(mask) = &self.mask else { return p };
        let seen = block.keys;
        out.resize(p.len(), 0.0);
        let mut row_mask = Vec::new();
        for (i, (m, p)) in out.chunks_mut(seen).zip(p.chunks(seen)).enumerate() {
            let from = (pair * self.rows() + first + i) * self.keys;
            match block.runs.as_slice() {
                [run] if run.first == 0 && run.stride == 1 => mask.fill(from, m),
                runs => {
                    // The row's mask up to its last key, then the keys of the runs.
                    let last = runs.last().map_or(0, |r| r.key(r.len - 1) + 1);
                    row_mask.resize(last, 0.0);
                    mask.fill(from, &mut row_mask);
                    for (at, run) in block.columns() {
                        let taken = run.of(&row_mask);
                        m[at..at + run.len]
                            .iter_mut()
                            .zip(taken)
                            .for_each(|(m, x)| *m = *x);
                    }
                }
            }
            m.iter_mut().zip(p).for_each(|(m, p)| *m *= p);
        }
        out
    }

    /// `kᵀ` and `k_Rᵀ` of pair (`b`, `kv_head`) into `keys_t` (see [`KeysT`]).
    fn keys_t(&self, b: usize, kv_head: usize, keys_t: &mut KeysT) {
        keys_t
            .k
            .fill(self.keys, self.d_k, Self::operand(&self.k, b, kv_head));
        if let (Some(k_r), Some(r)) = (self.rope_keys(b, kv_head), &self.rope) {
            keys_t.k_r.fill(self.keys, r.d, k_r);
        }
    }

    /// The scores `S = scale · (q kᵀ + q_R k_Rᵀ) + bias` of query head `g` of pair (`b`,
    /// `kv_head`), whose `kᵀ` (and `k_Rᵀ`) are `keys_t`, the queries of `block` against its
    /// first `block.keys` keys, into `s` (`[block.len, block.keys]`, row-major).
    fn scores(
        &self,
        (b, kv_head, g): (usize, usize, usize),
        keys_t: &KeysT,
        block: &KeyBlock,
        s: &mut Vec<f32>,
    ) {
        let (m, seen) = (block.len, block.keys);
        s.resize(m * seen, 0.0);
        let head = kv_head * self.group() + g;
        let mut parts = vec![(self.d_k, Self::operand(&self.q, b, head), keys_t.k.mat())];
        if let (Some(q_r), Some(r)) = (self.rope_queries(b, head), &self.rope) {
            parts.push((r.d, q_r, keys_t.k_r.mat()));
        }
        for (i, (d, q, k_t)) in parts.into_iter().enumerate() {
            // The RoPE part accumulates into the same scores; each run of keys is a column range.
            for (at, run) in block.columns() {
                unsafe {
                    matmul(
                        m,
                        run.len,
                        d,
                        Dst::rows(s[at..].as_mut_ptr(), seen),
                        i > 0,
                        q.rows_from(block.start),
                        k_t.run_cols(run),
                        self.scale,
                        self.parallelism(),
                    )
                };
            }
        }
        for (i, row) in s.chunks_mut(seen).enumerate() {
            if let Some(bias) = self.bias_row(b, block.start + i) {
                for (at, run) in block.columns() {
                    row[at..at + run.len]
                        .iter_mut()
                        .zip(run.of(bias))
                        .for_each(|(s, b)| *s += b);
                }
            }
        }
    }

    /// Query blocks of batch row `b` and the keys each needs (see [`KeyBlock`]).
    fn blocks(&self, b: usize) -> &[KeyBlock] {
        &self.blocks[if self.blocks.len() == 1 { 0 } else { b }]
    }

    /// The output `[batch, heads, queries, d_v]` and every query row's softmax normaliser.
    /// Per query block the scores live in a block-sized buffer (in cache), never in memory as
    /// a whole.
    fn forward(&self) -> (FlexTensor, Vec<(f32, f32)>) {
        let (rows, d_v) = (self.rows(), self.d_v);
        let pairs = self.batch * self.kv_heads;
        let mut out = vec![0.0f32; pairs * rows * d_v];
        let mut norms = vec![(0.0f32, 0.0f32); pairs * rows];
        let parallelism = self.parallelism();
        out.par_chunks_mut(rows * d_v)
            .zip(norms.par_chunks_mut(rows))
            .enumerate()
            .for_each_init(
                || (Vec::new(), Vec::new(), KeysT::default()),
                |(s, dropped, keys_t), (pair, (out, norms))| {
                    let (b, kv_head) = (pair / self.kv_heads, pair % self.kv_heads);
                    let v = Self::operand(&self.v, b, kv_head);
                    self.keys_t(b, kv_head, keys_t);
                    for g in 0..self.group() {
                        for block in self.blocks(b) {
                            let (first, seen) = (g * self.queries + block.start, block.keys);
                            self.scores((b, kv_head, g), keys_t, block, s);
                            for (row, norm) in s.chunks_mut(seen).zip(&mut norms[first..]) {
                                *norm = rows::softmax_in_place(row);
                            }
                            let weights = self.dropped(pair, first, block, s, dropped);
                            let lhs = Mat {
                                ptr: weights.as_ptr(),
                                rs: seen as isize,
                                cs: 1,
                            };
                            for (i, (at, run)) in block.columns().enumerate() {
                                unsafe {
                                    matmul(
                                        block.len,
                                        d_v,
                                        run.len,
                                        Dst::rows(out[first * d_v..].as_mut_ptr(), d_v),
                                        i > 0,
                                        lhs.cols_from(at),
                                        v.run_rows(run),
                                        1.0,
                                        parallelism,
                                    )
                                };
                            }
                        }
                    }
                },
            );
        let shape = Shape::new([self.batch, self.heads, self.queries, d_v]);
        (FlexTensor::from_data(TensorData::new(out, shape)), norms)
    }

    /// Gradients of `q`, `k`, `v` (and of `q_R`, `k_R` with a RoPE part) from the output's
    /// gradient `d_out` and the softmax normalisers of the forward pass: per query block, `P`
    /// is recomputed from the scores (the same values, bit for bit) into a block-sized buffer.
    fn backward(&self, norms: &[(f32, f32)], d_out: FlexTensor) -> Vec<FlexTensor> {
        let (rows, keys, d_k, d_v) = (self.rows(), self.keys, self.d_k, self.d_v);
        let d_r = self.rope.as_ref().map_or(0, |r| r.d);
        let pairs = self.batch * self.kv_heads;
        // Usually a view (the gradient of the heads' merge), read in place.
        let d_out = usable(d_out).expect("the output's gradient is f32");
        // Per pair, `dq_R` of its query heads and its share of `dk_R` (summed over pairs below).
        // (One unused element per pair without a RoPE part, so that every pair has a chunk.)
        let rope_len = |n: usize| (n * d_r).max(1);
        let (mut dq, mut dk, mut dv, mut dq_r, mut dk_r) = (
            vec![0.0f32; pairs * rows * d_k],
            vec![0.0f32; pairs * keys * d_k],
            vec![0.0f32; pairs * keys * d_v],
            vec![0.0f32; pairs * rope_len(rows)],
            vec![0.0f32; pairs * rope_len(keys)],
        );
        let parallelism = self.parallelism();
        dq.par_chunks_mut(rows * d_k)
            .zip(dk.par_chunks_mut(keys * d_k))
            .zip(dv.par_chunks_mut(keys * d_v))
            .zip(dq_r.par_chunks_mut(rope_len(rows)))
            .zip(dk_r.par_chunks_mut(rope_len(keys)))
            .enumerate()
            .for_each_init(
                || {
                    let buffers = (Vec::new(), Vec::new(), Vec::new());
                    let rope_t = (Vec::new(), Vec::new());
                    (buffers, KeysT::default(), Transposed::default(), rope_t)
                },
                |((p, dropped, ds), keys_t, values_t, (dq_r_t, dk_r_t)),
                 (pair, ((((dq, dk), dv), dq_r), dk_r))| {
                    let (b, kv_head) = (pair / self.kv_heads, pair % self.kv_heads);
                    let norms = &norms[pair * rows..(pair + 1) * rows];
                    let k = Self::operand(&self.k, b, kv_head);
                    let k_r = self.rope_keys(b, kv_head);
                    self.keys_t(b, kv_head, keys_t);
                    values_t.fill(keys, d_v, Self::operand(&self.v, b, kv_head));
                    let v_t = values_t.mat();
                    // The RoPE part's gradients, column-major (see [`Grad`]), transposed below.
                    dq_r_t.resize(rows * d_r, 0.0);
                    dk_r_t.clear();
                    dk_r_t.resize(keys * d_r, 0.0);
                    for g in 0..self.group() {
                        let head = kv_head * self.group() + g;
                        let q = Self::operand(&self.q, b, head);
                        let rope = self.rope_queries(b, head).zip(k_r);
                        let d_out_head = Self::operand(&d_out, b, head);
                        for block in self.blocks(b) {
                            let (first, m, seen) =
                                (g * self.queries + block.start, block.len, block.keys);
                            // P, then P̃, as in the forward pass.
                            self.scores((b, kv_head, g), keys_t, block, p);
                            for (row, &norm) in p.chunks_mut(seen).zip(&norms[first..]) {
                                rows::softmax_with(row, norm);
                            }
                            let pd = self.dropped(pair, first, block, p, dropped);
                            ds.resize(m * seen, 0.0);
                            let rows_of = |data: &[f32]| Mat {
                                ptr: data.as_ptr(),
                                rs: seen as isize,
                                cs: 1,
                            };
                            let cols_of = |data: &[f32]| Mat {
                                ptr: data.as_ptr(),
                                rs: 1,
                                cs: seen as isize,
                            };
                            let d_o = d_out_head.rows_from(block.start);
                            // dP̃ = dO vᵀ, dv += P̃ᵀ dO, run by run of keys.
                            for (at, run) in block.columns() {
                                unsafe {
                                    matmul(
                                        m,
                                        run.len,
                                        d_v,
                                        Dst::rows(ds[at..].as_mut_ptr(), seen),
                                        false,
                                        d_o,
                                        v_t.run_cols(run),
                                        1.0,
                                        parallelism,
                                    );
                                    matmul(
                                        run.len,
                                        d_v,
                                        m,
                                        Dst::rows(
                                            dv[run.first * d_v..].as_mut_ptr(),
                                            run.stride * d_v,
                                        ),
                                        true,
                                        cols_of(pd).rows_from(at),
                                        d_o,
                                        1.0,
                                        parallelism,
                                    );
                                }
                            }
                            // dS = P̃ ⊙ dP̃ − P ⊙ rowsum(dP̃ ⊙ P̃).
                            for ((ds, pd), p) in
                                ds.chunks_mut(seen).zip(pd.chunks(seen)).zip(p.chunks(seen))
                            {
                                let d = rows::dot(ds, pd);
                                for ((ds, pd), p) in ds.iter_mut().zip(pd).zip(p) {
                                    *ds = pd * *ds - p * d;
                                }
                            }
                            // dq = scale · dS k, dk += scale · dSᵀ q (and the same for the
                            // RoPE part).
                            let row_major = |ptr, d| Grad {
                                ptr,
                                d,
                                column_major: None,
                            };
                            let mut grads = vec![(
                                row_major(dq.as_mut_ptr(), d_k),
                                row_major(dk.as_mut_ptr(), d_k),
                                q,
                                k,
                            )];
                            if let Some((q_r, k_r)) = rope {
                                let column_major = |ptr, ld| Grad {
                                    ptr,
                                    d: d_r,
                                    column_major: Some(ld),
                                };
                                grads.push((
                                    column_major(dq_r_t.as_mut_ptr(), rows),
                                    column_major(dk_r_t.as_mut_ptr(), keys),
                                    q_r,
                                    k_r,
                                ));
                            }
                            for (dq, dk, q, k) in grads {
                                let d = dq.d;
                                for (i, (at, run)) in block.columns().enumerate() {
                                    unsafe {
                                        matmul(
                                            m,
                                            d,
                                            run.len,
                                            dq.rows_from(first, 1),
                                            i > 0,
                                            rows_of(ds).cols_from(at),
                                            k.run_rows(run),
                                            self.scale,
                                            parallelism,
                                        );
                                        matmul(
                                            run.len,
                                            d,
                                            m,
                                            dk.rows_from(run.first, run.stride),
                                            true,
                                            cols_of(ds).rows_from(at),
                                            q.rows_from(block.start),
                                            self.scale,
                                            parallelism,
                                        );
                                    }
                                }
                            }
                        }
                    }
                    if d_r > 0 {
                        columns_to_rows(dq_r_t, rows, dq_r);
                        columns_to_rows(dk_r_t, keys, dk_r);
                    }
                },
            );
        let tensor = |data: Vec<f32>, dims: [usize; 4]| {
            FlexTensor::from_data(TensorData::new(data, Shape::new(dims)))
        };
        let mut out = vec![
            tensor(dq, [self.batch, self.heads, self.queries, d_k]),
            tensor(dk, [self.batch, self.kv_heads, keys, d_k]),
            tensor(dv, [self.batch, self.kv_heads, keys, d_v]),
        ];
        if let Some(r) = &self.rope {
            // Pair (b, kv_head) adds its dk_R into RoPE head kv_head / (kv_heads / heads_R).
            let per_rope_head = self.kv_heads / r.heads;
            if per_rope_head > 1 {
                let mut sum = vec![0.0f32; self.batch * r.heads * keys * d_r];
                sum.par_chunks_mut(keys * d_r)
                    .zip(dk_r.par_chunks(per_rope_head * keys * d_r))
                    .for_each(|(sum, parts)| {
                        for part in parts.chunks(keys * d_r) {
                            sum.iter_mut().zip(part).for_each(|(a, b)| *a += b);
                        }
                    });
                dk_r = sum;
            }
            out.push(tensor(dq_r, [self.batch, self.heads, self.queries, d_r]));
            out.push(tensor(dk_r, [self.batch, r.heads, keys, d_r]));
        }
        out
    }
}

/// `dst` (`n` rows of `dst.len() / n` channels, row-major) from its column-major transpose `src`.
fn columns_to_rows(src: &[f32], n: usize, dst: &mut [f32]) {
    for (i, row) in dst.chunks_mut(dst.len() / n).enumerate() {
        for (c, x) in row.iter_mut().enumerate() {
            *x = src[c * n + i];
        }
    }
}

/// A pair's `kᵀ` and, with a RoPE part, `k_Rᵀ`: the right operands of its scores.
#[derive(Default)]
struct KeysT {
    k: Transposed,
    k_r: Transposed,
}

/// The transpose `[cols, rows]` of a `[rows, cols]` operand, made once per (row, K/V head)
/// pair. `S = q kᵀ` with `k` as stored makes the matrix product transpose `k` element by
/// element into its packed layout for every query block (~15 % of an MHA layer step at
/// T 1024); from `kᵀ` it reads contiguous runs of keys instead (and `dP̃ = dO vᵀ` the same
/// from `vᵀ`).
#[derive(Default)]
struct Transposed {
    data: Vec<f32>,
    /// Row stride: `rows` rounded up to 16 lanes, plus 16 when a multiple of 256 elements, so
    /// the product's walk down a column does not hit one cache set (4 KiB aliasing).
    ld: usize,
}

impl Transposed {
    /// Transposes `src` (`rows × cols`, columns contiguous) into `self`, in 16 × 16 tiles.
    fn fill(&mut self, rows: usize, cols: usize, src: Mat) {
        let ld = rows.next_multiple_of(16);
        self.ld = if ld.is_multiple_of(256) { ld + 16 } else { ld };
        self.data.resize(cols * self.ld, 0.0);
        const TILE: usize = 16;
        for r0 in (0..rows).step_by(TILE) {
            for c0 in (0..cols).step_by(TILE) {
                for r in r0..(r0 + TILE).min(rows) {
                    // SAFETY: `src` addresses `rows × cols` elements (the caller's operand).
                    let row = unsafe {
                        std::slice::from_raw_parts(src.ptr.offset(r as isize * src.rs), cols)
                    };
                    let end = (c0 + TILE).min(cols);
                    for (c, &value) in (c0..end).zip(&row[c0..end]) {
                        self.data[c * self.ld + r] = value;
                    }
                }
            }
        }
    }

    /// `[cols, rows]` as a matrix operand.
    fn mat(&self) -> Mat {
        Mat {
            ptr: self.data.as_ptr(),
            rs: self.ld as isize,
            cs: 1,
        }
    }
}

/// A block of consecutive queries and the keys its products take: keys none of its queries
/// can see (bias ≤ [`HIDDEN`]) take no part. Their softmax weights would be
/// `exp(-1e9 + O(scores))`, exactly 0 in f32, so skipping them changes no value. Usually the
/// keys are those up to the last visible one (what makes causal self-attention, and padded
/// keys, cost about half). Under MTLA's stride-aware mask a block's queries see, before the
/// block's own states, only each chunk's last one: there the keys are that strided run and
/// then the block's own run, ~1/s of the keys before the block.
#[derive(Clone, Debug)]
struct KeyBlock {
    start: usize,
    len: usize,
    /// The runs of keys taken, in order.
    runs: Vec<Run>,
    /// Keys taken, all runs together: the width of the block's scores.
    keys: usize,
}

impl KeyBlock {
    fn new(start: usize, len: usize, runs: Vec<Run>) -> Self {
        let keys = runs.iter().map(|r| r.len).sum();
        Self {
            start,
            len,
            runs,
            keys,
        }
    }

    /// Each run with its first column in the block's scores.
    fn columns(&self) -> impl Iterator<Item = (usize, Run)> + '_ {
        self.runs.iter().scan(0, |at, &run| {
            let first = *at;
            *at += run.len;
            Some((first, run))
        })
    }
}

/// Keys `first`, `first + stride`, … (`len` of them).
#[derive(Clone, Copy, Debug)]
struct Run {
    first: usize,
    len: usize,
    stride: usize,
}

impl Run {
    /// The `j`-th key.
    fn key(&self, j: usize) -> usize {
        self.first + j * self.stride
    }

    /// The run's elements of a row over all keys (a bias or mask row).
    fn of<'a>(&self, row: &'a [f32]) -> impl Iterator<Item = &'a f32> {
        row[self.first..].iter().step_by(self.stride).take(self.len)
    }
}

/// Queries per [`KeyBlock`].
const QUERY_BLOCK: usize = 64;

/// A bias at or below this hides its key (masks here use -1e9).
const HIDDEN: f32 = -1e8;

/// Row of `bias` `[rows, 1, 1 | queries, keys]` (contiguous) for batch row `b` (any when
/// `rows` is 1) and query `query`.
fn bias_row(bias: &FlexTensor, b: usize, query: usize) -> &[f32] {
    let shape = bias.layout().shape();
    let (rows, bias_q, keys) = (shape[0], shape[2], shape[3]);
    let row = if rows == 1 { 0 } else { b } * bias_q + if bias_q == 1 { 0 } else { query };
    let at = bias.layout().start_offset() + row * keys;
    &bias.storage::<f32>()[at..at + keys]
}

/// The key blocks of every bias row (one list for all batch rows without a per-row bias).
fn key_blocks(bias: Option<&FlexTensor>, queries: usize, keys: usize) -> Vec<Vec<KeyBlock>> {
    let starts = (0..queries).step_by(QUERY_BLOCK);
    let prefix = |start, seen| {
        let len = QUERY_BLOCK.min(queries - start);
        let all = Run {
            first: 0,
            len: seen,
            stride: 1,
        };
        KeyBlock::new(start, len, vec![all])
    };
    let Some(bias) = bias else {
        return vec![starts.map(|start| prefix(start, keys)).collect()];
    };
    (0..bias.layout().shape()[0])
        .map(|r| {
            starts
                .clone()
                .map(|start| {
                    let len = QUERY_BLOCK.min(queries - start);
                    let rows: Vec<&[f32]> =
                        (start..start + len).map(|q| bias_row(bias, r, q)).collect();
                    // Keys up to the last visible one; all of them when a query sees none (its
                    // softmax is then uniform over every key, as burn's).
                    let last = |row: &[f32]| row.iter().rposition(|&x| x > HIDDEN);
                    let Some(seen) = rows
                        .iter()
                        .map(|row| last(row).map(|j| j + 1))
                        .collect::<Option<Vec<_>>>()
                    else {
                        return prefix(start, keys);
                    };
                    let seen = seen.into_iter().max().unwrap_or(keys);
                    // The block's own states start at its first query's key. Only full blocks
                    // take strided runs: with few queries, packing the strided keys for the
                    // products costs more than the skipped work (the paper preset's decoder,
                    // ~30 target queries over a long speech prefix, trained 0.93-0.94x as fast).
                    let own = keys - queries + start;
                    let full = len == QUERY_BLOCK;
                    full.then(|| strided(&rows, own, seen))
                        .flatten()
                        .map(|runs| KeyBlock::new(start, len, runs))
                        .unwrap_or_else(|| prefix(start, seen))
                })
                .collect()
        })
        .collect()
}

/// The runs of a block whose queries (bias `rows`) see, before key `own`, only keys on one
/// stride of at least 2 (MTLA's stride-aware mask): that strided run, then `own..seen`; `None`
/// when the visible keys before `own` are not so, or the runs would save little.
fn strided(rows: &[&[f32]], own: usize, seen: usize) -> Option<Vec<Run>> {
    if own == 0 || own >= seen {
        return None;
    }
    let visible: Vec<usize> = (0..own)
        .filter(|&j| rows.iter().any(|row| row[j] > HIDDEN))
        .collect();
    let tail = Run {
        first: own,
        len: seen - own,
        stride: 1,
    };
    let (&first, &last) = match (visible.first(), visible.last()) {
        (Some(first), Some(last)) => (first, last),
        _ => return Some(vec![tail]),
    };
    let stride = visible.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(own);
    if visible.len() > 1 && (stride < 2 || visible.iter().any(|j| (j - first) % stride != 0)) {
        return None;
    }
    let before = Run {
        first,
        len: (last - first) / stride + 1,
        stride,
    };
    // Worth it only when it skips a quarter of the keys and at least [`MIN_SKIPPED`]: each run
    // is a product call of its own, with strided operands to pack.
    let taken = before.len + tail.len;
    (4 * taken <= 3 * seen && seen - taken >= MIN_SKIPPED).then(|| vec![before, tail])
}

/// Fewest keys a block's strided runs must skip to be taken: each run is a product call of its
/// own, with strided operands to pack. At the paper's dims and T 256 (32-96 keys skipped per
/// block) they pay on the current code (128 before, see item 34 of the training-speed README):
/// the layer step 1.19-1.22x -> 1.11-1.13x our MHA's (`mtla-st bench attention-train`).
const MIN_SKIPPED: usize = 32;

/// The fused call's graph node, with parents `q`, `k`, `v` (`N` = 3) and `q_R`, `k_R` (`N` = 5).
#[derive(Debug)]
struct FusedAttention<const N: usize>;

impl<const N: usize> Backward<Flex, N> for FusedAttention<N> {
    type State = Saved;

    fn backward(self, ops: Ops<Self::State, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        backprop(ops, grads, |Saved { attention, norms }, d_out| {
            attention.backward(&norms, d_out)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::AdFlex;
    use crate::dropout::{seed, Dropout};
    use burn::tensor::activation::softmax;
    use burn::tensor::{Distribution, Tolerance};

    /// Burn's ops for the same attention (the unfused path).
    fn reference<B: Backend>(
        q: Tensor<B, 4>,
        k: Tensor<B, 4>,
        v: Tensor<B, 4>,
        bias: Option<Tensor<B, 4>>,
        scale: f64,
        prob: f64,
    ) -> Tensor<B, 4> {
        let [batch, heads, queries, d_k] = q.dims();
        let kv_heads = k.dims()[1];
        let group = heads / kv_heads;
        let q = q.reshape([batch, kv_heads, group * queries, d_k]);
        let mut scores = q.matmul(k.swap_dims(2, 3)).mul_scalar(scale);
        if let Some(bias) = bias {
            let [rows, _, bias_q, keys] = bias.dims();
            let bias = bias
                .reshape([rows, 1, 1, bias_q * keys])
                .repeat_dim(2, if bias_q == 1 { group * queries } else { group })
                .reshape([rows, 1, group * queries, keys]);
            scores = scores + bias;
        }
        let weights = Dropout::new(prob).forward(softmax(scores, 3));
        let d_v = v.dims()[3];
        weights.matmul(v).reshape([batch, heads, queries, d_v])
    }

    /// Values and the gradients of `q`, `k` and `v` equal burn's ops, with and without dropout,
    /// for MHA (a padding bias, one batch row all padding, strided heads) and a grouped,
    /// latent-shaped call (causal bias, values a view of the keys), with one query block and
    /// with several (whose hidden trailing keys are skipped).
    #[test]
    fn matches_burn_ops_in_value_and_gradient() {
        let device = Default::default();
        let normal = Distribution::Normal(0., 1.);
        for (heads, kv_heads, per_query_bias, prob, queries) in [
            (4, 4, false, 0.0, 7),
            (4, 4, false, 0.3, 7),
            (4, 1, true, 0.0, 7),
            (6, 2, true, 0.2, 7),
            (2, 1, true, 0.0, 2 * QUERY_BLOCK + 9),
            (2, 2, false, 0.1, QUERY_BLOCK + 1),
        ] {
            let (batch, keys, d_k) = (3, queries + 2, 8);
            // Queries as split heads: a [b, t, h, d] buffer viewed as [b, h, t, d].
            let q = Tensor::<AdFlex, 4>::random([batch, queries, heads, d_k], normal, &device)
                .swap_dims(1, 2)
                .require_grad();
            let kv = Tensor::<AdFlex, 4>::random([batch, kv_heads, keys, d_k], normal, &device)
                .require_grad();
            // Values as a view of the keys; each graph slices its own (burn counts a slice
            // node shared by two graphs twice).
            let values = || kv.clone().slice(s![.., .., .., 0..d_k - 2]);
            let bias = if per_query_bias {
                let causal = Tensor::<AdFlex, 2>::ones([queries, keys], &device)
                    .triu(3)
                    .mul_scalar(-1e9);
                causal.reshape([1, 1, queries, keys])
            } else {
                let mut pad = vec![0.0f32; batch * keys];
                pad[keys - 2..keys].fill(-1e9);
                pad[keys + keys / 2..].fill(-1e9);
                Tensor::<AdFlex, 1>::from_floats(pad.as_slice(), &device)
                    .reshape([batch, 1, 1, keys])
            };
            let scale = 0.3;
            // Time-major, as after merging heads: the output's gradient arrives as a view.
            let probe =
                Tensor::<AdFlex, 4>::random([batch, queries, heads, d_k - 2], normal, &device);
            seed(11);
            let ours =
                parallel_attention(&q, &kv, &values(), None, Some(&bias), scale as f32, prob)
                    .expect("fused");
            seed(11);
            let burns = reference(q.clone(), kv.clone(), values(), Some(bias), scale, prob);
            let tolerance = Tolerance::absolute(1e-5);
            ours.to_data()
                .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
            let g_ours = (ours.swap_dims(1, 2) * probe.clone()).sum().backward();
            let g_burn = (burns.swap_dims(1, 2) * probe).sum().backward();
            for t in [&q, &kv] {
                t.grad(&g_ours)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(&t.grad(&g_burn).unwrap().to_data(), tolerance);
            }
        }
    }

    /// Under MTLA's stride-aware mask (s = 2 and 3, over a prefix and several query blocks)
    /// the blocks take a strided run of keys and then their own (checked), and values and
    /// gradients still equal burn's ops, with and without dropout and a padded batch row.
    #[test]
    fn stride_aware_blocks_match_burn_ops() {
        let device = Default::default();
        let normal = Distribution::Normal(0., 1.);
        for (down_rate, heads, kv_heads, prob, prefix) in
            [(2, 2, 1, 0.0, 5), (3, 4, 2, 0.2, 0), (2, 2, 2, 0.1, 17)]
        {
            // Enough queries that the later blocks skip at least `MIN_SKIPPED` keys.
            let (batch, queries, d_k) = (2, 5 * QUERY_BLOCK + 9, 8);
            let keys = prefix + queries;
            let q = Tensor::<AdFlex, 4>::random([batch, heads, queries, d_k], normal, &device)
                .require_grad();
            let k = Tensor::<AdFlex, 4>::random([batch, kv_heads, keys, d_k], normal, &device)
                .require_grad();
            let v = Tensor::<AdFlex, 4>::random([batch, kv_heads, keys, 6], normal, &device)
                .require_grad();
            // Row 1's last 20 keys are padding: hidden, as their merged states would be.
            let mut bias = vec![0.0f32; batch * queries * keys];
            for b in 0..batch {
                for i in 0..queries {
                    for j in 0..keys {
                        let visible = crate::mask::stride_aware_visible(prefix + i, j, down_rate)
                            && (b == 0 || j < keys - 20);
                        if !visible {
                            bias[(b * queries + i) * keys + j] = -1e9;
                        }
                    }
                }
            }
            let bias = Tensor::<AdFlex, 1>::from_floats(bias.as_slice(), &device)
                .reshape([batch, 1, queries, keys]);
            let bias_flex = cast::<_, AdPrimitive>(bias.clone().into_primitive().tensor())
                .ok()
                .expect("the CPU backend")
                .primitive;
            let blocks = key_blocks(Some(&bias_flex), queries, keys);
            assert!(
                blocks[0]
                    .iter()
                    .any(|b| b.runs.len() == 2 && b.runs[0].stride == down_rate),
                "the strided runs are taken"
            );
            let scale = 0.3;
            let probe = Tensor::<AdFlex, 4>::random([batch, heads, queries, 6], normal, &device);
            seed(5);
            let ours = parallel_attention(&q, &k, &v, None, Some(&bias), scale as f32, prob)
                .expect("fused");
            seed(5);
            let burns = reference(q.clone(), k.clone(), v.clone(), Some(bias), scale, prob);
            let tolerance = Tolerance::absolute(1e-5);
            ours.to_data()
                .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
            let g_ours = (ours * probe.clone()).sum().backward();
            let g_burn = (burns * probe).sum().backward();
            for t in [&q, &k, &v] {
                t.grad(&g_ours)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(&t.grad(&g_burn).unwrap().to_data(), tolerance);
            }
        }
    }

    /// With a decoupled RoPE part (one `k_R` shared by all heads) the values and the gradients
    /// of all five inputs equal burn's ops on `[q ‖ q_R]` and `[k ‖ k_R]`, for the expanded
    /// (one K/V head per query head) and the absorbed (one K/V head, values a view of the keys)
    /// layouts, with dropout, a causal bias and several query blocks.
    #[test]
    fn rope_part_matches_concatenated_keys() {
        let device = Default::default();
        let normal = Distribution::Normal(0., 1.);
        // `down_rate` 0: a causal bias; else MTLA's stride-aware mask (strided key runs).
        for (heads, kv_heads, prob, queries, down_rate) in [
            (4, 4, 0.0, 7, 0),
            (4, 1, 0.2, 7, 0),
            (2, 2, 0.1, QUERY_BLOCK + 5, 0),
            (3, 1, 0.0, QUERY_BLOCK + 5, 0),
            (2, 1, 0.1, 5 * QUERY_BLOCK + 5, 2),
            (2, 2, 0.0, 5 * QUERY_BLOCK + 5, 4),
        ] {
            let (batch, keys, d_k, d_r) = (2, queries + 3, 6, 4);
            let leaf = |dims: [usize; 4]| {
                Tensor::<AdFlex, 4>::random(dims, normal, &device).require_grad()
            };
            let q = leaf([batch, heads, queries, d_k]);
            let q_r = leaf([batch, heads, queries, d_r]);
            let k = leaf([batch, kv_heads, keys, d_k]);
            let k_r = leaf([batch, 1, keys, d_r]);
            let values = || k.clone().slice(s![.., .., .., 1..d_k]);
            let causal = if down_rate == 0 {
                Tensor::<AdFlex, 2>::ones([queries, keys], &device)
                    .triu(4)
                    .mul_scalar(-1e9)
                    .reshape([1, 1, queries, keys])
            } else {
                let hidden: Vec<f32> = (0..queries * keys)
                    .map(|x| {
                        let (i, j) = (x / keys + 3, x % keys);
                        match crate::mask::stride_aware_visible(i, j, down_rate) {
                            true => 0.0,
                            false => -1e9,
                        }
                    })
                    .collect();
                Tensor::<AdFlex, 1>::from_floats(hidden.as_slice(), &device)
                    .reshape([1, 1, queries, keys])
            };
            let probe =
                Tensor::<AdFlex, 4>::random([batch, heads, queries, d_k - 1], normal, &device);
            seed(5);
            let ours = parallel_attention(
                &q,
                &k,
                &values(),
                Some((&q_r, &k_r)),
                Some(&causal),
                0.4,
                prob,
            )
            .expect("fused");
            seed(5);
            let burns = reference(
                Tensor::cat(vec![q.clone(), q_r.clone()], 3),
                Tensor::cat(vec![k.clone(), k_r.clone().repeat_dim(1, kv_heads)], 3),
                values(),
                Some(causal),
                0.4,
                prob,
            );
            let tolerance = Tolerance::absolute(1e-5);
            ours.to_data()
                .assert_approx_eq::<f32>(&burns.to_data(), tolerance);
            let g_ours = (ours * probe.clone()).sum().backward();
            let g_burn = (burns * probe).sum().backward();
            for t in [&q, &q_r, &k, &k_r] {
                t.grad(&g_ours)
                    .unwrap()
                    .to_data()
                    .assert_approx_eq::<f32>(&t.grad(&g_burn).unwrap().to_data(), tolerance);
            }
            let inner = |t: &Tensor<AdFlex, 4>| t.clone().inner();
            let (q, q_r, k, k_r, v) = (
                inner(&q),
                inner(&q_r),
                inner(&k),
                inner(&k_r),
                inner(&values()),
            );
            let plain =
                parallel_attention(&q, &k, &v, Some((&q_r, &k_r)), None, 0.4, 0.0).expect("fused");
            let plain_burn = reference(
                Tensor::cat(vec![q, q_r], 3),
                Tensor::cat(vec![k, k_r.repeat_dim(1, kv_heads)], 3),
                v,
                None,
                0.4,
                0.0,
            );
            plain
                .to_data()
                .assert_approx_eq::<f32>(&plain_burn.to_data(), tolerance);
        }
    }

    /// Without autodiff (evaluation) the forward alone runs, with no dropout.
    #[test]
    fn inference_forward_matches_burn_ops() {
        let device = Default::default();
        let normal = Distribution::Normal(0., 1.);
        let q = Tensor::<Flex, 4>::random([2, 4, 5, 6], normal, &device);
        let k = Tensor::<Flex, 4>::random([2, 2, 8, 6], normal, &device);
        let v = Tensor::<Flex, 4>::random([2, 2, 8, 3], normal, &device);
        let ours = parallel_attention(&q, &k, &v, None, None, 0.5, 0.5).expect("fused");
        let burns = reference(q, k, v, None, 0.5, 0.0);
        ours.to_data()
            .assert_approx_eq::<f32>(&burns.to_data(), Tolerance::absolute(1e-5));
    }

    /// `Transposed` puts element (r, c) of a strided operand at `c · ld + r`, with the row
    /// stride padded off multiples of 256 elements.
    #[test]
    fn transposed_moves_every_element() {
        for (rows, cols, ld) in [(300, 20, 304), (256, 64, 272), (5, 3, 16)] {
            let rs = cols + 7;
            let src: Vec<f32> = (0..rows * rs).map(|i| i as f32).collect();
            let mut t = Transposed::default();
            let mat = Mat {
                ptr: src.as_ptr(),
                rs: rs as isize,
                cs: 1,
            };
            t.fill(rows, cols, mat);
            assert_eq!(t.ld, ld);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(t.data[c * ld + r], src[r * rs + c], "({r}, {c})");
                }
            }
        }
    }
}
