//! The explorer's background work, on the one job model (`crate::jobs`): the pipeline run and
//! the export (with `A`, the full ablation) are tasks, the evidence engine a server. Effects
//! from `App::update` start and cancel them; what they report goes back to the app. Every
//! task ends with an outcome (a panic included), so nothing stays "running".

use crate::jobs::{Reply, Server, Task, Update, WorkError};
use crate::study::browse::{self, BrowseMsg, Browsed};
use crate::study::evidence::{self, Answer, EvidenceServer, Ready};
use crate::study::export::{self, ExportJob};

use super::app::{App, Effect};

/// Faults injected by tests, to check that a failing job is shown, never hidden.
#[derive(Debug, Clone, Copy, Default)]
#[doc(hidden)]
pub struct Faults {
    pub panic_in_pipeline: bool,
    pub panic_in_evidence: bool,
    pub panic_in_export: bool,
}

pub struct Runtime {
    /// What the pipeline runs (its target follows `t`).
    source: browse::Source,
    pipeline: Option<Task<BrowseMsg, Browsed>>,
    evidence: Option<EvidenceServer>,
    export: Option<Task<String, String>>,
    validation: Option<Task<(String, f64), crate::study::validate::Validation>>,
    faults: Faults,
}

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> WorkError {
    Box::new(e)
}

impl Runtime {
    pub fn new(source: browse::Source) -> Runtime {
        Runtime { source, pipeline: None, evidence: None, export: None, validation: None, faults: Faults::default() }
    }

    /// Test hook: the jobs started from now on fail as `faults` says.
    #[doc(hidden)]
    pub fn inject(&mut self, faults: Faults) {
        self.faults = faults;
    }

    /// Starts the pipeline and, when the app can run the agent, the evidence engine.
    pub fn start(&mut self, app: &App) {
        self.run_pipeline();
        self.run_evidence(app);
    }

    fn run_pipeline(&mut self) {
        let (source, panic) = (self.source.clone(), self.faults.panic_in_pipeline);
        // (a replaced task is dropped, which cancels it)
        self.pipeline = Some(Task::spawn("pipeline", move |ctx| {
            if panic {
                panic!("injected fault in the pipeline");
            }
            browse::browse(
                &source,
                &|m| {
                    ctx.send(m);
                },
                ctx.cancel_flag(),
            )
            .map_err(boxed)
        }));
    }

    fn run_evidence(&mut self, app: &App) {
        let Some(source) = app.engine().cloned() else { return };
        self.evidence = Some(if self.faults.panic_in_evidence {
            Server::spawn(
                "evidence",
                move || evidence::Engine::load(&source).map_err(boxed),
                |_: &evidence::Engine, _: &evidence::Request, _: &dyn Fn() -> bool| -> Option<Answer> {
                    panic!("injected fault in the evidence engine")
                },
            )
        } else {
            evidence::serve(source)
        });
    }

    fn run_export(&mut self, job: ExportJob) {
        let panic = self.faults.panic_in_export;
        self.export = Some(Task::spawn("export", move |ctx| {
            if panic {
                panic!("injected fault in the export");
            }
            export::export(
                &job,
                &|s| {
                    ctx.send(s);
                },
                ctx.cancel_flag(),
            )
            .map_err(boxed)
        }));
    }

    /// Runs an effect; false for Quit.
    pub fn apply(&mut self, app: &App, effect: Effect) -> bool {
        match effect {
            Effect::Quit => return false,
            Effect::CancelRun => {
                if let Some(t) = &self.pipeline {
                    t.cancel();
                }
            }
            Effect::Run { target } => {
                if let (Some(t), browse::Source::Agent { spec, .. }) = (target, &mut self.source) {
                    *spec = spec.with_target(t);
                    self.run_evidence(app);
                }
                self.run_pipeline();
            }
            Effect::Export(job) => self.run_export(*job),
            Effect::CancelExport => {
                if let Some(t) = &self.export {
                    t.cancel();
                }
            }
            Effect::Validate(job) => {
                self.validation = Some(Task::spawn("validate", move |ctx| {
                    crate::study::validate::run_job(
                        &job,
                        &|phase, f| {
                            ctx.send((phase.to_string(), f));
                        },
                        ctx.cancel_flag(),
                    )
                    .map_err(boxed)
                }));
            }
            Effect::Evidence(req) => {
                if let Some(s) = &self.evidence {
                    s.request(*req);
                }
            }
        }
        true
    }

    /// Hands what the jobs reported to the app; returns whether anything arrived, and the
    /// effects the app asked for in answer (evidence requests).
    pub fn poll(&mut self, app: &mut App) -> (bool, Vec<Effect>) {
        let mut effects = Vec::new();
        let mut any = false;
        if let Some(t) = &mut self.pipeline {
            for u in t.poll() {
                any = true;
                effects.extend(match u {
                    Update::Msg(m) => app.on_browse(m),
                    Update::End(o) => app.on_browse_end(o),
                });
            }
        }
        if let Some(s) = &mut self.evidence {
            for r in s.poll() {
                any = true;
                app.on_evidence(r);
            }
        }
        if let Some(t) = &mut self.export {
            for u in t.poll() {
                any = true;
                app.on_export(u);
            }
        }
        if let Some(t) = &mut self.validation {
            for u in t.poll() {
                any = true;
                app.on_validation(u);
            }
        }
        (any, effects)
    }

    /// Whether no job is at work (tests wait for this).
    pub fn idle(&self) -> bool {
        self.pipeline.as_ref().is_none_or(|t| !t.running())
            && self.export.as_ref().is_none_or(|t| !t.running())
            && self.validation.as_ref().is_none_or(|t| !t.running())
    }
}

/// The evidence engine's replies, as the app takes them (for benchmarks driving it directly).
pub type EvidenceReply = Reply<Ready, Answer>;
