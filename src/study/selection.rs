//! A k/m selection as the rest of the tool uses it: named weights (a candidate file's
//! `weight_targets`) and the change an ablation makes.

use crate::ablation::{Change, ChangeError, NamedWeight};
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{self, Resolved, Selection};

/// The selection for k and m (the pure rule of `extract`).
pub fn select(avgs: &Averages, resolved: &Resolved, k: usize, m: usize) -> Selection {
    extract::select(avgs, &resolved.candidates, k, m)
}

/// The selected weights by name, as a candidate file lists them.
pub fn named_weights(avgs: &Averages, resolved: &Resolved, sel: &Selection) -> Vec<NamedWeight> {
    sel.weights
        .iter()
        .map(|t| {
            let c = &resolved.candidates[t.candidate];
            NamedWeight {
                layer_name: avgs.params[c.param].name.clone(),
                neuron_index: c.neuron as i64,
                weight_index: t.weight_index as i64,
            }
        })
        .collect()
}

/// The selection as elements of the averages' parameters (the agent's, in the same order),
/// checked as a candidate file's weights are.
pub fn change(avgs: &Averages, resolved: &Resolved, sel: &Selection, what: &str) -> Result<Change, ChangeError> {
    let params: Vec<(&str, &[usize])> = avgs.params.iter().map(|p| (p.name.as_str(), p.shape.as_slice())).collect();
    Change::from_named(&params, &named_weights(avgs, resolved, sel), what)
}
