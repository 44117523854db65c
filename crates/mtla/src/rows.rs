//! Vectorised row kernels for the CPU softmaxes: a row's maximum, `exp` with its sum, and dot
//! products; and [`dispatched!`], which compiles such a kernel for each vector unit.
//!
//! The scalar loops they replace cannot be vectorised by the compiler: `iter().sum()` and
//! `fold(f32::max)` are one chain of dependent operations (a float sum may not be reordered),
//! and `f32::exp` is a call into libm per element. In the fused attention every row of scores
//! is walked by all three, forward and backward (replacing them took 3-6 % off an attention
//! layer's training step at the paper's sizes, T 1024). Here each row is split over
//! [`LANES`] independent accumulators, combined at the end in a fixed order, and `exp` is
//! Cephes' single-precision polynomial (`exp(x) = 2ⁿ · exp(r)`, `x = n ln 2 + r`,
//! `|r| ≤ ln 2 / 2`, within 2 ulp of libm's), written so that every lane is the same
//! straight-line code. Each kernel is compiled for AVX-512 and AVX2/FMA and picked at run time
//! (SSE2 elsewhere); the arithmetic and its order are the same on every path, so the results
//! are too.

/// Independent accumulators per row: one AVX-512 register, two AVX2 ones.
const LANES: usize = 16;

/// Below this `exp` underflows f32's normal range; the kernels return 0 there.
const EXP_MIN: f32 = -87.336_54;

/// Above this `2ⁿ` would overflow (inputs are clamped to it; softmax inputs are ≤ 0).
const EXP_MAX: f32 = 88.0;

/// `exp(x)` for `x ≤ 88` (Cephes `expf`, see the module doc), 0 below [`EXP_MIN`].
#[inline(always)]
fn exp(x: f32) -> f32 {
    // Adding 1.5 · 2²³ rounds to the nearest integer, whose bits are then the mantissa's low bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let xc = x.clamp(EXP_MIN, EXP_MAX);
    let t = xc * std::f32::consts::LOG2_E + ROUND;
    let n = t - ROUND;
    let r = xc - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    for c in [1.398_2e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = p * r + c;
    }
    let e = (p * r * r + r + 1.0)
        * f32::from_bits(((t.to_bits() as i32 - 0x4B40_0000 + 127) << 23) as u32);
    if x < EXP_MIN {
        0.0
    } else {
        e
    }
}

