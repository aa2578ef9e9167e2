//! The explorer's evidence: what zeroing the current selection does to the agent's decisions,
//! against random weights, recomputed in the background on every change of k or m.
//!
//! A worker thread loads the agent, reads the clean inputs (up to a memory cap) and runs the
//! one backward pass they need once; each request then costs a forward pass per changed network
//! (the selection and each random draw). Requests carry increasing ids: the worker skips to the
//! newest one and abandons a computation as soon as a newer request arrives, so the newest
//! k and m always win and the UI never waits.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;

use crate::ablation::{self, Change, Evidence, Mode, Options, Prepared};
use crate::agent::{Agent, AgentLimits, ArchOverrides};
use crate::model::{parse_device, Net};
use crate::pipeline::inputs::InputReader;
use crate::target::Target;

/// Inputs kept for the evidence: at most this many float32 values (64 MB).
pub const MAX_VALUES: usize = 16 << 20;

/// Where the evidence comes from (the explorer's agent).
#[derive(Debug, Clone)]
pub struct Source {
    pub agent_path: PathBuf,
    pub inputs: PathBuf,
    pub device: String,
    pub overrides: ArchOverrides,
    pub limits: AgentLimits,
    /// The target the evidence measures (and the input view differentiates); None: the
    /// agent's default.
    pub target: Option<Target>,
}

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The whole selection (the evidence line).
    Selection,
    /// The selected weights of one neuron (the neuron view).
    Neuron { param: usize, row: usize },
    /// One input's values and its own input saliency (the input view).
    Input { index: usize },
}

#[derive(Debug, Clone)]
pub struct Request {
    pub id: u64,
    pub scope: Scope,
    pub change: Change,
}

#[derive(Debug)]
pub enum Msg {
    /// The worker is ready: inputs kept, and whether that is all of them.
    Ready {
        inputs: usize,
        all: bool,
    },
    Result {
        id: u64,
        scope: Scope,
        evidence: Evidence,
    },
    /// No evidence for this request (an empty selection).
    Empty {
        id: u64,
        scope: Scope,
    },
    /// One kept input (`index` clamped to those kept): its id, greedy action, values as written
    /// and, per observation key, the gradient of the target with respect to it.
    Input(Box<InputSample>),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct InputSample {
    pub id: u64,
    pub index: usize,
    pub inputs: usize,
    pub input_id: String,
    pub action: usize,
    pub values: Vec<f32>,
    pub saliency: Vec<Vec<f32>>,
}

/// The loaded agent and prepared inputs; `compute` answers one request.
pub struct Engine {
    pub agent: Agent,
    pub net: Net,
    pub prepared: Prepared,
    pub opts: Options,
    /// Whether every input of the file was kept.
    pub all: bool,
    /// The kept inputs: ids and values as read.
    pub ids: Vec<String>,
    pub values: Vec<f32>,
}

impl Engine {
    pub fn load(source: &Source) -> color_eyre::Result<Engine> {
        let device = parse_device(&source.device)?;
        let (agent, net, target) = crate::model::load_for_target(
            &source.agent_path,
            &source.overrides,
            &source.limits,
            device,
            source.target,
        )?;
        let mut reader = InputReader::open(&source.inputs, &agent.arch)?;
        let per = agent.arch.input_len.max(1);
        let cap = (MAX_VALUES / per).max(1);
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        let n = reader.next_batch(cap, &mut ids, &mut values)?;
        let all = reader.finished() || reader.next_batch(1, &mut Vec::new(), &mut Vec::new())? == 0;
        let prepared = ablation::prepare(&net, &values, n, target)?;
        let opts = Options { mode: Mode::Zero, target, random: ablation::DEFAULT_DRAWS, seed: 0, batch_size: None };
        Ok(Engine { agent, net, prepared, opts, all, ids, values })
    }

    /// One kept input and its input saliency.
    fn input(&self, id: u64, index: usize) -> Msg {
        let n = self.ids.len();
        let index = index.min(n.saturating_sub(1));
        let len = self.agent.arch.input_len;
        let row = &self.values[index * len..(index + 1) * len];
        let signals =
            self.net.input_tensor(row, 1).and_then(|x| self.net.signals_with_inputs(&x, self.opts.target, true));
        match signals {
            Ok(sig) => {
                let saliency = sig
                    .inputs
                    .iter()
                    .map(|g| {
                        let g = g.to_device(tch::Device::Cpu).contiguous().view(-1);
                        let n = g.numel();
                        let mut v = vec![0f32; n];
                        g.copy_data(&mut v, n);
                        v
                    })
                    .collect();
                Msg::Input(Box::new(InputSample {
                    id,
                    index,
                    inputs: n,
                    input_id: self.ids[index].clone(),
                    action: sig.actions[0],
                    values: row.to_vec(),
                    saliency,
                }))
            }
            Err(e) => Msg::Failed(crate::error_text(&e)),
        }
    }

    /// The evidence for a request; None when `stale()` says a newer request came in.
    pub fn compute(&self, req: &Request, stale: &dyn Fn() -> bool) -> Option<Msg> {
        if let Scope::Input { index } = req.scope {
            return Some(self.input(req.id, index));
        }
        if req.change.is_empty() {
            return Some(Msg::Empty { id: req.id, scope: req.scope });
        }
        match ablation::evidence(&self.agent, &self.net, &self.prepared, &req.change, &self.opts, stale) {
            Ok(Some(evidence)) => Some(Msg::Result { id: req.id, scope: req.scope, evidence }),
            Ok(None) => None,
            Err(e) => Some(Msg::Failed(crate::error_text(&e))),
        }
    }
}

pub struct Worker {
    tx: Sender<Request>,
    rx: Receiver<Msg>,
    latest: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Worker {
    pub fn spawn(source: Source) -> std::io::Result<Worker> {
        let (tx, req_rx) = mpsc::channel::<Request>();
        let (msg_tx, rx) = mpsc::channel();
        let latest = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (latest.clone(), stop.clone());
        std::thread::Builder::new().name("saliency-evidence".into()).spawn(move || {
            let engine = match Engine::load(&source) {
                Ok(e) => e,
                Err(e) => {
                    let _ = msg_tx.send(Msg::Failed(crate::error_text(e.as_ref())));
                    return;
                }
            };
            let _ = msg_tx.send(Msg::Ready { inputs: engine.prepared.sig.n, all: engine.all });
            while let Ok(mut req) = req_rx.recv() {
                // Only the newest request matters.
                loop {
                    match req_rx.try_recv() {
                        Ok(newer) => req = newer,
                        Err(TryRecvError::Empty) => break,
                        Err(TryRecvError::Disconnected) => return,
                    }
                }
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let stale = || s.load(Ordering::Relaxed) || l.load(Ordering::Relaxed) > req.id;
                if let Some(msg) = engine.compute(&req, &stale) {
                    if msg_tx.send(msg).is_err() {
                        return;
                    }
                }
            }
        })?;
        Ok(Worker { tx, rx, latest, stop })
    }

    /// Asks for evidence; a newer request makes older ones moot.
    pub fn request(&self, req: Request) {
        self.latest.fetch_max(req.id, Ordering::Relaxed);
        let _ = self.tx.send(req);
    }

    /// Messages ready now (never blocks).
    pub fn drain(&self) -> Vec<Msg> {
        self.rx.try_iter().collect()
    }

    /// Blocks for the next message (benchmarks, tests).
    pub fn recv_timeout(&self, t: std::time::Duration) -> Option<Msg> {
        self.rx.recv_timeout(t).ok()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
