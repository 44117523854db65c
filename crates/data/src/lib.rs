//! Data layer: manifests, corpus preparation, the offline Debian corpus, the tokenizer, the
//! feature cache and batching. No Burn here: batches are plain host arrays.
//!
//! ```text
//! corpus build / prepare --> manifest.tsv --Dataset::open--> feature cache (fbank once, all cores)
//!                                            \--batches(cfg, epoch)--> [[index]] --load_batch--> Batch
//! ```

pub mod audio;
pub mod batcher;
pub mod bench;
pub mod corpus;
pub mod dataset;
pub mod error;
pub mod feature_cache;
pub(crate) mod fs;
pub mod issue;
pub mod manifest;
pub mod mustc;
pub mod prepare;
pub mod progress;
pub mod sentencepiece;
pub mod tokenizer;

pub use audio::AudioRef;
pub use batcher::BatchConfig;
pub use bench::{bench_loader, LoaderBenchOptions, LoaderBenchReport};
pub use dataset::{Batch, Dataset, DatasetOptions, TargetSide};
pub use error::DataError;
pub use issue::{BadRows, IssueKind, IssueLog, RowIssue, SHOW_ISSUES};
pub use manifest::{Manifest, ManifestRow};
pub use prepare::{PrepareOptions, PrepareReport};
pub use tokenizer::Tokenizer;
