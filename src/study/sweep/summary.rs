//! The summary across agents (`sweep.json`, `sweep.csv`, and the table printed at the end):
//! per agent its layers' shares of the saliency and its concentration; per group of like agents
//! (seeds of one configuration) the interquartile mean of each with a bootstrap interval; per
//! training run each checkpoint's rank correlation and top-K overlap with the final model,
//! beside the chance level. Only permutation-free summaries (per layer) are compared across
//! seeds; per-weight comparisons stay within a run.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use crate::format::num;
use crate::json::{pyfloat, Value};
use crate::pipeline::extract::read_small_json;
use crate::pipeline::measures::Measure;
use crate::pipeline::output::{write_err, AtomicFile, JsonOutput};
use crate::stats;

use super::agent::{agent_dir, values_of, AblationSummary, AgentSummary};
use super::discover::Kind;
use super::manifest::{Row, Status};
use super::SummaryFlags;
use crate::study::{Result, StudyError};

pub const SWEEP_JSON: &str = "sweep.json";
pub const SWEEP_CSV: &str = "sweep.csv";

/// An IQM and its interval (None for a group of one).
#[derive(Debug, Clone, PartialEq)]
pub struct Iqm {
    pub iqm: f64,
    pub interval: Option<[f64; 2]>,
}

