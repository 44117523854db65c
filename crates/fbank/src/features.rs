//! A dense `[frames, dim]` feature matrix, row-major, as every stage of the front end passes it.

/// Row-major `[frames, dim]` f32 matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub frames: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Features {
    /// Wraps `data`, which must hold `frames * dim` values.
    pub fn new(frames: usize, dim: usize, data: Vec<f32>) -> Self {
        assert_eq!(
            data.len(),
            frames * dim,
            "feature data length must be frames * dim"
        );
        Self { frames, dim, data }
    }

    /// An empty matrix with `dim` columns.
    pub fn empty(dim: usize) -> Self {
        Self::new(0, dim, Vec::new())
    }

    /// Row `t`.
    pub fn row(&self, t: usize) -> &[f32] {
        &self.data[t * self.dim..(t + 1) * self.dim]
    }
}
