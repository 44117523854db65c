//! Fused single-query attention for decoding on the CPU backend.
//!
//! A decode step attends one query per head to the whole cache. As matrix products this is
//! a handful of rows against thousands of cache slots, where general matrix kernels spend
//! most of their time packing and on half-empty tiles, and the score matrix makes a round trip
//! through memory. Here each (row, K/V head) pair streams its cache slots once: every slot is
//! read from the cache in place (strided views, no copy), scored against all the query heads
//! of its group, and, after a softmax, accumulated into their outputs. Works for every kind:
//! MHA/GQA/MQA (groups of `heads / kv_heads`) and the absorbed latent attention (one K/V head
//! of `r + d_R` channels whose first `r` are the values). Other backends, and anything with
//! gradients, take the general path.

use std::any::Any;

use burn::backend::flex::FlexTensor;
use burn::prelude::*;
use burn::tensor::{DType, TensorPrimitive};
use rayon::prelude::*;

use crate::rows;

/// Keys or values read in place: a float tensor's storage and the strides of its first three
/// axes (`[batch, kv_heads, T, d]`, the last axis contiguous).
pub(crate) struct View<'a> {
    data: &'a [f32],
    offset: usize,
    strides: [usize; 3],
}

/// `t` as a [`View`] when it is a 4-D f32 tensor with a contiguous last axis.
pub(crate) fn view(t: &FlexTensor) -> Option<View<'_>> {
    let layout = t.layout();
    let s = layout.strides();
    if t.dtype() != DType::F32 || s.len() != 4 || s[3] != 1 || s[..3].iter().any(|&x| x < 0) {
        return None;
    }
    Some(View {
        data: t.storage(),
        offset: layout.start_offset(),
        strides: [s[0] as usize, s[1] as usize, s[2] as usize],
    })
}

fn flex<B: Backend>(t: &Tensor<B, 4>) -> Option<FlexTensor> {
    match t.clone().into_primitive() {
        TensorPrimitive::Float(p) => (&p as &dyn Any).downcast_ref::<FlexTensor>().cloned(),
        TensorPrimitive::QFloat(_) => None,
    }
}

/// `softmax(q k^T * scale + bias) v` for one query per head on flex (see the module doc);
/// `None` when the tensors are not plain f32 flex tensors.
/// Shapes: `q` `[batch, heads, 1, d_k]`, `k` `[batch, kv_heads, T, d_k]`,
/// `v` `[batch, kv_heads, T, d_v]`, `bias` `[1 | batch, 1, 1, T]`; returns `[batch, heads, 1, d_v]`.
pub fn decode_attention<B: Backend>(
    q: &Tensor<B, 4>,
    k: &Tensor<B, 4>,
    v: &Tensor<B, 4>,
    bias: Option<&Tensor<B, 4>>,
    scale: f32,
) -> Option<Tensor<B, 4>> {
    let [batch, heads, queries, d_k] = q.dims();
    let [_, kv_heads, t, _] = k.dims();
    let d_v = v.dims()[3];
    if queries != 1 || t == 0 {
        return None;
    }
    let (qf, kf, vf) = (flex(q)?.to_contiguous(), flex(k)?, flex(v)?);
    let bf = match bias {
        Some(b) => Some(flex(b)?.to_contiguous()),
        None => None,
    };
    let (qv, kv, vv) = (view(&qf)?, view(&kf)?, view(&vf)?);
    let bias = match &bf {
        Some(b) if b.dtype() == DType::F32 => Some(SlotBias {
            data: b.storage(),
            per_row: b.layout().shape()[0] != 1,
        }),
        Some(_) => return None,
        None => None,
    };
    let shape = Decode {
        heads,
        kv_heads,
        t,
        d_k,
        d_v,
        scale,
        parallel: true,
    };
    let out = shape.attend(&qv.data[qv.offset..][..batch * heads * d_k], &kv, &vv, bias);
    let data = TensorData::new(out, [batch, heads, 1, d_v]);
    Some(Tensor::from_data(data, &q.device()))
}

/// A `[1 | batch, T]` additive bias over the cache slots (0 visible, -1e9 hidden).
#[derive(Clone, Copy)]
pub(crate) struct SlotBias<'a> {
    pub data: &'a [f32],
    /// One row per batch row (else one row shared by all).
    pub per_row: bool,
}

