//! The interactive explorer (ratatui + crossterm).
//!
//! `plan` turns the flags into an `Explorer` (the app and its background jobs) before the
//! terminal is taken over, so mistakes are plain errors. The event loop is `Explorer::turn`:
//! hand the jobs' messages to the app, apply one terminal event, run the effects; the real
//! loop and the tests (on ratatui's `TestBackend`) call the same `turn` and `draw`.

pub mod app;
pub mod color;
pub mod heatmap;
pub mod keymap;
pub mod layout;
pub mod runtime;
pub mod sweep;
pub mod theme;
pub mod view;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, eyre, Result};
use crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::backend::Backend;
use ratatui::layout::Rect;
use ratatui::Terminal;

use crate::cli::ExploreArgs;
use crate::study::browse;
use crate::study::candidates::{CandidateChoice, Candidates};
use crate::study::evidence::EngineSpec;
use crate::study::features::FeatureNames;
use crate::study::files::{agent_dir_of_cross_metric, parent_dir, AgentFiles};
use crate::target::Target;
use app::{App, Effect, Setup};
use color::ColorMode;
use runtime::Runtime;

/// Set while the explorer owns the terminal. On SIGTERM or SIGHUP the signal thread (see
/// main.rs) restores the terminal and exits at once: when the terminal is gone, crossterm's
/// blocking read can spin without ever returning to the event loop.
pub static EXPLORER_ACTIVE: AtomicBool = AtomicBool::new(false);

/// Leaves the explorer's terminal state (raw mode, alternate screen, mouse capture).
pub fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
}

/// The bundled demo agent: the installed copy (`<prefix>/share/saliency/demo`, beside
/// `<prefix>/bin/saliency`, put there by install.sh), else `assets/demo` of the source tree this
/// binary was built from.
pub fn default_demo() -> Result<PathBuf> {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/saliency/demo")));
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/demo");
    installed.into_iter().chain([source]).find(|p| p.is_dir()).ok_or_else(|| {
        eyre!(
            "the bundled demo agent is not installed (looked beside the binary, share/saliency/demo, and in \
             {}): open an agent with --agent-path DIR",
            env!("CARGO_MANIFEST_DIR")
        )
    })
}

/// Where exports from the bundled demo go: never into the demo itself (an installed copy may be
/// read-only, and a source tree's should stay clean), but `$XDG_DATA_HOME/saliency/demo-output`
/// (`~/.local/share/saliency/demo-output` by default).
pub fn demo_output_dir() -> PathBuf {
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").filter(|v| !v.is_empty()).map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(std::env::temp_dir);
    data.join("saliency").join("demo-output")
}

/// The app and the jobs that feed it.
pub struct Explorer {
    pub app: App,
    pub runtime: Runtime,
    started: bool,
}

/// The explorer on finished averages (no model).
fn plan_averages(args: &ExploreArgs, avg: &Path, notes: &mut Vec<String>) -> Result<(Setup, browse::Source)> {
    crate::paths::must_exist(avg, "averages file")?;
    let cross = args.cross_metric.clone().ok_or_else(|| {
        eyre!(
            "--average-gradients needs --cross-metric FILE (the cross_metric_summary.json with the candidate neurons)"
        )
    })?;
    crate::paths::must_exist(&cross, "cross-metric file")?;
    let candidates = match args.sources.candidates_by {
        Some(n) if !cross.exists() => CandidateChoice::Saliency(n),
        _ => CandidateChoice::Patching(Candidates::read_or_note(
            &cross,
            args.useful_neurons.as_deref(),
            agent_dir_of_cross_metric(&cross),
            notes,
        )?),
    };
    let out_dir = args.output_dir.clone().unwrap_or_else(|| parent_dir(avg));
    let setup = setup(args, avg.display().to_string(), candidates, out_dir, None)?;
    Ok((setup, browse::Source::Averages(avg.to_path_buf())))
}

