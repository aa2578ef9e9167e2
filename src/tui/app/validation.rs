//! Where the explorer's validation (`V`: which measure predicts the damage) stands.

use std::sync::Arc;

use crate::jobs::Outcome;
use crate::pipeline::measures::Measure;
use crate::study::validate::{Score, Validation};

#[derive(Debug, Clone, Default)]
pub enum ValidationState {
    #[default]
    Idle,
    Running {
        phase: String,
        fraction: f64,
    },
    Done(Arc<Validation>),
    Failed(String),
}

#[derive(Default)]
pub struct ValidationPart {
    state: ValidationState,
}

impl ValidationPart {
    pub fn state(&self) -> &ValidationState {
        &self.state
    }

    pub fn running(&self) -> bool {
        matches!(self.state, ValidationState::Running { .. })
    }

    pub fn done(&self) -> Option<&Arc<Validation>> {
        match &self.state {
            ValidationState::Done(v) => Some(v),
            _ => None,
        }
    }

    pub fn start(&mut self) {
        self.state = ValidationState::Running { phase: "loading".into(), fraction: 0.0 };
    }

    pub fn on_progress(&mut self, phase: String, fraction: f64) {
        if self.running() {
            self.state = ValidationState::Running { phase, fraction };
        }
    }

    /// The validation ended; the message for the footer.
    pub fn on_end(&mut self, outcome: Outcome<Validation>) -> String {
        let (state, message) = match outcome {
            Outcome::Done(v) => {
                let msg = match v.best() {
                    Some(b) => format!(
                        "validated: {} predicts the damage best (Spearman {:+.3}); V shows measure against damage",
                        b.measure.name(),
                        b.spearman.unwrap_or(f64::NAN)
                    ),
                    None => "validated: no measure's correlation is defined".into(),
                };
                (ValidationState::Done(Arc::new(v)), msg)
            }
            Outcome::Failed(e) => (ValidationState::Failed(e.clone()), format!("validation failed: {e}")),
            Outcome::Cancelled => (ValidationState::Idle, "validation cancelled".into()),
        };
        self.state = state;
        message
    }

    /// A measure's score, when validated.
    pub fn score(&self, m: Measure) -> Option<&Score> {
        self.done()?.scores.iter().find(|s| s.measure == m)
    }
}