/// The shape of one decode step's attention.
pub(crate) struct Decode {
    pub heads: usize,
    pub kv_heads: usize,
    /// Cache slots.
    pub t: usize,
    pub d_k: usize,
    pub d_v: usize,
    pub scale: f32,
    /// One task per (row, K/V head) pair on the pool, or all on the calling thread.
    pub parallel: bool,
}

impl Decode {
    /// Outputs `[batch, heads, d_v]` for queries `q` `[batch, heads, d_k]` (contiguous) over the
    /// cache `k`, `v` read in place; one task per (row, K/V head) pair.
    pub(crate) fn attend(&self, q: &[f32], k: &View, v: &View, bias: Option<SlotBias>) -> Vec<f32> {
        let (heads, kv_heads, t, d_k, d_v) =
            (self.heads, self.kv_heads, self.t, self.d_k, self.d_v);
        let batch = q.len() / (heads * d_k);
        let group = heads / kv_heads;
        let mut out = vec![0.0f32; batch * heads * d_v];
        let task = |(pair, out): (usize, &mut [f32])| {
            let (b, h) = (pair / kv_heads, pair % kv_heads);
            let task = Pair {
                q: &q[(b * heads + h * group) * d_k..][..group * d_k],
                k: (
                    k.data,
                    k.offset + b * k.strides[0] + h * k.strides[1],
                    k.strides[2],
                ),
                v: (
                    v.data,
                    v.offset + b * v.strides[0] + h * v.strides[1],
                    v.strides[2],
                ),
                bias: bias.map(|s| &s.data[if s.per_row { b * t } else { 0 }..][..t]),
                group,
                d_k,
                d_v,
                t,
                scale: self.scale,
            };
            task.run(out);
        };
        if self.parallel {
            out.par_chunks_mut(group * d_v).enumerate().for_each(task);
        } else {
            out.chunks_mut(group * d_v).enumerate().for_each(task);
        }
        out
    }
}

