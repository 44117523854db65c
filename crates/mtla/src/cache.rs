//! KV caches for incremental decoding. Each grows along time in blocks (no copy of the whole
//! cache per step), can be reordered for beam search, and reports its exact size.

use std::sync::Arc;

use burn::prelude::*;

/// Slots added at a time when a cache runs out of room.
pub const GROWTH_BLOCK: usize = 64;

/// A tensor with a time axis that is filled up to `len` of its `capacity` slots.
#[derive(Debug, Clone)]
pub struct GrowingBuffer<B: Backend, const D: usize> {
    data: Option<Tensor<B, D>>,
    len: usize,
    time_dim: usize,
}

impl<B: Backend, const D: usize> GrowingBuffer<B, D> {
    /// Wraps `initial`, all of whose slots along `time_dim` are filled.
    pub fn new(initial: Tensor<B, D>, time_dim: usize) -> Self {
        let len = initial.dims()[time_dim];
        Self {
            data: Some(initial),
            len,
            time_dim,
        }
    }

    fn data(&self) -> &Tensor<B, D> {
        self.data
            .as_ref()
            .expect("buffer is always filled between calls")
    }

    fn ranges(&self, start: usize, end: usize) -> [std::ops::Range<usize>; D] {
        let dims = self.data().dims();
        std::array::from_fn(|d| {
            if d == self.time_dim {
                start..end
            } else {
                0..dims[d]
            }
        })
    }

    /// Filled slots.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no slot is filled.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Allocated slots.
    pub fn capacity(&self) -> usize {
        self.data().dims()[self.time_dim]
    }

    /// Size of dimension 0 (rows).
    pub fn batch(&self) -> usize {
        self.data().dims()[0]
    }

    /// Elements per slot.
    fn slot_elements(&self) -> usize {
        self.data()
            .dims()
            .iter()
            .enumerate()
            .filter(|(d, _)| *d != self.time_dim)
            .map(|(_, n)| n)
            .product()
    }

    /// Bytes of the filled slots.
    pub fn bytes(&self) -> usize {
        self.len * self.slot_elements() * self.data().dtype().size()
    }

    /// Bytes allocated, filled or not.
    pub fn capacity_bytes(&self) -> usize {
        self.capacity() * self.slot_elements() * self.data().dtype().size()
    }

    /// Makes room for `additional` more slots (one copy, however many steps follow).
    pub fn reserve(&mut self, additional: usize) {
        let needed = self.len + additional;
        if needed <= self.capacity() {
            return;
        }
        let data = self.data.take().expect("filled");
        let mut shape = data.dims();
        shape[self.time_dim] = needed - shape[self.time_dim];
        let extra = Tensor::<B, D>::zeros(shape, (&data.device(), data.dtype()));
        self.data = Some(Tensor::cat(vec![data, extra], self.time_dim));
    }

    /// Appends one slot (`value` has size 1 along time), growing by [`GROWTH_BLOCK`] if full.
    pub fn push(&mut self, value: Tensor<B, D>) {
        if self.len == self.capacity() {
            self.reserve(GROWTH_BLOCK);
        }
        self.write(self.len, value);
        self.len += 1;
    }

    /// Overwrites the last filled slot.
    pub fn set_last(&mut self, value: Tensor<B, D>) {
        self.write(self.len - 1, value);
    }

    fn write(&mut self, at: usize, value: Tensor<B, D>) {
        let ranges = self.ranges(at, at + 1);
        // Taken out so the buffer is uniquely owned and can be written in place.
        let data = self.data.take().expect("filled");
        self.data = Some(
            match crate::inplace::write_slot(data, self.time_dim, at, value) {
                Ok(data) => data,
                Err((data, value)) => data.slice_assign(ranges, value),
            },
        );
    }

    /// The last filled slot.
    pub fn last(&self) -> Tensor<B, D> {
        self.data()
            .clone()
            .slice(self.ranges(self.len - 1, self.len))
    }

    /// The filled slots (a view on backends that support one).
    pub fn view(&self) -> Tensor<B, D> {
        self.data().clone().slice(self.ranges(0, self.len))
    }

    /// Reorders rows (dimension 0), e.g. to follow beam search: row `i` becomes old row
    /// `rows[i]`. Slots past `len` are left as they are (never read before being written).
    pub fn reorder(&mut self, rows: Tensor<B, 1, Int>) {
        let data = self.data.take().expect("filled");
        self.data = Some(
            match crate::inplace::reorder_rows(data, self.time_dim, self.len, &rows) {
                Ok(data) => data,
                Err(data) => data.select(0, rows),
            },
        );
    }
}

