//! Products of a few rows with weight matrices, `y = x W (+ b)` for `x` `[m, k]` with `m` a decode
//! step's rows (batch × beams), on the host and on all cores.
//!
//! A decode step multiplies a handful of rows by every projection of the layer, so its time is
//! the weights streaming through memory (~4 MB per layer at the paper's dims), not arithmetic.
//! burn-flex hands such products to a general GEMM on one core (they fall under its threading
//! threshold) that first packs the weight into its tile order, i.e. reads and writes it once more.
//! Here each weight column block is read once, in place, while all rows accumulate in
//! registers (eight rows by 32 columns), and blocks are spread over the cores. The weights
//! are [`Packed`] once per decoding session, so each block is read in memory order.

use rayon::prelude::*;

/// Output columns per block: two AVX-512 registers (four AVX2 ones) per row.
const COLUMNS: usize = 32;

/// Below this many multiply-adds a product runs on the calling thread (waking the pool costs more).
const PARALLEL_MIN: usize = 1 << 18;

/// A weight `[groups, k, n]` laid out for [`products`]: per group, its column blocks of
/// [`COLUMNS`] (the last one possibly narrower) one after another, each `[k, width]` row-major.
/// A block's product then streams its weights in memory order; from the row-major weight it
/// read 128 bytes per row, `n` floats apart (the packed layout takes ~13 % off an MTLA decode
/// step at the paper's dims).
pub(crate) struct Packed {
    data: Vec<f32>,
    groups: usize,
    k: usize,
    n: usize,
}

impl Packed {
    /// Packs `w` `[groups, k, n]` (row-major, as burn stores a linear's weight `[in, out]`).
    pub(crate) fn new(w: &[f32], groups: usize, k: usize, n: usize) -> Self {
        assert_eq!(w.len(), groups * k * n, "w must be [groups, k, n]");
        let mut data = Vec::with_capacity(w.len());
        for g in 0..groups {
            for j0 in (0..n).step_by(COLUMNS) {
                let width = COLUMNS.min(n - j0);
                for kk in 0..k {
                    data.extend_from_slice(&w[(g * k + kk) * n + j0..][..width]);
                }
            }
        }
        Self { data, groups, k, n }
    }

    /// The block of columns `j0..` of group `g`, `[k, width]` (the blocks before it are full).
    fn block(&self, g: usize, j0: usize) -> &[f32] {
        &self.data[(g * self.n + j0) * self.k..][..self.k * COLUMNS.min(self.n - j0)]
    }
}

impl std::fmt::Debug for Packed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Packed[{}, {}, {}]", self.groups, self.k, self.n)
    }
}

/// `y[g] = x[g] W[g] (+ b)` for `groups` independent products (e.g. one per head): `x`
/// `[groups, m, k]`, `w` `[groups, k, n]`, `bias` `[n]` shared by the groups; returns `y`
/// `[groups, m, n]`. On the pool only if `parallel` (and the product is large enough), else on
/// the calling thread.
pub(crate) fn products(x: &[f32], w: &Packed, bias: Option<&[f32]>, parallel: bool) -> Vec<f32> {
    let (groups, k, n) = (w.groups, w.k, w.n);
    let m = x.len() / (groups * k);
    assert_eq!(x.len(), groups * m * k, "x must be [groups, m, k]");
    let blocks = n.div_ceil(COLUMNS);
    let block = |job: usize| {
        let (g, j0) = (job / blocks, job % blocks * COLUMNS);
        let task = Block {
            x: &x[g * m * k..][..m * k],
            w: w.block(g, j0),
            bias,
            k,
            j0,
            width: COLUMNS.min(n - j0),
        };
        task.run(m)
    };
    let jobs = groups * blocks;
    let columns: Vec<Vec<f32>> = if parallel && groups * m * k * n >= PARALLEL_MIN {
        (0..jobs).into_par_iter().map(block).collect()
    } else {
        (0..jobs).map(block).collect()
    };
    let mut y = vec![0.0f32; groups * m * n];
    for (job, column) in columns.iter().enumerate() {
        let (g, j0) = (job / blocks, job % blocks * COLUMNS);
        let width = COLUMNS.min(n - j0);
        for (i, row) in column.chunks_exact(width).enumerate() {
            y[(g * m + i) * n + j0..][..width].copy_from_slice(row);
        }
    }
    y
}

/// One column block `[j0, j0 + width)` of `x W (+ b)` for all rows; `w` is the block's
/// weights, `[k, width]` row-major.
#[derive(Clone, Copy)]
struct Block<'a> {
    x: &'a [f32],
    w: &'a [f32],
    bias: Option<&'a [f32]>,
    k: usize,
    j0: usize,
    width: usize,
}