/// One (row, K/V head) pair's work.
#[derive(Clone, Copy)]
struct Pair<'a> {
    q: &'a [f32],
    k: (&'a [f32], usize, usize),
    v: (&'a [f32], usize, usize),
    bias: Option<&'a [f32]>,
    group: usize,
    d_k: usize,
    d_v: usize,
    t: usize,
    scale: f32,
}

impl Pair<'_> {
    fn run(&self, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            let has = |f: &str| match f {
                "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
                "avx2" => std::arch::is_x86_feature_detected!("avx2"),
                _ => std::arch::is_x86_feature_detected!("fma"),
            };
            if has("avx512f") && has("avx2") && has("fma") {
                // SAFETY: the features this function is compiled for were just detected.
                return unsafe { self.run_avx512(out) };
            }
            if has("avx2") && has("fma") {
                // SAFETY: as above.
                return unsafe { self.run_avx2(out) };
            }
        }
        self.dispatch::<PORTABLE>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn run_avx2(&self, out: &mut [f32]) {
        self.dispatch::<AVX2>(out)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn run_avx512(&self, out: &mut [f32]) {
        self.dispatch::<AVX512>(out)
    }

    /// Monomorphises the kernel for the common group sizes (queries per K/V head), so the
    /// per-head accumulators live in registers.
    /// `SIMD`: the widest explicit kernels the caller's target features allow
    /// ([`PORTABLE`], [`AVX2`] or [`AVX512`]).
    #[inline(always)]
    fn dispatch<const SIMD: u8>(&self, out: &mut [f32]) {
        match self.group {
            1 => self.body::<1, SIMD>(out),
            2 => self.body::<2, SIMD>(out),
            4 => self.body::<4, SIMD>(out),
            8 => self.body::<8, SIMD>(out),
            16 => self.body::<16, SIMD>(out),
            _ => self.body_any(out),
        }
    }

    /// Blocked online softmax (flash-decoding): a block of cache slots is scored against the
    /// `G` queries of the group, the running maxima and sums are rescaled once per block, and
    /// the same rows, still in cache, are accumulated into the outputs. The cache is read from
    /// memory once; for latent attention the key row is also the value row.
    #[inline(always)]
    fn body<const G: usize, const SIMD: u8>(&self, out: &mut [f32]) {
        let (t, d_k, d_v) = (self.t, self.d_k, self.d_v);
        let (k_data, k_base, k_row) = self.k;
        let (v_data, v_base, v_row) = self.v;
        let mut max = [f32::NEG_INFINITY; G];
        let mut sum = [0.0f32; G];
        let mut p = [[0.0f32; BLOCK]; G];
        out.iter_mut().for_each(|x| *x = 0.0);
        for start in (0..t).step_by(BLOCK) {
            let n = BLOCK.min(t - start);
            let key = |jj: usize| &k_data[k_base + (start + jj) * k_row..][..d_k];
            let mut jj = 0;
            if G >= 4 {
                // Two keys at a time: each query chunk loaded once feeds both.
                while jj + 2 <= n {
                    let (d0, d1) = pair_dots::<G, SIMD>(self.q, d_k, key(jj), key(jj + 1));
                    for r in 0..G {
                        p[r][jj] = d0[r];
                        p[r][jj + 1] = d1[r];
                    }
                    jj += 2;
                }
            }
            while jj < n {
                let d = dots::<G>(self.q, d_k, key(jj));
                for r in 0..G {
                    p[r][jj] = d[r];
                }
                jj += 1;
            }
            for jj in 0..n {
                let add = self.bias.map_or(0.0, |b| b[start + jj]);
                for row in p.iter_mut() {
                    row[jj] = row[jj] * self.scale + add;
                }
            }
            for r in 0..G {
                let scores = &mut p[r][..n];
                let block_max = rows::max(scores);
                let new_max = max[r].max(block_max);
                let correction = (max[r] - new_max).exp();
                if correction != 1.0 {
                    sum[r] *= correction;
                    out[r * d_v..(r + 1) * d_v]
                        .iter_mut()
                        .for_each(|x| *x *= correction);
                }
                max[r] = new_max;
                sum[r] += rows::exp_sum(scores, new_max);
            }
            accumulate::<G, SIMD>(
                &p,
                n,
                |jj| &v_data[v_base + (start + jj) * v_row..][..d_v],
                d_v,
                out,
            );
        }
        for r in 0..G {
            let inv = 1.0 / sum[r];
            out[r * d_v..(r + 1) * d_v]
                .iter_mut()
                .for_each(|x| *x *= inv);
        }
    }

    /// Any group size: one query at a time.
    fn body_any(&self, out: &mut [f32]) {
        for r in 0..self.group {
            let single = Pair {
                q: &self.q[r * self.d_k..(r + 1) * self.d_k],
                group: 1,
                ..*self
            };
            single.body::<1, PORTABLE>(&mut out[r * self.d_v..(r + 1) * self.d_v]);
        }
    }
}

/// Cache slots scored and accumulated together.
const BLOCK: usize = 32;

/// Kernel levels: plain loops, explicit AVX2/FMA, explicit AVX-512.
const PORTABLE: u8 = 0;
const AVX2: u8 = 1;
const AVX512: u8 = 2;

/// The `G` dot products of the group's queries (`G` rows of `d_k`) with one key, 8 lanes per
/// query kept in registers; a single query splits its dot over 4 chains instead.
#[inline(always)]
fn dots<const G: usize>(q: &[f32], d_k: usize, key: &[f32]) -> [f32; G] {
    let chunks = d_k / 8;
    let mut result = [0.0f32; G];
    if G == 1 {
        let mut acc = [[0.0f32; 8]; 4];
        for c in 0..chunks {
            let (qc, kc) = (&q[c * 8..c * 8 + 8], &key[c * 8..c * 8 + 8]);
            let a = &mut acc[c % 4];
            for l in 0..8 {
                a[l] = qc[l].mul_add(kc[l], a[l]);
            }
        }
        let mut s: f32 = acc.iter().flatten().sum();
        for i in chunks * 8..d_k {
            s = q[i].mul_add(key[i], s);
        }
        result[0] = s;
        return result;
    }
    let mut acc = [[0.0f32; 8]; G];
    for c in 0..chunks {
        let kc = &key[c * 8..c * 8 + 8];
        for r in 0..G {
            let qc = &q[r * d_k + c * 8..r * d_k + c * 8 + 8];
            for l in 0..8 {
                acc[r][l] = qc[l].mul_add(kc[l], acc[r][l]);
            }
        }
    }
    for r in 0..G {
        let mut s: f32 = acc[r].iter().sum();
        for i in chunks * 8..d_k {
            s = q[r * d_k + i].mul_add(key[i], s);
        }
        result[r] = s;
    }
    result
}

/// [`dots_pair`], by the explicit AVX2 kernel when the caller runs with AVX2/FMA enabled (the
/// auto-vectoriser turns the portable loop into a shuffle-bound transpose there).
#[inline(always)]
fn pair_dots<const G: usize, const SIMD: u8>(
    q: &[f32],
    d_k: usize,
    k0: &[f32],
    k1: &[f32],
) -> ([f32; G], [f32; G]) {
    #[cfg(target_arch = "x86_64")]
    if SIMD == AVX512 && G % 8 == 0 && d_k >= 16 {
        // SAFETY: `SIMD` is only `AVX512` on the path entered after detecting AVX-512F.
        return unsafe { avx512::dots_pair_eights::<G>(q, d_k, k0, k1) };
    }
    #[cfg(target_arch = "x86_64")]
    if SIMD == AVX512 && G % 4 == 0 && d_k >= 16 {
        // SAFETY: `SIMD` is only `AVX512` on the path entered after detecting AVX-512F.
        return unsafe { avx512::dots_pair::<G>(q, d_k, k0, k1) };
    }
    #[cfg(target_arch = "x86_64")]
    if SIMD >= AVX2 && G % 4 == 0 {
        // SAFETY: `SIMD` is only `AVX2` or more on paths entered after detecting AVX2 and FMA.
        return unsafe { avx2::dots_pair::<G>(q, d_k, k0, k1) };
    }
    dots_pair::<G>(q, d_k, k0, k1)
}

/// The `G` query dots with two keys, four queries at a time: 8 accumulators in registers and
/// six loads per eight multiply-adds (instead of nine).
#[inline(always)]
fn dots_pair<const G: usize>(
    q: &[f32],
    d_k: usize,
    k0: &[f32],
    k1: &[f32],
) -> ([f32; G], [f32; G]) {
    let chunks = d_k / 8;
    let (mut r0, mut r1) = ([0.0f32; G], [0.0f32; G]);
    for h0 in (0..G).step_by(4) {
        let mut acc = [[[0.0f32; 8]; 2]; 4];
        for c in 0..chunks {
            let (a, b) = (&k0[c * 8..c * 8 + 8], &k1[c * 8..c * 8 + 8]);
            for h in 0..4 {
                let qc = &q[(h0 + h) * d_k + c * 8..(h0 + h) * d_k + c * 8 + 8];
                for l in 0..8 {
                    acc[h][0][l] = qc[l].mul_add(a[l], acc[h][0][l]);
                    acc[h][1][l] = qc[l].mul_add(b[l], acc[h][1][l]);
                }
            }
        }
        for h in 0..4 {
            let sums = (acc[h][0].iter().sum(), acc[h][1].iter().sum());
            let q_row = &q[(h0 + h) * d_k..][..d_k];
            (r0[h0 + h], r1[h0 + h]) = pair_tail(q_row, k0, k1, chunks * 8, sums);
        }
    }
    (r0, r1)
}

/// Adds the lanes from `from` on (past the last full 8-lane chunk) to one query row's dots
/// `sums` with two keys.
#[inline(always)]
fn pair_tail(q_row: &[f32], k0: &[f32], k1: &[f32], from: usize, sums: (f32, f32)) -> (f32, f32) {
    let (mut s0, mut s1) = sums;
    for i in from..q_row.len() {
        s0 = q_row[i].mul_add(k0[i], s0);
        s1 = q_row[i].mul_add(k1[i], s1);
    }
    (s0, s1)
}

/// `out[r] += Σ_jj p[r][jj] * value(jj)` for the block's `n` rows, 8 value lanes of every
/// query held in registers across the block.
#[inline(always)]
fn accumulate<'a, const G: usize, const SIMD: u8>(
    p: &[[f32; BLOCK]; G],
    n: usize,
    value: impl Fn(usize) -> &'a [f32],
    d_v: usize,
    out: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if SIMD >= AVX2 && G % 4 == 0 && d_v % 16 == 0 {
        let rows: [&[f32]; BLOCK] = std::array::from_fn(|jj| if jj < n { value(jj) } else { &[] });
        if SIMD == AVX512 && d_v % 32 == 0 {
            // SAFETY: `SIMD` is only `AVX512` on the path entered after detecting AVX-512F.
            return unsafe { avx512::accumulate::<G>(p, &rows[..n], d_v, out) };
        }
        // SAFETY: `SIMD` is only `AVX2` or more on paths entered after detecting AVX2 and FMA.
        return unsafe { avx2::accumulate::<G>(p, &rows[..n], d_v, out) };
    }
    if G < 4 {
        // Few queries: independent chains come from the value lanes instead.
        for jj in 0..n {
            let v = value(jj);
            for r in 0..G {
                let w = p[r][jj];
                for (o, x) in out[r * d_v..(r + 1) * d_v].iter_mut().zip(v) {
                    *o = x.mul_add(w, *o);
                }
            }
        }
        return;
    }
    // Four queries by two 8-lane chunks of the value: 8 accumulators in registers, six loads
    // per eight multiply-adds.
    let chunks = d_v / 8;
    let pairs = chunks / 2 * 2;
    for h0 in (0..G).step_by(4) {
        for c in (0..pairs).step_by(2) {
            let mut acc = [[[0.0f32; 8]; 2]; 4];
            for h in 0..4 {
                for k in 0..2 {
                    let at = (h0 + h) * d_v + (c + k) * 8;
                    acc[h][k].copy_from_slice(&out[at..at + 8]);
                }
            }
            for jj in 0..n {
                let row = value(jj);
                let (v0, v1) = (&row[c * 8..c * 8 + 8], &row[c * 8 + 8..c * 8 + 16]);
                for h in 0..4 {
                    let w = p[h0 + h][jj];
                    for l in 0..8 {
                        acc[h][0][l] = v0[l].mul_add(w, acc[h][0][l]);
                        acc[h][1][l] = v1[l].mul_add(w, acc[h][1][l]);
                    }
                }
            }
            for h in 0..4 {
                for k in 0..2 {
                    let at = (h0 + h) * d_v + (c + k) * 8;
                    out[at..at + 8].copy_from_slice(&acc[h][k]);
                }
            }
        }
    }
    for c in pairs..chunks {
        let mut acc = [[0.0f32; 8]; G];
        for r in 0..G {
            acc[r].copy_from_slice(&out[r * d_v + c * 8..r * d_v + c * 8 + 8]);
        }
        for jj in 0..n {
            let v = &value(jj)[c * 8..c * 8 + 8];
            for r in 0..G {
                let w = p[r][jj];
                for l in 0..8 {
                    acc[r][l] = v[l].mul_add(w, acc[r][l]);
                }
            }
        }
        for r in 0..G {
            out[r * d_v + c * 8..r * d_v + c * 8 + 8].copy_from_slice(&acc[r]);
        }
    }
    for i in chunks * 8..d_v {
        for jj in 0..n {
            let v = value(jj)[i];
            for r in 0..G {
                out[r * d_v + i] = v.mul_add(p[r][jj], out[r * d_v + i]);
            }
        }
    }
}

