//! Exporting what the explorer shows: `candidate_weights.json` for the current k and m (the
//! bytes `saliency run` / `saliency extract` write for the same averages), the averages when
//! they were computed in the explorer, and with `A` the full ablation of the selection.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::ablation::Change;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{Resolved, Selection};
use crate::pipeline::{AVERAGE_GRADIENTS, CANDIDATE_WEIGHTS};

use super::evidence::EngineSpec;
use super::{ablate, run, Result};

/// Everything an export needs, copied out of the explorer's state.
#[derive(Debug, Clone)]
pub struct ExportJob {
    /// The averages (mean-abs): average_gradients.json.
    pub averages: Arc<Averages>,
    /// What the selection ranked (the averages, or the measure shown): candidate_weights.json.
    pub ranked: Arc<Averages>,
    pub resolved: Resolved,
    pub selection: Selection,
    pub out_dir: PathBuf,
    /// Also write average_gradients.json (the averages were computed in the explorer).
    pub write_averages: bool,
    /// Also ablate the selection over every input and write ablation.json (`A`).
    pub ablation: Option<AblationJob>,
}

/// The full ablation `A` runs: as `saliency ablate` with the explorer's settings, on every
/// input.
#[derive(Debug, Clone)]
pub struct AblationJob {
    pub source: EngineSpec,
    pub change: Change,
}

/// Writes the files, reporting each stage; returns what was written, as a sentence.
pub fn export(job: &ExportJob, stage: &dyn Fn(String), cancel: &AtomicBool) -> Result<String> {
    let total = 1 + usize::from(job.write_averages) + usize::from(job.ablation.is_some());
    let step = std::cell::Cell::new(0);
    let next = |name: &str| {
        step.set(step.get() + 1);
        stage(format!("writing {name} ({}/{total})", step.get()));
    };
    if job.write_averages {
        next(AVERAGE_GRADIENTS);
        job.averages.write(&job.out_dir.join(AVERAGE_GRADIENTS))?;
    }
    next(CANDIDATE_WEIGHTS);
    run::write_selection(&job.out_dir, &job.ranked, &job.resolved, &job.selection, &mut |_| {})?;
    let dest = job.out_dir.join(CANDIDATE_WEIGHTS);
    let done = format!("exported {} (k={}, m={})", dest.display(), job.selection.k, job.selection.m);
    let Some(ab) = &job.ablation else { return Ok(done) };
    next(crate::ablation::report::ABLATION);
    stage("ablating: loading the agent".into());
    let loaded = ab.source.spec.load()?;
    let what = format!("the selection of k={} m={}", job.selection.k, job.selection.m);
    let mut progress = |p: crate::pipeline::Progress| stage(format!("ablating: {}/{} inputs", p.done, p.total));
    let a = ablate::Ablation {
        inputs: &ab.source.inputs,
        change: &ab.change,
        what: &what,
        settings: &ab.source.settings,
        batch_size: None,
    };
    let report = ablate::run(&loaded, &a, &mut progress, cancel)?;
    let dest = ablate::write(&job.out_dir, &report)?;
    let vs_random = report.random.map(|b| format!(" vs random {:.0}%", 100.0 * b.flip_rate.mean)).unwrap_or_default();
    Ok(format!("{done} and {} (flips {:.0}%{vs_random})", dest.display(), 100.0 * report.selection.flip_rate))
}