impl Block<'_> {
    /// The block `[m, width]`, row-major: full blocks by the widest vector kernel the CPU has,
    /// a partial last block (or another CPU) by the plain loop.
    fn run(&self, m: usize) -> Vec<f32> {
        let mut out = vec![0.0f32; m * self.width];
        #[cfg(target_arch = "x86_64")]
        if self.width == COLUMNS {
            if std::arch::is_x86_feature_detected!("avx512f") {
                // SAFETY: the feature the kernel is compiled for was just detected; `tiles`
                // checks the bounds it reads and writes.
                unsafe {
                    self.tiles(m, &mut out, 8, |r0, r, out| {
                        x86::tile_avx512(self, r0, r, out)
                    })
                };
                return out;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                // SAFETY: as above.
                unsafe {
                    self.tiles(m, &mut out, 2, |r0, r, out| {
                        x86::tile_avx2(self, r0, r, out)
                    })
                };
                return out;
            }
        }
        for i in 0..m {
            let row = &mut out[i * self.width..][..self.width];
            if let Some(bias) = self.bias {
                row.copy_from_slice(&bias[self.j0..self.j0 + self.width]);
            }
            for kk in 0..self.k {
                let xv = self.x[i * self.k + kk];
                let w = &self.w[kk * self.width..][..self.width];
                row.iter_mut().zip(w).for_each(|(a, &wv)| *a += xv * wv);
            }
        }
        out
    }

    /// Rows `0..m` in tiles of at most `most` rows, each by `tile(r0, rows, out)`.
    fn tiles(
        &self,
        m: usize,
        out: &mut [f32],
        most: usize,
        tile: impl Fn(usize, usize, &mut [f32]),
    ) {
        assert!(self.x.len() >= m * self.k && self.w.len() >= self.k * COLUMNS);
        assert!(self.bias.is_none_or(|b| b.len() >= self.j0 + COLUMNS) && out.len() >= m * COLUMNS);
        let mut r0 = 0;
        while r0 < m {
            let rows = (m - r0).min(most);
            tile(r0, rows, &mut out[r0 * COLUMNS..(r0 + rows) * COLUMNS]);
            r0 += rows;
        }
    }
}

