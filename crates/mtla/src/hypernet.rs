//! The hyper-network that produces MTLA's merge weights (paper Eq. 13/16, authors'
//! `HyperNetwork`): `w_j = sigmoid( fc_c(PE(chunk(j))) . fc_p(c_j) )`, one scalar per token,
//! where `PE` is the interleaved sinusoidal embedding (dimension `kv_lora_rank`) of the chunk
//! index and `c_j` the LayerNorm-ed latent. Both linears map `r -> r/4` with bias.

use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;

use crate::linear::linear;

/// `fc_c` embeds the chunk position, `fc_p` the latent (names as in the authors' code).
#[derive(Module, Debug)]
pub struct HyperNetwork<B: Backend> {
    pub fc_c: Linear<B>,
    pub fc_p: Linear<B>,
    /// Size `r` of the latent and of the positional embedding.
    pub kv_lora_rank: usize,
}

impl<B: Backend> HyperNetwork<B> {
    /// Fresh weights for latents of size `kv_lora_rank` (low rank `r/4`).
    pub fn new(kv_lora_rank: usize, device: &B::Device) -> Self {
        let lin = || LinearConfig::new(kv_lora_rank, kv_lora_rank / 4).init(device);
        Self {
            fc_c: lin(),
            fc_p: lin(),
            kv_lora_rank,
        }
    }

    /// Merge weights `[batch, time, 1]` for latents `c` `[batch, time, r]` whose chunks have
    /// indices `chunk_index` `[rows, time]` (`rows` is 1 or `batch`).
    pub fn weights(&self, c: Tensor<B, 3>, chunk_index: Tensor<B, 2>) -> Tensor<B, 3> {
        let (pos, lat) = self.projections(c, chunk_index);
        sigmoid((pos * lat).sum_dim(2))
    }

    /// The two projections whose row-wise dot product is the merge weight's logit:
    /// `fc_c(PE(chunk))` `[rows, time, r/4]` and `fc_p(c)` `[batch, time, r/4]`.
    pub fn projections(
        &self,
        c: Tensor<B, 3>,
        chunk_index: Tensor<B, 2>,
    ) -> (Tensor<B, 3>, Tensor<B, 3>) {
        // Positions and their angles in f32; the embedding in the latents' precision.
        let pe = sinusoidal(chunk_index, self.kv_lora_rank).cast(c.dtype());
        (linear(&self.fc_c, pe), linear(&self.fc_p, c))
    }
}

/// The angular frequency of each channel of [`sinusoidal`]: `exp(−2k ln(10000) / dim)` for
/// channels `2k` and `2k + 1`.
pub(crate) fn frequencies(dim: usize) -> Vec<f32> {
    let scale = -(10000.0f32).ln() / dim as f32;
    (0..dim)
        .map(|c| ((c / 2 * 2) as f32 * scale).exp())
        .collect()
}

/// Sinusoidal embedding `[rows, time, dim]` of float positions `[rows, time]`:
/// `pe[2k] = sin(p * exp(-2k ln(10000) / dim))`, `pe[2k+1] = cos(...)` (interleaved), computed
/// as `sin(a) * even + cos(a) * odd` over pair-duplicated angles (exact, and no interleaving copy).
pub fn sinusoidal<B: Backend>(positions: Tensor<B, 2>, dim: usize) -> Tensor<B, 3> {
    let div = frequencies(dim);
    let even: Vec<f32> = (0..dim).map(|c| f32::from(c % 2 == 0)).collect();
    let odd: Vec<f32> = even.iter().map(|e| 1.0 - e).collect();
    let device = positions.device();
    let row = |v: Vec<f32>| Tensor::<B, 1>::from_floats(v.as_slice(), &device).reshape([1, 1, dim]);
    let [rows, t] = positions.dims();
    let angles = positions.reshape([rows, t, 1]) * row(div);
    angles.clone().sin() * row(even) + angles.cos() * row(odd)
}
