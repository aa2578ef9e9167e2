//! Exporting from the explorer, off the UI thread: a CNN's averages are tens of MB of text.
//! The files and their bytes are those `saliency run` / `saliency extract` write for the same
//! averages, k and m.

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use crate::pipeline::average::Averages;
use crate::pipeline::extract::{self, Candidate, Selection};
use crate::pipeline::{AVERAGE_GRADIENTS, CANDIDATE_WEIGHTS};

/// Everything an export needs, copied out of the explorer's state.
#[derive(Debug, Clone)]
pub struct ExportJob {
    pub averages: Arc<Averages>,
    pub candidates: Vec<Candidate>,
    pub selection: Selection,
    pub out_dir: PathBuf,
    /// Also write average_gradients.json (the averages were computed in the explorer).
    pub write_averages: bool,
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
    let total = if job.write_averages { 2 } else { 1 };
    let mut step = 0;
    let mut next = |name: &str, stage: &mut dyn FnMut(String)| {
        step += 1;
        stage(format!("writing {name} ({step}/{total})"));
    };
    if job.write_averages {
        next(AVERAGE_GRADIENTS, stage);
        if let Err(e) = job.averages.write(&job.out_dir.join(AVERAGE_GRADIENTS)) {
            return ExportMsg::Failed(format!("export failed: {e:#}"));
        }
    }
    next(CANDIDATE_WEIGHTS, stage);
    let dest = job.out_dir.join(CANDIDATE_WEIGHTS);
    match extract::write_candidates(&dest, &job.averages, &job.candidates, &job.selection) {
        Ok(()) => {
            ExportMsg::Done(format!("exported {} (k={}, m={})", dest.display(), job.selection.k, job.selection.m))
        }
        Err(e) => ExportMsg::Failed(format!("export failed: {e:#}")),
    }
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
