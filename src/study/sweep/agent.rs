//! One agent of a sweep: analysed exactly as `saliency run` would into `agents/<agent_id>/`,
//! then `done.json` (the hashes of every input file and of the flags) so a rerun skips it;
//! and its summary, always read back from its files (so a skipped agent and a fresh one are
//! summarised the same way, and a merge can summarise what another process wrote).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use crate::agent::vecnorm::Choice;
use crate::json::{reader::read_value_from, Value};
use crate::pipeline::average::Averages;
use crate::pipeline::output::JsonOutput;
use crate::pipeline::{self, extract::read_small_json, measures};
use crate::study::candidates::CandidateChoice;
use crate::study::model::ModelSpec;
use crate::study::run::{self, Events, PassPlan, RunPlan};
use crate::study::{Result, StudyError};

use super::manifest::{Plan, Row};
use super::{SummaryFlags, SweepFlags};

pub const DONE: &str = "done.json";

/// One parameter tensor of an agent's summary.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSummary {
    pub name: String,
    /// The tensor's sum of the measure over the network's.
    pub share: f64,
    pub mean: f64,
    pub max: f64,
    /// Weights of the selection in this tensor.
    pub selected: usize,
}

/// The selection's evidence against random weights (with `--ablate`).
#[derive(Debug, Clone, PartialEq)]
pub struct AblationSummary {
    pub flip_rate: f64,
    pub mean_target_drop: f64,
    pub random_flip_rate: Option<f64>,
    pub percentile: Option<f64>,
}

/// What the sweep's summary takes from one agent.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSummary {
    pub agent_id: String,
    pub inputs: usize,
    pub gini: f64,
    pub layers: Vec<LayerSummary>,
    pub ablation: Option<AblationSummary>,
    /// With `--validate`: each scored measure's Spearman correlation with the damage, in the
    /// measures' canonical order.
    pub validation: Option<Vec<(String, Option<f64>)>>,
}

impl AgentSummary {
    /// `"layers"`: each layer's name, share, mean, max and selected count (as sweep.json and a
    /// shard's summaries write them).
    pub fn write_layers(&self, w: &mut W) -> std::io::Result<()> {
        w.key("layers")?;
        w.begin_array()?;
        for l in &self.layers {
            w.begin_object()?;
            w.key_string("name", &l.name)?;
            w.key_float("share", l.share)?;
            w.key_float("mean", l.mean)?;
            w.key_float("max", l.max)?;
            w.key_int("selected", l.selected as i64)?;
            w.end_object()?;
        }
        w.end_array()
    }

    /// With `--validate`: `"validation"`, each measure's correlation with the damage (as
    /// sweep.json and a shard's summaries write them).
    pub fn write_validation(&self, w: &mut W) -> std::io::Result<()> {
        if let Some(v) = &self.validation {
            w.key("validation")?;
            w.begin_object()?;
            for (m, rho) in v {
                w.key_opt_float(m, *rho)?;
            }
            w.end_object()?;
        }
        Ok(())
    }

    /// With a validation: the measure of the highest Spearman correlation with the damage, and
    /// that correlation (ties by name, as the validation ranks them).
    pub fn best_predictor(&self) -> Option<(&str, f64)> {
        let scored = self.validation.as_ref()?.iter().filter_map(|(n, r)| Some((n.as_str(), (*r)?)));
        scored.fold(None, |best: Option<(&str, f64)>, (n, r)| match best {
            Some((bn, br)) if br > r || (br == r && bn <= n) => Some((bn, br)),
            _ => Some((n, r)),
        })
    }

