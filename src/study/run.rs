//! The whole analysis of one agent, as `saliency run` does it and the sweep does it for each
//! agent (so both write the same bytes): the gradient pass and its files, the averages, the
//! selection and `candidate_weights.json`, and with an ablation `ablation.json`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crate::ablation::Report;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{self, Resolved, Selection};
use crate::pipeline::measures::{self, Measure, MeasureSet};
use crate::pipeline::{self, input_saliency, GradientOutcome, PassOptions, PipelineError, Progress, RawFormat};

use super::ablate::{self, AblationSettings};
use super::candidates::{self, CandidateChoice, Candidates};
use super::model::Loaded;
use super::{selection, Result};

/// What a service tells its user while it works.
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    Note(String),
    Warning(String),
    /// A file was written (its path, and what to say about it).
    Wrote(PathBuf, String),
    /// A result worth a line of its own.
    Summary(String),
    Progress(Progress),
}

/// Where a service's events go (called from the pass's output thread too).
pub type Events<'a> = dyn FnMut(RunEvent) + Send + 'a;

/// The gradient pass's files: the raw gradients, and on request the measures and the input
/// saliency.
#[derive(Debug, Clone)]
pub struct PassPlan {
    pub inputs: PathBuf,
    pub out_dir: PathBuf,
    pub raw: RawFormat,
    /// Measures written to `measures.safetensors` (empty: no file).
    pub measures: Vec<Measure>,
    /// Measures kept but not written (what a `--select-by` ranks by).
    pub extra_measures: Vec<Measure>,
    pub input_saliency: bool,
    pub batch_size: Option<usize>,
}

/// `run` for one agent: the pass, the selection of k and m, and an optional ablation.
#[derive(Debug, Clone)]
pub struct RunPlan {
    pub pass: PassPlan,
    pub candidates: CandidateChoice,
    pub k: usize,
    pub m: usize,
    /// Rank by this measure instead of mean-abs.
    pub select_by: Option<Measure>,
    pub ablate: Option<AblationSettings>,
}

/// What a run leaves besides its files.
pub struct RunOutcome {
    pub inputs: usize,
    pub averages: Averages,
    /// What the selection ranked (the averages, or the `select_by` measure).
    pub ranked: Averages,
    pub measures: Option<MeasureSet>,
    pub candidates: Candidates,
    pub resolved: Resolved,
    pub selection: Selection,
    pub ablation: Option<Report>,
}

fn warn_non_finite(events: &mut Events, count: u64, what: &str) {
    if count > 0 {
        events(RunEvent::Warning(format!("{count} NaN or infinite values in {what}: the model is probably broken")));
    }
}

/// The gradient pass over `plan.inputs`, writing its files into `plan.out_dir`.
pub fn gradient_files(
    loaded: &Loaded,
    plan: &PassPlan,
    events: &mut Events,
    cancel: &AtomicBool,
) -> Result<GradientOutcome> {
    crate::paths::must_exist(&plan.inputs, "inputs file")?;
    for n in &loaded.agent.arch.notes {
        events(RunEvent::Note(n.clone()));
    }
    let mut kept = plan.measures.clone();
    kept.extend(plan.extra_measures.iter().filter(|m| !plan.measures.contains(m)));
    kept.sort();
    let opts = PassOptions {
        raw: plan.raw,
        out_dir: plan.out_dir.clone(),
        batch_size: plan.batch_size,
        target: loaded.target,
        measures: kept,
        input_saliency: plan.input_saliency,
        max_inputs: None,
    };
    let start = Instant::now();
    let mut outcome = pipeline::gradient_pass(
        &loaded.agent,
        &loaded.net,
        &plan.inputs,
        &opts,
        &mut |p, _| events(RunEvent::Progress(p)),
        cancel,
    )?;
    warn_non_finite(events, outcome.non_finite, pipeline::WEIGHT_GRADIENTS);
    let (zip_name, target) = (loaded.zip_name(), loaded.target.to_string());
    if let (Some(set), false) = (&outcome.measures, plan.measures.is_empty()) {
        let dest = plan.out_dir.join(measures::MEASURES_FILE);
        // (with the measure a selection ranks by, when it was not asked for)
        measures::write(&dest, set, &measures::Provenance { agent: &zip_name, target: &target })?;
        events(RunEvent::Wrote(dest, String::new()));
    }
    if let Some(ia) = outcome.input_saliency.take() {
        let dest = plan.out_dir.join(input_saliency::INPUT_SALIENCY);
        ia.write(&dest, &zip_name, &target)?;
        events(RunEvent::Wrote(dest, String::new()));
    }
    let secs = start.elapsed().as_secs_f64();
    let detail = format!("{} inputs in {secs:.2} s", outcome.inputs);
    match &outcome.raw_path {
        Some(p) => events(RunEvent::Wrote(p.clone(), detail)),
        None => events(RunEvent::Summary(format!("computed gradients of {detail} (raw gradients not written)"))),
    }
    Ok(outcome)
}

