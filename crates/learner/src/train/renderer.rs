//! Plain progress lines for burn-train when stdout is not a terminal (logs, CI, pipes): one
//! line every few seconds and at the end of each epoch and validation, with the metrics'
//! current values. In a terminal, burn-train's TUI dashboard is used instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, EvaluationProgress, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining, ProgressType, TrainingProgress,
};

/// Which validation is running, e.g. `update 400 (end of epoch 3)`: set by the training loop,
/// printed by the renderer (burn-train only knows an epoch counter).
pub type ValidLabel = Arc<Mutex<String>>;

/// Prints throttled progress lines to stderr.
pub struct PlainRenderer {
    names: HashMap<MetricId, String>,
    valid_label: ValidLabel,
    train: Vec<(MetricId, String)>,
    valid: Vec<(MetricId, String)>,
    last: Instant,
    every: Duration,
}

impl PlainRenderer {
    pub fn new(every: Duration, valid_label: ValidLabel) -> Self {
        Self {
            names: HashMap::new(),
            valid_label,
            train: Vec::new(),
            valid: Vec::new(),
            last: Instant::now(),
            every,
        }
    }

    fn set(values: &mut Vec<(MetricId, String)>, state: MetricState) {
        let entry = match state {
            MetricState::Generic(e) | MetricState::Numeric(e, _) => e,
        };
        match values.iter_mut().find(|(id, _)| *id == entry.metric_id) {
            Some(slot) => slot.1 = entry.serialized_entry.formatted,
            None => values.push((entry.metric_id, entry.serialized_entry.formatted)),
        }
    }

    fn line(&self, values: &[(MetricId, String)]) -> String {
        values
            .iter()
            .map(|(id, v)| format!("{} {v}", self.names.get(id).map_or("?", String::as_str)))
            .collect::<Vec<_>>()
            .join(" | ")
    }
}

impl MetricsRendererTraining for PlainRenderer {
    fn update_train(&mut self, state: MetricState) {
        Self::set(&mut self.train, state);
    }

    fn update_valid(&mut self, state: MetricState) {
        Self::set(&mut self.valid, state);
    }

    fn render_train(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        let epoch_done = item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed == p.items_total);
        if epoch_done || self.last.elapsed() >= self.every {
            self.last = Instant::now();
            let batch = item.progress.map_or(String::new(), |p| {
                format!(" batch {}/{}", p.items_processed, p.items_total)
            });
            eprintln!(
                "train epoch {}/{}{batch} update {} | {}",
                item.global_progress.items_processed,
                item.global_progress.items_total,
                item.iteration.unwrap_or(0),
                self.line(&self.train)
            );
        }
    }

    fn render_valid(&mut self, item: TrainingProgress, _: Vec<ProgressType>) {
        if item
            .progress
            .as_ref()
            .is_some_and(|p| p.items_processed == p.items_total)
        {
            eprintln!(
                "valid at {} | {}",
                self.valid_label.lock().expect("not poisoned"),
                self.line(&self.valid)
            );
        }
    }
}

impl MetricsRendererEvaluation for PlainRenderer {
    fn update_test(&mut self, _: EvaluationName, _: MetricState) {}

    fn render_test(&mut self, _: EvaluationProgress, _: Vec<ProgressType>) {}
}

impl MetricsRenderer for PlainRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        // burn-train's names, lower-cased as the rest of the line.
        self.names
            .insert(definition.metric_id, definition.name.to_lowercase());
    }
}
