//! Data, training, beam search and evaluation for MTLA speech translation.

pub mod average;
pub mod compare;
pub mod config;
pub mod data;
pub mod decode;
pub mod error;
pub mod eval;
pub mod metrics;
pub mod train;
