//! Candidate neurons and the k/m weight selection (docs/pipeline.md, step 3).
//!
//! `select` is a pure function of (averages, candidates, k, m), cheap enough to re-run on every
//! key press of the explorer.

use std::cmp::Ordering;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use super::error::{PipelineError, Result};

use super::average::Averages;
use super::output::{write_err, JsonOutput};
use crate::json::{reader::read_value_from, Map, Value};

/// Largest candidate or useful-neurons file read whole.
pub const MAX_SMALL_FILE: u64 = 256 << 20;

/// A resolved candidate neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The key of `common_neurons`, as written.
    pub key: String,
    /// Index of `<layer>.weight` in the averages.
    pub param: usize,
    pub neuron: usize,
}

/// A key of `common_neurons` with its metrics (for display).
#[derive(Debug, Clone)]
pub struct CandidateKey {
    pub key: String,
    pub metrics: Value,
}

#[derive(Debug, Clone, Default)]
pub struct Resolved {
    pub candidates: Vec<Candidate>,
    /// "skipping candidate <key>: <reason>"
    pub warnings: Vec<String>,
}

/// Reads a small JSON file whole (candidates, useful neurons), capped in size.
pub fn read_small_json(path: &Path, what: &str) -> Result<Value> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(PipelineError::io(format!("open {what}"), path))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len > MAX_SMALL_FILE {
        return Err(PipelineError::Limit(format!("{what} {shown} is {len} bytes, over the limit of {MAX_SMALL_FILE}")));
    }
    Ok(read_value_from(BufReader::new(file), &shown)?)
}

/// The keys of `cross_metric_summary["common_neurons"]`, in file order.
pub fn candidate_keys(cross: &Value, source: &str) -> Result<Vec<CandidateKey>> {
    let format = PipelineError::Format;
    let obj = cross
        .as_object()
        .ok_or_else(|| format(format!("{source}: expected a JSON object, found {}", cross.type_name())))?;
    let common = obj
        .get("common_neurons")
        .ok_or_else(|| format(format!("{source}: no \"common_neurons\" (is this a cross_metric_summary.json?)")))?;
    let map: &Map = common.as_object().ok_or_else(|| {
        format(format!(
            "{source}: \"common_neurons\" must be an object of neuron key -> metrics, found {}",
            common.type_name()
        ))
    })?;
    Ok(map.iter().map(|(k, v)| CandidateKey { key: k.clone(), metrics: v.clone() }).collect())
}

/// Whether any key needs `useful_neurons.json` (the `exp_<N>_<layer>` form).
pub fn needs_useful_neurons(keys: &[CandidateKey]) -> bool {
    keys.iter().any(|k| matches!(parse_key(&k.key), Some(KeyForm::Experiment { .. })))
}

