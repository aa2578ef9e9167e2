//! Two agents of a sweep side by side. Per-layer shares are always comparable; per-weight
//! values only when the two networks have the same parameters (names and shapes), and then
//! with the same statistics the summary gives a run's checkpoints (Spearman correlation and
//! top-K overlap beside its chance level), computed by the same functions on the same values.

use std::collections::BTreeSet;
use std::path::Path;

use crate::json::Value;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::read_small_json;
use crate::pipeline::CANDIDATE_WEIGHTS;
use crate::stats;
use crate::study::Result;

use super::agent::{values_of, AgentSummary};
use super::results::SweepResults;

/// One layer's share of the saliency in each agent (None: the agent has no such parameter).
#[derive(Debug, Clone, PartialEq)]
pub struct SharePair {
    pub name: String,
    pub a: Option<f64>,
    pub b: Option<f64>,
}

/// Where a selected weight is selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Side {
    Both,
    OnlyA,
    OnlyB,
}

/// The per-weight comparison of two networks with the same parameters.
#[derive(Debug, Clone)]
pub struct Weights {
    pub a: Averages,
    pub b: Averages,
    pub spearman: Option<f64>,
    pub top_overlap: f64,
    /// K of the overlap (`--top`, at most the number of weights).
    pub top: usize,
    pub chance_overlap: f64,
    /// Selected weights: (parameter index, flat index, where).
    pub selected: Vec<(usize, usize, Side)>,
}

#[derive(Debug, Clone)]
pub struct Comparison {
    pub a: String,
    pub b: String,
    pub shares: Vec<SharePair>,
    /// The per-weight comparison, or why there is none.
    pub weights: std::result::Result<Weights, String>,
}

/// The per-layer shares of two summaries, in A's parameter order then B's others.
pub fn share_pairs(a: &AgentSummary, b: &AgentSummary) -> Vec<SharePair> {
    let mut out: Vec<SharePair> = a
        .layers
        .iter()
        .map(|l| SharePair {
            name: l.name.clone(),
            a: Some(l.share),
            b: b.layers.iter().find(|x| x.name == l.name).map(|x| x.share),
        })
        .collect();
    for l in b.layers.iter().filter(|l| !a.layers.iter().any(|x| x.name == l.name)) {
        out.push(SharePair { name: l.name.clone(), a: None, b: Some(l.share) });
    }
    out
}

/// Why two networks' weights cannot be compared one to one (None when they can).
pub fn incomparable(a: &Averages, b: &Averages) -> Option<String> {
    if a.params.len() != b.params.len() {
        return Some(format!("A has {} parameter tensors and B has {}", a.params.len(), b.params.len()));
    }
    a.params.iter().zip(&b.params).find_map(|(x, y)| {
        if x.name != y.name {
            Some(format!("the parameters differ: A has {} where B has {}", x.name, y.name))
        } else if x.shape != y.shape {
            Some(format!("{} has shape {:?} in A and {:?} in B", x.name, x.shape, y.shape))
        } else {
            None
        }
    })
}

/// The selected weights of an agent (`candidate_weights.json`), as (parameter, flat index).
fn selected(dir: &Path, values: &Averages) -> Result<BTreeSet<(usize, usize)>> {
    let v = read_small_json(&dir.join(CANDIDATE_WEIGHTS), "candidate file")?;
    let targets = v.get("weight_targets").and_then(Value::as_array).unwrap_or_default();
    Ok(targets
        .iter()
        .filter_map(|t| {
            let name = t.get("layer_name")?.as_str()?;
            let p = values.params.iter().position(|p| p.name == name)?;
            let (rows, cols) = values.params[p].rows_cols();
            let (row, col) = (t.get("neuron_index")?.as_i64()? as usize, t.get("weight_index")?.as_i64()? as usize);
            (row < rows && col < cols).then_some((p, row * cols + col))
        })
        .collect())
}

fn flat(a: &Averages) -> Vec<f64> {
    a.params.iter().flat_map(|p| p.data.iter().copied()).collect()
}

/// Compares agents `a` and `b` (ids of analysed agents) from their files.
pub fn compare(results: &SweepResults, a: &str, b: &str) -> Result<Comparison> {
    let summary = |id: &str| {
        results.summaries.get(id).ok_or_else(|| {
            crate::study::StudyError::Refused(format!("agent {id} was not analysed: there is nothing to compare"))
        })
    };
    let shares = share_pairs(summary(a)?, summary(b)?);
    let (dir_a, dir_b) = (results.agent_dir(a), results.agent_dir(b));
    let (va, vb) = (values_of(&dir_a, &results.flags)?, values_of(&dir_b, &results.flags)?);
    let weights = match incomparable(&va, &vb) {
        Some(why) => Err(why),
        None => {
            let (fa, fb) = (flat(&va), flat(&vb));
            let top = results.flags.top.min(fa.len());
            let (sa, sb) = (selected(&dir_a, &va)?, selected(&dir_b, &vb)?);
            let mut sel: Vec<(usize, usize, Side)> = sa
                .union(&sb)
                .map(|&(p, i)| {
                    let side = match (sa.contains(&(p, i)), sb.contains(&(p, i))) {
                        (true, true) => Side::Both,
                        (true, false) => Side::OnlyA,
                        _ => Side::OnlyB,
                    };
                    (p, i, side)
                })
                .collect();
            sel.sort();
            Ok(Weights {
                spearman: stats::spearman(&fa, &fb),
                top_overlap: stats::top_overlap(&fa, &fb, top),
                top,
                chance_overlap: stats::chance_overlap(top, fa.len()),
                selected: sel,
                a: va,
                b: vb,
            })
        }
    };
    Ok(Comparison { a: a.to_string(), b: b.to_string(), shares, weights })
}
