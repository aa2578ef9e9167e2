//! The headless commands: drop-in replacements for the Python scripts. Thin: flags become a
//! service request (`study`), and the service's events become lines on the terminal.

pub mod sweep;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{AblateArgs, AgentArgs, AverageArgs, ExtractArgs, GradientsArgs, RawGradients, RunArgs, ValidateArgs};
use crate::pipeline::{self, average::Averages, gradfile, PassOptions, Progress, RawFormat};
use crate::study::ablate;
use crate::study::candidates::{CandidateChoice, Candidates};
use crate::study::files::{agent_dir_of_cross_metric, parent_dir, AgentFiles};
use crate::study::model::Loaded;
use crate::study::run::{self, PassPlan, RunEvent, RunPlan};
use crate::study::selection;

/// Progress bar and summary lines on a terminal; silent otherwise (or with --quiet).
pub struct Reporter {
    quiet: bool,
    bar: Option<ProgressBar>,
}

impl Reporter {
    pub fn new(quiet: bool) -> Reporter {
        Reporter { quiet, bar: None }
    }

    pub fn note(&self, text: &str) {
        if !self.quiet {
            eprintln!("note: {text}");
        }
    }

    pub fn warn(&self, text: &str) {
        if let Some(bar) = &self.bar {
            bar.suspend(|| eprintln!("warning: {text}"));
        } else {
            eprintln!("warning: {text}");
        }
    }

    pub fn done(&self, text: &str) {
        if !self.quiet {
            println!("{text}");
        }
    }

