//! How to open and run an agent: the settings every command that runs one shares.

use std::path::PathBuf;

use crate::agent::{Agent, AgentLimits, ArchOverrides};
use crate::model::{parse_device, Net};
use crate::target::Target;

use super::Result;

/// An agent to load, and how.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub agent_path: PathBuf,
    /// `cpu`, `cuda` or `cuda:N` (checked by `check` and at load).
    pub device: String,
    pub overrides: ArchOverrides,
    pub limits: AgentLimits,
    /// Inputs per batch; None picks one from the network's size.
    pub batch_size: Option<usize>,
    /// What is differentiated (None: the family's default).
    pub target: Option<Target>,
}

/// A loaded agent: the head its target runs on, its network and the target as it applies.
pub struct Loaded {
    pub agent: Agent,
    pub net: Net,
    pub target: Target,
}

impl ModelSpec {
    /// Fails early on a device that does not exist (before any file is read).
    pub fn check(&self) -> Result<()> {
        parse_device(&self.device)?;
        Ok(())
    }

    pub fn load(&self) -> Result<Loaded> {
        let device = parse_device(&self.device)?;
        let (agent, net, target) =
            crate::model::load_for_target(&self.agent_path, &self.overrides, &self.limits, device, self.target)?;
        Ok(Loaded { agent, net, target })
    }

    /// The same agent for another target.
    pub fn with_target(&self, target: Target) -> ModelSpec {
        ModelSpec { target: Some(target), ..self.clone() }
    }
}

impl Loaded {
    /// The zip's file name (for the provenance recorded in output files).
    pub fn zip_name(&self) -> String {
        self.agent.zip_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}
