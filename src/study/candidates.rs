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

/// Where a run's candidate neurons come from.
#[derive(Debug, Clone)]
pub enum CandidateChoice {
    /// The agent's patching results (cross_metric_summary.json, read and checked).
    Patching(Candidates),
    /// The N hidden neurons of largest saliency, chosen from the averages (`by_saliency`).
    Saliency(usize),
}

impl CandidateChoice {
    /// An agent's candidates: its patching results (read and checked), or when it has none and
    /// `by_saliency` says so, the N hidden neurons of largest saliency. Without either, the
    /// missing cross-metric file is the error.
    pub fn for_agent(
        files: &super::files::AgentFiles,
        useful_flag: Option<&Path>,
        by_saliency: Option<usize>,
    ) -> Result<CandidateChoice> {
        let cross = files.cross_metric();
        match by_saliency {
            Some(n) if !cross.exists() => Ok(CandidateChoice::Saliency(n)),
            _ => Ok(CandidateChoice::Patching(Candidates::read(&cross, useful_flag, Some(&files.dir))?)),
        }
    }

    /// As the manifest and notes say it: `patching` or `saliency:N`.
    pub fn label(&self) -> String {
        match self {
            CandidateChoice::Patching(_) => "patching".into(),
            CandidateChoice::Saliency(n) => format!("saliency:{n}"),
        }
    }

    /// The candidates for the averages `avgs` (mean |gradient|).
    pub fn candidates(&self, avgs: &Averages) -> Candidates {
        match self {
            CandidateChoice::Patching(c) => c.clone(),
            CandidateChoice::Saliency(n) => by_saliency(avgs, &output_layer(avgs), *n),
        }
    }
}

/// The output layer's parameters: the last weight tensor and what follows it (its bias). In
/// SB3's `named_parameters()` order the head's last layer comes last, on every path (`q_net`'s,
/// `quantile_net`'s, `action_net`, `value_net`).
pub fn output_layer(avgs: &Averages) -> Vec<usize> {
    match avgs.params.iter().rposition(|p| p.shape.len() >= 2) {
        Some(last) => (last..avgs.params.len()).collect(),
        None => Vec::new(),
    }
}

/// `--candidates-by saliency:N`: `N` hidden neurons (rows of the weight tensors other than the
/// output layer's) with the largest sum of incoming mean |gradient|, ties by file order then
/// row, named `<layer>_neuron_<n>` so the rest of the pipeline reads them as patching results.
pub fn by_saliency(avgs: &Averages, outputs: &[usize], n: usize) -> Candidates {
    let mut rows: Vec<(f64, usize, usize)> = Vec::new();
    for (p, param) in avgs.params.iter().enumerate() {
        if param.shape.len() < 2 || outputs.contains(&p) {
            continue;
        }
        for r in 0..param.rows_cols().0 {
            let sum: f64 = param.row(r).iter().filter(|v| v.is_finite()).sum();
            rows.push((sum, p, r));
        }
    }
    rows.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let keys = rows
        .into_iter()
        .take(n)
        .map(|(_, p, r)| {
            let name = &avgs.params[p].name;
            let layer = name.strip_suffix(".weight").unwrap_or(name);
            CandidateKey { key: format!("{layer}_neuron_{r}"), metrics: Value::Null }
        })
        .collect();
    Candidates { keys, useful: None }
}

/// `--candidates-by`: `saliency:N` (or `saliency` for N = 10).
pub fn parse_saliency_choice(text: &str) -> std::result::Result<usize, CandidatesByError> {
    let t = text.trim();
    match t.strip_prefix("saliency") {
        Some("") => Ok(10),
        Some(rest) => match rest.strip_prefix(':').map(|n| n.trim().parse::<usize>()) {
            Some(Ok(n)) if n > 0 => Ok(n),
            _ => Err(CandidatesByError(t.to_string())),
        },
        None => Err(CandidatesByError(t.to_string())),
    }
}

/// A `--candidates-by` value that is not `saliency:N`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--candidates-by {0}: expected saliency:N (N hidden neurons of largest saliency, N >= 1)")]
pub struct CandidatesByError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::average::AvgParam;

    #[test]
    fn saliency_candidates_are_the_strongest_hidden_rows() {
        let p = |name: &str, shape: Vec<usize>, data: Vec<f64>| AvgParam { name: name.into(), shape, data };
        let avgs = Averages {
            num_examples: Some(1),
            params: vec![
                p("net.0.weight", vec![3, 2], vec![1.0, 1.0, 5.0, 0.0, 2.0, 3.0]),
                p("net.0.bias", vec![3], vec![9.0, 9.0, 9.0]),
                p("net.2.weight", vec![2, 3], vec![1.0, 1.0, 3.0, 4.0, 0.0, 1.0]),
                p("out.weight", vec![1, 2], vec![100.0, 100.0]),
            ],
        };
        assert_eq!(output_layer(&avgs), [3]);
        let keys: Vec<String> = by_saliency(&avgs, &[3], 3).keys.into_iter().map(|k| k.key).collect();
        // row sums: net.0 -> 2, 5, 5; net.2 -> 5, 5; the output layer and biases are not candidates
        assert_eq!(keys, ["net.0_neuron_1", "net.0_neuron_2", "net.2_neuron_0"]);
        let r = by_saliency(&avgs, &[3], 10).resolve(&avgs);
        assert_eq!(r.candidates.len(), 5);
        assert!(r.warnings.is_empty());
        assert_eq!(parse_saliency_choice("saliency:7"), Ok(7));
        assert_eq!(parse_saliency_choice("saliency"), Ok(10));
        assert!(parse_saliency_choice("saliency:0").is_err() && parse_saliency_choice("random:3").is_err());
    }
}
