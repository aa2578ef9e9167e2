//! Stable-Baselines3 agents (DQN, QR-DQN, PPO, A2C, MaskablePPO) read straight from `agent.zip`,
//! without Python.

pub mod arch;
pub mod data;
pub mod error;
pub mod family;
pub mod pickle;
pub mod statedict;
pub mod torchzip;
pub mod vecnorm;
pub mod zoo_args;

use std::path::{Path, PathBuf};

pub use error::{AgentError, Result};
pub use family::{Family, Head};

pub use arch::{Arch, ArchOverrides};
pub use data::{Activation, AgentInfo, Space};
pub use torchzip::{AgentLimits, Param};

/// A loaded agent, for one head: its settings, the parameters on that head's path (named as
/// PyTorch's `named_parameters()` names them) and their architecture.
#[derive(Debug, Clone)]
pub struct Agent {
    pub zip_path: PathBuf,
    pub info: AgentInfo,
    pub sb3_version: Option<String>,
    pub family: Family,
    pub head: Head,
    pub params: Vec<Param>,
    pub arch: Arch,
}

impl Agent {
    pub fn total_weights(&self) -> usize {
        self.params.iter().map(Param::numel).sum()
    }

    /// Each parameter's name and shape, in order.
    pub fn param_shapes(&self) -> Vec<(&str, &[usize])> {
        self.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())).collect()
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

/// Loads `agent.zip` (resolved from `path`) and works out the network of its default head (the
/// Q-network, or an actor-critic's policy).
pub fn load_agent(path: &Path, overrides: &ArchOverrides, limits: &AgentLimits) -> Result<Agent> {
    load_agent_head(path, overrides, limits, None)
}

/// `load_agent` for a given head (None: the family's default).
pub fn load_agent_head(
    path: &Path,
    overrides: &ArchOverrides,
    limits: &AgentLimits,
    head: Option<Head>,
) -> Result<Agent> {
    AgentFile::open(path, overrides, limits)?.agent(head)
}

/// An opened `agent.zip`: its settings, algorithm and VecNormalize statistics read once, any
/// head's network built from it (an actor-critic analysis of `value` needs both the critic and
/// the policy).
pub struct AgentFile {
    zip_path: PathBuf,
    zip: torchzip::AgentZip,
    info: AgentInfo,
    family: Family,
    overrides: ArchOverrides,
    limits: AgentLimits,
    /// The statistics file and what it says, when one applies.
    vec_normalize: Option<(PathBuf, vecnorm::VecNormalize)>,
}

impl AgentFile {
    pub fn open(path: &Path, overrides: &ArchOverrides, limits: &AgentLimits) -> Result<AgentFile> {
        let zip_path = resolve_agent_zip(path)?;
        let zip = torchzip::read_agent_zip(&zip_path, limits)?;
        let what = format!("{}: data", zip_path.display());
        let info = data::parse_agent_data(&zip.data, &what)?;
        let family = Family::detect(&info, &zip.policy.keys())
            .map_err(|source| AgentError::Arch { path: zip_path.clone(), source })?;
        let vec_normalize = match vecnorm::find(&zip_path, &overrides.vec_normalize) {
            Some(file) => Some((file.clone(), vecnorm::read(&file)?)),
            None => None,
        };
        Ok(AgentFile { zip_path, zip, info, family, overrides: overrides.clone(), limits: *limits, vec_normalize })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    /// The default head's parameters, named and shaped as `named_parameters()` gives them,
    /// without reading their data.
    pub fn param_shapes(&self) -> Vec<(String, Vec<usize>)> {
        let entries = &self.zip.policy.entries;
        self.family
            .select(self.family.default_head(), entries)
            .into_iter()
            .filter_map(|(key, name)| {
                let t = entries.iter().find(|(k, _)| *k == key)?;
                Some((name, t.1.shape.iter().map(|&d| d as usize).collect()))
            })
            .collect()
    }

    /// The agent for `head` (None: the family's default; a Q-network has only its own).
    pub fn agent(&mut self, head: Option<Head>) -> Result<Agent> {
        let (family, zip_path, limits) = (self.family, &self.zip_path, &self.limits);
        let arch_err = |source| AgentError::Arch { path: zip_path.clone(), source };
        let head = match (family, head) {
            (Family::Dqn | Family::QrDqn, _) => Head::Q,
            (_, Some(h)) => h,
            (f, None) => f.default_head(),
        };
        let wanted = family.select(head, &self.zip.policy.entries);
        let params = self.zip.policy.read(&wanted, limits, &format!("tensors of the {} network", family.name()))?;
        let mut arch = arch::infer(&self.info, &params, &self.overrides, family, head).map_err(arch_err)?;
        if let Some((file, vn)) = &self.vec_normalize {
            if vn.norm_obs {
                arch.apply_vec_normalize(vn).map_err(arch_err)?;
                arch.notes.push(format!(
                    "applying the VecNormalize observation statistics of {} (clip {}); --no-vec-normalize turns this off",
                    file.display(),
                    vn.clip
                ));
            }
        }
        if let Family::ActorCritic { algorithm: "MaskablePPO" } = family {
            arch.notes.push("MaskablePPO: the clean inputs carry no action masks, so none is applied".into());
        }
        Ok(Agent {
            zip_path: zip_path.clone(),
            info: self.info.clone(),
            sb3_version: self.zip.sb3_version.clone(),
            family,
            head,
            params,
            arch,
        })
    }
}