/// Cache of the MHA kinds: RoPE-rotated keys and values, `[batch, kv_heads, time, head_dim]`,
/// plus a `[batch, 1, 1, time]` bias hiding padded prefix keys (only when there were any).
#[derive(Debug, Clone)]
pub struct KvCache<B: Backend> {
    pub keys: GrowingBuffer<B, 4>,
    pub values: GrowingBuffer<B, 4>,
    pub slot_bias: Option<GrowingBuffer<B, 4>>,
    /// The layer's weights packed for the fused CPU step, made on its first step.
    pub(crate) step_weights: Option<Arc<crate::decode_step::KvWeights>>,
}

/// Cache of MLA/MTLA: one slot per chunk of `down_rate` tokens holding `[ĉ ‖ k_R]`
/// (`[batch, 1, slots, r + d_R]`: the unit axis lets attention read it as one K/V head without
/// a copy): the hyper-network-weighted sum of the chunk's latents and the
/// RoPE key of its newest token (paper Sec. 4.1, 4.3).
#[derive(Debug, Clone)]
pub struct LatentCache<B: Backend> {
    pub slots: GrowingBuffer<B, 4>,
    /// Tokens seen so far over the whole prefix + target sequence (the merge counter).
    pub tokens: usize,
    pub down_rate: usize,
    /// Per row, the index among non-empty chunks of the last chunk, `[batch, 1]` (the
    /// hyper-network's positional input).
    pub chunk_index: Tensor<B, 2>,
    /// Per row, 1 when the last chunk holds only padding so far, `[batch, 1]`; `None` when the
    /// prefix had no padding.
    pub last_empty: Option<Tensor<B, 2>>,
    /// `[batch, 1, 1, slots]` bias hiding all-padding slots; `None` without padding.
    pub slot_bias: Option<GrowingBuffer<B, 4>>,
    /// The layer's absorbed up-projections, made contiguous once for this decoding session.
    pub absorbed: Option<crate::mtla::Absorbed<B>>,
    /// The layer's weights packed for the fused CPU step, made on its first step.
    pub(crate) step_weights: Option<Arc<crate::decode_step::LatentWeights>>,
}

impl<B: Backend> LatentCache<B> {
    /// Does the next token start a new chunk? (`n % s == 1` with the paper's 1-based `n`.)
    pub fn next_starts_chunk(&self) -> bool {
        self.tokens % self.down_rate == 0
    }
}

/// The incremental state of one attention layer.
#[derive(Debug, Clone)]
pub enum Cache<B: Backend> {
    Kv(KvCache<B>),
    Latent(LatentCache<B>),
}

impl<B: Backend> Cache<B> {
    /// Rows (batch × beams).
    pub fn batch(&self) -> usize {
        match self {
            Self::Kv(c) => c.keys.batch(),
            Self::Latent(c) => c.slots.batch(),
        }
    }

    /// Cached time slots (tokens for MHA kinds and MLA, chunks for MTLA).
    pub fn len(&self) -> usize {
        match self {
            Self::Kv(c) => c.keys.len(),
            Self::Latent(c) => c.slots.len(),
        }
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Exact bytes of the cached keys/values (latents), all rows.
    pub fn bytes(&self) -> usize {
        match self {
            Self::Kv(c) => c.keys.bytes() + c.values.bytes(),
            Self::Latent(c) => c.slots.bytes(),
        }
    }

    /// Bytes allocated for keys/values, including the room reserved for later steps.
    pub fn capacity_bytes(&self) -> usize {
        match self {
            Self::Kv(c) => c.keys.capacity_bytes() + c.values.capacity_bytes(),
            Self::Latent(c) => c.slots.capacity_bytes(),
        }
    }

    /// Reserves room for `tokens` more tokens, so that decoding them never reallocates.
    pub fn reserve(&mut self, tokens: usize) {
        match self {
            Self::Kv(c) => {
                c.keys.reserve(tokens);
                c.values.reserve(tokens);
                if let Some(b) = c.slot_bias.as_mut() {
                    b.reserve(tokens);
                }
            }
            Self::Latent(c) => {
                let slots = tokens.div_ceil(c.down_rate) + 1;
                c.slots.reserve(slots);
                if let Some(b) = c.slot_bias.as_mut() {
                    b.reserve(slots);
                }
            }
        }
    }

    /// Reorders rows to follow beam search: row `i` becomes old row `rows[i]` (the number of
    /// rows may change, e.g. when expanding a batch to `batch × beam`).
    pub fn reorder(&mut self, rows: Tensor<B, 1, Int>) {
        match self {
            Self::Kv(c) => {
                c.keys.reorder(rows.clone());
                c.values.reorder(rows.clone());
                if let Some(b) = c.slot_bias.as_mut() {
                    b.reorder(rows);
                }
            }
            Self::Latent(c) => {
                c.slots.reorder(rows.clone());
                c.chunk_index = c.chunk_index.clone().select(0, rows.clone());
                c.last_empty = c.last_empty.take().map(|e| e.select(0, rows.clone()));
                if let Some(b) = c.slot_bias.as_mut() {
                    b.reorder(rows);
                }
            }
        }
    }
}
