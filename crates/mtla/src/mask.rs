//! Attention masks, built on the host from sequence lengths: the causal mask, the paper's
//! stride-aware causal mask, key padding, and the chunk bookkeeping MTLA needs under padding.
//!
//! Masks are additive biases (0 visible / -1e9 hidden, as the reference), so a row that sees
//! nothing stays finite instead of turning into NaN.

use burn::prelude::*;
use burn::tensor::DType;

/// Value added to hidden scores (the reference uses -1e9, not -inf).
pub const MASKED: f32 = -1e9;

/// Which keys of a batch are padding, known on the host (built from sequence lengths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPadding {
    batch: usize,
    len: usize,
    padded: Vec<bool>,
}

impl KeyPadding {
    /// `padded[b * len + j]` is true when key `j` of row `b` is padding.
    pub fn new(batch: usize, len: usize, padded: Vec<bool>) -> Self {
        assert_eq!(
            padded.len(),
            batch * len,
            "padding flags must be batch * len"
        );
        Self { batch, len, padded }
    }

    /// Rows whose real keys are a prefix of `lengths[b]` positions, padded up to `len`.
    pub fn from_lengths(lengths: &[usize], len: usize) -> Self {
        let padded = lengths
            .iter()
            .flat_map(|&l| (0..len).map(move |j| j >= l))
            .collect();
        Self::new(lengths.len(), len, padded)
    }

    /// Number of rows.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Number of key positions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no key positions.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Is key `j` of row `b` padding?
    pub fn is_padded(&self, b: usize, j: usize) -> bool {
        self.padded[b * self.len + j]
    }

    /// Additive bias `[batch, len]` hiding the padded keys (0 / -1e9); `None` when no key is
    /// padding.
    pub fn key_bias(&self) -> Option<Vec<f32>> {
        ChunkLayout::new(1, self.len, Some(self)).slot_bias()
    }

    /// True when no key is padding (the masks then need no per-row part).
    pub fn is_none_padded(&self) -> bool {
        !self.padded.iter().any(|&p| p)
    }
}

/// The stride-aware causal mask of MTLA (0-based, as the authors' code): the query at index
/// `i` sees key `j` iff `j == i`, or `j <= i` and `j` ends a chunk (`(j + 1) % s == 0`).
/// With `s = 1` this is the ordinary causal mask.
pub fn stride_aware_visible(i: usize, j: usize, down_rate: usize) -> bool {
    j == i || (j <= i && (j + 1) % down_rate == 0)
}

/// Host-side view of how a `[batch, time]` key sequence falls into chunks of `down_rate`.
#[derive(Debug, Clone)]
pub struct ChunkLayout<'a> {
    pub down_rate: usize,
    pub len: usize,
    pub padding: Option<&'a KeyPadding>,
}

impl<'a> ChunkLayout<'a> {
    /// Layout of `len` keys; `padding` of `None` (or without padded keys) means all are real.
    pub fn new(down_rate: usize, len: usize, padding: Option<&'a KeyPadding>) -> Self {
        let padding = padding.filter(|p| !p.is_none_padded());
        Self {
            down_rate,
            len,
            padding,
        }
    }

    /// Rows that differ (1 when there is no padding: every row is the same).
    pub fn rows(&self) -> usize {
        self.padding.map_or(1, |p| p.batch())
    }

    fn real(&self, b: usize, j: usize) -> bool {
        self.padding.is_none_or(|p| !p.is_padded(b, j))
    }

    /// Does the chunk of key `j` hold a real token at or before `j`? (The merged state at `j`
    /// is then non-empty; an all-padding state is hidden.)
    fn state_nonempty(&self, b: usize, j: usize) -> bool {
        let start = j - j % self.down_rate;
        (start..=j).any(|k| self.real(b, k))
    }

    /// Additive bias `[rows, queries, len]` for queries at the last `queries` positions:
    /// stride-aware causal visibility, hiding all-padding states.
    pub fn bias(&self, queries: usize) -> (usize, Vec<f32>) {
        let (rows, t, s) = (self.rows(), self.len, self.down_rate);
        let mut out = Vec::with_capacity(rows * queries * t);
        for b in 0..rows {
            for q in 0..queries {
                let i = t - queries + q;
                out.extend((0..t).map(|j| {
                    if stride_aware_visible(i, j, s) && self.state_nonempty(b, j) {
                        0.0
                    } else {
                        MASKED
                    }
                }));
            }
        }
        (rows, out)
    }

    /// Bias over the cache slots kept after `len` tokens (one per chunk): hides the chunks
    /// that hold only padding. `None` when nothing is hidden.
    pub fn slot_bias(&self) -> Option<Vec<f32>> {
        let p = self.padding?;
        let slots = self.len.div_ceil(self.down_rate);
        let mut out = Vec::with_capacity(p.batch() * slots);
        for b in 0..p.batch() {
            for c in 0..slots {
                let last = ((c + 1) * self.down_rate).min(self.len) - 1;
                out.push(if self.state_nonempty(b, last) {
                    0.0
                } else {
                    MASKED
                });
            }
        }
        Some(out)
    }

