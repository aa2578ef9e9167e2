//! A sweep read back from its folder, for the explorer: the manifest's rows, each analysed
//! agent's summary, and the groups and runs of `sweep.json`, exactly as the sweep wrote them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::study::{Result, StudyError};

use super::agent::{agent_dir, AgentSummary, Analysis};
use super::manifest::{self, Row};
use super::summary::{self, Group, RunStats};
use super::SummaryFlags;

/// A finished sweep (or merged shards).
#[derive(Debug, Clone)]
pub struct SweepResults {
    pub out: PathBuf,
    pub rows: Vec<Row>,
    pub summaries: BTreeMap<String, AgentSummary>,
    pub groups: Vec<Group>,
    pub runs: Vec<RunStats>,
    pub flags: SummaryFlags,
}

/// Whether `dir` holds a sweep's results (its manifest).
pub fn is_sweep(dir: &Path) -> bool {
    dir.join(manifest::MANIFEST).is_file()
}

/// Reads the sweep in `out`: `manifest.jsonl` and `sweep.json`, which must list the same
/// agents in the same order.
pub fn open(out: &Path) -> Result<SweepResults> {
    let manifest_path = out.join(manifest::MANIFEST);
    let summary_path = out.join(summary::SWEEP_JSON);
    if !summary_path.is_file() {
        return Err(StudyError::Refused(format!(
            "{} has a manifest but no {}: the sweep did not finish (run it again: finished agents are skipped) \
             or its shards are not merged (saliency sweep merge {})",
            out.display(),
            summary::SWEEP_JSON,
            out.display()
        )));
    }
    let rows = manifest::read(&manifest_path)?;
    let file = summary::read_json(&summary_path)?;
    let ids: Vec<&str> = file.agents.iter().map(|(id, _)| id.as_str()).collect();
    if ids.len() != rows.len() || rows.iter().zip(&ids).any(|(r, id)| r.agent_id != *id) {
        return Err(StudyError::Refused(format!(
            "{} and {} list different agents ({} and {}): they come from different sweeps",
            manifest_path.display(),
            summary_path.display(),
            rows.len(),
            ids.len()
        )));
    }
    let summaries = file.agents.into_iter().filter_map(|(id, s)| Some((id, s?))).collect();
    Ok(SweepResults {
        out: out.to_path_buf(),
        rows,
        summaries,
        groups: file.groups,
        runs: file.runs,
        flags: file.flags,
    })
}

impl SweepResults {
    /// The folder of an analysed agent's files.
    pub fn agent_dir(&self, agent_id: &str) -> PathBuf {
        agent_dir(&self.out, agent_id)
    }

    /// How the agent was analysed (its `done.json`), when it was.
    pub fn analysis(&self, agent_id: &str) -> Result<Option<Analysis>> {
        Analysis::read(&self.agent_dir(agent_id))
    }

    /// The row of an agent id: the one analysed (its duplicates share the id).
    pub fn row(&self, agent_id: &str) -> Option<&Row> {
        let mut rows = self.rows.iter().filter(|r| r.agent_id == agent_id);
        let first = rows.clone().next();
        rows.find(|r| r.duplicate_of.is_none()).or(first)
    }
}
