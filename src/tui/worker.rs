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

use crate::agent::{self, AgentLimits, ArchOverrides};
use crate::model::{parse_device, Net};
use crate::pipeline::{self, average::Averages, PassOptions, Progress, RawFormat};

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
    },
    /// Read a finished average_gradients.json (this tool's or the Python tool's).
    Averages { path: PathBuf },
}

#[derive(Debug)]
pub enum Msg {
    /// The agent is loaded: its architecture and notes.
    Loaded {
        summary: String,
        notes: Vec<String>,
    },
    Progress(Progress),
    /// Averages over the inputs done so far.
    Snapshot(Arc<Averages>),
    Finished(Arc<Averages>),
    Failed(String),
    Cancelled,
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
                Ok(avgs) => send(Msg::Finished(Arc::new(avgs))),
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

fn run(job: Job, cancel: &AtomicBool, send: &(dyn Fn(Msg) + Sync)) -> Result<Averages> {
    match job {
        Job::Averages { path } => {
            let avgs = Averages::read(&path)?;
            if avgs.params.is_empty() {
                return Err(eyre!("{} holds no parameters (was it made from an empty input set?)", path.display()));
            }
            Ok(avgs)
        }
        Job::Pipeline { agent_path, inputs, device, overrides, limits, batch_size } => {
            let device = parse_device(&device)?;
            let agent = agent::load_agent(&agent_path, &overrides, &limits)?;
            let net = Net::new(&agent, device)?;
            send(Msg::Loaded { summary: agent.arch.summary.clone(), notes: agent.arch.notes.clone() });
            let params = pipeline::param_meta(&agent);
            let mut last = Instant::now() - SNAPSHOT_EVERY;
            let opts = PassOptions {
                raw: RawFormat::None,
                out_dir: PathBuf::from("."),
                batch_size,
                target: crate::target::Target::Q,
                measures: Vec::new(),
                input_saliency: false,
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
            Ok(outcome.averages)
        }
    }
}
