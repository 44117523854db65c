//! Speech front end: WAV reading, Kaldi-compatible 80-dim log-mel filterbank, CMVN, SpecAugment.
//!
//! No Burn dependency: features are plain `Vec<f32>` ([`Features`]), so the crate is quick to
//! compile and reusable. The defaults reproduce Kaldi's `compute-fbank-feats` (and
//! kaldi-native-fbank) as fairseq's speech-to-text recipes use it: 25 ms povey frames every
//! 10 ms, pre-emphasis 0.97, DC removal, 512-point power spectrum, 80 mel bins 20 Hz..Nyquist,
//! log floored at `f32::EPSILON`, samples on the int16 scale.

pub mod cmvn;
pub mod error;
pub mod fbank;
pub mod features;
pub mod mel;
pub mod npy;
pub mod resample;
pub mod specaugment;
pub mod wav;
pub mod window;

pub use cmvn::{utterance_cmvn, CmvnStats, GlobalCmvn};
pub use error::{FbankError, Result};
pub use fbank::{Fbank, FbankOptions};
pub use features::Features;
pub use mel::MelOptions;
pub use specaugment::SpecAugment;
pub use wav::{read_wav, read_wav_bytes, read_wav_slice, Audio, WavOptions};
pub use window::{FrameOptions, WindowType};
