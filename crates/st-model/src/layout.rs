//! Where every key sits in the decoder's `[prefix ; targets]` sequence, built on the host from
//! lengths: RoPE positions, padding, and the prefix region.
//!
//! The prefix region is the longest prefix rounded up to a multiple of the compression rate
//! `s`, so targets always start a new MTLA chunk; shorter prefixes are padded (hidden, and never
//! merged into a slot). Target RoPE positions continue right after each row's *real* prefix
//! (`L_b + i`, as the authors' code). Together this makes a row's result independent of the
//! other rows of its batch.

use burn::prelude::*;
use mtla::KeyPadding;

/// Host-side layout of a batch of decoder inputs.
#[derive(Debug, Clone)]
pub struct DecoderLayout {
    /// Real prefix length per row (0 in the cross layout).
    pub prefix_lengths: Vec<usize>,
    /// Prefix region shared by all rows (a multiple of `s`).
    pub region: usize,
    /// Real target length per row.
    pub target_lengths: Vec<usize>,
    /// Target positions in the batch (the longest target).
    pub targets: usize,
}

impl DecoderLayout {
    /// Layout for prefixes of `prefix_lengths` and targets of `target_lengths` (padded to
    /// `targets`), with MTLA rate `down_rate` (1 otherwise).
    pub fn new(
        prefix_lengths: &[usize],
        target_lengths: &[usize],
        targets: usize,
        down_rate: usize,
    ) -> Self {
        let longest = prefix_lengths.iter().copied().max().unwrap_or(0);
        Self {
            prefix_lengths: prefix_lengths.to_vec(),
            region: longest.div_ceil(down_rate) * down_rate,
            target_lengths: target_lengths.to_vec(),
            targets,
        }
    }

    fn batch(&self) -> usize {
        self.prefix_lengths.len()
    }

    /// RoPE positions `[batch, region + targets]`: `j` in the prefix, `L_b + i` for target `i`.
    pub fn positions<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let t = self.region + self.targets;
        let v: Vec<f32> = self
            .prefix_lengths
            .iter()
            .flat_map(|&l| {
                (0..t).map(move |j| {
                    if j < self.region {
                        j as f32
                    } else {
                        (l + j - self.region) as f32
                    }
                })
            })
            .collect();
        Tensor::<B, 1>::from_floats(v.as_slice(), device).reshape([self.batch(), t])
    }

    /// Padding of `[prefix region ; targets]`.
    pub fn padding(&self) -> KeyPadding {
        let t = self.region + self.targets;
        let flags = self
            .prefix_lengths
            .iter()
            .zip(&self.target_lengths)
            .flat_map(|(&l, &n)| {
                (0..t).map(move |j| {
                    if j < self.region {
                        j >= l
                    } else {
                        j - self.region >= n
                    }
                })
            })
            .collect();
        KeyPadding::new(self.batch(), t, flags)
    }

    /// Padding of the prefix region alone.
    pub fn prefix_padding(&self) -> KeyPadding {
        KeyPadding::from_lengths(&self.prefix_lengths, self.region)
    }

    /// RoPE positions of the prefix region `[batch, region]`.
    pub fn prefix_positions<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        self.positions::<B>(device).slice(s![.., 0..self.region])
    }

    /// RoPE position of each row's first target token, `[batch, 1]`.
    pub fn first_target_positions<B: Backend>(&self, device: &B::Device) -> Tensor<B, 2> {
        let v: Vec<f32> = self.prefix_lengths.iter().map(|&l| l as f32).collect();
        Tensor::<B, 1>::from_floats(v.as_slice(), device).reshape([self.batch(), 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_positions_and_padding() {
        type B = burn::backend::Flex;
        let layout = DecoderLayout::new(&[5, 3], &[2, 1], 2, 2);
        assert_eq!(layout.region, 6);
        let pos: Vec<f32> = layout
            .positions::<B>(&Default::default())
            .into_data()
            .to_vec()
            .unwrap();
        assert_eq!(&pos[..8], &[0., 1., 2., 3., 4., 5., 5., 6.]);
        assert_eq!(&pos[8..], &[0., 1., 2., 3., 4., 5., 3., 4.]);
        let pad = layout.padding();
        let row1: Vec<bool> = (0..8).map(|j| pad.is_padded(1, j)).collect();
        assert_eq!(
            row1,
            vec![false, false, false, true, true, true, false, true]
        );
    }
}
