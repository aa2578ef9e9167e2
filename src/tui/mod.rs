//! The interactive explorer (ratatui + crossterm).

pub mod app;
pub mod color;
pub mod colormaps;
pub mod evidence;
pub mod export;
pub mod features;
pub mod heatmap;
pub mod keymap;
pub mod layout;
pub mod view;
pub mod worker;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use color_eyre::eyre::{bail, eyre, Result};
use crossterm::event::{self, Event, KeyEventKind, MouseButton, MouseEventKind};
use ratatui::layout::Rect;

use crate::agent;
use crate::cli::ExploreArgs;
use crate::commands::find_useful_neurons;
use crate::json::Value;
use crate::pipeline::{self, extract};
use app::App;
use worker::{Job, Worker};

/// Set while the explorer owns the terminal. On SIGTERM or SIGHUP the signal thread (see
/// main.rs) restores the terminal and exits at once: when the terminal is gone, crossterm's
/// blocking read can spin without ever returning to the event loop.
pub static EXPLORER_ACTIVE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

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

/// What to explore, worked out from the flags before the terminal is taken over (so mistakes
/// are reported as plain errors).
pub struct Plan {
    pub app: App,
    pub job: Job,
}

fn read_keys(cross: Option<&Path>, notes: &mut Vec<String>) -> Result<Vec<extract::CandidateKey>> {
    match cross {
        Some(p) if p.is_file() => {
            let v = extract::read_small_json(p, "cross-metric file")?;
            Ok(extract::candidate_keys(&v, &p.display().to_string())?)
        }
        Some(p) => {
            notes.push(format!("{} not found: no candidate neurons to select from", p.display()));
            Ok(Vec::new())
        }
        None => Ok(Vec::new()),
    }
}

fn read_useful(
    flag: &Option<PathBuf>,
    agent_dir: Option<&Path>,
    keys: &[extract::CandidateKey],
    notes: &mut Vec<String>,
) -> Result<Option<Value>> {
    match find_useful_neurons(flag, agent_dir, extract::needs_useful_neurons(keys)) {
        Ok(Some(p)) => Ok(Some(extract::read_small_json(&p, "useful-neurons file")?)),
        Ok(None) => Ok(None),
        Err(e) if flag.is_none() => {
            notes.push(e.to_string());
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

pub fn plan(args: &ExploreArgs) -> Result<Plan> {
    let mut notes = Vec::new();
    let (app, job) = if let Some(avg) = &args.average_gradients {
        crate::paths::must_exist(avg, "averages file")?;
        let cross = args.cross_metric.clone().ok_or_else(|| {
            eyre!("--average-gradients needs --cross-metric FILE (the cross_metric_summary.json with the candidate neurons)")
        })?;
        crate::paths::must_exist(&cross, "cross-metric file")?;
        let keys = read_keys(Some(&cross), &mut notes)?;
        let agent_dir = cross.parent().and_then(Path::parent);
        let useful = read_useful(&args.useful_neurons, agent_dir, &keys, &mut notes)?;
        let out_dir = args.output_dir.clone().unwrap_or_else(|| match avg.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        });
        let app = App::new(avg.display().to_string(), keys, useful, out_dir, false);
        (app, Job::Averages { path: avg.clone() })
    } else {
        let demo = args.agent_path.is_none();
        let agent_path = match &args.agent_path {
            Some(p) => p.clone(),
            None => default_demo()?,
        };
        crate::paths::must_exist(&agent_path, "agent path")?;
        let agent_dir = agent::agent_dir(&agent_path);
        let inputs = pipeline::clean_inputs_path(&agent_dir);
        crate::paths::must_exist(&inputs, "inputs file")?;
        let cross = args.cross_metric.clone().unwrap_or_else(|| pipeline::cross_metric_path(&agent_dir));
        let keys = read_keys(Some(&cross), &mut notes)?;
        let useful = read_useful(&args.useful_neurons, Some(&agent_dir), &keys, &mut notes)?;
        let out_dir = args.output_dir.clone().unwrap_or_else(|| {
            if demo {
                demo_output_dir()
            } else {
                agent_dir.join("gradient_analysis")
            }
        });
        // Fail early on a bad device or activation flag.
        crate::model::parse_device(&args.model.device)?;
        let overrides = args.model.overrides().map_err(|e| eyre!(e))?;
        let limits = args.model.limits();
        let mut app = App::new(agent_dir.display().to_string(), keys, useful, out_dir, true);
        app.model = Some(evidence::Source {
            agent_path: agent_path.clone(),
            inputs: inputs.clone(),
            device: args.model.device.clone(),
            overrides: overrides.clone(),
            limits,
            target: args.target,
        });
        if let Some(t) = args.target {
            app.target = t;
        }
        app.evidence.status = app::EvidenceStatus::Loading;
        let job = Job::Pipeline {
            agent_path,
            inputs,
            device: args.model.device.clone(),
            overrides,
            limits,
            batch_size: args.model.batch_size,
            target: args.target,
        };
        (app, job)
    };
    let mut app = app;
    app.notes = notes;
    if let Some(path) = &args.feature_names {
        crate::paths::must_exist(path, "feature-names file")?;
        app.feature_names = Some(features::FeatureNames::read(path)?);
    }
    app.k = args.k;
    app.m = args.m;
    app.hm.colormap = args.colormap;
    app.color_mode = args.color.mode();
    Ok(Plan { app, job })
}

/// Opens the explorer. Refuses without a terminal, naming the headless command instead.
pub fn explore(args: &ExploreArgs, stop: &AtomicBool) -> Result<()> {
    // The flags and files first (mistakes are plain errors, terminal or not).
    let Plan { mut app, job } = plan(args)?;
    if !std::io::stdout().is_terminal() || !std::io::stdin().is_terminal() {
        bail!(
            "the explorer needs an interactive terminal (stdin and stdout must be a TTY). For headless use: \
             `saliency run --agent-path DIR` (or `gradients`, `average`, `extract`; see `saliency --help`)"
        );
    }
    // ratatui::init chains a panic hook that leaves raw mode and the alternate screen before
    // color-eyre's report is printed; ours in front of it also releases the mouse.
    let mut terminal = ratatui::init();
    EXPLORER_ACTIVE.store(true, std::sync::atomic::Ordering::SeqCst);
    if args.mouse {
        let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
            previous(info);
        }));
    }
    let result = event_loop(&mut terminal, &mut app, job, stop);
    EXPLORER_ACTIVE.store(false, std::sync::atomic::Ordering::SeqCst);
    restore_terminal();
    if let Some(m) = app.message.as_ref().filter(|m| m.starts_with("exported")) {
        println!("{m}");
    }
    result
}

