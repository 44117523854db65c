//! The loss as burn-train displays and logs it, under a name that carries its unit: the mean
//! loss per target token in bits (fairseq's base 2, the one unit of every log and table here; see
//! [`Objective::metric_output`](super::trainee::Objective::metric_output)). burn's `LossMetric`
//! shows the same values under the bare name "Loss".

use std::sync::Arc;

use burn::prelude::*;
use burn::train::metric::state::{FormatOptions, NumericMetricState};
use burn::train::metric::{
    Adaptor, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric, NumericAttributes,
    NumericEntry, SerializedEntry,
};
use burn::train::SequenceOutput;

/// Mean loss per target token, in bits.
#[derive(Clone)]
pub struct BitsLoss<B: Backend> {
    name: MetricName,
    state: NumericMetricState,
    _b: B,
}

/// What [`BitsLoss`] reads from a batch's output: its mean loss.
pub struct BitsLossInput<B: Backend>(Tensor<B, 1>);

impl<B: Backend> Adaptor<BitsLossInput<B>> for SequenceOutput<B> {
    fn adapt(&self) -> BitsLossInput<B> {
        BitsLossInput(self.loss.clone())
    }
}

impl<B: Backend> Default for BitsLoss<B> {
    fn default() -> Self {
        Self {
            // Also a file name in burn-train's logs: no slash.
            name: Arc::new("Loss (bits per token)".to_string()),
            state: NumericMetricState::default(),
            _b: B::default(),
        }
    }
}

impl<B: Backend> Metric for BitsLoss<B> {
    type Input = BitsLossInput<B>;

    fn update(&mut self, input: &Self::Input, _: &MetricMetadata) -> SerializedEntry {
        let [batch] = input.0.dims();
        let value = input.0.clone().mean().into_scalar().elem::<f64>();
        self.state
            .update(value, batch, FormatOptions::new(self.name()).precision(3))
    }

    fn clear(&mut self) {
        self.state.reset()
    }

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: None,
            higher_is_better: false,
        }
        .into()
    }
}

impl<B: Backend> Numeric for BitsLoss<B> {
    fn value(&self) -> NumericEntry {
        self.state.current_value()
    }

    fn running_value(&self) -> NumericEntry {
        self.state.running_value()
    }
}
