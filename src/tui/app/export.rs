//! Where the export (and `A`'s full ablation) stands.

#[derive(Debug, Clone, PartialEq)]
pub enum ExportState {
    Idle,
    Running { stage: String },
}

pub struct ExportPart {
    state: ExportState,
}

impl Default for ExportPart {
    fn default() -> Self {
        ExportPart { state: ExportState::Idle }
    }
}

impl ExportPart {
    pub fn state(&self) -> &ExportState {
        &self.state
    }

    pub fn running(&self) -> bool {
        self.state != ExportState::Idle
    }

    pub fn start(&mut self) {
        self.state = ExportState::Running { stage: "starting".into() };
    }

    pub fn on_stage(&mut self, stage: String) {
        if self.running() {
            self.state = ExportState::Running { stage };
        }
    }

    /// The export ended (done, failed or cancelled): idle again.
    pub fn on_end(&mut self) {
        self.state = ExportState::Idle;
    }
}