impl Iqm {
    fn of(values: &[f64], flags: &SummaryFlags) -> Iqm {
        Iqm {
            iqm: stats::iqm(values).unwrap_or(f64::NAN),
            interval: stats::iqm_interval(values, flags.bootstrap, flags.seed),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub group: String,
    pub agents: Vec<String>,
    pub gini: Iqm,
    pub layers: Vec<(String, Iqm)>,
    pub flip_rate: Option<Iqm>,
    /// With `--validate`: per scored measure, the IQM of its Spearman correlation with the
    /// damage over the group's agents (those where it is defined).
    pub validation: Option<Vec<(String, Iqm)>>,
}

impl Group {
    /// With a validation: the measures by the IQM of their correlation with the damage, best
    /// first (ties by name; undefined ones left out).
    pub fn best_predictors(&self) -> Vec<(&str, &Iqm)> {
        let mut best: Vec<(&str, &Iqm)> =
            self.validation.iter().flatten().filter(|(_, s)| s.iqm.is_finite()).map(|(m, s)| (m.as_str(), s)).collect();
        best.sort_by(|a, b| b.1.iqm.total_cmp(&a.1.iqm).then(a.0.cmp(b.0)));
        best
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Checkpoint {
    pub agent_id: String,
    pub kind: Kind,
    pub step: Option<u64>,
    pub spearman: Option<f64>,
    pub top_overlap: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunStats {
    pub run: String,
    pub chance_overlap: f64,
    pub top: usize,
    pub checkpoints: Vec<Checkpoint>,
}

/// Groups: the analysed agents of kind `agent` and `final` (one per run), by group.
pub fn groups(rows: &[Row], summaries: &BTreeMap<String, AgentSummary>, flags: &SummaryFlags) -> Vec<Group> {
    let mut by_group: BTreeMap<&str, Vec<&AgentSummary>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.status == Status::Ok && matches!(r.kind, Kind::Agent | Kind::Final)) {
        if let Some(s) = summaries.get(&r.agent_id) {
            by_group.entry(&r.group).or_default().push(s);
        }
    }
    by_group
        .into_iter()
        .map(|(group, members)| {
            let gini: Vec<f64> = members.iter().map(|s| s.gini).collect();
            let layers = members[0]
                .layers
                .iter()
                .map(|l| {
                    let shares: Vec<f64> = members
                        .iter()
                        .filter_map(|s| s.layers.iter().find(|x| x.name == l.name).map(|x| x.share))
                        .collect();
                    (l.name.clone(), Iqm::of(&shares, flags))
                })
                .collect();
            let flips: Vec<f64> = members.iter().filter_map(|s| s.ablation.as_ref().map(|a| a.flip_rate)).collect();
            let validation = members[0].validation.as_ref().map(|first| {
                first
                    .iter()
                    .map(|(m, _)| {
                        let rhos: Vec<f64> = members
                            .iter()
                            .filter_map(|s| s.validation.as_ref()?.iter().find(|(x, _)| x == m)?.1)
                            .collect();
                        (m.clone(), Iqm::of(&rhos, flags))
                    })
                    .collect()
            });
            Group {
                group: group.to_string(),
                agents: members.iter().map(|s| s.agent_id.clone()).collect(),
                gini: Iqm::of(&gini, flags),
                layers,
                flip_rate: (!flips.is_empty()).then(|| Iqm::of(&flips, flags)),
                validation,
            }
        })
        .collect()
}

/// The networks of a run, in step order with the final model last: checkpoints, the final
/// model, and a best model that copies a checkpoint (each read from the folder of the copy
/// that was analysed).
fn run_members(rows: &[&Row]) -> Option<Vec<(String, Kind, Option<u64>)>> {
    let analysed = |r: &Row| match r.status {
        Status::Ok => Some(r.agent_id.clone()),
        Status::SkippedDuplicate => r.duplicate_of.clone(),
        _ => None,
    };
    let final_id = rows.iter().find(|r| r.kind == Kind::Final).and_then(|r| analysed(r))?;
    let mut members: Vec<(String, Kind, Option<u64>)> = rows
        .iter()
        .filter(|r| {
            r.kind == Kind::Checkpoint || (r.kind == Kind::Best && r.duplicate_of.is_some() && r.step.is_some())
        })
        .filter_map(|r| Some((analysed(r)?, r.kind, r.step)))
        .collect();
    members.sort_by_key(|(_, kind, step)| (*step, *kind == Kind::Best));
    members.push((final_id, Kind::Final, rows.iter().find(|r| r.kind == Kind::Final).and_then(|r| r.step)));
    (members.len() >= 2).then_some(members)
}

/// The networks of training runs (final, best, checkpoints), by run.
fn by_run(rows: &[Row]) -> BTreeMap<&str, Vec<&Row>> {
    let mut by_run: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows.iter().filter(|r| matches!(r.kind, Kind::Final | Kind::Checkpoint | Kind::Best)) {
        by_run.entry(&r.run).or_default().push(r);
    }
    by_run
}

/// The runs `runs` summarises, by name, without reading any file.
pub fn run_names(rows: &[Row]) -> Vec<String> {
    by_run(rows).into_iter().filter(|(_, m)| run_members(m).is_some()).map(|(run, _)| run.to_string()).collect()
}

/// While a sweep runs: the rows whose numbers exist, the finished ones and the duplicates of
/// finished ones, the others left out.
pub fn finished_rows(rows: &[Row]) -> Vec<Row> {
    let ok: std::collections::BTreeSet<&str> =
        rows.iter().filter(|r| r.status == Status::Ok).map(|r| r.agent_id.as_str()).collect();
    rows.iter()
        .filter(|r| match r.status {
            Status::Ok => true,
            Status::SkippedDuplicate => r.duplicate_of.as_deref().is_some_and(|d| ok.contains(d)),
            _ => false,
        })
        .cloned()
        .collect()
}

/// Per training run with two or more analysed networks: each one's Spearman correlation and
/// top-K overlap with the final model's per-weight values.
pub fn runs(rows: &[Row], out: &Path, flags: &SummaryFlags) -> Result<Vec<RunStats>> {
    let by_run = by_run(rows);
    let flat = |id: &str| -> Result<Vec<f64>> {
        Ok(values_of(&agent_dir(out, id), flags)?.params.into_iter().flat_map(|p| p.data).collect())
    };
    let mut out_runs = Vec::new();
    for (run, members) in by_run {
        let Some(members) = run_members(&members) else { continue };
        let reference = flat(&members.last().map(|m| m.0.clone()).unwrap_or_default())?;
        let k = flags.top.min(reference.len());
        let mut checkpoints = Vec::new();
        for (id, kind, step) in &members {
            let v = flat(id)?;
            let comparable = v.len() == reference.len();
            checkpoints.push(Checkpoint {
                agent_id: id.clone(),
                kind: *kind,
                step: *step,
                spearman: comparable.then(|| stats::spearman(&v, &reference)).flatten(),
                top_overlap: if comparable { stats::top_overlap(&v, &reference, k) } else { 0.0 },
            });
        }
        out_runs.push(RunStats {
            run: run.to_string(),
            chance_overlap: stats::chance_overlap(k, reference.len()),
            top: k,
            checkpoints,
        });
    }
    Ok(out_runs)
}

type W<'a> = crate::pipeline::output::JsonFileWriter;

/// An IQM's fields: `"iqm"` and `"interval"`.
fn iqm_fields(w: &mut W, s: &Iqm) -> std::io::Result<()> {
    w.key_opt_float("iqm", Some(s.iqm))?;
    w.key_opt_pair("interval", s.interval)
}

fn write_iqm(w: &mut W, key: &str, s: &Iqm) -> std::io::Result<()> {
    w.key(key)?;
    w.begin_object()?;
    iqm_fields(w, s)?;
    w.end_object()
}

fn write_agent(w: &mut W, r: &Row, s: Option<&AgentSummary>) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_string("agent_id", &r.agent_id)?;
    w.key_string("path", &r.path)?;
    w.key_string("status", r.status.name())?;
    if let Some(s) = s {
        w.key_int("inputs", s.inputs as i64)?;
        w.key_float("gini", s.gini)?;
        s.write_layers(w)?;
        if let Some(a) = &s.ablation {
            w.key("ablation")?;
            w.begin_object()?;
            w.key_opt_float("flip_rate", Some(a.flip_rate))?;
            w.key_opt_float("mean_target_drop", Some(a.mean_target_drop))?;
            w.key_opt_float("random_flip_rate", a.random_flip_rate)?;
            w.key_opt_float("percentile", a.percentile)?;
            w.end_object()?;
        }
        s.write_validation(w)?;
    }
    w.end_object()
}

fn write_group(w: &mut W, g: &Group) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_string("group", &g.group)?;
    w.key("agents")?;
    w.begin_array()?;
    for a in &g.agents {
        w.string(a)?;
    }
    w.end_array()?;
    w.key_int("n", g.agents.len() as i64)?;
    write_iqm(w, "gini", &g.gini)?;
    w.key("layers")?;
    w.begin_array()?;
    for (name, s) in &g.layers {
        w.begin_object()?;
        w.key_string("name", name)?;
        iqm_fields(w, s)?;
        w.end_object()?;
    }
    w.end_array()?;
    if let Some(f) = &g.flip_rate {
        write_iqm(w, "flip_rate", f)?;
    }
    if let Some(v) = &g.validation {
        w.key("validation")?;
        w.begin_array()?;
        for (m, s) in v {
            w.begin_object()?;
            w.key_string("measure", m)?;
            iqm_fields(w, s)?;
            w.end_object()?;
        }
        w.end_array()?;
    }
    w.end_object()
}

fn write_run(w: &mut W, r: &RunStats) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_string("run", &r.run)?;
    w.key_int("top", r.top as i64)?;
    w.key_float("chance_overlap", r.chance_overlap)?;
    w.key("checkpoints")?;
    w.begin_array()?;
    for c in &r.checkpoints {
        w.begin_object()?;
        w.key_string("agent_id", &c.agent_id)?;
        w.key_string("kind", c.kind.name())?;
        w.key("step")?;
        match c.step {
            Some(s) => w.int(s as i64)?,
            None => w.null()?,
        }
        w.key_opt_float("spearman", c.spearman)?;
        w.key_float("top_overlap", c.top_overlap)?;
        w.end_object()?;
    }
    w.end_array()?;
    w.end_object()
}

/// Writes `sweep.json`: its bytes depend only on the inputs and the flags.
pub fn write_json(
    dest: &Path,
    rows: &[Row],
    summaries: &BTreeMap<String, AgentSummary>,
    groups: &[Group],
    runs: &[RunStats],
    flags: &SummaryFlags,
) -> Result<()> {
    let mut out = JsonOutput::create(dest)?;
    let w = out.json();
    let res: std::io::Result<()> = (|| {
        w.begin_object()?;
        w.key("metadata")?;
        w.begin_object()?;
        w.key_int("agents", rows.len() as i64)?;
        w.key_int("analysed", summaries.len() as i64)?;
        w.key_string("measure", flags.measure().name())?;
        w.key_int("top", flags.top as i64)?;
        w.key_int("bootstrap", flags.bootstrap as i64)?;
        w.key_int("seed", flags.seed as i64)?;
        w.key_string("flags", &flags.digest)?;
        w.end_object()?;
        w.key("agents")?;
        w.begin_array()?;
        for r in rows {
            let s = (r.status == Status::Ok).then(|| summaries.get(&r.agent_id)).flatten();
            write_agent(w, r, s)?;
        }
        w.end_array()?;
        w.key("groups")?;
        w.begin_array()?;
        for g in groups {
            write_group(w, g)?;
        }
        w.end_array()?;
        w.key("runs")?;
        w.begin_array()?;
        for r in runs {
            write_run(w, r)?;
        }
        w.end_array()?;
        w.end_object()
    })();
    res.map_err(write_err(dest))?;
    out.commit()?;
    Ok(())
}

/// `sweep.json` read back: what `write_json` wrote, and the summary flags it records.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepFile {
    pub flags: SummaryFlags,
    /// Every agent of the manifest, in its order, with its summary when it was analysed.
    pub agents: Vec<(String, Option<AgentSummary>)>,
    pub groups: Vec<Group>,
    pub runs: Vec<RunStats>,
}