/// Starts the job, or turns a failure to start it into the error screen.
fn start(app: &mut App, job: &Job) -> Option<Worker> {
    match Worker::spawn(job.clone()) {
        Ok(w) => Some(w),
        Err(e) => {
            app.on_msg(worker::Msg::Failed(format!("cannot start the pipeline thread: {e}")));
            None
        }
    }
}

/// Runs a job to completion without a terminal (tests, benchmarks): the app as the explorer
/// would hold it once the pipeline finished.
pub fn run_to_end(plan: Plan, timeout: Duration) -> Result<App> {
    run_to_end_with_effects(plan, timeout).map(|(app, _)| app)
}

/// `run_to_end`, also returning the effects the worker's messages called for (the evidence
/// requests), in order.
pub fn run_to_end_with_effects(plan: Plan, timeout: Duration) -> Result<(App, Vec<app::Effect>)> {
    let Plan { mut app, job } = plan;
    let mut effects = Vec::new();
    let Some(mut worker) = start(&mut app, &job) else { return Ok((app, effects)) };
    let start = Instant::now();
    while app.running() {
        if start.elapsed() > timeout {
            bail!("the job did not finish in {timeout:?}");
        }
        if let Some(msg) = worker.recv_timeout(Duration::from_millis(100)) {
            effects.extend(app.on_msg(msg));
        }
        // (also notices a worker thread that died without a message)
        for msg in worker.drain() {
            effects.extend(app.on_msg(msg));
        }
    }
    Ok((app, effects))
}

/// Runs an effect the way the event loop does, but synchronously (tests: an export is written
/// and the evidence computed, with `engine` when given, before this returns). Returns false
/// for Quit.
pub fn run_effect_blocking(app: &mut App, effect: app::Effect, engine: Option<&evidence::Engine>) -> bool {
    match effect {
        app::Effect::Quit => return false,
        app::Effect::Export(job) => {
            let last = export::run(&job, &mut |s| app.on_export(export::ExportMsg::Stage(s)));
            app.on_export(last);
        }
        app::Effect::Evidence(req) => {
            if let Some(msg) = engine.and_then(|e| e.compute(&req, &|| false)) {
                app.on_evidence(msg);
            }
        }
        app::Effect::CancelRun | app::Effect::Restart | app::Effect::SetTarget(_) => {}
    }
    true
}

