//! The explorer of many agents: the agents table of a sweep's folder (or of a sweep it runs
//! and watches), groups, saliency over training, two agents compared, and any agent opened
//! in the single-agent explorer (Esc comes back with the table as it was).

pub mod app;
pub mod open;
pub mod table;
pub mod view;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, Result};
use crossterm::event::{Event, KeyCode, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use ratatui::Terminal;

use crate::jobs::{Task, Update, WorkError};
use crate::study::sweep::compare::{self, Comparison};
use crate::study::sweep::live::{self, LiveEnd, LiveMsg};
use crate::study::sweep::results::{self, SweepResults};
use crate::study::sweep::runner::SweepRequest;
use crate::study::sweep::training::{self, Training};

use super::color::{ColorMode, Colormap};
use super::keymap::{self, Scope, SweepAction};
use super::{Explorer, Screen};
use app::{SweepApp, SweepEffect};

fn boxed(e: impl std::error::Error + Send + Sync + 'static) -> WorkError {
    Box::new(e)
}

/// The sweep explorer's background jobs.
#[derive(Default)]
pub struct SweepRuntime {
    /// The sweep to run and watch (taken when it starts).
    request: Option<SweepRequest>,
    sweep: Option<Task<LiveMsg, LiveEnd>>,
    compare: Option<Task<(), Comparison>>,
    training: Option<Task<(), Training>>,
}

impl SweepRuntime {
    fn start(&mut self) {
        if let Some(req) = self.request.take() {
            self.sweep = Some(Task::spawn("sweep", move |ctx| {
                live::run(
                    &req,
                    &|m| {
                        ctx.send(m);
                    },
                    ctx.cancel_flag(),
                )
                .map_err(boxed)
            }));
        }
    }

    fn compare(&mut self, results: Arc<SweepResults>, a: String, b: String) {
        self.compare = Some(Task::spawn("compare", move |_| compare::compare(&results, &a, &b).map_err(boxed)));
    }

    fn training(&mut self, results: Arc<SweepResults>, run: String) {
        self.training = Some(Task::spawn("training", move |_| training::training(&results, &run).map_err(boxed)));
    }

    /// Hands what the jobs reported to the app; whether anything arrived.
    fn poll(&mut self, app: &mut SweepApp) -> bool {
        let mut any = false;
        if let Some(t) = &mut self.sweep {
            for u in t.poll() {
                any = true;
                match u {
                    Update::Msg(m) => app.on_live(m),
                    Update::End(o) => app.on_live_end(o),
                }
            }
        }
        if let Some(t) = &mut self.compare {
            for u in t.poll() {
                if let Update::End(o) = u {
                    any = true;
                    app.on_compare(o);
                }
            }
        }
        if let Some(t) = &mut self.training {
            for u in t.poll() {
                if let Update::End(o) = u {
                    any = true;
                    app.on_training(o);
                }
            }
        }
        any
    }

    fn idle(&self) -> bool {
        self.request.is_none()
            && [self.sweep.as_ref().map(Task::running), self.compare.as_ref().map(Task::running)]
                .into_iter()
                .chain([self.training.as_ref().map(Task::running)])
                .all(|r| r != Some(true))
    }
}

/// The sweep explorer: the app, its jobs, and the agent opened from the table.
pub struct SweepExplorer {
    pub app: SweepApp,
    runtime: SweepRuntime,
    /// The single-agent explorer on the agent opened with Enter.
    pub agent: Option<Box<Explorer>>,
    started: bool,
    /// The last frame drawn (clicks are resolved against it).
    frame: Rect,
    /// The last click on a row: when, and which visible row (a second one there soon after opens it).
    last_click: Option<(Instant, usize)>,
}

/// Two left clicks on one row within this long are a double click: they open the agent.
pub const DOUBLE_CLICK: Duration = Duration::from_millis(500);

/// Whether a click on `row` (None: the header) at `now` completes a double click after the
/// click remembered in `last`; remembers this one (a double click is not the start of another).
pub fn double_click(last: &mut Option<(Instant, usize)>, now: Instant, row: Option<usize>) -> bool {
    let double = matches!((*last, row), (Some((then, r)), Some(row))
        if r == row && now.saturating_duration_since(then) <= DOUBLE_CLICK);
    *last = if double { None } else { row.map(|r| (now, r)) };
    double
}

impl SweepExplorer {
    /// On a finished sweep's folder.
    pub fn open(out: &Path, colormap: Colormap, color_mode: ColorMode) -> Result<SweepExplorer> {
        let results = results::open(out)?;
        Ok(SweepExplorer::with(SweepApp::new(results, colormap, color_mode), SweepRuntime::default()))
    }

    /// On a sweep it runs (nothing starts before `start`).
    pub fn live(req: SweepRequest, colormap: Colormap, color_mode: ColorMode) -> SweepExplorer {
        let app = SweepApp::live(req.out.clone(), req.flags.summary(), colormap, color_mode);
        SweepExplorer::with(app, SweepRuntime { request: Some(req), ..SweepRuntime::default() })
    }

    fn with(app: SweepApp, runtime: SweepRuntime) -> SweepExplorer {
        SweepExplorer { app, runtime, agent: None, started: false, frame: Rect::default(), last_click: None }
    }

    /// Runs effects; false when one of them quits.
    pub fn apply(&mut self, effects: Vec<SweepEffect>) -> bool {
        for e in effects {
            match e {
                SweepEffect::Quit => return false,
                SweepEffect::Open(pos) => self.open_agent(pos),
                SweepEffect::Compare(a, b) => self.runtime.compare(self.app.results().clone(), a, b),
                SweepEffect::Training(run) => self.runtime.training(self.app.results().clone(), run),
            }
        }
        true
    }

    fn open_agent(&mut self, pos: usize) {
        let (colormap, mode) = (self.app.colormap, self.app.color_mode);
        match open::agent_explorer(self.app.results(), pos, colormap, mode) {
            Ok(mut explorer) => {
                explorer.start();
                explorer.app.set_message("opened from the sweep: Esc comes back to the table");
                self.agent = Some(Box::new(explorer));
            }
            Err(e) => self.app.set_message(format!("cannot open this agent: {e}")),
        }
    }

    /// Whether Esc in the opened agent goes back to the table (nothing of its own to close).
    fn agent_at_rest(&self) -> bool {
        self.agent.as_ref().is_some_and(|a| a.app.popup().is_none())
    }

    /// Polls until `done` holds (tests, benchmarks); false on timeout.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&SweepExplorer) -> bool) -> bool {
        self.start();
        let start = Instant::now();
        loop {
            self.poll();
            if done(self) {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// Polls until no job is at work.
    pub fn settle(&mut self, timeout: Duration) -> Result<()> {
        if !self.wait_until(timeout, |s| {
            s.runtime.idle() && !s.app.busy() && s.agent.as_ref().is_none_or(|a| !a.app.busy())
        }) {
            bail!("the sweep explorer's jobs did not finish in {timeout:?}");
        }
        Ok(())
    }
}

impl Screen for SweepExplorer {
    fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.runtime.start();
            let effects = self.app.pending_effects();
            self.apply(effects);
        }
    }

    fn poll(&mut self) -> bool {
        let mut changed = self.runtime.poll(&mut self.app);
        if let Some(a) = &mut self.agent {
            changed |= a.poll();
        }
        let effects = self.app.pending_effects();
        changed |= !effects.is_empty();
        self.apply(effects);
        changed
    }

    fn handle(&mut self, event: Event) -> bool {
        let esc = matches!(&event, Event::Key(k) if k.code == KeyCode::Esc && k.kind != KeyEventKind::Release);
        if esc && self.agent_at_rest() {
            self.agent = None;
            return true;
        }
        if let Some(agent) = &mut self.agent {
            return agent.handle(event);
        }
        let action = match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => keymap::lookup_sweep(key, self.app.scope()),
            Event::Mouse(m) => match m.kind {
                MouseEventKind::ScrollUp => Some(SweepAction::Up),
                MouseEventKind::ScrollDown => Some(SweepAction::Down),
                MouseEventKind::Down(MouseButton::Left) if self.app.scope() == Scope::Agents && !self.app.help() => {
                    view::table_hit(&self.app, self.frame, m.column, m.row).map(|(row, col)| {
                        let double = double_click(&mut self.last_click, Instant::now(), row);
                        SweepAction::Click { row, col, double }
                    })
                }
                _ => None,
            },
            _ => None,
        };
        match action {
            Some(a) => {
                let effects = self.app.update(a);
                self.apply(effects)
            }
            None => true,
        }
    }

    fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<()> {
        if let Some(agent) = &mut self.agent {
            return agent.draw(terminal);
        }
        let size = terminal.size()?;
        self.frame = Rect::new(0, 0, size.width, size.height);
        view::prepare(&mut self.app, self.frame);
        terminal.draw(|f| view::draw(&self.app, f))?;
        Ok(())
    }

    fn busy(&self) -> bool {
        self.app.busy() || self.agent.as_ref().is_some_and(|a| a.app.busy())
    }
}

/// The agents table of a finished sweep's folder, in the terminal.
pub fn explore_folder(
    out: &Path,
    colormap: Colormap,
    color_mode: ColorMode,
    mouse: bool,
    stop: &AtomicBool,
) -> Result<()> {
    let mut screen = SweepExplorer::open(out, colormap, color_mode)?;
    super::run_in_terminal(&mut screen, mouse, stop)
}

/// A sweep run and watched in the terminal (`saliency sweep ... --explore`).
pub fn explore_live(
    req: SweepRequest,
    colormap: Colormap,
    color_mode: ColorMode,
    mouse: bool,
    stop: &AtomicBool,
) -> Result<()> {
    let mut screen = SweepExplorer::live(req, colormap, color_mode);
    super::run_in_terminal(&mut screen, mouse, stop)
}