fn read_iqm(v: &Value) -> Option<Iqm> {
    let interval = match v.get("interval")?.as_array() {
        Some(a) if a.len() == 2 => Some([a[0].as_f64()?, a[1].as_f64()?]),
        _ => None,
    };
    Some(Iqm { iqm: v.get("iqm")?.as_f64().unwrap_or(f64::NAN), interval })
}

fn read_agent(v: &Value) -> Option<(String, Option<AgentSummary>)> {
    let id = v.get("agent_id")?.as_str()?.to_string();
    if v.get("layers").is_none() {
        return Some((id, None));
    }
    let ablation = match v.get("ablation") {
        Some(a) => {
            let f = |k: &str| a.get(k).and_then(Value::as_f64);
            Some(AblationSummary {
                flip_rate: f("flip_rate").unwrap_or(f64::NAN),
                mean_target_drop: f("mean_target_drop").unwrap_or(f64::NAN),
                random_flip_rate: f("random_flip_rate"),
                percentile: f("percentile"),
            })
        }
        None => None,
    };
    Some((id, Some(AgentSummary::from_json(v, ablation)?)))
}

fn read_group(v: &Value) -> Option<Group> {
    let layers = v
        .get("layers")?
        .as_array()?
        .iter()
        .map(|l| Some((l.get("name")?.as_str()?.to_string(), read_iqm(l)?)))
        .collect::<Option<Vec<_>>>()?;
    Some(Group {
        group: v.get("group")?.as_str()?.to_string(),
        agents: v.get("agents")?.as_array()?.iter().map(|a| a.as_str().map(str::to_string)).collect::<Option<_>>()?,
        gini: read_iqm(v.get("gini")?)?,
        layers,
        flip_rate: match v.get("flip_rate") {
            Some(f) => Some(read_iqm(f)?),
            None => None,
        },
        validation: match v.get("validation").and_then(Value::as_array) {
            Some(list) => Some(
                list.iter()
                    .map(|x| Some((x.get("measure")?.as_str()?.to_string(), read_iqm(x)?)))
                    .collect::<Option<Vec<_>>>()?,
            ),
            None => None,
        },
    })
}