/// `stop` is raised by SIGTERM or SIGHUP (the terminal went away): leave at once.
fn event_loop(terminal: &mut ratatui::DefaultTerminal, app: &mut App, mut job: Job, stop: &AtomicBool) -> Result<()> {
    // Test hooks (tests/crash.rs): fail after the first frame, to check that the terminal is
    // restored on a panic and on an error.
    let fail_after_draw = std::env::var("SALIENCY_TEST_FAIL_AFTER_DRAW").ok();
    let mut worker = start(app, &job);
    let mut exporter = export::Exporter::new();
    let mut evidence = app.model.clone().and_then(|source| spawn_evidence(app, source));
    let mut pending: Vec<app::Effect> = Vec::new();
    let mut dirty = true;
    let mut last_draw = Instant::now();
    loop {
        if let Some(w) = worker.as_mut() {
            for msg in w.drain() {
                pending.extend(app.on_msg(msg));
                dirty = true;
            }
        }
        if let Some(ev) = &evidence {
            for msg in ev.drain() {
                app.on_evidence(msg);
                dirty = true;
            }
        }
        for msg in exporter.drain() {
            app.on_export(msg);
            dirty = true;
        }
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        // Redraw on change, and a few times a second while running (the gauge moves).
        if dirty || (app.running() && last_draw.elapsed() > Duration::from_millis(200)) {
            let size = terminal.size()?;
            app.prepare(Rect::new(0, 0, size.width, size.height));
            terminal.draw(|f| view::draw(app, f))?;
            dirty = false;
            last_draw = Instant::now();
            match fail_after_draw.as_deref() {
                Some("panic") => panic!("test panic requested by SALIENCY_TEST_FAIL_AFTER_DRAW"),
                Some("error") => bail!("test error requested by SALIENCY_TEST_FAIL_AFTER_DRAW"),
                _ => {}
            }
        }
        let mut effects = std::mem::take(&mut pending);
        // Wait for input only when there is nothing else to do.
        let wait = if effects.is_empty() { Duration::from_millis(40) } else { Duration::ZERO };
        if event::poll(wait)? {
            effects.extend(read_event(app)?);
            dirty = true;
        }
        for effect in effects {
            match effect {
                app::Effect::Quit => return Ok(()),
                app::Effect::CancelRun => {
                    if let Some(w) = &worker {
                        w.cancel();
                    }
                }
                app::Effect::Restart => worker = start(app, &job),
                app::Effect::Export(job) => exporter.start(*job),
                app::Effect::Evidence(req) => {
                    if let Some(ev) = &evidence {
                        ev.request(*req);
                    }
                }
                app::Effect::SetTarget(t) => {
                    if let Job::Pipeline { target, .. } = &mut job {
                        *target = Some(t);
                    }
                    worker = start(app, &job);
                    if let Some(mut source) = app.model.clone() {
                        source.target = Some(t);
                        app.model = Some(source.clone());
                        evidence = spawn_evidence(app, source);
                    }
                }
            }
        }
    }
}

/// Starts the evidence worker, or turns a failure to start it into the evidence line's error.
fn spawn_evidence(app: &mut App, source: evidence::Source) -> Option<evidence::Worker> {
    match evidence::Worker::spawn(source) {
        Ok(w) => Some(w),
        Err(e) => {
            app.on_evidence(evidence::Msg::Failed(format!("cannot start the evidence thread: {e}")));
            None
        }
    }
}

/// The next terminal event (one is ready) turned into effects.
fn read_event(app: &mut App) -> Result<Vec<app::Effect>> {
    Ok(match event::read()? {
        Event::Key(key) if key.kind != KeyEventKind::Release => {
            let prompt = matches!(app.popup, Some(app::Popup::Prompt { .. }));
            keymap::lookup(key, prompt).map(|a| app.update(a)).unwrap_or_default()
        }
        Event::Mouse(m) => match m.kind {
            MouseEventKind::Down(MouseButton::Left) => {
                app.click(m.column, m.row);
                Vec::new()
            }
            MouseEventKind::ScrollUp => app.update(keymap::Action::Up),
            MouseEventKind::ScrollDown => app.update(keymap::Action::Down),
            _ => Vec::new(),
        },
        _ => Vec::new(),
    })
}