/// The two inner loops with explicit AVX2/FMA intrinsics: eight 8-lane accumulators in
/// registers, six loads per eight multiply-adds, nothing else in the loop.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::BLOCK;

    /// Sum of the 8 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_hadd_ps(s, s);
        _mm_cvtss_f32(_mm_hadd_ps(s, s))
    }

    /// As [`super::dots_pair`], for `G` a multiple of 4.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dots_pair<const G: usize>(
        q: &[f32],
        d_k: usize,
        k0: &[f32],
        k1: &[f32],
    ) -> ([f32; G], [f32; G]) {
        assert!(G % 4 == 0 && q.len() >= G * d_k && k0.len() >= d_k && k1.len() >= d_k);
        let chunks = d_k / 8;
        let (mut r0, mut r1) = ([0.0f32; G], [0.0f32; G]);
        for h0 in (0..G).step_by(4) {
            let mut acc = [_mm256_setzero_ps(); 8];
            // SAFETY (loads): rows h0..h0+4 of `q` and the first `chunks * 8 <= d_k` lanes of
            // both keys are in bounds by the assertion above.
            let qp = q.as_ptr().add(h0 * d_k);
            for c in 0..chunks {
                let a = _mm256_loadu_ps(k0.as_ptr().add(c * 8));
                let b = _mm256_loadu_ps(k1.as_ptr().add(c * 8));
                for h in 0..4 {
                    let qc = _mm256_loadu_ps(qp.add(h * d_k + c * 8));
                    acc[2 * h] = _mm256_fmadd_ps(qc, a, acc[2 * h]);
                    acc[2 * h + 1] = _mm256_fmadd_ps(qc, b, acc[2 * h + 1]);
                }
            }
            for h in 0..4 {
                let sums = (hsum(acc[2 * h]), hsum(acc[2 * h + 1]));
                let q_row = &q[(h0 + h) * d_k..][..d_k];
                (r0[h0 + h], r1[h0 + h]) = super::pair_tail(q_row, k0, k1, chunks * 8, sums);
            }
        }
        (r0, r1)
    }

    /// As [`super::accumulate`], for `G` a multiple of 4 and `d_v` a multiple of 16: four
    /// queries by two 8-lane chunks of the value rows per pass over the block.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn accumulate<const G: usize>(
        p: &[[f32; BLOCK]; G],
        rows: &[&[f32]],
        d_v: usize,
        out: &mut [f32],
    ) {
        assert!(G % 4 == 0 && d_v % 16 == 0 && out.len() >= G * d_v && rows.len() <= BLOCK);
        assert!(rows.iter().all(|r| r.len() >= d_v));
        // SAFETY (loads/stores): `c * 8 + 16 <= d_v` lanes of every row and of the outputs
        // of queries `h0..h0 + 4 <= G`, and `jj < rows.len() <= BLOCK`, by the assertions.
        let o = out.as_mut_ptr();
        for h0 in (0..G).step_by(4) {
            for c in (0..d_v / 8).step_by(2) {
                let mut acc = [_mm256_setzero_ps(); 8];
                for h in 0..4 {
                    for k in 0..2 {
                        acc[2 * h + k] = _mm256_loadu_ps(o.add((h0 + h) * d_v + (c + k) * 8));
                    }
                }
                for (jj, row) in rows.iter().enumerate() {
                    let v0 = _mm256_loadu_ps(row.as_ptr().add(c * 8));
                    let v1 = _mm256_loadu_ps(row.as_ptr().add(c * 8 + 8));
                    for h in 0..4 {
                        let w = _mm256_set1_ps(*p.get_unchecked(h0 + h).get_unchecked(jj));
                        acc[2 * h] = _mm256_fmadd_ps(v0, w, acc[2 * h]);
                        acc[2 * h + 1] = _mm256_fmadd_ps(v1, w, acc[2 * h + 1]);
                    }
                }
                for h in 0..4 {
                    for k in 0..2 {
                        _mm256_storeu_ps(o.add((h0 + h) * d_v + (c + k) * 8), acc[2 * h + k]);
                    }
                }
            }
        }
    }
}

