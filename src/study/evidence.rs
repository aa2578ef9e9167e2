//! The explorer's evidence: what changing the current selection (or one neuron's part of it)
//! does to the agent's decisions, against random weights, answered again on every change of k
//! or m; and one input's own values and saliency for the input view.
//!
//! The engine loads the agent, keeps the clean inputs (up to a memory cap) and runs the one
//! backward pass they need once; each question then costs a forward pass per changed network
//! (the selection and each random draw). It answers on a `jobs::Server`: questions of one kind
//! replace each other (the newest k and m win), questions of different kinds never do.

use std::path::{Path, PathBuf};

use crate::ablation::{self, Change, Evidence, Options, Prepared};
use crate::jobs;
use crate::model::to_vec;
use crate::pipeline::inputs::InputReader;

use super::ablate::AblationSettings;
use super::model::{Loaded, ModelSpec};
use super::Result;

/// Inputs kept for the evidence: at most this many float32 values (64 MB).
pub const MAX_VALUES: usize = 16 << 20;

/// What is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Question {
    /// The whole selection (the evidence line).
    Selection,
    /// The selected weights of one neuron (the neuron view).
    Neuron { param: usize, row: usize },
    /// One input's values and its own input saliency (the input view).
    Input { index: usize },
}

/// Questions of one kind replace each other; of different kinds, never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QuestionKind {
    Selection,
    Neuron,
    Input,
}

impl Question {
    pub fn kind(self) -> QuestionKind {
        match self {
            Question::Selection => QuestionKind::Selection,
            Question::Neuron { .. } => QuestionKind::Neuron,
            Question::Input { .. } => QuestionKind::Input,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    /// Increasing per asker, so answers can be matched to what is current.
    pub id: u64,
    pub question: Question,
    /// The weights changed (empty for an input question).
    pub change: Change,
}

impl jobs::Keyed for Request {
    type Kind = QuestionKind;
    fn kind(&self) -> QuestionKind {
        self.question.kind()
    }
}

/// What the engine says once loaded: inputs kept, and whether that is all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ready {
    pub inputs: usize,
    pub all: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// The evidence for a request (None: the change was empty).
    Evidence {
        id: u64,
        question: Question,
        evidence: Option<Evidence>,
    },
    Input(Box<InputSample>),
    /// This request could not be answered (the engine goes on).
    Failed {
        id: u64,
        question: Question,
        error: String,
    },
}

/// One kept input: its id, greedy action, values as written and, per observation key, the
/// gradient of the target with respect to it.
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

/// The loaded agent and prepared inputs.
pub struct Engine {
    pub loaded: Loaded,
    pub prepared: Prepared,
    pub opts: Options,
    /// The kept inputs: ids and values as read.
    pub ids: Vec<String>,
    pub values: Vec<f32>,
}

/// What the evidence engine loads: the agent, its inputs and the ablation settings.
#[derive(Debug, Clone)]
pub struct EngineSpec {
    pub spec: ModelSpec,
    pub inputs: PathBuf,
    pub settings: AblationSettings,
}

impl Engine {
    pub fn load(source: &EngineSpec) -> Result<(Engine, Ready)> {
        let loaded = source.spec.load()?;
        let (ids, values, all) = read_capped(&source.inputs, &loaded)?;
        let prepared = ablation::prepare(&loaded.net, &values, ids.len(), loaded.target)?;
        let opts = source.settings.options(&loaded, None);
        let ready = Ready { inputs: ids.len(), all };
        Ok((Engine { loaded, prepared, opts, ids, values }, ready))
    }

    /// The answer to a request; None when `stale()` says a newer one of its kind came in.
    pub fn answer(&self, req: &Request, stale: &dyn Fn() -> bool) -> Option<Answer> {
        let failed = |e: &dyn std::error::Error| Answer::Failed {
            id: req.id,
            question: req.question,
            error: crate::error_text_of(e),
        };
        if let Question::Input { index } = req.question {
            return Some(self.input(req.id, index).map(|s| Answer::Input(Box::new(s))).unwrap_or_else(|e| failed(&e)));
        }
        if req.change.is_empty() {
            return Some(Answer::Evidence { id: req.id, question: req.question, evidence: None });
        }
        let l = &self.loaded;
        match ablation::evidence(&l.agent, &l.net, &self.prepared, &req.change, &self.opts, stale) {
            Ok(Some(e)) => Some(Answer::Evidence { id: req.id, question: req.question, evidence: Some(e) }),
            Ok(None) => None,
            Err(e) => Some(failed(&e)),
        }
    }

    /// One kept input and its input saliency.
    fn input(&self, id: u64, index: usize) -> std::result::Result<InputSample, crate::model::ModelError> {
        let n = self.ids.len();
        let index = index.min(n.saturating_sub(1));
        let len = self.loaded.agent.arch.input_len;
        let row = &self.values[index * len..(index + 1) * len];
        let net = &self.loaded.net;
        let sig = net.signals_with_inputs(&net.input_tensor(row, 1)?, self.opts.target, true)?;
        let saliency = sig.inputs.iter().map(to_vec).collect::<std::result::Result<_, _>>()?;
        Ok(InputSample {
            id,
            index,
            inputs: n,
            input_id: self.ids[index].clone(),
            action: sig.actions[0],
            values: row.to_vec(),
            saliency,
        })
    }
}

/// The first inputs of the file, up to `MAX_VALUES` values, and whether that is all of them.
fn read_capped(inputs: &Path, loaded: &Loaded) -> Result<(Vec<String>, Vec<f32>, bool)> {
    let mut reader = InputReader::open(inputs, &loaded.agent.arch)?;
    let cap = (MAX_VALUES / loaded.agent.arch.input_len.max(1)).max(1);
    let (mut ids, mut values) = (Vec::new(), Vec::new());
    reader.next_batch(cap, &mut ids, &mut values)?;
    let all = reader.finished() || reader.next_batch(1, &mut Vec::new(), &mut Vec::new())? == 0;
    Ok((ids, values, all))
}

/// The evidence engine on its own thread (the explorer's).
pub type EvidenceServer = jobs::Server<Request, Ready, Answer>;

/// Starts the engine on a `jobs::Server`.
pub fn serve(source: EngineSpec) -> EvidenceServer {
    jobs::Server::spawn(
        "evidence",
        move || Engine::load(&source).map_err(|e| Box::new(e) as jobs::WorkError),
        |engine: &Engine, req: &Request, stale: &dyn Fn() -> bool| engine.answer(req, stale),
    )
}
