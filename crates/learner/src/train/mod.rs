//! Training: loss, schedule, global-norm clipping, checkpoints and the loop on burn-train.

pub mod adam;
pub mod batch;
pub mod bits_loss;
pub mod clip;
pub mod ctc;
pub mod listening;
pub mod loss;
pub mod renderer;
pub mod schedule;
pub mod setup;
pub mod state;
pub mod trainee;
pub mod trainer;
