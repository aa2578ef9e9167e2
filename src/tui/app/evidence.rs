//! The evidence the explorer shows: the line (the whole selection), the open neuron's, and
//! the input view's sample. Requests carry increasing ids; an answer is kept only while no
//! newer one of its question has arrived, and shown as stale while a newer request is out.

use crate::ablation::{Change, Evidence};
use crate::study::evidence::{Answer, InputSample, Question, Ready, Request};

/// The evidence engine's state as the explorer shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum EvidenceStatus {
    /// No model to ablate (the averages were opened from files).
    Off,
    /// The engine is loading the agent and preparing the inputs.
    Loading,
    Ready(Ready),
    Failed(String),
}

/// One question's newest request and newest answer.
#[derive(Debug, Clone, PartialEq)]
struct Slot<A> {
    /// (request id, question) of the newest request.
    wanted: Option<(u64, Question)>,
    /// (request id, question, answer) of the newest answer.
    got: Option<(u64, Question, A)>,
}

impl<A> Default for Slot<A> {
    fn default() -> Self {
        Slot { wanted: None, got: None }
    }
}

impl<A> Slot<A> {
    fn store(&mut self, id: u64, q: Question, a: A) {
        if self.got.as_ref().is_none_or(|(old, _, _)| *old < id) {
            self.got = Some((id, q, a));
        }
    }

    /// The newest answer to `q`, and whether a newer request for it is out.
    fn for_question(&self, q: Question) -> Option<(&A, bool)> {
        let (id, got_q, a) = self.got.as_ref()?;
        (*got_q == q).then(|| (a, self.wanted.is_some_and(|(want, wq)| wq == q && want != *id)))
    }
}

pub struct EvidencePart {
    status: EvidenceStatus,
    next_id: u64,
    /// The selection version the line was last requested for.
    line_version: Option<u64>,
    line: Slot<Option<Evidence>>,
    neuron: Slot<Option<Evidence>>,
    input: Slot<Box<InputSample>>,
}

impl EvidencePart {
    pub fn new(live: bool) -> EvidencePart {
        EvidencePart {
            status: if live { EvidenceStatus::Loading } else { EvidenceStatus::Off },
            next_id: 0,
            line_version: None,
            line: Slot::default(),
            neuron: Slot::default(),
            input: Slot::default(),
        }
    }

    pub fn status(&self) -> &EvidenceStatus {
        &self.status
    }

    pub fn live(&self) -> bool {
        matches!(self.status, EvidenceStatus::Loading | EvidenceStatus::Ready(_))
    }

    /// Inputs kept by the engine, once ready.
    pub fn inputs(&self) -> Option<usize> {
        match &self.status {
            EvidenceStatus::Ready(r) => Some(r.inputs),
            _ => None,
        }
    }

    /// The line's newest evidence (None inside: an empty selection), and whether it is stale.
    pub fn line(&self) -> Option<(&Option<Evidence>, bool)> {
        let (e, _) = self.line.for_question(Question::Selection)?;
        Some((e, self.line_stale()))
    }

    /// Whether the line shows an older selection than the current one.
    pub fn line_stale(&self) -> bool {
        match (&self.line.wanted, &self.line.got) {
            (Some((want, _)), Some((got, _, _))) => got != want,
            (Some(_), None) => true,
            _ => false,
        }
    }

    /// The open neuron's evidence, and whether it is stale.
    pub fn neuron(&self, param: usize, row: usize) -> Option<(&Option<Evidence>, bool)> {
        self.neuron.for_question(Question::Neuron { param, row })
    }

    /// The input view's sample for input `index` (clamped to those kept).
    pub fn input(&self, index: usize) -> Option<&InputSample> {
        let (_, _, s) = self.input.got.as_ref()?;
        (s.index == index.min(s.inputs.saturating_sub(1))).then_some(s.as_ref())
    }

    fn request(&mut self, question: Question, change: Change) -> Request {
        self.next_id += 1;
        Request { id: self.next_id, question, change }
    }

    /// The line's request when the selection (at `version`) changed since the last one.
    pub fn ask_line(&mut self, version: u64, change: impl FnOnce() -> Change) -> Option<Request> {
        if self.line_version == Some(version) {
            return None;
        }
        self.line_version = Some(version);
        let req = self.request(Question::Selection, change());
        self.line.wanted = Some((req.id, req.question));
        Some(req)
    }

    /// The open neuron's request when it or the selection changed.
    pub fn ask_neuron(
        &mut self,
        param: usize,
        row: usize,
        selection_changed: bool,
        change: impl FnOnce() -> Change,
    ) -> Option<Request> {
        let q = Question::Neuron { param, row };
        if !selection_changed && self.neuron.wanted.map(|(_, wq)| wq) == Some(q) {
            return None;
        }
        let req = self.request(q, change());
        self.neuron.wanted = Some((req.id, q));
        Some(req)
    }

    /// The input view's request when another input is shown.
    pub fn ask_input(&mut self, index: usize) -> Option<Request> {
        let q = Question::Input { index };
        if self.input.wanted.map(|(_, wq)| wq) == Some(q) {
            return None;
        }
        let req = self.request(q, Change::default());
        self.input.wanted = Some((req.id, q));
        Some(req)
    }

    /// The selection was re-run (a new target): the line must be asked again.
    pub fn forget_line(&mut self) {
        self.line_version = None;
        self.line = Slot::default();
        if self.status != EvidenceStatus::Off {
            self.status = EvidenceStatus::Loading;
        }
    }

    pub fn on_ready(&mut self, ready: Ready) {
        self.status = EvidenceStatus::Ready(ready);
    }

    pub fn on_failed(&mut self, error: String) {
        self.status = EvidenceStatus::Failed(error);
    }

    pub fn on_answer(&mut self, a: Answer) {
        match a {
            Answer::Evidence { id, question: q @ Question::Selection, evidence } => self.line.store(id, q, evidence),
            Answer::Evidence { id, question: q, evidence } => self.neuron.store(id, q, evidence),
            Answer::Input(s) => self.input.store(s.id, Question::Input { index: s.index }, s),
            Answer::Failed { error, .. } => self.status = EvidenceStatus::Failed(error),
        }
    }
}
