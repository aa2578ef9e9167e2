//! Saliency over training: for a run with checkpoints, each network's layer shares in step
//! order, its rank correlation with the final model (from the summary), and the evaluation
//! reward RL Zoo logged in the run's `evaluations.npz`, so one sees when saliency settles and
//! whether that matches the reward curve.

use std::path::{Path, PathBuf};

use crate::pipeline::arrays::open_npz;
use crate::study::Result;

use super::discover::Kind;
use super::results::SweepResults;
use super::summary::{self, RunStats};

/// One network of the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub agent_id: String,
    pub kind: Kind,
    pub step: Option<u64>,
    /// Per layer of `Training::layers` (None: not in this network).
    pub shares: Vec<Option<f64>>,
    pub spearman: Option<f64>,
    pub top_overlap: f64,
}

/// The evaluations of a run: per evaluation its step and the mean and spread of the episodes'
/// returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluations {
    pub steps: Vec<f64>,
    pub mean: Vec<f64>,
    pub min: Vec<f64>,
    pub max: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Training {
    pub run: String,
    pub layers: Vec<String>,
    pub points: Vec<Point>,
    pub top: usize,
    pub chance_overlap: f64,
    /// The run's evaluations, or why there are none.
    pub evaluations: std::result::Result<Evaluations, String>,
}

pub const EVALUATIONS: &str = "evaluations.npz";

/// The run's folder: where its final model's zip was read from (done.json's absolute path),
/// else the run as the manifest names it.
fn run_folder(results: &SweepResults, stats: &RunStats) -> PathBuf {
    let final_id = stats.checkpoints.last().map(|c| c.agent_id.as_str()).unwrap_or_default();
    match results.analysis(final_id) {
        Ok(Some(a)) => a.agent.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => PathBuf::from(&stats.run),
    }
}

/// Reads `evaluations.npz` (as `stable_baselines3.common.callbacks.EvalCallback` writes it:
/// `timesteps` (n,), `results` (n, episodes)).
pub fn read_evaluations(path: &Path) -> std::result::Result<Evaluations, String> {
    if !path.is_file() {
        return Err(format!("no {} in {}", EVALUATIONS, path.parent().unwrap_or(path).display()));
    }
    let arrays = open_npz(path).map_err(|e| crate::error_text(&e))?;
    let (mut steps, mut results) = (None, None);
    for (name, mut stream) in arrays {
        let mut rows = Vec::new();
        for _ in 0..stream.rows() {
            let mut row = Vec::new();
            stream.next_row_f64(&mut row).map_err(|e| crate::error_text(&e))?;
            rows.push(row);
        }
        match name.as_str() {
            "timesteps" => steps = Some(rows.into_iter().map(|r| r.first().copied().unwrap_or(f64::NAN)).collect()),
            "results" => results = Some(rows),
            _ => {}
        }
    }
    let (Some(steps), Some(results)) = (steps, results) else {
        return Err(format!("{}: expected arrays 'timesteps' and 'results'", path.display()));
    };
    let steps: Vec<f64> = steps;
    if steps.len() != results.len() {
        return Err(format!("{}: {} timesteps but {} rows of results", path.display(), steps.len(), results.len()));
    }
    let stat = |f: &dyn Fn(&[f64]) -> f64| results.iter().map(|r| f(r)).collect::<Vec<f64>>();
    Ok(Evaluations {
        steps,
        mean: stat(&|r| r.iter().sum::<f64>() / r.len().max(1) as f64),
        min: stat(&|r| r.iter().copied().fold(f64::INFINITY, f64::min)),
        max: stat(&|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    })
}

/// The runs with checkpoints, by name.
pub fn runs(results: &SweepResults) -> Vec<&str> {
    results.runs.iter().map(|r| r.run.as_str()).collect()
}

/// Saliency over the training of `run`: from the sweep's run statistics, or, while the sweep
/// runs (its statistics come at the end), from the networks of the run finished so far.
pub fn training(results: &SweepResults, run: &str) -> Result<Training> {
    let not_a_run = || crate::study::StudyError::Refused(format!("{run} is not a run with checkpoints in this sweep"));
    let so_far;
    let stats = match results.runs.iter().find(|r| r.run == run) {
        Some(stats) => stats,
        None => {
            let rows: Vec<_> = summary::finished_rows(&results.rows).into_iter().filter(|r| r.run == run).collect();
            so_far = summary::runs(&rows, &results.out, &results.flags)?;
            so_far.first().ok_or_else(not_a_run)?
        }
    };
    let mut layers: Vec<String> = Vec::new();
    for c in &stats.checkpoints {
        for l in results.summaries.get(&c.agent_id).map(|s| s.layers.as_slice()).unwrap_or_default() {
            if !layers.contains(&l.name) {
                layers.push(l.name.clone());
            }
        }
    }
    let points = stats
        .checkpoints
        .iter()
        .map(|c| {
            let summary = results.summaries.get(&c.agent_id);
            Point {
                agent_id: c.agent_id.clone(),
                kind: c.kind,
                step: c.step,
                shares: layers
                    .iter()
                    .map(|name| summary?.layers.iter().find(|l| &l.name == name).map(|l| l.share))
                    .collect(),
                spearman: c.spearman,
                top_overlap: c.top_overlap,
            }
        })
        .collect();
    Ok(Training {
        run: run.to_string(),
        layers,
        points,
        top: stats.top,
        chance_overlap: stats.chance_overlap,
        evaluations: read_evaluations(&run_folder(results, stats).join(EVALUATIONS)),
    })
}
