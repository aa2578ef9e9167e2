//! Exporting from the explorer, off the UI thread: a CNN's averages are tens of MB of text.
//! The files and their bytes are those `saliency run` / `saliency extract` write for the same
//! averages, k and m.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use std::sync::atomic::AtomicBool;

use super::evidence::Source;
use crate::ablation::{self, Change, Mode, Options};
use crate::model::parse_device;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{self, Candidate, Selection};
use crate::pipeline::{AVERAGE_GRADIENTS, CANDIDATE_WEIGHTS};

/// Everything an export needs, copied out of the explorer's state.
#[derive(Debug, Clone)]
pub struct ExportJob {
    /// The averages (mean-abs): average_gradients.json.
    pub averages: Arc<Averages>,
    /// What the selection ranked (the averages, or the measure shown): candidate_weights.json.
    pub ranked: Arc<Averages>,
    pub candidates: Vec<Candidate>,
    pub selection: Selection,
    pub out_dir: PathBuf,
    /// Also write average_gradients.json (the averages were computed in the explorer).
    pub write_averages: bool,
    /// Also ablate the selection over every input and write ablation.json (`A`).
    pub ablation: Option<AblationJob>,
}

/// The full ablation `A` runs: as `saliency ablate` with its defaults (zero, target q, 20
/// random draws of seed 0) on every input.
#[derive(Debug, Clone)]
pub struct AblationJob {
    pub source: Source,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExportMsg {
    /// What is being written now.
    Stage(String),
    /// The footer message: what was written.
    Done(String),
    Failed(String),
}

/// Writes the files, reporting each stage; returns the final message.
pub fn run(job: &ExportJob, stage: &mut dyn FnMut(String)) -> ExportMsg {
    let total = 1 + usize::from(job.write_averages) + usize::from(job.ablation.is_some());
    let mut step = 0;
    let mut next = |name: &str, stage: &mut dyn FnMut(String)| {
        step += 1;
        stage(format!("writing {name} ({step}/{total})"));
    };
    if job.write_averages {
        next(AVERAGE_GRADIENTS, stage);
        if let Err(e) = job.averages.write(&job.out_dir.join(AVERAGE_GRADIENTS)) {
            return ExportMsg::Failed(format!("export failed: {}", crate::error_text(&e)));
        }
    }
    next(CANDIDATE_WEIGHTS, stage);
    let dest = job.out_dir.join(CANDIDATE_WEIGHTS);
    if let Err(e) = extract::write_candidates(&dest, &job.ranked, &job.candidates, &job.selection) {
        return ExportMsg::Failed(format!("export failed: {}", crate::error_text(&e)));
    }
    let done = format!("exported {} (k={}, m={})", dest.display(), job.selection.k, job.selection.m);
    let Some(ab) = &job.ablation else { return ExportMsg::Done(done) };
    next(ablation::report::ABLATION, stage);
    match ablate(ab, &job.out_dir, stage) {
        Ok(text) => ExportMsg::Done(format!("{done} and {text}")),
        Err(e) => ExportMsg::Failed(format!("ablation failed: {e}")),
    }
}

/// The full ablation of `A`, written beside candidate_weights.json.
fn ablate(job: &AblationJob, out_dir: &std::path::Path, stage: &mut dyn FnMut(String)) -> Result<String, String> {
    let text = |e: &(dyn std::error::Error + 'static)| crate::error_text(e);
    let s = &job.source;
    stage("ablating: loading the agent".into());
    let device = parse_device(&s.device).map_err(|e| text(&e))?;
    let (agent, net, target) = crate::model::load_for_target(&s.agent_path, &s.overrides, &s.limits, device, s.target)
        .map_err(|e| text(&e))?;
    let opts = Options { mode: Mode::Zero, target, random: ablation::DEFAULT_DRAWS, seed: 0, batch_size: None };
    let never = AtomicBool::new(false);
    let mut progress = |p: crate::pipeline::Progress| stage(format!("ablating: {}/{} inputs", p.done, p.total));
    let report =
        ablation::run(&agent, &net, &s.inputs, &job.change, &opts, &mut progress, &never).map_err(|e| text(&e))?;
    let dest = out_dir.join(ablation::report::ABLATION);
    ablation::report::write(&dest, &report).map_err(|e| text(&e))?;
    let r = &report.selection;
    Ok(format!(
        "{} (flips {:.0}%{})",
        dest.display(),
        100.0 * r.flip_rate,
        report.random.map(|b| format!(" vs random {:.0}%", 100.0 * b.flip_rate.mean)).unwrap_or_default()
    ))
}

/// One export at a time on its own thread.
pub struct Exporter {
    rx: Option<Receiver<ExportMsg>>,
}

impl Default for Exporter {
    fn default() -> Self {
        Exporter::new()
    }
}

impl Exporter {
    pub fn new() -> Exporter {
        Exporter { rx: None }
    }

    pub fn start(&mut self, job: ExportJob) {
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new().name("saliency-export".into()).spawn(move || {
            let send = tx.clone();
            let last = run(&job, &mut |s| {
                let _ = send.send(ExportMsg::Stage(s));
            });
            let _ = tx.send(last);
        });
        match spawned {
            Ok(_) => self.rx = Some(rx),
            Err(e) => {
                let (tx, rx) = mpsc::channel();
                let _ = tx.send(ExportMsg::Failed(format!("export failed: cannot start a thread: {e}")));
                self.rx = Some(rx);
            }
        }
    }

    /// Messages ready now (never blocks).
    pub fn drain(&mut self) -> Vec<ExportMsg> {
        let mut out = Vec::new();
        if let Some(rx) = &self.rx {
            loop {
                match rx.try_recv() {
                    Ok(m) => out.push(m),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.rx = None;
                        break;
                    }
                }
            }
        }
        out
    }
}