/// The explorer on an agent it runs.
fn plan_agent(args: &ExploreArgs, notes: &mut Vec<String>) -> Result<(Setup, browse::Source)> {
    let demo = args.agent_path.is_none() && args.path.is_none();
    let agent_path = match (&args.agent_path, &args.path) {
        (Some(_), Some(p)) => bail!("{}: give the agent as PATH or with --agent-path, not both", p.display()),
        (Some(p), None) | (None, Some(p)) => p.clone(),
        (None, None) => default_demo()?,
    };
    crate::paths::must_exist(&agent_path, "agent path")?;
    let files = AgentFiles::new(&agent_path).with_inputs(args.sources.inputs.as_deref());
    crate::paths::must_exist(&files.inputs(), "inputs file")?;
    let cross = args.cross_metric.clone().unwrap_or_else(|| files.cross_metric());
    let candidates = match args.sources.candidates_by {
        Some(n) if !cross.exists() => CandidateChoice::Saliency(n),
        _ => CandidateChoice::Patching(Candidates::read_or_note(
            &cross,
            args.useful_neurons.as_deref(),
            Some(&files.dir),
            notes,
        )?),
    };
    let out_dir =
        args.output_dir.clone().unwrap_or_else(|| if demo { demo_output_dir() } else { files.default_output() });
    let spec = args.model.spec(&agent_path, args.target)?;
    // Fail early on a bad device flag or ablation setting.
    spec.check()?;
    let settings = args.ablation.settings();
    settings.check()?;
    let engine = EngineSpec { spec: spec.clone(), inputs: files.inputs(), settings };
    let setup = setup(args, files.dir.display().to_string(), candidates, out_dir, Some(engine))?;
    Ok((setup, browse::Source::Agent { spec, inputs: files.inputs() }))
}

fn setup(
    args: &ExploreArgs,
    source: String,
    candidates: CandidateChoice,
    out_dir: PathBuf,
    engine: Option<EngineSpec>,
) -> Result<Setup> {
    let feature_names = match &args.feature_names {
        Some(path) => {
            crate::paths::must_exist(path, "feature-names file")?;
            Some(FeatureNames::read(path)?)
        }
        None => None,
    };
    let validate = args.validation.settings(&args.ablation);
    validate.check()?;
    Ok(Setup {
        source,
        candidates,
        notes: Vec::new(),
        out_dir,
        engine,
        validate,
        feature_names,
        k: args.k,
        m: args.m,
        target: args.target.unwrap_or(Target::Q),
        colormap: args.display.colormap,
        color_mode: ColorMode::from_choice(args.display.color),
    })
}

/// What to explore, worked out from the flags (nothing starts yet).
pub fn plan(args: &ExploreArgs) -> Result<Explorer> {
    let mut notes = Vec::new();
    let (mut setup, source) = match &args.average_gradients {
        Some(avg) => plan_averages(args, avg, &mut notes)?,
        None => plan_agent(args, &mut notes)?,
    };
    setup.notes = notes;
    Ok(Explorer::new(setup, source))
}

impl Explorer {
    /// The explorer of `setup`, on `source` (nothing starts yet).
    pub fn new(setup: Setup, source: browse::Source) -> Explorer {
        Explorer { app: App::new(setup), runtime: Runtime::new(source), started: false }
    }

    /// Starts the background jobs (once).
    pub fn start(&mut self) {
        if !self.started {
            self.started = true;
            self.runtime.start(&self.app);
        }
    }

    /// Hands the jobs' messages to the app and runs the effects they call for; whether
    /// anything changed.
    pub fn poll(&mut self) -> bool {
        let (changed, effects) = self.runtime.poll(&mut self.app);
        for e in effects {
            self.runtime.apply(&self.app, e);
        }
        changed
    }

    /// One terminal event: its action, and the effects it calls for. False when it quits.
    pub fn handle(&mut self, event: Event) -> bool {
        let effects = match event {
            Event::Key(key) if key.kind != KeyEventKind::Release => {
                keymap::lookup(key, self.app.in_prompt()).map(|a| self.app.update(a)).unwrap_or_default()
            }
            Event::Mouse(m) => match m.kind {
                MouseEventKind::Down(MouseButton::Left) => {
                    self.app.click(m.column, m.row);
                    Vec::new()
                }
                MouseEventKind::ScrollUp => self.app.update(keymap::Action::Up),
                MouseEventKind::ScrollDown => self.app.update(keymap::Action::Down),
                _ => Vec::new(),
            },
            _ => Vec::new(),
        };
        self.apply(effects)
    }

    /// Runs effects; false when one of them quits.
    pub fn apply(&mut self, effects: Vec<Effect>) -> bool {
        effects.into_iter().all(|e| self.runtime.apply(&self.app, e))
    }

    /// Lays out and draws one frame.
    pub fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<()> {
        let size = terminal.size()?;
        self.app.prepare(Rect::new(0, 0, size.width, size.height));
        terminal.draw(|f| view::draw(&self.app, f))?;
        Ok(())
    }

