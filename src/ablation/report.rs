//! `ablation.json` (docs/ablation.md, "File"), in Python's `json.dump(indent=2)` text, written
//! atomically; and the selection read from a `candidate_weights.json`.

use std::path::Path;

use super::{Aggregates, NamedWeight, Report, Stat};
use crate::json::Value;
use crate::pipeline::extract::read_small_json;
use crate::pipeline::output::{write_err, JsonOutput};
use crate::pipeline::PipelineError;

pub const ABLATION: &str = "ablation.json";

/// The `weight_targets` of a candidate file.
pub fn read_weight_targets(path: &Path) -> Result<Vec<NamedWeight>, PipelineError> {
    let v = read_small_json(path, "candidate file")?;
    let shown = path.display();
    let targets = v.get("weight_targets").and_then(Value::as_array).ok_or_else(|| {
        PipelineError::Format(format!("{shown}: no \"weight_targets\" list (is this a candidate_weights.json?)"))
    })?;
    targets
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let field = |k: &str| t.get(k);
            let layer_name = field("layer_name").and_then(Value::as_str);
            let neuron = field("neuron_index").and_then(Value::as_i64);
            let weight = field("weight_index").and_then(Value::as_i64);
            match (layer_name, neuron, weight) {
                (Some(l), Some(n), Some(w)) => {
                    Ok(NamedWeight { layer_name: l.to_string(), neuron_index: n, weight_index: w })
                }
                _ => Err(PipelineError::Format(format!(
                    "{shown}: weight_targets[{i}]: expected \"layer_name\" (text), \"neuron_index\" and \
                     \"weight_index\" (whole numbers)"
                ))),
            }
        })
        .collect()
}

/// Writes the report to `dest` atomically.
pub fn write(dest: &Path, r: &Report) -> Result<(), PipelineError> {
    let mut out = JsonOutput::create(dest)?;
    let w = out.json();
    let res: std::io::Result<()> = (|| {
        w.begin_object()?;
        w.key("metadata")?;
        w.begin_object()?;
        w.key_string("agent", &r.agent)?;
        w.key_int("num_examples", r.per_input.len() as i64)?;
        w.key_int("num_weights", r.num_weights as i64)?;
        w.key_string("mode", &r.mode.to_string())?;
        w.key_string("target", &r.target.to_string())?;
        w.key_int("random_draws", r.random_draws as i64)?;
        w.key_int("seed", r.seed as i64)?;
        w.end_object()?;
        w.key("selection")?;
        aggregates(w, &r.selection)?;
        w.key("random")?;
        match &r.random {
            None => w.null()?,
            Some(b) => {
                w.begin_object()?;
                for (name, s) in
                    [("flip_rate", &b.flip_rate), ("mean_target_drop", &b.mean_target_drop), ("mean_kl", &b.mean_kl)]
                {
                    w.key(name)?;
                    stat(w, s)?;
                }
                w.end_object()?;
            }
        }
        w.key("per_input")?;
        w.begin_object()?;
        for (id, e) in &r.per_input {
            w.key(id)?;
            w.begin_object()?;
            w.key_int("action", e.action as i64)?;
            w.key_int("ablated_action", e.ablated_action as i64)?;
            w.key_float("target_drop", e.target_drop)?;
            w.key_float("kl", e.kl)?;
            w.key_float("predicted_drop", e.predicted_drop)?;
            w.end_object()?;
        }
        w.end_object()?;
        w.end_object()
    })();
    res.map_err(write_err(dest))?;
    out.commit()
}

fn aggregates<W: std::io::Write>(w: &mut crate::json::PyJsonWriter<W>, a: &Aggregates) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_float("flip_rate", a.flip_rate)?;
    w.key_float("mean_target_drop", a.mean_target_drop)?;
    w.key_float("mean_kl", a.mean_kl)?;
    w.key_float("mean_predicted_drop", a.mean_predicted_drop)?;
    w.end_object()
}

fn stat<W: std::io::Write>(w: &mut crate::json::PyJsonWriter<W>, s: &Stat) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_float("mean", s.mean)?;
    w.key_float("std", s.std)?;
    w.key_float("min", s.min)?;
    w.key_float("max", s.max)?;
    w.key_float("percentile", s.percentile)?;
    w.end_object()
}
