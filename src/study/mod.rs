//! The service layer: what a user asks of an agent, in domain words. The headless commands
//! and the explorer both call these, so each rule lives once: where an agent's files are,
//! which candidates it has, how a selection becomes named weights and an ablation's change,
//! how an ablation is set up and reported, and the evidence engine behind the explorer's live
//! line.
//!
//! Below: `pipeline` and `ablation` (the numerical work). Above: `cli`, `commands`, `tui`.

pub mod ablate;
pub mod browse;
pub mod candidates;
pub mod error;
pub mod evidence;
pub mod export;
pub mod features;
pub mod files;
pub mod model;
pub mod run;
pub mod selection;
pub mod sweep;
pub mod validate;

pub use error::{is_cancelled, Result, StudyError};