fn read_run(v: &Value) -> Option<RunStats> {
    let checkpoints = v
        .get("checkpoints")?
        .as_array()?
        .iter()
        .map(|c| {
            Some(Checkpoint {
                agent_id: c.get("agent_id")?.as_str()?.to_string(),
                kind: Kind::parse(c.get("kind")?.as_str()?)?,
                step: c.get("step").and_then(Value::as_i64).map(|s| s as u64),
                spearman: c.get("spearman").and_then(Value::as_f64),
                top_overlap: c.get("top_overlap")?.as_f64()?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(RunStats {
        run: v.get("run")?.as_str()?.to_string(),
        chance_overlap: v.get("chance_overlap")?.as_f64()?,
        top: v.get("top")?.as_i64()?.max(0) as usize,
        checkpoints,
    })
}

/// Reads `sweep.json` (this tool's; anything else is refused, naming the file).
pub fn read_json(path: &Path) -> Result<SweepFile> {
    let refused = |why: &str| StudyError::Refused(format!("{}: {why}", path.display()));
    let v = read_small_json(path, "sweep summary")?;
    let meta = v.get("metadata").ok_or_else(|| refused("not a saliency sweep summary (no metadata)"))?;
    let int = |k: &str| meta.get(k).and_then(Value::as_i64).ok_or_else(|| refused(&format!("no metadata.{k}")));
    let measure = meta.get("measure").and_then(Value::as_str).and_then(|m| Measure::parse(m).ok());
    let measure = measure.ok_or_else(|| refused("no known metadata.measure"))?;
    let list = |k: &str| v.get(k).and_then(Value::as_array).ok_or_else(|| refused(&format!("no {k} list")));
    let agents = list("agents")?.iter().map(read_agent).collect::<Option<Vec<_>>>();
    let groups = list("groups")?.iter().map(read_group).collect::<Option<Vec<_>>>();
    let runs = list("runs")?.iter().map(read_run).collect::<Option<Vec<_>>>();
    let agents = agents.ok_or_else(|| refused("an agent that cannot be read"))?;
    Ok(SweepFile {
        flags: SummaryFlags {
            select_by: (measure != Measure::MeanAbs).then_some(measure),
            ablate: agents.iter().any(|(_, s)| s.as_ref().is_some_and(|s| s.ablation.is_some())),
            validate: agents.iter().any(|(_, s)| s.as_ref().is_some_and(|s| s.validation.is_some())),
            top: int("top")?.max(0) as usize,
            bootstrap: int("bootstrap")?.max(0) as usize,
            seed: int("seed")? as u64,
            digest: meta.get("flags").and_then(Value::as_str).unwrap_or_default().to_string(),
        },
        agents,
        groups: groups.ok_or_else(|| refused("a group that cannot be read"))?,
        runs: runs.ok_or_else(|| refused("a run that cannot be read"))?,
    })
}

/// Writes `sweep.csv`: a long table `agent_id,layer,measure,value` (network-wide values have an
/// empty layer).
pub fn write_csv(dest: &Path, rows: &[Row], summaries: &BTreeMap<String, AgentSummary>) -> Result<()> {
    let f = |v: f64| if v.is_finite() { pyfloat::to_string(v) } else { String::new() };
    let mut text = String::from("agent_id,layer,measure,value\n");
    for r in rows.iter().filter(|r| r.status == Status::Ok) {
        let Some(s) = summaries.get(&r.agent_id) else { continue };
        let id = &s.agent_id;
        for l in &s.layers {
            let name = csv_field(&l.name);
            text.push_str(&format!("{id},{name},share,{}\n", f(l.share)));
            text.push_str(&format!("{id},{name},mean,{}\n", f(l.mean)));
            text.push_str(&format!("{id},{name},max,{}\n", f(l.max)));
            text.push_str(&format!("{id},{name},selected,{}\n", l.selected));
        }
        text.push_str(&format!("{id},,gini,{}\n", f(s.gini)));
        if let Some(a) = &s.ablation {
            text.push_str(&format!("{id},,flip_rate,{}\n", f(a.flip_rate)));
            text.push_str(&format!("{id},,mean_target_drop,{}\n", f(a.mean_target_drop)));
            text.push_str(&format!("{id},,random_flip_rate,{}\n", a.random_flip_rate.map(f).unwrap_or_default()));
            text.push_str(&format!("{id},,percentile,{}\n", a.percentile.map(f).unwrap_or_default()));
        }
        for (m, rho) in s.validation.iter().flatten() {
            text.push_str(&format!("{id},,spearman:{m},{}\n", rho.map(f).unwrap_or_default()));
        }
    }
    let mut file = AtomicFile::create(dest)?;
    file.file().write_all(text.as_bytes()).map_err(write_err(dest))?;
    file.commit()?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The table printed at the end: a few lines per group and per run.
pub fn table(groups: &[Group], runs: &[RunStats]) -> Vec<String> {
    let iv = |s: &Iqm| match s.interval {
        Some([lo, hi]) => format!("{} [{}, {}]", num(s.iqm), num(lo), num(hi)),
        None => num(s.iqm),
    };
    let mut lines = Vec::new();
    if !groups.is_empty() {
        lines.push("groups (interquartile mean [95% bootstrap interval] over the group's agents):".into());
    }
    for g in groups {
        let mut top: Vec<&(String, Iqm)> = g.layers.iter().collect();
        top.sort_by(|a, b| b.1.iqm.total_cmp(&a.1.iqm));
        let flips = g.flip_rate.as_ref().map(|f| format!(" · flip rate {}", iv(f))).unwrap_or_default();
        lines.push(format!("  {}  n={}  gini {}{flips}", g.group, g.agents.len(), iv(&g.gini)));
        let shares: Vec<String> = top.iter().take(3).map(|(n, s)| format!("{n} {}", iv(s))).collect();
        lines.push(format!("    largest shares: {}", shares.join(", ")));
        if g.validation.is_some() {
            let preds: Vec<String> =
                g.best_predictors().iter().take(3).map(|(m, s)| format!("{m} {}", iv(s))).collect();
            lines.push(format!("    best predictors of the damage (Spearman): {}", preds.join(", ")));
        }
    }
    if !runs.is_empty() {
        lines.push("runs (Spearman with the final model / top-K overlap; chance overlap in brackets):".into());
    }
    for r in runs {
        let parts: Vec<String> = r
            .checkpoints
            .iter()
            .filter(|c| c.kind != Kind::Final)
            .map(|c| {
                let at = match (c.kind, c.step) {
                    (Kind::Best, Some(s)) => format!("best={s}"),
                    (_, Some(s)) => s.to_string(),
                    _ => c.kind.name().to_string(),
                };
                let rho = c.spearman.map(num).unwrap_or_else(|| "-".into());
                format!("{at}: {rho}/{}", num(c.top_overlap))
            })
            .collect();
        lines.push(format!("  {} (top {}, chance {}): {}", r.run, r.top, num(r.chance_overlap), parts.join("  ")));
    }
    lines
}
