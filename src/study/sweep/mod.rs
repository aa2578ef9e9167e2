//! Many agents in one process: `saliency sweep` (docs/sweep.md).
//!
//! Discovery finds the agents and describes each in a manifest row (`discover`, `manifest`);
//! each agent is analysed exactly as `saliency run` would (`study::run::run`) into
//! `OUT/agents/<agent_id>/`, on worker threads, skipped on a rerun when its `done.json` matches
//! (`agent`); the summary across agents (`summary`) is written by `finish`, which a shard's
//! merge calls too (`shard`), so one process and N merged shards give the same bytes.

pub mod agent;
pub mod compare;
pub mod discover;
pub mod live;
pub mod manifest;
pub mod results;
pub mod runner;
pub mod shard;
pub mod summary;
pub mod training;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::ablation::Mode;
use crate::agent::{AgentLimits, ArchOverrides};
use crate::pipeline::measures::Measure;
use crate::pipeline::RawFormat;
use crate::target::Target;

/// Everything that decides a sweep's results (what its files hold).
#[derive(Debug, Clone)]
pub struct SweepFlags {
    pub k: usize,
    pub m: usize,
    pub target: Option<Target>,
    /// Measures written to each agent's measures.safetensors (with `select_by` among them).
    pub measures: Vec<Measure>,
    pub select_by: Option<Measure>,
    pub raw: RawFormat,
    pub ablate: Option<crate::study::ablate::AblationSettings>,
    /// `--validate`: each agent's measures checked against the damage (validation.json).
    pub validate: Option<crate::study::validate::ValidateSettings>,
    /// N of `saliency:N` for agents without patching results.
    pub candidates_by: usize,
    pub useful_neurons: Option<PathBuf>,
    /// `--inputs FILE` and `--inputs ENV=FILE`.
    pub inputs: Option<PathBuf>,
    pub inputs_by_env: BTreeMap<String, PathBuf>,
    pub group_by: Option<regex::Regex>,
    pub top: usize,
    pub bootstrap: usize,
    pub seed: u64,
    pub every: Option<usize>,
    pub device: String,
    pub overrides: ArchOverrides,
    pub limits: AgentLimits,
    pub batch_size: Option<usize>,
}

impl SweepFlags {
    pub fn summary(&self) -> SummaryFlags {
        SummaryFlags {
            select_by: self.select_by,
            ablate: self.ablate.is_some(),
            validate: self.validate.is_some(),
            top: self.top,
            bootstrap: self.bootstrap,
            seed: self.seed,
            digest: self.digest(),
        }
    }

    /// The ablation settings an agent is opened with: `--ablate`'s, else the defaults with
    /// the sweep's `--seed`.
    pub fn ablation_settings(&self) -> crate::study::ablate::AblationSettings {
        self.ablate.unwrap_or(crate::study::ablate::AblationSettings { seed: self.seed, ..Default::default() })
    }

    /// A canonical text of the flags that decide the results (not `--jobs`, the shard, or
    /// where the output goes): two sweeps with the same text write the same bytes.
    pub fn canonical(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        let mode = |m: Mode| m.to_string();
        let mut lines = vec![
            format!("k={}", self.k),
            format!("m={}", self.m),
            format!("target={}", opt(self.target.map(|t| t.to_string()))),
            format!("measures={}", self.measures.iter().map(|m| m.name()).collect::<Vec<_>>().join(",")),
            format!("select_by={}", opt(self.select_by.map(|m| m.name().to_string()))),
            format!("raw={:?}", self.raw),
            format!(
                "ablate={}",
                opt(self.ablate.map(|a| format!("{} random={} seed={}", mode(a.mode), a.random, a.seed)))
            ),
            format!("candidates_by=saliency:{}", self.candidates_by),
            format!("useful_neurons={}", opt(self.useful_neurons.as_ref().map(|p| p.display().to_string()))),
            format!("inputs={}", opt(self.inputs.as_ref().map(|p| p.display().to_string()))),
        ];
        for (env, file) in &self.inputs_by_env {
            lines.push(format!("inputs[{env}]={}", file.display()));
        }
        lines.extend([
            format!("group_by={}", opt(self.group_by.as_ref().map(|r| r.as_str().to_string()))),
            format!("top={}", self.top),
            format!("bootstrap={}", self.bootstrap),
            format!("seed={}", self.seed),
            format!("every={}", opt(self.every.map(|e| e.to_string()))),
            format!(
                "activation={} extractor_activation={} vec_normalize={:?}",
                opt(self.overrides.activation.map(|a| a.name().to_string())),
                opt(self.overrides.extractor_activation.map(|a| a.name().to_string())),
                self.overrides.vec_normalize
            ),
            format!("batch_size={}", opt(self.batch_size.map(|b| b.to_string()))),
        ]);
        // (only when asked for, so sweeps made before it keep their digest)
        if let Some(v) = &self.validate {
            lines.push(format!(
                "validate=sample:{} inputs:{} mode:{} bootstrap:{} seed:{}",
                v.sample,
                opt(v.inputs_sample.map(|m| m.to_string())),
                mode(v.mode),
                v.bootstrap,
                v.seed
            ));
        }
        lines.join("\n")
    }

    /// The first 16 hex digits of the SHA-256 of `canonical`.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        Sha256::digest(self.canonical().as_bytes()).iter().take(8).map(|b| format!("{b:02x}")).collect()
    }
}

/// What the summary across agents needs of the flags (a shard file carries it to the merge).
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryFlags {
    pub select_by: Option<Measure>,
    pub ablate: bool,
    /// Each agent has a validation.json.
    pub validate: bool,
    pub top: usize,
    pub bootstrap: usize,
    pub seed: u64,
    /// `SweepFlags::digest` of the sweep.
    pub digest: String,
}

impl SummaryFlags {
    /// The measure summaries use: `--select-by`'s, else mean |gradient|.
    pub fn measure(&self) -> Measure {
        self.select_by.unwrap_or(Measure::MeanAbs)
    }
}

/// `--shard I/N` or `--shard slurm` (from the job-array variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// From 1.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether manifest position `p` (from 0) is this shard's.
    pub fn owns(&self, p: usize) -> bool {
        p % self.count == self.index - 1
    }
}

/// What a sweep ended with: 0 all ok, 3 some agents failed, 1 none ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    AllOk,
    SomeFailed,
    NoneRan,
}

impl Ending {
    pub fn code(self) -> u8 {
        match self {
            Ending::AllOk => 0,
            Ending::SomeFailed => 3,
            Ending::NoneRan => 1,
        }
    }
}