/// The selection of k and m from in-memory averages, warnings reported.
pub fn select(
    candidates: &Candidates,
    ranked: &Averages,
    k: usize,
    m: usize,
    events: &mut Events,
) -> (Resolved, Selection) {
    let resolved = candidates.resolve(ranked);
    for w in candidates::warnings(&resolved) {
        events(RunEvent::Warning(w));
    }
    let sel = selection::select(ranked, &resolved, k, m);
    (resolved, sel)
}

/// Writes `candidate_weights.json` for a selection.
pub fn write_selection(
    out_dir: &Path,
    ranked: &Averages,
    resolved: &Resolved,
    sel: &Selection,
    events: &mut Events,
) -> Result<()> {
    let dest = out_dir.join(pipeline::CANDIDATE_WEIGHTS);
    extract::write_candidates(&dest, ranked, &resolved.candidates, sel)?;
    let detail = format!(
        "{} weights: {} guaranteed, {} additional",
        sel.weights.len(),
        sel.guaranteed_count,
        sel.additional_count
    );
    events(RunEvent::Wrote(dest, detail));
    Ok(())
}

/// `saliency run` on one loaded agent.
pub fn run(loaded: &Loaded, plan: &RunPlan, events: &mut Events, cancel: &AtomicBool) -> Result<RunOutcome> {
    if let Some(a) = &plan.ablate {
        a.check()?;
    }
    let mut pass = plan.pass.clone();
    pass.extra_measures.extend(plan.select_by);
    let outcome = gradient_files(loaded, &pass, events, cancel)?;
    if cancel.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled.into());
    }
    let avg_path = pass.out_dir.join(pipeline::AVERAGE_GRADIENTS);
    warn_non_finite(events, outcome.averages.write(&avg_path)?, pipeline::AVERAGE_GRADIENTS);
    events(RunEvent::Wrote(avg_path, String::new()));
    let ranked = match plan.select_by {
        Some(m) => outcome.measures.as_ref().and_then(|set| set.as_averages(m)).unwrap_or_default(),
        None => outcome.averages.clone(),
    };
    let candidates = plan.candidates.candidates(&outcome.averages);
    if let CandidateChoice::Saliency(n) = &plan.candidates {
        events(RunEvent::Note(format!(
            "candidates: the {n} hidden neurons of largest mean |gradient| (no patching results; \
             --candidates-by saliency:{n})"
        )));
    }
    let (resolved, sel) = select(&candidates, &ranked, plan.k, plan.m, events);
    write_selection(&pass.out_dir, &ranked, &resolved, &sel, events)?;
    let ablation = match &plan.ablate {
        Some(settings) => {
            let what = format!("the selection of k={} m={}", plan.k, plan.m);
            let change = selection::change(&ranked, &resolved, &sel, &what)?;
            let mut progress = |p| events(RunEvent::Progress(p));
            let a = ablate::Ablation {
                inputs: &pass.inputs,
                change: &change,
                what: &what,
                settings,
                batch_size: pass.batch_size,
            };
            let report = ablate::run(loaded, &a, &mut progress, cancel)?;
            let dest = ablate::write(&pass.out_dir, &report)?;
            events(RunEvent::Summary(ablate::summary(&report)));
            events(RunEvent::Wrote(dest, String::new()));
            Some(report)
        }
        None => None,
    };
    Ok(RunOutcome {
        inputs: outcome.inputs,
        averages: outcome.averages,
        ranked,
        measures: outcome.measures,
        candidates,
        resolved,
        selection: sel,
        ablation,
    })
}
