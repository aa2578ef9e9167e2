//! The candidate neurons of an agent: the keys of `cross_metric_summary.json`'s
//! `common_neurons`, and `useful_neurons.json` when a key of the form `exp_<N>_<layer>` needs
//! it. Read and checked once, by the commands and the explorer alike.

use std::path::{Path, PathBuf};

use crate::format::{summarise, SHOWN_WARNINGS};
use crate::json::Value;
use crate::paths::must_exist;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{self, CandidateKey, Resolved};

use super::files::DEFAULT_USEFUL_NEURONS;
use super::{Result, StudyError};

/// Candidate keys and the useful-neurons list they may need.
#[derive(Debug, Clone, Default)]
pub struct Candidates {
    pub keys: Vec<CandidateKey>,
    pub useful: Option<Value>,
}

impl Candidates {
    /// Reads the cross-metric file and, when a key needs it, useful_neurons.json (the flag,
    /// else the Python tool's default path, else `<agent dir>/useful_neurons.json`). Every
    /// problem is an error, before any work (as the Python master script checks).
    pub fn read(cross: &Path, useful_flag: Option<&Path>, agent_dir: Option<&Path>) -> Result<Candidates> {
        must_exist(cross, "cross-metric file")?;
        let keys = read_keys(cross)?;
        let useful = match find_useful_neurons(useful_flag, agent_dir, extract::needs_useful_neurons(&keys))? {
            Some(p) => Some(read_useful(&p)?),
            None => None,
        };
        Ok(Candidates { keys, useful })
    }

    /// `read` for browsing: a missing cross-metric file, or a useful-neurons file the user did
    /// not name that cannot be found, is a note (no candidates, or unresolved keys) rather
    /// than an error. A file that is there but wrong is still an error.
    pub fn read_or_note(
        cross: &Path,
        useful_flag: Option<&Path>,
        agent_dir: Option<&Path>,
        notes: &mut Vec<String>,
    ) -> Result<Candidates> {
        if !cross.is_file() {
            notes.push(format!("{} not found: no candidate neurons to select from", cross.display()));
            return Ok(Candidates::default());
        }
        let keys = read_keys(cross)?;
        let useful = match find_useful_neurons(useful_flag, agent_dir, extract::needs_useful_neurons(&keys)) {
            Ok(Some(p)) => Some(read_useful(&p)?),
            Ok(None) => None,
            Err(e) if useful_flag.is_none() => {
                notes.push(e.to_string());
                None
            }
            Err(e) => return Err(e),
        };
        Ok(Candidates { keys, useful })
    }

    /// The keys as neurons of `avgs`' parameters (keys that do not resolve are warnings).
    pub fn resolve(&self, avgs: &Averages) -> Resolved {
        extract::resolve(&self.keys, self.useful.as_ref(), avgs)
    }
}

fn read_keys(cross: &Path) -> Result<Vec<CandidateKey>> {
    let value = extract::read_small_json(cross, "cross-metric file")?;
    Ok(extract::candidate_keys(&value, &cross.display().to_string())?)
}

/// useful_neurons.json: a list of experiments, each `{"<layer>": [neurons]}`.
pub fn read_useful(path: &Path) -> Result<Value> {
    let v = extract::read_small_json(path, "useful-neurons file")?;
    if v.as_array().is_none() {
        return Err(StudyError::Refused(format!(
            "{}: expected a list of experiments ({{\"<layer>\": [neurons]}}), found {}",
            path.display(),
            v.type_name()
        )));
    }
    Ok(v)
}

/// useful_neurons.json: the flag, else the Python tool's default path, else
/// `<agent dir>/useful_neurons.json`; None when no candidate key needs it.
pub fn find_useful_neurons(flag: Option<&Path>, agent_dir: Option<&Path>, needed: bool) -> Result<Option<PathBuf>> {
    if let Some(p) = flag {
        must_exist(p, "useful-neurons file")?;
        return Ok(Some(p.to_path_buf()));
    }
    if !needed {
        return Ok(None);
    }
    let default = PathBuf::from(DEFAULT_USEFUL_NEURONS);
    if default.is_file() {
        return Ok(Some(default));
    }
    if let Some(beside) = agent_dir.map(|d| d.join("useful_neurons.json")).filter(|p| p.is_file()) {
        return Ok(Some(beside));
    }
    Err(StudyError::Refused(format!(
        "candidate keys of the form exp_<N>_<layer> need useful_neurons.json: give --useful-neurons-path \
         (not found at {DEFAULT_USEFUL_NEURONS}{})",
        agent_dir.map(|d| format!(" nor in {}", d.display())).unwrap_or_default()
    )))
}

/// What a user should be told about a resolution: the skipped keys (the first few and a
/// count), and an empty result.
pub fn warnings(resolved: &Resolved) -> Vec<String> {
    let mut out = summarise(&resolved.warnings, SHOWN_WARNINGS, "more candidates skipped");
    if resolved.candidates.is_empty() {
        out.push("no candidate neuron could be resolved: the selection is empty".into());
    }
    out
}