/// The register-tiled kernels: a tile of rows by [`COLUMNS`] columns accumulates in registers
/// while the block's weight rows stream past once, one broadcast of `x` per row and weight row.
#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{Block, COLUMNS};

    /// Up to 8 rows by 32 columns: 16 AVX-512 accumulators.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn tile_avx512(b: &Block, r0: usize, rows: usize, out: &mut [f32]) {
        match rows {
            8 => tile512::<8>(b, r0, out),
            4..=7 => {
                tile512::<4>(b, r0, out);
                tile_avx512(b, r0 + 4, rows - 4, &mut out[4 * COLUMNS..]);
            }
            2 | 3 => {
                tile512::<2>(b, r0, out);
                tile_avx512(b, r0 + 2, rows - 2, &mut out[2 * COLUMNS..]);
            }
            1 => tile512::<1>(b, r0, out),
            _ => {}
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile512<const R: usize>(b: &Block, r0: usize, out: &mut [f32]) {
        // SAFETY (all pointer reads and writes): bounds checked by `Block::tiles`.
        let mut acc = [_mm512_setzero_ps(); 16];
        if let Some(bias) = b.bias {
            let p = bias.as_ptr().add(b.j0);
            for r in 0..R {
                acc[2 * r] = _mm512_loadu_ps(p);
                acc[2 * r + 1] = _mm512_loadu_ps(p.add(16));
            }
        }
        let x = b.x.as_ptr().add(r0 * b.k);
        let w = b.w.as_ptr();
        for kk in 0..b.k {
            let w0 = _mm512_loadu_ps(w.add(kk * COLUMNS));
            let w1 = _mm512_loadu_ps(w.add(kk * COLUMNS + 16));
            for r in 0..R {
                let xv = _mm512_set1_ps(*x.add(r * b.k + kk));
                acc[2 * r] = _mm512_fmadd_ps(xv, w0, acc[2 * r]);
                acc[2 * r + 1] = _mm512_fmadd_ps(xv, w1, acc[2 * r + 1]);
            }
        }
        for r in 0..R {
            _mm512_storeu_ps(out.as_mut_ptr().add(r * COLUMNS), acc[2 * r]);
            _mm512_storeu_ps(out.as_mut_ptr().add(r * COLUMNS + 16), acc[2 * r + 1]);
        }
    }

    /// Up to 2 rows by 32 columns: 8 AVX2 accumulators.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn tile_avx2(b: &Block, r0: usize, rows: usize, out: &mut [f32]) {
        match rows {
            2 => tile256::<2>(b, r0, out),
            1 => tile256::<1>(b, r0, out),
            _ => {}
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile256<const R: usize>(b: &Block, r0: usize, out: &mut [f32]) {
        // SAFETY (all pointer reads and writes): bounds checked by `Block::tiles`.
        let mut acc = [_mm256_setzero_ps(); 8];
        if let Some(bias) = b.bias {
            let p = bias.as_ptr().add(b.j0);
            for r in 0..R {
                for c in 0..4 {
                    acc[4 * r + c] = _mm256_loadu_ps(p.add(8 * c));
                }
            }
        }
        let x = b.x.as_ptr().add(r0 * b.k);
        let w = b.w.as_ptr();
        for kk in 0..b.k {
            let wr = w.add(kk * COLUMNS);
            let wv = [
                _mm256_loadu_ps(wr),
                _mm256_loadu_ps(wr.add(8)),
                _mm256_loadu_ps(wr.add(16)),
                _mm256_loadu_ps(wr.add(24)),
            ];
            for r in 0..R {
                let xv = _mm256_set1_ps(*x.add(r * b.k + kk));
                for c in 0..4 {
                    acc[4 * r + c] = _mm256_fmadd_ps(xv, wv[c], acc[4 * r + c]);
                }
            }
        }
        for r in 0..R {
            for c in 0..4 {
                _mm256_storeu_ps(out.as_mut_ptr().add(r * COLUMNS + 8 * c), acc[4 * r + c]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the textbook triple loop: row counts around the tile sizes, a partial last
    /// column block, several groups, with and without a bias, on one thread and on the pool.
    #[test]
    fn matches_the_triple_loop() {
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 1009.0) - 0.5;
        for (groups, m, k, n) in [
            (1, 1, 5, 3),
            (1, 8, 64, 96),
            (3, 13, 40, 70),
            (2, 40, 512, 288),
        ] {
            let x: Vec<f32> = (0..groups * m * k).map(value).collect();
            let w: Vec<f32> = (0..groups * k * n).map(|i| value(i + 17)).collect();
            let b: Vec<f32> = (0..n).map(|i| value(i + 5)).collect();
            for bias in [None, Some(b.as_slice())] {
                let y = products(&x, &Packed::new(&w, groups, k, n), bias, m > 8);
                for g in 0..groups {
                    for i in 0..m {
                        for j in 0..n {
                            let want = bias.map_or(0.0, |b| b[j])
                                + (0..k)
                                    .map(|kk| x[(g * m + i) * k + kk] * w[(g * k + kk) * n + j])
                                    .sum::<f32>();
                            let got = y[(g * m + i) * n + j];
                            assert!(
                                (got - want).abs() <= 1e-4,
                                "{groups} {m} {k} {n}: {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The AVX2 kernel (which a machine with AVX-512 never picks) against the triple loop.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_kernel_matches_the_triple_loop() {
        if !std::arch::is_x86_feature_detected!("avx2")
            || !std::arch::is_x86_feature_detected!("fma")
        {
            return;
        }
        let value = |i: usize| ((i * 7919 % 1009) as f32 / 1009.0) - 0.5;
        let (m, k, n) = (5, 48, 64);
        let x: Vec<f32> = (0..m * k).map(value).collect();
        let w: Vec<f32> = (0..k * n).map(|i| value(i + 3)).collect();
        let bias: Vec<f32> = (0..n).map(value).collect();
        let packed = Packed::new(&w, 1, k, n);
        let block = Block {
            x: &x,
            w: packed.block(0, 32),
            bias: Some(&bias),
            k,
            j0: 32,
            width: COLUMNS,
        };
        let mut fast = vec![0.0f32; m * COLUMNS];
        // SAFETY: AVX2 and FMA were detected above.
        unsafe {
            block.tiles(m, &mut fast, 2, |r0, r, out| {
                x86::tile_avx2(&block, r0, r, out)
            })
        };
        for i in 0..m {
            for j in 0..COLUMNS {
                let want = bias[32 + j]
                    + (0..k)
                        .map(|kk| x[i * k + kk] * w[kk * n + 32 + j])
                        .sum::<f32>();
                let got = fast[i * COLUMNS + j];
                assert!(
                    (got - want).abs() <= 1e-4,
                    "row {i} column {j}: {got} vs {want}"
                );
            }
        }
    }
}