    pub fn progress(&mut self, p: Progress) {
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = self.bar.get_or_insert_with(|| {
            let bar = ProgressBar::with_draw_target(Some(p.total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} inputs  {per_sec}  ETA {eta}  {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        bar.set_length(p.total as u64);
        bar.set_position(p.done as u64);
        bar.set_message(if p.total_exact { "" } else { "(total estimated from the file read so far)" });
    }

    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    /// A service's event, as a line (or the progress bar).
    pub fn event(&mut self, e: RunEvent) {
        match e {
            RunEvent::Progress(p) => return self.progress(p),
            _ => self.finish(),
        }
        match e {
            RunEvent::Note(t) => self.note(&t),
            RunEvent::Warning(t) => self.warn(&t),
            RunEvent::Summary(t) => self.done(&t),
            RunEvent::Wrote(p, d) if d.is_empty() => self.done(&format!("wrote {}", p.display())),
            RunEvent::Wrote(p, d) => self.done(&format!("wrote {} ({d})", p.display())),
            RunEvent::Progress(_) => {}
        }
    }
}

pub(crate) fn raw_format(r: RawGradients) -> RawFormat {
    match r {
        RawGradients::Json => RawFormat::Json,
        RawGradients::Npy => RawFormat::Npy,
        RawGradients::None => RawFormat::None,
    }
}

/// Loads the agent the flags name, for their target.
fn load(args: &AgentArgs) -> Result<Loaded> {
    Ok(args.model.spec(&args.agent_path, args.target)?.load()?)
}

/// The agent's files, with the inputs the flags give.
fn files_of(args: &AgentArgs) -> AgentFiles {
    AgentFiles::new(&args.agent_path).with_inputs(args.sources.inputs.as_deref())
}

fn pass_plan(args: &AgentArgs, out_dir: &Path) -> PassPlan {
    PassPlan {
        inputs: files_of(args).inputs(),
        out_dir: out_dir.to_path_buf(),
        raw: raw_format(args.raw_gradients),
        measures: args.measures.clone().map(|l| l.0).unwrap_or_default(),
        extra_measures: Vec::new(),
        input_saliency: args.input_saliency,
        batch_size: args.model.batch_size,
    }
}

pub fn run(args: &RunArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    if args.ablate {
        args.ablation.settings().check()?;
    }
    crate::paths::must_exist(&args.agent.agent_path, "agent path")?;
    let files = files_of(&args.agent);
    // The candidate files are read and checked before any work, as the master script does.
    let useful = args.selection.useful_neurons_path.as_deref();
    let candidates = CandidateChoice::for_agent(&files, useful, args.agent.sources.candidates_by)?;
    let loaded = load(&args.agent)?;
    let out_dir = args.output_dir.clone().unwrap_or_else(|| files.default_output());
    let plan = RunPlan {
        pass: pass_plan(&args.agent, &out_dir),
        candidates,
        k: args.selection.k,
        m: args.selection.m,
        select_by: args.select_by,
        ablate: args.ablate.then(|| args.ablation.settings()),
    };
    let outcome = run::run(&loaded, &plan, &mut |e| rep.event(e), cancel);
    rep.finish();
    outcome?;
    Ok(())
}

pub fn gradients(args: &GradientsArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    let loaded = load(&args.agent)?;
    if args.agent.raw_gradients == RawGradients::None {
        bail!("`saliency gradients` writes the per-input gradients; --raw-gradients none makes sense only with `run`");
    }
    let out_dir = args.output_dir.clone().unwrap_or_else(|| files_of(&args.agent).default_output());
    let outcome = run::gradient_files(&loaded, &pass_plan(&args.agent, &out_dir), &mut |e| rep.event(e), cancel);
    rep.finish();
    outcome?;
    Ok(())
}

pub fn average(args: &AverageArgs, cancel: &AtomicBool) -> Result<()> {
    let rep = Reporter::new(args.quiet.quiet);
    crate::paths::must_exist(&args.gradients_path, "gradients file")?;
    let out_dir = args.output_dir.clone().unwrap_or_else(|| parent_dir(&args.gradients_path));
    let avgs = gradfile::average_file(&args.gradients_path, |_, _| {})?;
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(pipeline::PipelineError::Cancelled.into());
    }
    let dest = out_dir.join(pipeline::AVERAGE_GRADIENTS);
    let non_finite = avgs.write(&dest)?;
    if non_finite > 0 {
        rep.warn(&format!(
            "{non_finite} NaN or infinite values in {}: the model is probably broken",
            pipeline::AVERAGE_GRADIENTS
        ));
    }
    rep.done(&format!("wrote {} ({} inputs)", dest.display(), avgs.num_examples.unwrap_or(0)));
    Ok(())
}

pub fn extract(args: &ExtractArgs) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    crate::paths::must_exist(&args.cross_metric_path, "cross-metric file")?;
    crate::paths::must_exist(&args.average_gradients_path, "averages file")?;
    let agent_dir = agent_dir_of_cross_metric(&args.cross_metric_path);
    let candidates =
        Candidates::read(&args.cross_metric_path, args.selection.useful_neurons_path.as_deref(), agent_dir)?;
    let mut avgs = Averages::read(&args.average_gradients_path)?;
    if let Some(m) = args.select_by {
        let path = args
            .measures_path
            .clone()
            .unwrap_or_else(|| parent_dir(&args.average_gradients_path).join(pipeline::measures::MEASURES_FILE));
        crate::paths::must_exist(&path, "measures file")?;
        avgs = pipeline::measures::read(&path, m, &avgs)?;
    }
    let out_dir = args.output_dir.clone().unwrap_or_else(|| parent_dir(&args.average_gradients_path));
    let mut events = |e| rep.event(e);
    let (resolved, sel) = run::select(&candidates, &avgs, args.selection.k, args.selection.m, &mut events);
    run::write_selection(&out_dir, &avgs, &resolved, &sel, &mut events)?;
    Ok(())
}

pub fn ablate(args: &AblateArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    let settings = args.ablation.settings();
    settings.check()?;
    crate::paths::must_exist(&args.agent_path, "agent path")?;
    let files = AgentFiles::new(&args.agent_path).with_inputs(args.sources.inputs.as_deref());
    let out_dir = args.output_dir.clone().unwrap_or_else(|| files.default_output());
    let inputs = files.inputs();
    crate::paths::must_exist(&inputs, "inputs file")?;
    // The selection: a candidate file, or k and m applied as `extract` would.
    let by_knobs = args.k.is_some() || args.m.is_some();
    let useful = args.useful_neurons_path.as_deref();
    let candidates = match by_knobs {
        true => Some(CandidateChoice::for_agent(&files, useful, args.sources.candidates_by)?),
        false => None,
    };
    let file = args.candidates.clone().unwrap_or_else(|| out_dir.join(pipeline::CANDIDATE_WEIGHTS));
    if !by_knobs && !file.exists() {
        bail!(
            "no selection to ablate: {} does not exist (give --candidates FILE, or --k K --m M to select as \
             `saliency extract` would)",
            file.display()
        );
    }
    let loaded = args.model.spec(&args.agent_path, args.target)?.load()?;
    let (named, what) = match candidates {
        None => (crate::ablation::report::read_weight_targets(&file)?, file.display().to_string()),
        Some(cands) => {
            let (k, m) = (args.k.unwrap_or(2), args.m.unwrap_or(4));
            let avgs = averages_for(&mut rep, &loaded, &out_dir, &inputs, args.model.batch_size, cancel)?;
            let (resolved, sel) = run::select(&cands.candidates(&avgs), &avgs, k, m, &mut |e| rep.event(e));
            (selection::named_weights(&avgs, &resolved, &sel), format!("the selection of k={k} m={m}"))
        }
    };
    let change = crate::ablation::Change::from_named(&loaded.agent.param_shapes(), &named, &what)?;
    let start = Instant::now();
    let a = ablate::Ablation {
        inputs: &inputs,
        change: &change,
        what: &what,
        settings: &settings,
        batch_size: args.model.batch_size,
    };
    let report = ablate::run(&loaded, &a, &mut |p| rep.progress(p), cancel);
    rep.finish();
    let report = report?;
    let dest = ablate::write(&out_dir, &report)?;
    rep.done(&ablate::summary(&report));
    rep.done(&format!("wrote {} ({:.2} s)", dest.display(), start.elapsed().as_secs_f64()));
    Ok(())
}

/// `saliency validate`: which measure predicts the damage on this agent.
pub fn validate(args: &ValidateArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    let settings = args.settings();
    settings.check()?;
    crate::paths::must_exist(&args.agent_path, "agent path")?;
    let files = AgentFiles::new(&args.agent_path).with_inputs(args.inputs.as_deref());
    let out_dir = args.output_dir.clone().unwrap_or_else(|| files.default_output());
    let inputs = files.inputs();
    crate::paths::must_exist(&inputs, "inputs file")?;
    let loaded = args.model.spec(&args.agent_path, args.target)?.load()?;
    let start = Instant::now();
    let v = crate::study::validate::validate(
        &loaded,
        &inputs,
        &settings,
        args.model.batch_size,
        &mut |e| rep.event(e),
        cancel,
    );
    rep.finish();
    let v = v?;
    crate::pipeline::output::ensure_dir(&out_dir)?;
    let dest = crate::study::validate::write(&out_dir, &v)?;
    for line in crate::study::validate::table(&v) {
        rep.done(&line);
    }
    rep.done(&format!("wrote {} ({:.2} s)", dest.display(), start.elapsed().as_secs_f64()));
    Ok(())
}

/// The averages a k/m selection needs: `<out dir>/average_gradients.json` when it exists and
/// fits the agent (as `extract` would read it), else computed now (nothing is written).
fn averages_for(
    rep: &mut Reporter,
    loaded: &Loaded,
    out_dir: &Path,
    inputs: &Path,
    batch_size: Option<usize>,
    cancel: &AtomicBool,
) -> Result<Averages> {
    let existing = out_dir.join(pipeline::AVERAGE_GRADIENTS);
    if existing.is_file() {
        let avgs = Averages::read(&existing)?;
        let params = &loaded.agent.params;
        let fits = avgs.params.len() == params.len()
            && avgs.params.iter().zip(params).all(|(a, p)| a.name == p.name && a.shape == p.shape);
        if fits {
            rep.note(&format!("selecting from the averages in {}", existing.display()));
            return Ok(avgs);
        }
        rep.warn(&format!("{} does not fit this agent's parameters: computing the averages again", existing.display()));
    }
    rep.note("no averages yet: running the gradient pass first (nothing is written but ablation.json)");
    let opts = PassOptions {
        raw: RawFormat::None,
        out_dir: out_dir.to_path_buf(),
        batch_size,
        target: loaded.target,
        measures: Vec::new(),
        input_saliency: false,
        max_inputs: None,
    };
    let outcome =
        pipeline::gradient_pass(&loaded.agent, &loaded.net, inputs, &opts, &mut |p, _| rep.progress(p), cancel);
    rep.finish();
    Ok(outcome?.averages)
}

/// `saliency man`: the man page on stdout, or with a directory one page per command
/// (`saliency.1`, `saliency-run.1`, ...) written there.
pub fn man(dir: Option<&Path>) -> Result<()> {
    let cmd = <crate::cli::Cli as clap::CommandFactory>::command();
    match dir {
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut page).wrap_err("cannot render the man page")?;
            print_bytes(&page)?;
        }
        Some(d) => {
            std::fs::create_dir_all(d).wrap_err_with(|| format!("cannot create {}", d.display()))?;
            clap_mangen::generate_to(cmd, d)
                .wrap_err_with(|| format!("cannot write man pages into {}", d.display()))?;
        }
    }
    Ok(())
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
pub fn print_bytes(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(eyre!("cannot write to stdout: {e}")),
        _ => Ok(()),
    }
}
