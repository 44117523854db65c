//! Training, beam search and evaluation for MTLA speech translation, on the data of the
//! `data` crate and the scores of the `metrics` crate.

pub mod average;
pub mod compare;
pub mod config;
pub mod decode;
pub mod error;
pub mod eval;
pub mod infer;
pub mod precision;
pub mod train;
