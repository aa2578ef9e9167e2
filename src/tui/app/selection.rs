//! The knobs and the selection: candidate neurons resolved on the averages, k and m, and the
//! selection they give, re-run on every change (a pure function, cheap on every key press).

use crate::ablation::{Change, NamedWeight};
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{Candidate, Resolved, Selection};
use crate::study::candidates::{self, CandidateChoice, Candidates};
use crate::study::selection;

/// Largest k or m the explorer takes.
const MAX_KNOB: usize = 1_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    K,
    M,
}

pub struct Knobs {
    choice: CandidateChoice,
    /// The candidates of the averages shown (the patching results, or chosen by saliency).
    candidates: Candidates,
    resolved: Resolved,
    k: usize,
    m: usize,
    selection: Selection,
    /// Bumped whenever the selection changes.
    version: u64,
    /// Selected weights per parameter.
    per_layer: Vec<usize>,
    /// Sum of the candidate rows' values.
    candidate_sum: f64,
}

impl Knobs {
    pub fn new(choice: CandidateChoice, k: usize, m: usize) -> Knobs {
        Knobs {
            candidates: match &choice {
                CandidateChoice::Patching(c) => c.clone(),
                CandidateChoice::Saliency(_) => Candidates::default(),
            },
            choice,
            resolved: Resolved::default(),
            k: k.min(MAX_KNOB),
            m: m.min(MAX_KNOB),
            selection: Selection::default(),
            version: 0,
            per_layer: Vec::new(),
            candidate_sum: 0.0,
        }
    }

    pub fn k(&self) -> usize {
        self.k
    }

    pub fn m(&self) -> usize {
        self.m
    }

    pub fn candidates(&self) -> &Candidates {
        &self.candidates
    }

    pub fn resolved(&self) -> &Resolved {
        &self.resolved
    }

    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Selected weights of parameter `p`.
    pub fn selected_in(&self, p: usize) -> usize {
        self.per_layer.get(p).copied().unwrap_or(0)
    }

    /// The candidate of a weight of the selection.
    pub fn candidate(&self, i: usize) -> Option<&Candidate> {
        self.selection.weights.get(i).map(|t| &self.resolved.candidates[t.candidate])
    }

    /// What the user should know: skipped keys (summarised) and an empty result.
    pub fn warnings(&self) -> Vec<String> {
        if let CandidateChoice::Saliency(n) = self.choice {
            return vec![format!(
                "candidates: the {n} hidden neurons of largest mean |gradient| (no patching results)"
            )];
        }
        if self.candidates.keys.is_empty() {
            return Vec::new();
        }
        candidates::warnings(&self.resolved)
    }

    /// Where the candidates come from.
    pub fn choice(&self) -> &CandidateChoice {
        &self.choice
    }

    /// Resolves the candidate keys on `avgs` (mean |gradient|), choosing them first when they
    /// come from saliency.
    pub fn resolve(&mut self, avgs: &Averages) {
        self.candidates = self.choice.candidates(avgs);
        self.resolved = self.candidates.resolve(avgs);
    }

    /// Runs the selection again on `ranked` (what the selection ranks), and the sums the
    /// header shows on `shown`.
    pub fn reselect(&mut self, ranked: &Averages, shown: &Averages) {
        self.selection = selection::select(ranked, &self.resolved, self.k, self.m);
        self.per_layer = vec![0; ranked.params.len()];
        for t in &self.selection.weights {
            if let Some(n) = self.per_layer.get_mut(self.resolved.candidates[t.candidate].param) {
                *n += 1;
            }
        }
        self.candidate_sum = self
            .resolved
            .candidates
            .iter()
            .filter_map(|c| shown.params.get(c.param).map(|p| p.row(c.neuron)))
            .map(|row| row.iter().filter(|v| v.is_finite()).sum::<f64>())
            .sum();
        self.version += 1;
    }

    /// Sets a knob; the caller re-runs the selection.
    pub fn set(&mut self, knob: Knob, value: usize) {
        let value = value.min(MAX_KNOB);
        match knob {
            Knob::K => self.k = value,
            Knob::M => self.m = value,
        }
    }

    pub fn step(&mut self, knob: Knob, delta: isize) {
        let cur = match knob {
            Knob::K => self.k,
            Knob::M => self.m,
        } as isize;
        self.set(knob, (cur + delta).max(0) as usize);
    }

    /// Share of the saliency captured by the selection: of all weights (`total`), of the
    /// candidate rows.
    pub fn captured(&self, total: f64) -> (f64, f64) {
        let c = self.selection.captured();
        let share = |t: f64| if t > 0.0 { c / t } else { 0.0 };
        (share(total), share(self.candidate_sum))
    }

    pub fn named(&self, avgs: &Averages) -> Vec<NamedWeight> {
        selection::named_weights(avgs, &self.resolved, &self.selection)
    }

    /// The selection as a change of the averages' (the agent's) parameters. A selection of
    /// resolved candidates always fits its own averages; an empty change otherwise.
    pub fn change(&self, avgs: &Averages) -> Change {
        let what = format!("the selection of k={} m={}", self.k, self.m);
        selection::change(avgs, &self.resolved, &self.selection, &what).unwrap_or_default()
    }
}
