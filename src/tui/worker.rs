//! Background work: the gradient pipeline (or reading finished averages) on its own thread,
//! reporting progress and provisional averages over a channel; cancellable at any batch.
//! A new job replaces the running one (which is cancelled), as in gitui's async jobs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use color_eyre::eyre::{eyre, Result};

use crate::agent::{AgentLimits, ArchOverrides};
use crate::model::parse_device;
use crate::pipeline::input_saliency::{self, InputKey, InputMeans};
use crate::pipeline::measures::{Measure, MeasureSet};
use crate::pipeline::{self, average::Averages, PassOptions, Progress, RawFormat};
use crate::target::Target;

/// How often provisional averages are sent while the pipeline runs.
const SNAPSHOT_EVERY: Duration = Duration::from_millis(300);

#[derive(Debug, Clone)]
pub enum Job {
    /// Run the model on an agent directory's clean inputs.
    Pipeline {
        agent_path: PathBuf,
        inputs: PathBuf,
        device: String,
        overrides: ArchOverrides,
        limits: AgentLimits,
        batch_size: Option<usize>,
        /// What is differentiated (None: the agent's default).
        target: Option<Target>,
    },
    /// Read a finished average_gradients.json (this tool's or the Python tool's).
    Averages { path: PathBuf },
}

#[derive(Debug)]
pub enum Msg {
    /// The agent is loaded: its architecture, notes, number of actions and observation keys.
    Loaded {
        summary: String,
        notes: Vec<String>,
        n_actions: usize,
        keys: Vec<InputKey>,
        /// Values of each key in an input as written (a Discrete key: one).
        input_lens: Vec<usize>,
        /// The target differentiated, and those the agent's family offers (for `t`).
        target: Target,
        targets: Vec<Target>,
    },
    Progress(Progress),
    /// Averages over the inputs done so far.
    Snapshot(Arc<Averages>),
    /// The final averages, and (when a model ran) every measure and the input saliency means.
    Finished(Arc<Averages>, Option<Arc<Extras>>),
    Failed(String),
    Cancelled,
}

/// What a finished pipeline adds to the averages.
#[derive(Debug)]
pub struct Extras {
    pub measures: MeasureSet,
    pub inputs: InputMeans,
}

pub struct Worker {
    rx: Receiver<Msg>,
    cancel: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Starts the job on its own thread (an error when no thread can be started).
    pub fn spawn(job: Job) -> std::io::Result<Worker> {
        let (tx, rx) = mpsc::channel();
        let cancel = Arc::new(AtomicBool::new(false));
        let stop = cancel.clone();
        let handle = std::thread::Builder::new().name("saliency-pipeline".into()).spawn(move || {
            let send = |m: Msg| {
                let _ = tx.send(m);
            };
            match run(job, &stop, &send) {
                Ok((avgs, extras)) => send(Msg::Finished(Arc::new(avgs), extras.map(Arc::new))),
                Err(e) if pipeline::is_cancelled(e.as_ref()) => send(Msg::Cancelled),
                Err(e) => send(Msg::Failed(crate::error_text(e.as_ref()))),
            }
        })?;
        Ok(Worker { rx, cancel, handle: Some(handle) })
    }

    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::SeqCst);
    }

    /// Messages ready now (never blocks).
    pub fn drain(&mut self) -> Vec<Msg> {
        let mut out = Vec::new();
        loop {
            match self.rx.try_recv() {
                Ok(m) => out.push(m),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    if let Some(h) = self.handle.take() {
                        if h.join().is_err() {
                            out.push(Msg::Failed("the pipeline thread panicked".into()));
                        }
                    }
                    break;
                }
            }
        }
        out
    }

    /// Blocks until the next message (tests and headless use).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Msg> {
        self.rx.recv_timeout(timeout).ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // A replaced or abandoned job stops at its next batch.
        self.cancel();
    }
}

fn run(job: Job, cancel: &AtomicBool, send: &(dyn Fn(Msg) + Sync)) -> Result<(Averages, Option<Extras>)> {
    match job {
        Job::Averages { path } => {
            let avgs = Averages::read(&path)?;
            if avgs.params.is_empty() {
                return Err(eyre!("{} holds no parameters (was it made from an empty input set?)", path.display()));
            }
            Ok((avgs, None))
        }
        Job::Pipeline { agent_path, inputs, device, overrides, limits, batch_size, target } => {
            let device = parse_device(&device)?;
            let (agent, net, target) = crate::model::load_for_target(&agent_path, &overrides, &limits, device, target)?;
            send(Msg::Loaded {
                summary: agent.arch.summary.clone(),
                notes: agent.arch.notes.clone(),
                n_actions: agent.arch.n_actions,
                keys: input_saliency::keys(&agent.arch),
                input_lens: agent.arch.branches.iter().map(|b| b.len).collect(),
                target,
                targets: Target::offered(agent.family, agent.arch.n_actions),
            });
            let params = pipeline::param_meta(&agent);
            let mut last = Instant::now() - SNAPSHOT_EVERY;
            let opts = PassOptions {
                raw: RawFormat::None,
                out_dir: PathBuf::from("."),
                batch_size,
                target,
                // Every measure, to switch between them without a re-run; the input saliency's
                // means for the input view.
                measures: Measure::ALL.to_vec(),
                input_saliency: true,
            };
            let outcome = pipeline::gradient_pass(
                &agent,
                &net,
                &inputs,
                &opts,
                &mut |p, acc| {
                    send(Msg::Progress(p));
                    if p.done > 0 && p.done < p.total && last.elapsed() >= SNAPSHOT_EVERY {
                        last = Instant::now();
                        send(Msg::Snapshot(Arc::new(acc.averages(&params))));
                    }
                },
                cancel,
            )?;
            let extras = match (outcome.measures, outcome.input_saliency) {
                (Some(measures), Some(ia)) => Some(Extras { measures, inputs: ia.means() }),
                _ => None,
            };
            Ok((outcome.averages, extras))
        }
    }
}