/// Defines `fn $name` that runs `$body` compiled for the widest vector unit the CPU has.
macro_rules! dispatched {
    ($(#[$doc:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty $body:block) => {
        $(#[$doc])*
        $vis fn $name($($arg: $ty),*) -> $ret {
            #[inline(always)]
            fn body($($arg: $ty),*) -> $ret $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) -> $ret {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the feature this function is compiled for was just detected.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: as above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(crate) use dispatched;

/// `term(row_j)` folded with `combine` into [`LANES`] independent accumulators from `init`,
/// which are then combined in order, followed by the tail.
#[inline(always)]
fn fold_lanes(
    row: &[f32],
    init: f32,
    term: impl Fn(f32) -> f32,
    combine: impl Fn(f32, f32) -> f32,
) -> f32 {
    let mut acc = [init; LANES];
    let chunks = row.chunks_exact(LANES);
    let tail = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            acc[l] = combine(acc[l], term(chunk[l]));
        }
    }
    acc.into_iter()
        .chain(tail.iter().map(|&x| term(x)))
        .fold(init, &combine)
}

dispatched! {
    /// `max_j row_j` (−∞ for an empty row).
    pub fn max(row: &[f32]) -> f32 {
        fold_lanes(row, f32::NEG_INFINITY, |x| x, f32::max)
    }
}

dispatched! {
    /// `row_j ← exp(row_j − shift)`; returns `Σ_j row_j`.
    pub fn exp_sum(row: &mut [f32], shift: f32) -> f32 {
        let mut acc = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for l in 0..LANES {
                chunk[l] = exp(chunk[l] - shift);
                acc[l] += chunk[l];
            }
        }
        let tail = chunks.into_remainder();
        tail.iter_mut().for_each(|x| *x = exp(*x - shift));
        acc.into_iter().chain(tail.iter().copied()).fold(0.0, |a, b| a + b)
    }
}

dispatched! {
    /// `Σ_j exp(row_j − shift)`, the row unchanged.
    pub fn exp_sum_of(row: &[f32], shift: f32) -> f32 {
        fold_lanes(row, 0.0, |x| exp(x - shift), |a, b| a + b)
    }
}

dispatched! {
    /// `Σ_j row_j`.
    pub fn sum(row: &[f32]) -> f32 {
        fold_lanes(row, 0.0, |x| x, |a, b| a + b)
    }
}

dispatched! {
    /// `Σ_j a_j b_j` over the shorter of the two.
    pub fn dot(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (a, b) = (&a[..n], &b[..n]);
        let mut acc = [0.0f32; LANES];
        let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
        let tail = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y);
        for (x, y) in ca.zip(cb) {
            for l in 0..LANES {
                acc[l] += x[l] * y[l];
            }
        }
        acc.into_iter().chain(tail).fold(0.0, |s, x| s + x)
    }
}

/// `row ← softmax(row)`, shifted by the row's maximum; returns that shift and the scale
/// `1 / Σ_j exp(row_j − shift)`, from which [`softmax_with`] recomputes the same values.
pub fn softmax_in_place(row: &mut [f32]) -> (f32, f32) {
    let shift = max(row);
    let scale = 1.0 / exp_sum(row, shift);
    row.iter_mut().for_each(|x| *x *= scale);
    (shift, scale)
}

/// `row_j ← exp(row_j − shift) · scale`: the softmax of the scores `row` from the normaliser
/// [`softmax_in_place`] returned for them, bit for bit.
pub fn softmax_with(row: &mut [f32], (shift, scale): (f32, f32)) {
    exp_sum(row, shift);
    row.iter_mut().for_each(|x| *x *= scale);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs over the range softmaxes see, with lengths around the lane width.
    fn rows() -> Vec<Vec<f32>> {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        [0, 1, 15, 16, 17, 33, 1000]
            .into_iter()
            .map(|n| (0..n).map(|_| next() * 180.0 - 95.0).collect())
            .collect()
    }

    #[test]
    fn exp_is_within_2_ulp_of_libm() {
        let mut x = -87.3f32;
        while x <= 88.0 {
            let (got, want) = (exp(x), x.exp());
            assert!(
                (got - want).abs() <= 2.0 * f32::EPSILON * want,
                "exp({x}) = {got}, libm {want}"
            );
            x += 0.013;
        }
        assert_eq!(exp(-1e9), 0.0);
        assert_eq!(exp(EXP_MIN - 1.0), 0.0);
        assert_eq!(exp(0.0), 1.0);
    }

    #[test]
    fn kernels_match_scalar_loops() {
        for row in rows() {
            let n = row.len();
            assert_eq!(
                max(&row),
                row.iter().copied().fold(f32::NEG_INFINITY, f32::max)
            );
            let shift = if n == 0 { 0.0 } else { max(&row) };
            let want: Vec<f64> = row.iter().map(|&x| ((x - shift) as f64).exp()).collect();
            let want_sum: f64 = want.iter().sum();
            let mut got = row.clone();
            let total = exp_sum(&mut got, shift);
            assert!(
                (total as f64 - want_sum).abs() <= 1e-5 * want_sum.max(1.0),
                "n {n}"
            );
            assert_eq!(exp_sum_of(&row, shift), total, "n {n}");
            for (g, w) in got.iter().zip(&want) {
                assert!((*g as f64 - w).abs() <= 1e-6 * w.max(1e-30), "{g} vs {w}");
            }
            let other: Vec<f32> = row.iter().map(|x| x * 0.01 - 0.3).collect();
            let want_dot: f64 = row
                .iter()
                .zip(&other)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let scale: f64 = row
                .iter()
                .zip(&other)
                .map(|(a, b)| (*a as f64 * *b as f64).abs())
                .sum();
            assert!((dot(&row, &other) as f64 - want_dot).abs() <= 1e-5 * scale.max(1.0));
            let (want_sum, abs): (f64, f64) = row
                .iter()
                .fold((0.0, 0.0), |(s, a), &x| (s + x as f64, a + x.abs() as f64));
            assert!((sum(&row) as f64 - want_sum).abs() <= 1e-5 * abs.max(1.0));
        }
    }

    #[test]
    fn softmax_sums_to_one_and_keeps_masked_keys_at_zero() {
        let mut row: Vec<f32> = (0..40).map(|i| i as f32 * 0.1).collect();
        row[7] = -1e9;
        let scores = row.clone();
        let norm = softmax_in_place(&mut row);
        let mut again = scores;
        softmax_with(&mut again, norm);
        assert_eq!(again, row);
        assert_eq!(row[7], 0.0);
        assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        let want = (3.9f32 - 3.8).exp();
        assert!((row[39] / row[38] - want).abs() < 1e-5);
    }
}
