//! Does the model listen? Two numbers at every validation that a loss curve alone hides:
//!
//! - the **audio gain**: the teacher-forced decoder NLL (bits per target token) with each
//!   utterance's features swapped for another utterance's of the same batch, minus the NLL on
//!   its own features. A decoder that has only learned a language model of the targets scores
//!   the same on foreign audio (gain ≈ 0); one that uses the audio loses on it (gain > 0).
//! - the **greedy CTC WER** of the encoder's CTC head, when it has one: frame-wise argmax,
//!   repeats merged, blanks dropped, scored against the reference texts as jiwer does.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::batch::TrainBatch;

/// One validation's figures; losses in bits per target token.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// The training objective (decoder, and CTC when weighted in).
    pub loss: f64,
    /// Teacher-forced token accuracy of the decoder, a fraction.
    pub accuracy: f64,
    /// The encoder's CTC loss, when the model has a CTC head.
    pub ctc_loss: Option<f64>,
    /// Decoder NLL on swapped audio minus on the real audio; `None` when no batch had two rows.
    pub audio_gain: Option<f64>,
    /// Greedy CTC word error rate, a fraction; `None` without a CTC head.
    pub ctc_wer: Option<f64>,
}

impl Validation {
    /// ` | ctc … | audio gain … | ctc WER …` for the figures there are (console lines).
    pub fn extras(&self) -> String {
        let mut out = String::new();
        if let Some(c) = self.ctc_loss {
            out += &format!(" | ctc loss (bits/token) {c:.3}");
        }
        if let Some(g) = self.audio_gain {
            out += &format!(" | audio gain (bits/token) {g:.3}");
        }
        if let Some(w) = self.ctc_wer {
            out += &format!(" | greedy CTC WER % {:.1}", 100.0 * w);
        }
        out
    }
}

/// `batch` with every row's features (and frame count) replaced by the next row's, the last
/// row taking the first's: same targets, foreign audio of similar length (batches are
/// length-bucketed). `None` for a batch of one row, which has no other audio to swap in.
pub fn swap_audio<B: Backend>(batch: &TrainBatch<B>) -> Option<TrainBatch<B>> {
    let n = batch.frames.len();
    if n < 2 {
        return None;
    }
    let features = Tensor::cat(
        vec![
            batch.features.clone().narrow(0, 1, n - 1),
            batch.features.clone().narrow(0, 0, 1),
        ],
        0,
    );
    let mut frames = batch.frames.clone();
    frames.rotate_left(1);
    Some(TrainBatch {
        features,
        frames,
        ..batch.clone()
    })
}

/// Greedy CTC decoding of `log_probs` `[batch, frames, vocab]`: the best token of each of the
/// row's first `lengths[row]` frames, consecutive repeats merged, `blank` removed.
pub fn greedy_ctc<B: Backend>(
    log_probs: Tensor<B, 3>,
    lengths: &[usize],
    blank: u32,
) -> Vec<Vec<u32>> {
    let [n, t, _] = log_probs.dims();
    let best: Vec<i64> = log_probs
        .argmax(2)
        .reshape([n * t])
        .into_data()
        .convert::<i64>()
        .into_vec()
        .expect("argmax gives integers");
    (0..n)
        .map(|row| {
            let frames = &best[row * t..row * t + lengths[row].min(t)];
            let mut out = Vec::new();
            let mut previous = None;
            for &id in frames {
                let id = id as u32;
                if previous != Some(id) && id != blank {
                    out.push(id);
                }
                previous = Some(id);
            }
            out
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;

    #[test]
    fn swapping_audio_rotates_features_and_frames_and_keeps_targets() {
        let device = Default::default();
        let host = data::Batch {
            ids: vec!["a".into(), "b".into(), "c".into()],
            features: (0..3 * 2 * 1).map(|v| v as f32).collect(),
            frames: vec![2, 1, 2],
            max_frames: 2,
            feat_dim: 1,
            targets: vec![vec![5], vec![6, 7], vec![8]],
            target_texts: vec!["a".into(), "b".into(), "c".into()],
        };
        let specials = super::super::batch::Specials {
            bos: 1,
            eos: 2,
            pad: 0,
        };
        let batch = super::super::batch::to_tensors::<Flex>(&host, specials, &device);
        let swapped = swap_audio(&batch).unwrap();
        assert_eq!(swapped.frames, vec![1, 2, 2]);
        let f: Vec<f32> = swapped.features.clone().into_data().into_vec().unwrap();
        assert_eq!(f, vec![2.0, 3.0, 4.0, 5.0, 0.0, 1.0]);
        let t = |b: &TrainBatch<Flex>| b.targets.clone().into_data();
        assert_eq!(t(&swapped), t(&batch));
        assert_eq!(swapped.texts, batch.texts);
        let one = super::super::batch::to_tensors::<Flex>(
            &data::Batch {
                ids: vec!["a".into()],
                features: vec![0.0, 1.0],
                frames: vec![2],
                max_frames: 2,
                feat_dim: 1,
                targets: vec![vec![5]],
                target_texts: vec!["a".into()],
            },
            specials,
            &device,
        );
        assert!(swap_audio(&one).is_none(), "one row has no other audio");
    }

    #[test]
    fn greedy_ctc_merges_repeats_and_drops_blanks_within_each_length() {
        let device = Default::default();
        // Frame-wise best ids, row 0: 3 3 0 3 5 5 | 7 (beyond its length); row 1: 0 4 4 0 0 0 0.
        let best = [[3, 3, 0, 3, 5, 5, 7], [0, 4, 4, 0, 0, 0, 0]];
        let mut lp = vec![0.0f32; 2 * 7 * 8];
        for (r, row) in best.iter().enumerate() {
            for (f, &id) in row.iter().enumerate() {
                lp[(r * 7 + f) * 8 + id] = 1.0;
            }
        }
        let lp = Tensor::<Flex, 1>::from_floats(lp.as_slice(), &device).reshape([2, 7, 8]);
        assert_eq!(greedy_ctc(lp, &[6, 7], 0), vec![vec![3, 3, 5], vec![4]]);
    }
}