    /// Index of each token's chunk among the non-empty chunks, `[rows, len]`: the position
    /// fed to the hyper-network's sinusoidal embedding. Without padding this is `j / s`, the
    /// reference's chunk index; with padding, all-padding chunks are not counted, so a row's
    /// real tokens get the same indices however much padding the batch adds.
    pub fn chunk_index(&self) -> (usize, Vec<f32>) {
        let (rows, t, s) = (self.rows(), self.len, self.down_rate);
        let mut out = Vec::with_capacity(rows * t);
        for b in 0..rows {
            let mut nonempty_before = 0usize;
            for c in 0..t.div_ceil(s) {
                let (start, end) = (c * s, ((c + 1) * s).min(t));
                out.extend((start..end).map(|_| nonempty_before as f32));
                if (start..end).any(|k| self.real(b, k)) {
                    nonempty_before += 1;
                }
            }
        }
        (rows, out)
    }

    /// For each key, the key whose RoPE key its chunk state carries, `[batch, len]`: the newest
    /// real token of its chunk at or before it (itself if there is none, the state is then
    /// hidden). A slot keeps its newest *real* token's RoPE key, however much padding follows.
    /// `None` without padding.
    pub fn rope_source(&self) -> Option<Vec<i64>> {
        let p = self.padding?;
        let mut out = Vec::with_capacity(p.batch() * self.len);
        for b in 0..p.batch() {
            let mut newest = 0;
            for j in 0..self.len {
                if j % self.down_rate == 0 || self.real(b, j) {
                    newest = j;
                }
                out.push(if self.real(b, newest) {
                    newest as i64
                } else {
                    j as i64
                });
            }
        }
        Some(out)
    }

    /// 1 for real tokens, 0 for padding, `[batch, len]`; `None` without padding.
    pub fn keep(&self) -> Option<Vec<f32>> {
        let p = self.padding?;
        Some(
            (0..p.batch() * self.len)
                .map(|k| f32::from(!p.padded[k]))
                .collect(),
        )
    }

    /// Per row: (index among non-empty chunks of the last chunk, does it hold a real token).
    pub fn last_chunk_state(&self) -> Vec<(f32, bool)> {
        let (idx_rows, idx) = self.chunk_index();
        (0..idx_rows)
            .map(|b| {
                let last = self.len - 1;
                (idx[b * self.len + last], self.state_nonempty(b, last))
            })
            .collect()
    }
}

/// Uploads a host bias `[rows, queries, len]` as a `[rows, 1, queries, len]` tensor of type
/// `dtype` (the scores'). In f16, whose range ends at 65504, hidden keys get f16's lowest
/// finite value rather than -1e9, which would round to -inf (and a row that sees nothing to NaN).
pub fn bias_tensor<B: Backend>(
    rows: usize,
    queries: usize,
    len: usize,
    mut data: Vec<f32>,
    device: &B::Device,
    dtype: DType,
) -> Tensor<B, 4> {
    if dtype == DType::F16 {
        let lowest = f32::from(burn::tensor::f16::MIN);
        data.iter_mut().for_each(|v| *v = v.max(lowest));
    }
    Tensor::<B, 1>::from_data(data.as_slice(), (device, dtype)).reshape([rows, 1, queries, len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stride_aware_mask_matches_the_paper_example() {
        // s = 2, T = 4 (notes 1.6): rows 0..3 see {0}, {1}, {1,2}, {1,3}.
        let vis: Vec<Vec<usize>> = (0..4)
            .map(|i| (0..4).filter(|&j| stride_aware_visible(i, j, 2)).collect())
            .collect();
        assert_eq!(vis, vec![vec![0], vec![1], vec![1, 2], vec![1, 3]]);
        // s = 3, T = 7: i = 6 sees {2, 5, 6}; i = 4 sees {2, 4}.
        let row = |i| {
            (0..7)
                .filter(|&j| stride_aware_visible(i, j, 3))
                .collect::<Vec<_>>()
        };
        assert_eq!(row(6), vec![2, 5, 6]);
        assert_eq!(row(4), vec![2, 4]);
        // s = 1 is causal.
        assert!((0..5).all(|i| (0..5).all(|j| stride_aware_visible(i, j, 1) == (j <= i))));
    }

    #[test]
    fn padding_hides_empty_states_and_skips_empty_chunks() {
        // Row 0: 3 real then 3 pads then 2 real (prefix padded in the middle); s = 2.
        let pad = KeyPadding::new(
            1,
            8,
            vec![false, false, false, true, true, true, false, false],
        );
        let layout = ChunkLayout::new(2, 8, Some(&pad));
        let (_, idx) = layout.chunk_index();
        assert_eq!(idx, vec![0., 0., 1., 1., 2., 2., 2., 2.]);
        let (_, bias) = layout.bias(1);
        // The query at 7 sees chunk ends 1, 3 (chunk {2,3} holds token 2), not 5 (all pad), and 7.
        let vis: Vec<usize> = (0..8).filter(|&j| bias[j] == 0.0).collect();
        assert_eq!(vis, vec![1, 3, 7]);
        assert_eq!(layout.slot_bias().unwrap(), vec![0.0, 0.0, MASKED, 0.0]);
        // Chunk {2, 3} keeps token 2's RoPE key at its padded end.
        assert_eq!(layout.rope_source().unwrap(), vec![0, 1, 2, 2, 4, 5, 6, 7]);
        assert_eq!(layout.last_chunk_state(), vec![(2.0, true)]);
    }

    #[test]
    fn no_padding_gives_one_shared_row() {
        let pad = KeyPadding::from_lengths(&[5, 5], 5);
        let layout = ChunkLayout::new(3, 5, Some(&pad));
        assert_eq!(layout.rows(), 1);
        assert_eq!(layout.chunk_index().1, vec![0., 0., 0., 1., 1.]);
        assert!(layout.keep().is_none() && layout.slot_bias().is_none());
    }
}