    /// The fields sweep.json's agents and a shard's summaries share (their ablation is written
    /// differently: the caller reads it).
    pub fn from_json(v: &Value, ablation: Option<AblationSummary>) -> Option<AgentSummary> {
        let validation = match v.get("validation") {
            Some(Value::Object(map)) => {
                Some(map.iter().map(|(k, x)| (k.clone(), x.as_f64())).collect::<Vec<(String, Option<f64>)>>())
            }
            _ => None,
        };
        let f = |v: &Value, k: &str| v.get(k).and_then(Value::as_f64);
        let layers = v
            .get("layers")?
            .as_array()?
            .iter()
            .map(|l| {
                Some(LayerSummary {
                    name: l.get("name")?.as_str()?.to_string(),
                    share: f(l, "share")?,
                    mean: f(l, "mean")?,
                    max: f(l, "max")?,
                    selected: l.get("selected")?.as_i64()?.max(0) as usize,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(AgentSummary {
            agent_id: v.get("agent_id")?.as_str()?.to_string(),
            inputs: v.get("inputs")?.as_i64()?.max(0) as usize,
            gini: f(v, "gini")?,
            layers,
            ablation,
            validation,
        })
    }

    /// Weights selected in the whole network.
    pub fn selected(&self) -> usize {
        self.layers.iter().map(|l| l.selected).sum()
    }
}

/// The folder an agent's files go to.
pub fn agent_dir(out: &Path, agent_id: &str) -> PathBuf {
    out.join("agents").join(agent_id)
}

/// The per-weight values summaries use: the averages, or `--select-by`'s measure.
pub fn values_of(dir: &Path, flags: &SummaryFlags) -> Result<Averages> {
    let avgs = Averages::read(&dir.join(pipeline::AVERAGE_GRADIENTS))?;
    match flags.select_by {
        Some(m) => Ok(measures::read(&dir.join(measures::MEASURES_FILE), m, &avgs)?),
        None => Ok(avgs),
    }
}

/// An agent's summary, from its files.
pub fn summarise(dir: &Path, agent_id: &str, flags: &SummaryFlags) -> Result<AgentSummary> {
    let values = values_of(dir, flags)?;
    let selected = selected_per_layer(&dir.join(pipeline::CANDIDATE_WEIGHTS))?;
    let sums: Vec<f64> = values.params.iter().map(|p| p.data.iter().filter(|v| v.is_finite()).sum()).collect();
    let total: f64 = sums.iter().sum();
    let layers = values
        .params
        .iter()
        .zip(&sums)
        .map(|(p, &sum)| LayerSummary {
            name: p.name.clone(),
            share: if total > 0.0 { sum / total } else { 0.0 },
            mean: sum / p.data.len().max(1) as f64,
            max: p.data.iter().copied().filter(|v| v.is_finite()).fold(0.0, f64::max),
            selected: selected.iter().filter(|n| **n == p.name).count(),
        })
        .collect();
    let all: Vec<f64> = values.params.iter().flat_map(|p| p.data.iter().copied()).collect();
    let ablation = match flags.ablate {
        true => Some(ablation_of(&dir.join(crate::ablation::report::ABLATION))?),
        false => None,
    };
    let validation = match flags.validate {
        true => Some(validation_of(&dir.join(crate::study::validate::VALIDATION))?),
        false => None,
    };
    Ok(AgentSummary {
        agent_id: agent_id.to_string(),
        inputs: values.num_examples.unwrap_or(0).max(0) as usize,
        gini: crate::stats::gini(&all),
        layers,
        ablation,
        validation,
    })
}

/// Each scored measure's Spearman correlation in an agent's validation.json, in the measures'
/// canonical order.
fn validation_of(path: &Path) -> Result<Vec<(String, Option<f64>)>> {
    let v = read_small_json(path, "validation file")?;
    let scores = v.get("measures").and_then(Value::as_array).unwrap_or_default();
    Ok(crate::study::validate::scored_measures()
        .into_iter()
        .map(|m| {
            let rho = scores
                .iter()
                .find(|s| s.get("measure").and_then(Value::as_str) == Some(m.name()))
                .and_then(|s| s.get("spearman")?.as_f64());
            (m.name().to_string(), rho)
        })
        .collect())
}

/// The `layer_name` of every selected weight.
fn selected_per_layer(path: &Path) -> Result<Vec<String>> {
    let v = read_small_json(path, "candidate file")?;
    Ok(v.get("weight_targets")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|t| t.get("layer_name").and_then(Value::as_str).map(str::to_string)).collect())
        .unwrap_or_default())
}

fn ablation_of(path: &Path) -> Result<AblationSummary> {
    let v = read_small_json(path, "ablation file")?;
    let num = |a: &str, b: &str| v.get(a).and_then(|x| x.get(b)).and_then(Value::as_f64);
    let random =
        |k: &str| v.get("random").and_then(|r| r.get("flip_rate")).and_then(|f| f.get(k)).and_then(Value::as_f64);
    Ok(AblationSummary {
        flip_rate: num("selection", "flip_rate").unwrap_or(f64::NAN),
        mean_target_drop: num("selection", "mean_target_drop").unwrap_or(f64::NAN),
        random_flip_rate: random("mean"),
        percentile: random("percentile"),
    })
}

/// SHA-256 of a file, streamed (None when there is none).
fn file_hash(path: Option<&Path>) -> Result<Option<String>> {
    use sha2::{Digest, Sha256};
    let Some(path) = path else { return Ok(None) };
    let mut f = std::fs::File::open(path).map_err(pipeline::PipelineError::io("read", path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(pipeline::PipelineError::io("read", path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(Some(h.finalize().iter().map(|b| format!("{b:02x}")).collect()))
}

/// The cross-metric and useful-neurons files an agent's candidates are read from.
fn candidate_files(plan: &Plan, flags: &SweepFlags) -> (Option<PathBuf>, Option<PathBuf>) {
    match &plan.candidates {
        CandidateChoice::Patching(_) => {
            let dir = crate::agent::agent_dir(&plan.zip);
            let cross = pipeline::cross_metric_path(&dir);
            let useful =
                flags.useful_neurons.clone().or_else(|| Some(dir.join("useful_neurons.json")).filter(|p| p.is_file()));
            (Some(cross), useful)
        }
        CandidateChoice::Saliency(_) => (None, None),
    }
}

/// What `done.json` records: the flags' digest and every input file's hash, in order.
fn done_record(plan: &Plan, flags: &SweepFlags) -> Result<Vec<(&'static str, Option<String>)>> {
    let (cross, useful) = candidate_files(plan, flags);
    Ok(vec![
        ("flags", Some(flags.digest())),
        ("agent", file_hash(Some(&plan.zip))?),
        ("inputs", file_hash(Some(&plan.inputs))?),
        ("cross_metric", file_hash(cross.as_deref())?),
        ("useful_neurons", file_hash(useful.as_deref())?),
        ("vec_normalize", file_hash(plan.vec_normalize.as_deref())?),
    ])
}

fn write_done(dir: &Path, record: &[(&str, Option<String>)], analysis: &Analysis) -> Result<()> {
    let dest = dir.join(DONE);
    let mut out = JsonOutput::create(&dest)?;
    let w = out.json();
    let res: std::io::Result<()> = (|| {
        w.begin_object()?;
        w.key_string("format", "saliency-sweep-done-1")?;
        for (k, v) in record {
            w.key(k)?;
            opt_string(w, v.as_deref())?;
        }
        w.key("analysis")?;
        analysis.write(w)?;
        w.end_object()
    })();
    res.map_err(pipeline::output::write_err(&dest))?;
    out.commit()?;
    Ok(())
}

/// Whether `done.json` in `dir` records exactly `record`.
fn is_done(dir: &Path, record: &[(&str, Option<String>)]) -> bool {
    let Ok(file) = std::fs::File::open(dir.join(DONE)) else { return false };
    let Ok(v) = read_value_from(std::io::BufReader::new(file), "done.json") else { return false };
    record.iter().all(|(k, want)| match v.get(k) {
        Some(Value::Null) => want.is_none(),
        Some(x) => x.as_str() == want.as_deref(),
        None => false,
    })
}

/// Analyses one agent (or finds it done), and summarises it from its files. Returns whether it
/// was skipped as done.
pub fn run_agent(
    row: &Row,
    plan: &Plan,
    flags: &SweepFlags,
    out: &Path,
    force: bool,
    events: &mut Events,
    cancel: &AtomicBool,
) -> Result<(AgentSummary, bool)> {
    let dir = agent_dir(out, &row.agent_id);
    let record = done_record(plan, flags)?;
    if !force && is_done(&dir, &record) {
        return Ok((summarise(&dir, &row.agent_id, &flags.summary())?, true));
    }
    // Not done (or forced): any earlier done.json no longer holds.
    let _ = std::fs::remove_file(dir.join(DONE));
    let vec_normalize = match &plan.vec_normalize {
        Some(p) => Choice::File(p.clone()),
        None => Choice::Off,
    };
    let spec = ModelSpec {
        agent_path: plan.zip.clone(),
        device: flags.device.clone(),
        overrides: crate::agent::ArchOverrides { vec_normalize, ..flags.overrides.clone() },
        limits: flags.limits,
        batch_size: flags.batch_size,
        target: flags.target,
    };
    let loaded = spec.load()?;
    let run_plan = RunPlan {
        pass: PassPlan {
            inputs: plan.inputs.clone(),
            out_dir: dir.clone(),
            raw: flags.raw,
            measures: flags.measures.clone(),
            extra_measures: Vec::new(),
            input_saliency: false,
            batch_size: flags.batch_size,
        },
        candidates: plan.candidates.clone(),
        k: flags.k,
        m: flags.m,
        select_by: flags.select_by,
        ablate: flags.ablate,
    };
    run::run(&loaded, &run_plan, events, cancel)?;
    if let Some(settings) = &flags.validate {
        let v = crate::study::validate::validate(&loaded, &plan.inputs, settings, flags.batch_size, events, cancel)?;
        crate::study::validate::write(&dir, &v)?;
    }
    write_done(&dir, &record, &Analysis::of(plan, flags))?;
    Ok((summarise(&dir, &row.agent_id, &flags.summary())?, false))
}

type W = crate::pipeline::output::JsonFileWriter;

fn opt_string(w: &mut W, v: Option<&str>) -> std::io::Result<()> {
    match v {
        Some(v) => w.string(v),
        None => w.null(),
    }
}

/// Where an agent's candidates came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CandidateSource {
    Patching,
    Saliency(usize),
}

/// How an agent was analysed, as `done.json` records it beside the hashes: the files it read
/// (absolute paths) and the settings, enough to open the agent again (the explorer) without
/// the sweep's command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub agent: PathBuf,
    pub inputs: PathBuf,
    pub cross_metric: Option<PathBuf>,
    pub useful_neurons: Option<PathBuf>,
    pub vec_normalize: Option<PathBuf>,
    pub candidates: CandidateSource,
    pub k: usize,
    pub m: usize,
    pub target: Option<crate::target::Target>,
    pub select_by: Option<measures::Measure>,
    /// The sweep's ablation settings (`--mode`, `--random`, `--seed`), also without `--ablate`.
    pub ablation: crate::study::ablate::AblationSettings,
    pub device: String,
    pub activation: Option<crate::agent::Activation>,
    pub extractor_activation: Option<crate::agent::Activation>,
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Analysis {
    fn of(plan: &Plan, flags: &SweepFlags) -> Analysis {
        let (cross, useful) = candidate_files(plan, flags);
        Analysis {
            agent: absolute(&plan.zip),
            inputs: absolute(&plan.inputs),
            cross_metric: cross.as_deref().map(absolute),
            useful_neurons: useful.as_deref().map(absolute),
            vec_normalize: plan.vec_normalize.as_deref().map(absolute),
            candidates: match plan.candidates {
                CandidateChoice::Patching(_) => CandidateSource::Patching,
                CandidateChoice::Saliency(n) => CandidateSource::Saliency(n),
            },
            k: flags.k,
            m: flags.m,
            target: flags.target,
            select_by: flags.select_by,
            ablation: flags.ablation_settings(),
            device: flags.device.clone(),
            activation: flags.overrides.activation,
            extractor_activation: flags.overrides.extractor_activation,
        }
    }

    fn write(&self, w: &mut W) -> std::io::Result<()> {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        w.begin_object()?;
        w.key_string("agent", &self.agent.display().to_string())?;
        w.key_string("inputs", &self.inputs.display().to_string())?;
        for (key, p) in [
            ("cross_metric", &self.cross_metric),
            ("useful_neurons", &self.useful_neurons),
            ("vec_normalize", &self.vec_normalize),
        ] {
            w.key(key)?;
            opt_string(w, path(p).as_deref())?;
        }
        let candidates = match self.candidates {
            CandidateSource::Patching => "patching".to_string(),
            CandidateSource::Saliency(n) => format!("saliency:{n}"),
        };
        w.key_string("candidates", &candidates)?;
        w.key_int("k", self.k as i64)?;
        w.key_int("m", self.m as i64)?;
        w.key("target")?;
        opt_string(w, self.target.map(|t| t.to_string()).as_deref())?;
        w.key("select_by")?;
        opt_string(w, self.select_by.map(|m| m.name()))?;
        w.key_string("mode", &self.ablation.mode.to_string())?;
        w.key_int("random", self.ablation.random as i64)?;
        w.key_int("seed", self.ablation.seed as i64)?;
        w.key_string("device", &self.device)?;
        w.key("activation")?;
        opt_string(w, self.activation.map(|a| a.name()))?;
        w.key("extractor_activation")?;
        opt_string(w, self.extractor_activation.map(|a| a.name()))?;
        w.end_object()
    }

    /// The record of the agent analysed in `dir` (None when it has no `done.json`, or one
    /// without a record).
    pub fn read(dir: &Path) -> Result<Option<Analysis>> {
        let path = dir.join(DONE);
        if !path.is_file() {
            return Ok(None);
        }
        let v = read_small_json(&path, "sweep record")?;
        Ok(v.get("analysis").and_then(Analysis::from_json))
    }

    fn from_json(v: &Value) -> Option<Analysis> {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        let path = |k: &str| s(k).map(PathBuf::from);
        let count = |k: &str| v.get(k).and_then(Value::as_i64).map(|x| x.max(0) as usize);
        let candidates = match s("candidates")? {
            "patching" => CandidateSource::Patching,
            other => CandidateSource::Saliency(crate::study::candidates::parse_saliency_choice(other).ok()?),
        };
        let activation = |k: &str| s(k).and_then(crate::agent::Activation::parse);
        Some(Analysis {
            agent: path("agent")?,
            inputs: path("inputs")?,
            cross_metric: path("cross_metric"),
            useful_neurons: path("useful_neurons"),
            vec_normalize: path("vec_normalize"),
            candidates,
            k: count("k")?,
            m: count("m")?,
            target: s("target").and_then(|t| crate::target::Target::parse(t).ok()),
            select_by: s("select_by").and_then(|m| measures::Measure::parse(m).ok()),
            ablation: crate::study::ablate::AblationSettings {
                mode: crate::ablation::Mode::parse(s("mode")?).ok()?,
                random: count("random")?,
                seed: v.get("seed").and_then(Value::as_i64)? as u64,
                ..Default::default()
            },
            device: s("device")?.to_string(),
            activation: activation("activation"),
            extractor_activation: activation("extractor_activation"),
        })
    }
}

/// An agent's failure as the manifest says it.
pub fn failure_text(e: &StudyError) -> String {
    crate::error_text(e)
}