/// The AVX2 kernels' AVX-512 twins: the same register tiling over 16 lanes, so each loaded key
/// or value chunk feeds twice the multiply-adds.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::BLOCK;

    /// As [`super::dots_pair`], for `G` a multiple of 4 and `d_k >= 16`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dots_pair<const G: usize>(
        q: &[f32],
        d_k: usize,
        k0: &[f32],
        k1: &[f32],
    ) -> ([f32; G], [f32; G]) {
        assert!(G % 4 == 0 && q.len() >= G * d_k && k0.len() >= d_k && k1.len() >= d_k);
        let chunks = d_k / 16;
        let (mut r0, mut r1) = ([0.0f32; G], [0.0f32; G]);
        for h0 in (0..G).step_by(4) {
            let mut acc = [_mm512_setzero_ps(); 8];
            // SAFETY (loads): rows h0..h0+4 of `q` and the first `chunks * 16 <= d_k` lanes of
            // both keys are in bounds by the assertion above.
            let qp = q.as_ptr().add(h0 * d_k);
            for c in 0..chunks {
                let a = _mm512_loadu_ps(k0.as_ptr().add(c * 16));
                let b = _mm512_loadu_ps(k1.as_ptr().add(c * 16));
                for h in 0..4 {
                    let qc = _mm512_loadu_ps(qp.add(h * d_k + c * 16));
                    acc[2 * h] = _mm512_fmadd_ps(qc, a, acc[2 * h]);
                    acc[2 * h + 1] = _mm512_fmadd_ps(qc, b, acc[2 * h + 1]);
                }
            }
            for h in 0..4 {
                let sums = (
                    _mm512_reduce_add_ps(acc[2 * h]),
                    _mm512_reduce_add_ps(acc[2 * h + 1]),
                );
                let q_row = &q[(h0 + h) * d_k..][..d_k];
                (r0[h0 + h], r1[h0 + h]) = super::pair_tail(q_row, k0, k1, chunks * 16, sums);
            }
        }
        (r0, r1)
    }

    /// The 16 lane sums of `a` as one vector, `out[p] = Σ a[p]`, by a tree of lane shuffles
    /// (15 adds, 30 shuffles) instead of 16 separate horizontal sums.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sums16(a: [__m512; 16]) -> __m512 {
        // The tree leaves position 4 L + m holding input 4 m + L, so inputs go in transposed.
        let a: [__m512; 16] = std::array::from_fn(|i| a[4 * (i % 4) + i / 4]);
        // 256-bit halves: 16 -> 8 vectors of two inputs' 8 partial lanes.
        let s: [__m512; 8] = std::array::from_fn(|i| {
            let (x, y) = (a[2 * i], a[2 * i + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x44>(x, y),
                _mm512_shuffle_f32x4::<0xEE>(x, y),
            )
        });
        // 128-bit lanes: 8 -> 4 vectors of four inputs' 4 partial lanes.
        let r: [__m512; 4] = std::array::from_fn(|i| {
            let (x, y) = (s[2 * i], s[2 * i + 1]);
            _mm512_add_ps(
                _mm512_shuffle_f32x4::<0x88>(x, y),
                _mm512_shuffle_f32x4::<0xDD>(x, y),
            )
        });
        // Within 128-bit lanes: 4 -> 2 -> 1.
        let p0 = _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(r[0], r[1]),
            _mm512_shuffle_ps::<0xEE>(r[0], r[1]),
        );
        let p1 = _mm512_add_ps(
            _mm512_shuffle_ps::<0x44>(r[2], r[3]),
            _mm512_shuffle_ps::<0xEE>(r[2], r[3]),
        );
        _mm512_add_ps(
            _mm512_shuffle_ps::<0x88>(p0, p1),
            _mm512_shuffle_ps::<0xDD>(p0, p1),
        )
    }

    /// As [`super::dots_pair`], for `G` a multiple of 8 and `d_k >= 16`: eight queries by both
    /// keys per pass (16 accumulators), so each key chunk, loaded once, feeds 16 multiply-adds,
    /// and the 16 dots are summed by one shuffle tree ([`sums16`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn dots_pair_eights<const G: usize>(
        q: &[f32],
        d_k: usize,
        k0: &[f32],
        k1: &[f32],
    ) -> ([f32; G], [f32; G]) {
        assert!(G % 8 == 0 && q.len() >= G * d_k && k0.len() >= d_k && k1.len() >= d_k);
        let chunks = d_k / 16;
        let (mut r0, mut r1) = ([0.0f32; G], [0.0f32; G]);
        for h0 in (0..G).step_by(8) {
            // acc[h] with key 0, acc[8 + h] with key 1.
            let mut acc = [_mm512_setzero_ps(); 16];
            // SAFETY (loads): rows h0..h0+8 of `q` and the first `chunks * 16 <= d_k` lanes of
            // both keys are in bounds by the assertion above.
            let qp = q.as_ptr().add(h0 * d_k);
            for c in 0..chunks {
                let a = _mm512_loadu_ps(k0.as_ptr().add(c * 16));
                let b = _mm512_loadu_ps(k1.as_ptr().add(c * 16));
                for h in 0..8 {
                    let qc = _mm512_loadu_ps(qp.add(h * d_k + c * 16));
                    acc[h] = _mm512_fmadd_ps(qc, a, acc[h]);
                    acc[8 + h] = _mm512_fmadd_ps(qc, b, acc[8 + h]);
                }
            }
            let mut sums = [0.0f32; 16];
            _mm512_storeu_ps(sums.as_mut_ptr(), sums16(acc));
            for h in 0..8 {
                let q_row = &q[(h0 + h) * d_k..][..d_k];
                let pair = (sums[h], sums[8 + h]);
                (r0[h0 + h], r1[h0 + h]) = super::pair_tail(q_row, k0, k1, chunks * 16, pair);
            }
        }
        (r0, r1)
    }

    /// As [`super::accumulate`], for `G` a multiple of 4 and `d_v` a multiple of 32.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn accumulate<const G: usize>(
        p: &[[f32; BLOCK]; G],
        rows: &[&[f32]],
        d_v: usize,
        out: &mut [f32],
    ) {
        assert!(G % 4 == 0 && d_v % 32 == 0 && out.len() >= G * d_v && rows.len() <= BLOCK);
        assert!(rows.iter().all(|r| r.len() >= d_v));
        // SAFETY (loads/stores): `c * 16 + 32 <= d_v` lanes of every row and of the outputs
        // of queries `h0..h0 + 4 <= G`, and `jj < rows.len() <= BLOCK`, by the assertions.
        let o = out.as_mut_ptr();
        for h0 in (0..G).step_by(4) {
            for c in (0..d_v / 16).step_by(2) {
                let mut acc = [_mm512_setzero_ps(); 8];
                for h in 0..4 {
                    for k in 0..2 {
                        acc[2 * h + k] = _mm512_loadu_ps(o.add((h0 + h) * d_v + (c + k) * 16));
                    }
                }
                for (jj, row) in rows.iter().enumerate() {
                    let v0 = _mm512_loadu_ps(row.as_ptr().add(c * 16));
                    let v1 = _mm512_loadu_ps(row.as_ptr().add(c * 16 + 16));
                    for h in 0..4 {
                        let w = _mm512_set1_ps(*p.get_unchecked(h0 + h).get_unchecked(jj));
                        acc[2 * h] = _mm512_fmadd_ps(v0, w, acc[2 * h]);
                        acc[2 * h + 1] = _mm512_fmadd_ps(v1, w, acc[2 * h + 1]);
                    }
                }
                for h in 0..4 {
                    for k in 0..2 {
                        _mm512_storeu_ps(o.add((h0 + h) * d_v + (c + k) * 16), acc[2 * h + k]);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use burn::tensor::activation::softmax;
    use burn::tensor::{Distribution, Tolerance};

    use super::*;

    /// The kernel (whichever level this CPU runs: portable, AVX2 or AVX-512) against softmax
    /// attention op by op, at the paper's latent shape (one K/V head of 256 + 32 channels whose
    /// first 256 are the values, read from a wider cache buffer), MHA/GQA heads of 64, and odd
    /// sizes; slot counts off the block size, with a per-row bias.
    #[test]
    fn matches_softmax_attention() {
        let device = Default::default();
        for (heads, kv_heads, d_k, d_v, t) in [
            (8, 1, 288, 256, 70),
            (8, 8, 64, 64, 33),
            (8, 2, 64, 64, 5),
            (16, 1, 48, 32, 40),
            (3, 1, 20, 12, 9),
        ] {
            let batch = 2;
            let random = |shape: [usize; 4]| {
                Tensor::<Flex, 4>::random(shape, Distribution::Normal(0., 1.), &device)
            };
            let q = random([batch, heads, 1, d_k]);
            // Keys and values are views of a cache with room for more slots.
            let cache = random([batch, kv_heads, t + 7, d_k.max(d_v)]);
            let k = cache.clone().slice(s![.., .., 0..t, 0..d_k]);
            let v = cache.slice(s![.., .., 0..t, 0..d_v]);
            let hidden: Vec<f32> = (0..batch * t)
                .map(|i| if i % 7 == 3 { -1e9 } else { 0.0 })
                .collect();
            let bias = Tensor::<Flex, 1>::from_floats(hidden.as_slice(), &device)
                .reshape([batch, 1, 1, t]);
            let scale = 0.125;
            let fused = decode_attention(&q, &k, &v, Some(&bias), scale).expect("f32 on flex");
            let group = heads / kv_heads;
            let repeat = |x: Tensor<Flex, 4>| {
                let [b, h, t, d] = x.dims();
                x.reshape([b, h, 1, t * d])
                    .repeat_dim(2, group)
                    .reshape([b, h * group, t, d])
            };
            let scores = q.matmul(repeat(k).swap_dims(2, 3)).mul_scalar(scale) + bias;
            let plain = softmax(scores, 3).matmul(repeat(v));
            fused
                .to_data()
                .assert_approx_eq::<f32>(&plain.to_data(), Tolerance::absolute(1e-4));
        }
    }
}
