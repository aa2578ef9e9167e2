//! What can go wrong in a service: the lower layers' errors, kept as sources, and the
//! services' own refusals.

use crate::ablation::ChangeError;
use crate::agent::AgentError;
use crate::model::ModelError;
use crate::paths::PathError;
use crate::pipeline::PipelineError;

#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// A request that cannot be served (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
}

impl StudyError {
    /// Whether the user cancelled (Ctrl-C, Esc): not a failure.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, StudyError::Pipeline(PipelineError::Cancelled))
    }
}

pub type Result<T> = std::result::Result<T, StudyError>;

/// Whether an error (or one of its causes) is a cancellation by the user.
pub fn is_cancelled(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if err.downcast_ref::<StudyError>().is_some_and(StudyError::is_cancelled) {
            return true;
        }
        cur = err.source();
    }
    crate::pipeline::is_cancelled(e)
}
