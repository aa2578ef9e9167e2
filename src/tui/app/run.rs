//! The explorer's run: what is explored, where the pipeline stands, the agent as loaded, and
//! the target.

use crate::pipeline::input_saliency::InputKey;
use crate::pipeline::Progress;
use crate::study::browse::AgentSummary;
use crate::target::Target;

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Loading,
    Running(Progress),
    Done,
    Failed(String),
    Cancelled(Option<Progress>),
}

pub struct RunPart {
    /// The agent or files being explored.
    source: String,
    status: Status,
    /// Whether the averages are computed here (the model runs): export writes them, `R` and
    /// `t` re-run.
    computed_here: bool,
    target: Target,
    offered: Vec<Target>,
    arch_summary: Option<String>,
    notes: Vec<String>,
    input_keys: Vec<InputKey>,
    input_lens: Vec<usize>,
}

impl RunPart {
    pub fn new(source: String, computed_here: bool, target: Target, notes: Vec<String>) -> RunPart {
        RunPart {
            source,
            status: Status::Loading,
            computed_here,
            target,
            offered: Vec::new(),
            arch_summary: None,
            notes,
            input_keys: Vec::new(),
            input_lens: Vec::new(),
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }
    pub fn status(&self) -> &Status {
        &self.status
    }
    pub fn computed_here(&self) -> bool {
        self.computed_here
    }
    pub fn target(&self) -> Target {
        self.target
    }
    pub fn offered(&self) -> &[Target] {
        &self.offered
    }
    pub fn arch_summary(&self) -> Option<&str> {
        self.arch_summary.as_deref()
    }
    pub fn notes(&self) -> &[String] {
        &self.notes
    }
    pub fn input_keys(&self) -> &[InputKey] {
        &self.input_keys
    }
    pub fn input_lens(&self) -> &[usize] {
        &self.input_lens
    }

    pub fn running(&self) -> bool {
        matches!(self.status, Status::Loading | Status::Running(_))
    }

    pub fn done(&self) -> bool {
        self.status == Status::Done
    }

    pub fn on_loaded(&mut self, a: AgentSummary) {
        self.input_lens = a.input_lens;
        self.target = a.target;
        self.offered = a.offered;
        self.arch_summary = Some(a.summary);
        self.notes.extend(a.notes);
        self.input_keys = a.keys;
        self.status = Status::Running(Progress { done: 0, total: 0, total_exact: false, elapsed_s: 0.0 });
    }

    pub fn on_progress(&mut self, p: Progress) {
        if self.running() {
            self.status = Status::Running(p);
        }
    }

    pub fn on_done(&mut self) {
        self.status = Status::Done;
    }

    pub fn on_failed(&mut self, e: String) {
        self.status = Status::Failed(e);
    }

    pub fn on_cancelled(&mut self) {
        let p = match &self.status {
            Status::Running(p) => Some(*p),
            _ => None,
        };
        self.status = Status::Cancelled(p);
    }

    /// `R`: runs again (only when the averages are computed here).
    pub fn restart(&mut self) -> Result<(), &'static str> {
        if !self.computed_here {
            return Err("these averages were read from a file; nothing to re-run");
        }
        self.status = Status::Loading;
        Ok(())
    }

    /// `t`: the target after the current one, among those the agent offers; runs again.
    pub fn next_target(&mut self) -> Result<Target, &'static str> {
        if !self.computed_here {
            return Err("these averages were read from a file; the target cannot change");
        }
        if self.offered.is_empty() {
            return Err("the agent is not loaded yet");
        }
        let i = self.offered.iter().position(|&t| t == self.target).unwrap_or(0);
        self.target = self.offered[(i + 1) % self.offered.len()];
        self.status = Status::Loading;
        Ok(self.target)
    }
}