    /// Polls the jobs until `done` holds for the app (tests, benchmarks); false on timeout.
    pub fn wait_until(&mut self, timeout: Duration, done: impl Fn(&App) -> bool) -> bool {
        self.start();
        let start = Instant::now();
        loop {
            self.poll();
            if done(&self.app) {
                return true;
            }
            if start.elapsed() > timeout {
                return false;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// Polls until no job is at work (the pipeline finished, the export ended).
    pub fn settle(&mut self, timeout: Duration) -> Result<()> {
        self.start();
        let start = Instant::now();
        loop {
            self.poll();
            if self.runtime.idle() && !self.app.busy() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                bail!("the explorer's jobs did not finish in {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// What the event loop drives: the single-agent explorer, or the sweep's.
pub trait Screen {
    /// Starts the background jobs (once).
    fn start(&mut self);
    /// Hands the jobs' messages over; whether anything changed.
    fn poll(&mut self) -> bool;
    /// One terminal event; false when it quits.
    fn handle(&mut self, event: Event) -> bool;
    fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<()>;
    /// Whether work is going on (the screen is redrawn a few times a second).
    fn busy(&self) -> bool;
}

impl Screen for Explorer {
    fn start(&mut self) {
        Explorer::start(self)
    }
    fn poll(&mut self) -> bool {
        Explorer::poll(self)
    }
    fn handle(&mut self, event: Event) -> bool {
        Explorer::handle(self, event)
    }
    fn draw<B: Backend>(&mut self, terminal: &mut Terminal<B>) -> Result<()> {
        Explorer::draw(self, terminal)
    }
    fn busy(&self) -> bool {
        self.app.busy()
    }
}

const NO_TERMINAL: &str = "the explorer needs an interactive terminal (stdin and stdout must be a TTY). For headless \
                           use: `saliency run --agent-path DIR` (or `gradients`, `average`, `extract`, `sweep`; see \
                           `saliency --help`)";

/// Opens the explorer: on a sweep's folder its agents table, else one agent. Refuses without
/// a terminal, naming the headless commands instead.
pub fn explore(args: &ExploreArgs, stop: &AtomicBool) -> Result<()> {
    let color = ColorMode::from_choice(args.display.color);
    if let Some(out) = args.path.as_deref().filter(|p| crate::study::sweep::results::is_sweep(p)) {
        return sweep::explore_folder(out, args.display.colormap, color, args.display.mouse, stop);
    }
    // The flags and files first (mistakes are plain errors, terminal or not).
    let mut explorer = plan(args)?;
    run_in_terminal(&mut explorer, args.display.mouse, stop)?;
    if let Some(m) = explorer.app.message().filter(|m| m.starts_with("exported")) {
        println!("{m}");
    }
    Ok(())
}

/// Takes over the terminal, runs the event loop on `screen`, and gives the terminal back (on
/// an error and a panic too).
pub fn run_in_terminal<S: Screen>(screen: &mut S, mouse: bool, stop: &AtomicBool) -> Result<()> {
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(NO_TERMINAL);
    }
    // ratatui::init chains a panic hook that leaves raw mode and the alternate screen before
    // color-eyre's report is printed; ours in front of it also releases the mouse.
    let mut terminal = ratatui::init();
    EXPLORER_ACTIVE.store(true, std::sync::atomic::Ordering::SeqCst);
    if mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
            previous(info);
        }));
    }
    let result = event_loop(&mut terminal, screen, stop);
    EXPLORER_ACTIVE.store(false, std::sync::atomic::Ordering::SeqCst);
    restore_terminal();
    result
}

/// `stop` is raised by SIGTERM or SIGHUP (the terminal went away): leave at once.
fn event_loop<B: Backend, S: Screen>(terminal: &mut Terminal<B>, explorer: &mut S, stop: &AtomicBool) -> Result<()> {
    // Test hooks (tests/crash.rs): fail after the first frame, to check that the terminal is
    // restored on a panic and on an error.
    let fail_after_draw = std::env::var("SALIENCY_TEST_FAIL_AFTER_DRAW").ok();
    explorer.start();
    let mut dirty = true;
    let mut last_draw = Instant::now();
    loop {
        dirty |= explorer.poll();
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        // Redraw on change, and a few times a second while running (the gauge moves).
        if dirty || (explorer.busy() && last_draw.elapsed() > Duration::from_millis(200)) {
            explorer.draw(terminal)?;
            dirty = false;
            last_draw = Instant::now();
            match fail_after_draw.as_deref() {
                Some("panic") => panic!("test panic requested by SALIENCY_TEST_FAIL_AFTER_DRAW"),
                Some("error") => bail!("test error requested by SALIENCY_TEST_FAIL_AFTER_DRAW"),
                _ => {}
            }
        }
        if event::poll(Duration::from_millis(40))? {
            dirty = true;
            if !explorer.handle(event::read()?) {
                return Ok(());
            }
        }
    }
}