#[derive(Debug, Clone, PartialEq)]
enum KeyForm {
    Experiment { number: u64, layer: String },
    Neuron { layer: String, neuron: u64 },
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_key(key: &str) -> Option<KeyForm> {
    let parts: Vec<&str> = key.split('_').collect();
    if parts.len() >= 3 && parts[0] == "exp" && all_digits(parts[1]) {
        return Some(KeyForm::Experiment { number: parts[1].parse().unwrap_or(u64::MAX), layer: parts[2..].join("_") });
    }
    let (layer, n) = key.rsplit_once("_neuron_")?;
    if all_digits(n) && !layer.is_empty() {
        return Some(KeyForm::Neuron { layer: layer.to_string(), neuron: n.parse().unwrap_or(u64::MAX) });
    }
    None
}

fn resolve_one(key: &str, useful: Option<&Value>, avgs: &Averages) -> std::result::Result<(usize, usize), String> {
    let (layer, neuron) = match parse_key(key) {
        None => return Err("not of the form exp_<N>_<layer> or <layer>_neuron_<n>".into()),
        Some(KeyForm::Neuron { layer, neuron }) => (layer, neuron),
        Some(KeyForm::Experiment { number, layer }) => {
            let list = match useful {
                None => return Err("an exp_<N>_<layer> key needs useful_neurons.json, which was not given".into()),
                Some(v) => v.as_array().ok_or("useful_neurons.json is not a list")?,
            };
            if number == 0 || number as usize > list.len() {
                return Err(format!("experiment {number} is out of range (useful_neurons.json lists {})", list.len()));
            }
            let entry = &list[number as usize - 1];
            let listed = entry
                .get(&layer)
                .ok_or_else(|| format!("experiment {number} of useful_neurons.json has no layer '{layer}'"))?;
            let indices = listed
                .as_array()
                .ok_or_else(|| format!("experiment {number}, layer '{layer}': expected a list of neuron indices"))?;
            let neuron = match indices.first() {
                None => 0,
                Some(v) => match v.as_i64() {
                    Some(i) if i >= 0 => i as u64,
                    _ => {
                        return Err(format!(
                            "experiment {number}, layer '{layer}': neuron index {v:?} is not a non-negative integer"
                        ))
                    }
                },
            };
            (layer, neuron)
        }
    };
    let param_name = format!("{layer}.weight");
    let param = avgs.index_of(&param_name).ok_or_else(|| format!("no parameter '{param_name}' in the averages"))?;
    let p = &avgs.params[param];
    if p.shape.len() < 2 {
        return Err(format!("'{param_name}' has shape {:?}; a neuron is a row of a weight matrix", p.shape));
    }
    let (rows, _) = p.rows_cols();
    if neuron >= rows as u64 {
        return Err(format!("neuron {neuron} is out of range ('{param_name}' has {rows} neurons)"));
    }
    Ok((param, neuron as usize))
}

/// Resolves keys in order; unresolvable keys and repeats of a neuron are skipped with a warning.
pub fn resolve(keys: &[CandidateKey], useful: Option<&Value>, avgs: &Averages) -> Resolved {
    let mut out = Resolved::default();
    for k in keys {
        match resolve_one(&k.key, useful, avgs) {
            Err(reason) => out.warnings.push(format!("skipping candidate {}: {reason}", k.key)),
            Ok((param, neuron)) => {
                if let Some(prev) = out.candidates.iter().find(|c| c.param == param && c.neuron == neuron) {
                    out.warnings.push(format!(
                        "skipping candidate {}: same neuron as {} ({} row {neuron})",
                        k.key, prev.key, avgs.params[param].name
                    ));
                } else {
                    out.candidates.push(Candidate { key: k.key.clone(), param, neuron });
                }
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Rank within the neuron's top k, from 1.
    Guaranteed(usize),
    Additional,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectedWeight {
    /// Index into the candidates.
    pub candidate: usize,
    pub weight_index: usize,
    pub magnitude: f64,
    pub pick: Pick,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Selection {
    pub k: usize,
    pub m: usize,
    /// Sorted by magnitude, largest first (stable).
    pub weights: Vec<SelectedWeight>,
    /// Per candidate: its top-k weight indices, largest first.
    pub top_k: Vec<Vec<usize>>,
    /// Candidates that received additional weights (in order of first appearance in the sorted
    /// pool) and their weight indices.
    pub additional: Vec<(usize, Vec<usize>)>,
    pub guaranteed_count: usize,
    pub additional_count: usize,
}

/// Larger first; NaN before everything (numpy sorts NaN last, ascending); -0.0 == 0.0.
#[inline]
fn desc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        _ => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
    }
}

/// The `count` best of `items` by (value desc, position asc), best first.
fn top_by<T: Copy>(items: &mut Vec<T>, count: usize, key: impl Fn(&T) -> (f64, usize)) {
    let cmp = |x: &T, y: &T| {
        let (vx, px) = key(x);
        let (vy, py) = key(y);
        desc(vx, vy).then(px.cmp(&py))
    };
    if count == 0 {
        items.clear();
        return;
    }
    if count < items.len() {
        items.select_nth_unstable_by(count - 1, cmp);
        items.truncate(count);
    }
    items.sort_unstable_by(cmp);
}

/// docs/pipeline.md, step 3: per candidate its top k weights (guaranteed), the rest into one pool whose top m
/// are added, all sorted by magnitude (stable: guaranteed in candidate order, then additional).
pub fn select(avgs: &Averages, candidates: &[Candidate], k: usize, m: usize) -> Selection {
    let mut weights = Vec::new();
    let mut top_k = Vec::with_capacity(candidates.len());
    // Pool entries: (candidate, weight index, position in pool order).
    let mut pool: Vec<(u32, u32, f64, usize)> = Vec::new();
    let mut order: Vec<usize> = Vec::new();
    let mut chosen_mask: Vec<bool> = Vec::new();
    for (c, cand) in candidates.iter().enumerate() {
        let row = avgs.params[cand.param].row(cand.neuron);
        order.clear();
        order.extend(0..row.len());
        top_by(&mut order, k.min(row.len()), |&j| (row[j], j));
        chosen_mask.clear();
        chosen_mask.resize(row.len(), false);
        for (rank, &j) in order.iter().enumerate() {
            chosen_mask[j] = true;
            weights.push(SelectedWeight {
                candidate: c,
                weight_index: j,
                magnitude: row[j],
                pick: Pick::Guaranteed(rank + 1),
            });
        }
        top_k.push(order.clone());
        if m > 0 {
            for (j, &v) in row.iter().enumerate() {
                if !chosen_mask[j] {
                    let pos = pool.len();
                    pool.push((c as u32, j as u32, v, pos));
                }
            }
        }
    }
    let guaranteed_count = weights.len();
    let take = m.min(pool.len());
    top_by(&mut pool, take, |e| (e.2, e.3));
    let mut additional: Vec<(usize, Vec<usize>)> = Vec::new();
    for &(c, j, v, _) in &pool {
        let (c, j) = (c as usize, j as usize);
        weights.push(SelectedWeight { candidate: c, weight_index: j, magnitude: v, pick: Pick::Additional });
        match additional.iter_mut().find(|(ac, _)| *ac == c) {
            Some((_, list)) => list.push(j),
            None => additional.push((c, vec![j])),
        }
    }
    let additional_count = pool.len();
    weights.sort_by(|a, b| desc(a.magnitude, b.magnitude));
    Selection { k, m, weights, top_k, additional, guaranteed_count, additional_count }
}

impl Selection {
    /// Sum of the selected magnitudes.
    pub fn captured(&self) -> f64 {
        self.weights.iter().map(|t| t.magnitude).filter(|v| v.is_finite()).sum()
    }
}

/// Writes `candidate_weights.json` (docs/pipeline.md, step 3) atomically.
pub fn write_candidates(dest: &Path, avgs: &Averages, candidates: &[Candidate], sel: &Selection) -> Result<()> {
    let mut out = JsonOutput::create(dest)?;
    let w = out.json();
    let res: std::io::Result<()> = (|| {
        w.begin_object()?;
        w.key("weight_targets")?;
        w.begin_array()?;
        for t in &sel.weights {
            let c = &candidates[t.candidate];
            w.begin_object()?;
            w.key_string("layer_name", &avgs.params[c.param].name)?;
            w.key_int("neuron_index", c.neuron as i64)?;
            w.key_int("weight_index", t.weight_index as i64)?;
            w.key_float("gradient_magnitude", t.magnitude)?;
            match t.pick {
                Pick::Guaranteed(rank) => {
                    w.key_string("source", &format!("top_{rank}_of_{}", c.key))?;
                    w.key_string("priority", &format!("guaranteed_k_{rank}"))?;
                }
                Pick::Additional => {
                    w.key_string("source", &format!("additional_from_{}", c.key))?;
                    w.key_string("priority", "additional_global")?;
                }
            }
            w.end_object()?;
        }
        w.end_array()?;
        w.key("metadata")?;
        w.begin_object()?;
        w.key_int("k_per_neuron", sel.k as i64)?;
        w.key_int("additional_m", sel.m as i64)?;
        w.key_int("num_candidate_neurons", candidates.len() as i64)?;
        w.key_int("total_weights_selected", sel.weights.len() as i64)?;
        w.key_int("guaranteed_per_neuron", sel.guaranteed_count as i64)?;
        w.key_int("additional_selected", sel.additional_count as i64)?;
        w.key_string(
            "description",
            &format!("Top {} weights per neuron plus top {} additional weights globally", sel.k, sel.m),
        )?;
        w.end_object()?;
        w.key("neuron_weights")?;
        w.begin_object()?;
        for c in candidates {
            let row = avgs.params[c.param].row(c.neuron);
            w.key(&c.key)?;
            w.begin_object()?;
            w.key_string("layer_name", &avgs.params[c.param].name)?;
            w.key_int("neuron_index", c.neuron as i64)?;
            w.key("weights")?;
            w.nested(&[row.len()], |i| row[i])?;
            w.end_object()?;
        }
        w.end_object()?;
        let index_list = |w: &mut crate::json::PyJsonWriter<_>, c: &Candidate, idx: &[usize]| -> std::io::Result<()> {
            let row = avgs.params[c.param].row(c.neuron);
            w.key(&c.key)?;
            w.begin_object()?;
            w.key("indices")?;
            w.begin_array()?;
            for &j in idx {
                w.int(j as i64)?;
            }
            w.end_array()?;
            w.key("values")?;
            w.begin_array()?;
            for &j in idx {
                w.float(row[j])?;
            }
            w.end_array()?;
            w.end_object()
        };
        w.key("top_k_per_neuron")?;
        w.begin_object()?;
        for (c, idx) in candidates.iter().zip(&sel.top_k) {
            index_list(w, c, idx)?;
        }
        w.end_object()?;
        w.key("additional_weights")?;
        w.begin_object()?;
        for (c, idx) in &sel.additional {
            index_list(w, &candidates[*c], idx)?;
        }
        w.end_object()?;
        w.end_object()
    })();
    res.map_err(write_err(dest))?;
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::average::AvgParam;

    fn avgs(rows: &[&[f64]]) -> Averages {
        let cols = rows[0].len();
        Averages {
            num_examples: Some(1),
            params: vec![AvgParam {
                name: "q_net.0.weight".into(),
                shape: vec![rows.len(), cols],
                data: rows.iter().flat_map(|r| r.iter().copied()).collect(),
            }],
        }
    }

    fn keys(k: &[&str]) -> Vec<CandidateKey> {
        k.iter().map(|k| CandidateKey { key: k.to_string(), metrics: Value::Null }).collect()
    }

    #[test]
    fn hand_checked_selection() {
        let a = avgs(&[&[0.1, 0.5, 0.3, 0.5], &[0.9, 0.0, 0.2, 0.4]]);
        let r = resolve(&keys(&["q_net.0_neuron_1", "q_net.0_neuron_0"]), None, &a);
        assert!(r.warnings.is_empty());
        let s = select(&a, &r.candidates, 1, 3);
        // guaranteed: neuron 1 -> w0 (0.9); neuron 0 -> w1 (0.5, ties with w3: lower index wins)
        assert_eq!(s.top_k, vec![vec![0], vec![1]]);
        // pool in order: n1 w1 0.0, w2 0.2, w3 0.4; n0 w0 0.1, w2 0.3, w3 0.5 -> top 3: 0.5 (n0 w3), 0.4, 0.3
        let got: Vec<(usize, usize, Pick)> = s.weights.iter().map(|t| (t.candidate, t.weight_index, t.pick)).collect();
        assert_eq!(
            got,
            vec![
                (0, 0, Pick::Guaranteed(1)),
                (1, 1, Pick::Guaranteed(1)),
                (1, 3, Pick::Additional),
                (0, 3, Pick::Additional),
                (1, 2, Pick::Additional),
            ]
        );
        assert_eq!(s.additional, vec![(1, vec![3, 2]), (0, vec![3])]);
    }

    #[test]
    fn k_zero_and_k_beyond_the_row() {
        let a = avgs(&[&[0.1, 0.5, 0.3]]);
        let r = resolve(&keys(&["q_net.0_neuron_0"]), None, &a);
        let s = select(&a, &r.candidates, 0, 2);
        assert_eq!(s.guaranteed_count, 0);
        assert_eq!(s.weights.iter().map(|t| t.weight_index).collect::<Vec<_>>(), vec![1, 2]);
        let s = select(&a, &r.candidates, 10, 5);
        assert_eq!(s.top_k[0], vec![1, 2, 0]);
        assert_eq!(s.additional_count, 0);
    }

    #[test]
    fn unresolvable_and_duplicate_keys_warn() {
        let a = avgs(&[&[0.1, 0.5], &[0.2, 0.3]]);
        let useful = Value::Array(vec![Value::Object(
            [("q_net.0".to_string(), Value::Array(vec![Value::Int(1)]))].into_iter().collect(),
        )]);
        let r = resolve(
            &keys(&["exp_1_q_net.0", "q_net.0_neuron_1", "q_net.0_neuron_9", "bogus", "exp_2_q_net.0", "x.y_neuron_0"]),
            Some(&useful),
            &a,
        );
        assert_eq!(r.candidates.len(), 1);
        assert_eq!(r.candidates[0].neuron, 1);
        assert_eq!(r.warnings.len(), 5, "{:?}", r.warnings);
        assert!(r.warnings[0].contains("same neuron as exp_1_q_net.0"));
        assert!(r.warnings[1].contains("out of range"));
        assert!(r.warnings[3].contains("experiment 2 is out of range"));
        assert!(r.warnings[4].contains("no parameter 'x.y.weight'"));
    }

    #[test]
    fn layer_names_with_underscores() {
        assert_eq!(
            parse_key("exp_3_features_extractor.mlp.0"),
            Some(KeyForm::Experiment { number: 3, layer: "features_extractor.mlp.0".into() })
        );
        assert_eq!(
            parse_key("features_extractor.mlp.0_neuron_12"),
            Some(KeyForm::Neuron { layer: "features_extractor.mlp.0".into(), neuron: 12 })
        );
    }
}
