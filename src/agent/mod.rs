//! Stable-Baselines3 DQN agents read straight from `agent.zip`, without Python.

pub mod arch;
pub mod data;
pub mod error;
pub mod pickle;
pub mod torchzip;

use std::path::{Path, PathBuf};

pub use error::{AgentError, Result};

pub use arch::{Arch, ArchOverrides};
pub use data::{Activation, AgentInfo, Space};
pub use torchzip::{AgentLimits, Param};

/// A loaded agent: its settings, its online Q-network's parameters and their architecture.
#[derive(Debug, Clone)]
pub struct Agent {
    pub zip_path: PathBuf,
    pub info: AgentInfo,
    pub sb3_version: Option<String>,
    pub params: Vec<Param>,
    pub arch: Arch,
}

impl Agent {
    pub fn total_weights(&self) -> usize {
        self.params.iter().map(Param::numel).sum()
    }
}

/// docs/pipeline.md, "Agent resolution": a `.zip` file, or a directory holding `agent.zip`, `model.zip`, `dqn.zip` (in that
/// order), else the first `*.zip` in sorted name order.
pub fn resolve_agent_zip(path: &Path) -> Result<PathBuf> {
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    crate::paths::must_exist(path, "agent path")?;
    if !path.is_dir() {
        return Err(AgentError::NotFileOrDir(path.to_path_buf()));
    }
    for name in ["agent.zip", "model.zip", "dqn.zip"] {
        let p = path.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    let mut zips: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|source| AgentError::Io { action: "list agent directory", path: path.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "zip"))
        .collect();
    zips.sort();
    zips.into_iter().next().ok_or_else(|| AgentError::NoZip(path.to_path_buf()))
}

/// The agent directory of an agent path (the zip's folder when a zip file is given).
pub fn agent_dir(path: &Path) -> PathBuf {
    if path.is_file() {
        path.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
    } else {
        path.to_path_buf()
    }
}

/// Whether the agent has convolution layers (reads only the parameter names). Used to decide
/// on process set-up before any real work; false when the agent cannot be read (the real load
/// reports why).
pub fn peek_has_conv(path: &Path) -> bool {
    let Ok(zip_path) = resolve_agent_zip(path) else { return false };
    match torchzip::read_param_names(&zip_path, &AgentLimits::default()) {
        Ok(names) => names.iter().any(|n| n.contains(".cnn.")),
        Err(_) => false,
    }
}

/// Loads `agent.zip` (resolved from `path`) and works out its network.
pub fn load_agent(path: &Path, overrides: &ArchOverrides, limits: &AgentLimits) -> Result<Agent> {
    let zip_path = resolve_agent_zip(path)?;
    let zip = torchzip::read_agent_zip(&zip_path, limits)?;
    let what = format!("{}: data", zip_path.display());
    let info = data::parse_agent_data(&zip.data, &what)?;
    let arch = arch::infer(&info, &zip.params, overrides)
        .map_err(|detail| AgentError::Arch { path: zip_path.clone(), detail })?;
    Ok(Agent { zip_path, info, sb3_version: zip.sb3_version, params: zip.params, arch })
}
