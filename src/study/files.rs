//! Where an agent's files are: the research project's layout (`agent.zip`,
//! `activation_inputs/clean_inputs.json`, `patching_results/cross_metric_summary.json`) and the
//! default output folder.

use std::path::{Path, PathBuf};

use crate::agent;
use crate::pipeline;

/// The Python tool's default location of useful_neurons.json (relative to the working directory).
pub const DEFAULT_USEFUL_NEURONS: &str = "Neuron_Selection/ExperimentTooling/Definitions/useful_neurons.json";

/// An agent named by a folder or a zip, and its standard files.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentFiles {
    /// As the user gave it (a folder or a zip).
    pub agent_path: PathBuf,
    /// The folder the standard files are in.
    pub dir: PathBuf,
    /// Inputs given instead of the folder's own (`--inputs`).
    pub inputs: Option<PathBuf>,
}

impl AgentFiles {
    pub fn new(agent_path: &Path) -> AgentFiles {
        AgentFiles { agent_path: agent_path.to_path_buf(), dir: agent::agent_dir(agent_path), inputs: None }
    }

    /// With `inputs` (when given) in place of the folder's own.
    pub fn with_inputs(mut self, inputs: Option<&Path>) -> AgentFiles {
        self.inputs = inputs.map(Path::to_path_buf);
        self
    }

    /// The inputs: those given, else `activation_inputs/clean_inputs.json`.
    pub fn inputs(&self) -> PathBuf {
        self.inputs.clone().unwrap_or_else(|| pipeline::clean_inputs_path(&self.dir))
    }

    /// `patching_results/cross_metric_summary.json`.
    pub fn cross_metric(&self) -> PathBuf {
        pipeline::cross_metric_path(&self.dir)
    }

    /// Where the commands write by default: `<agent dir>/gradient_analysis`.
    pub fn default_output(&self) -> PathBuf {
        self.dir.join("gradient_analysis")
    }
}

/// The folder a file is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The agent folder of a `<agent dir>/patching_results/cross_metric_summary.json`.
pub fn agent_dir_of_cross_metric(cross: &Path) -> Option<&Path> {
    cross.parent().and_then(Path::parent)
}
