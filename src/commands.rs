//! The headless commands: drop-in replacements for the Python scripts.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::ablation::{self, Change, NamedWeight};
use crate::agent::{self, Agent};
use crate::cli::{
    AblateArgs, AblationArgs, AgentArgs, AverageArgs, ExtractArgs, GradientsArgs, ModelArgs, RawGradients, RunArgs,
    SelectionArgs,
};
use crate::json::Value;
use crate::model::{parse_device, Net};
use crate::paths::must_exist;
use crate::pipeline::measures::Measure;
use crate::pipeline::{self, average::Averages, extract, gradfile, Progress, RawFormat};
use crate::target::Target;

/// The Python tool's default location of useful_neurons.json (relative to the working directory).
pub const DEFAULT_USEFUL_NEURONS: &str = "Neuron_Selection/ExperimentTooling/Definitions/useful_neurons.json";

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
}

/// Loads the agent (the head its target runs on) and its network as the flags say, and the
/// target as it applies to the agent.
pub fn load(args: &AgentArgs) -> Result<(Agent, Net, Target)> {
    load_model(&args.agent_path, &args.model, args.target)
}

fn load_model(agent_path: &Path, model: &ModelArgs, target: Option<Target>) -> Result<(Agent, Net, Target)> {
    let overrides = model.overrides().map_err(|e| eyre!(e))?;
    let limits = model.limits();
    let device = parse_device(&model.device)?;
    Ok(crate::model::load_for_target(agent_path, &overrides, &limits, device, target)?)
}

fn raw_format(r: RawGradients) -> RawFormat {
    match r {
        RawGradients::Json => RawFormat::Json,
        RawGradients::Npy => RawFormat::Npy,
        RawGradients::None => RawFormat::None,
    }
}

/// useful_neurons.json: the flag, else the Python tool's default path, else
/// `<agent dir>/useful_neurons.json`; None when no candidate key needs it.
pub fn find_useful_neurons(flag: &Option<PathBuf>, agent_dir: Option<&Path>, needed: bool) -> Result<Option<PathBuf>> {
    if let Some(p) = flag {
        must_exist(p, "useful-neurons file")?;
        return Ok(Some(p.clone()));
    }
    if !needed {
        return Ok(None);
    }
    let default = PathBuf::from(DEFAULT_USEFUL_NEURONS);
    if default.is_file() {
        return Ok(Some(default));
    }
    if let Some(dir) = agent_dir {
        let beside = dir.join("useful_neurons.json");
        if beside.is_file() {
            return Ok(Some(beside));
        }
    }
    bail!(
        "candidate keys of the form exp_<N>_<layer> need useful_neurons.json: give --useful-neurons-path \
         (not found at {DEFAULT_USEFUL_NEURONS}{})",
        agent_dir.map(|d| format!(" nor in {}", d.display())).unwrap_or_default()
    )
}

/// The candidate files, read and checked before any work: the keys of `common_neurons` and,
/// when a key needs it, useful_neurons.json.
pub struct CandidateInputs {
    pub keys: Vec<extract::CandidateKey>,
    pub useful: Option<Value>,
}

pub fn read_candidate_inputs(
    cross: &Path,
    useful_flag: &Option<PathBuf>,
    agent_dir: Option<&Path>,
) -> Result<CandidateInputs> {
    let value = extract::read_small_json(cross, "cross-metric file")?;
    let keys = extract::candidate_keys(&value, &cross.display().to_string())?;
    let useful = match find_useful_neurons(useful_flag, agent_dir, extract::needs_useful_neurons(&keys))? {
        Some(p) => {
            let v = extract::read_small_json(&p, "useful-neurons file")?;
            if v.as_array().is_none() {
                bail!(
                    "{}: expected a list of experiments ({{\"<layer>\": [neurons]}}), found {}",
                    p.display(),
                    v.type_name()
                );
            }
            Some(v)
        }
        None => None,
    };
    Ok(CandidateInputs { keys, useful })
}

fn selection_summary(sel: &extract::Selection, path: &Path) -> String {
    format!(
        "wrote {} ({} weights: {} guaranteed, {} additional)",
        path.display(),
        sel.targets.len(),
        sel.guaranteed_count,
        sel.additional_count
    )
}

/// The selection for k and m from in-memory averages (warnings reported), as named weights.
fn select(
    rep: &Reporter,
    inputs: &CandidateInputs,
    avgs: &Averages,
    k: usize,
    m: usize,
) -> (extract::Resolved, extract::Selection) {
    let resolved = extract::resolve(&inputs.keys, inputs.useful.as_ref(), avgs);
    for w in crate::format::summarise(&resolved.warnings, crate::format::SHOWN_WARNINGS, "more candidates skipped") {
        rep.warn(&w);
    }
    if resolved.candidates.is_empty() {
        rep.warn("no candidate neuron could be resolved: the selection is empty");
    }
    let sel = extract::select(avgs, &resolved.candidates, k, m);
    (resolved, sel)
}

/// The selected weights by name, as a candidate file lists them.
pub fn named_weights(avgs: &Averages, resolved: &extract::Resolved, sel: &extract::Selection) -> Vec<NamedWeight> {
    sel.targets
        .iter()
        .map(|t| {
            let c = &resolved.candidates[t.candidate];
            NamedWeight {
                layer_name: avgs.params[c.param].name.clone(),
                neuron_index: c.neuron as i64,
                weight_index: t.weight_index as i64,
            }
        })
        .collect()
}

/// Extract from in-memory averages and write candidate_weights.json; returns the selection.
fn extract_and_write(
    rep: &Reporter,
    inputs: &CandidateInputs,
    avgs: &Averages,
    sel_args: &SelectionArgs,
    out_dir: &Path,
) -> Result<Vec<NamedWeight>> {
    let (resolved, sel) = select(rep, inputs, avgs, sel_args.k, sel_args.m);
    let dest = out_dir.join(pipeline::CANDIDATE_WEIGHTS);
    extract::write_candidates(&dest, avgs, &resolved.candidates, &sel)?;
    rep.done(&selection_summary(&sel, &dest));
    Ok(named_weights(avgs, &resolved, &sel))
}

fn warn_non_finite(rep: &Reporter, count: u64, what: &str) {
    if count > 0 {
        rep.warn(&format!("{count} NaN or infinite values in {what}: the model is probably broken"));
    }
}

#[allow(clippy::too_many_arguments)]
/// The gradient pass with `measures` kept (the requested ones, plus any `--select-by` needs);
/// writes the raw gradients, and the measures and input saliency files when asked for.
fn gradient_step(
    rep: &mut Reporter,
    args: &AgentArgs,
    out_dir: &Path,
    agent: &Agent,
    net: &Net,
    target: Target,
    measures: &[Measure],
    cancel: &AtomicBool,
) -> Result<pipeline::GradientOutcome> {
    let agent_dir = agent::agent_dir(&args.agent_path);
    let inputs = pipeline::clean_inputs_path(&agent_dir);
    must_exist(&inputs, "inputs file")?;
    for n in &agent.arch.notes {
        rep.note(n);
    }
    let start = Instant::now();
    let outcome = pipeline::gradient_pass(
        agent,
        net,
        &inputs,
        &pipeline::PassOptions {
            raw: raw_format(args.raw_gradients),
            out_dir: out_dir.to_path_buf(),
            batch_size: args.model.batch_size,
            target,
            measures: measures.to_vec(),
            input_saliency: args.input_saliency,
        },
        &mut |p, _| rep.progress(p),
        cancel,
    );
    rep.finish();
    let outcome = outcome?;
    warn_non_finite(rep, outcome.non_finite, pipeline::WEIGHT_GRADIENTS);
    let secs = start.elapsed().as_secs_f64();
    let mut outcome = outcome;
    let zip_name = agent.zip_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let target = target.to_string();
    if let (Some(set), Some(_)) = (&outcome.measures, &args.measures) {
        let dest = out_dir.join(pipeline::measures::MEASURES_FILE);
        let prov = pipeline::measures::Provenance { agent: &zip_name, target: &target };
        pipeline::measures::write(&dest, set, &prov)?;
        rep.done(&format!("wrote {}", dest.display()));
    }
    if let Some(ia) = outcome.input_saliency.take() {
        let dest = out_dir.join(pipeline::input_saliency::INPUT_SALIENCY);
        ia.write(&dest, &zip_name, &target)?;
        rep.done(&format!("wrote {}", dest.display()));
    }
    match &outcome.raw_path {
        Some(p) => rep.done(&format!("wrote {} ({} inputs in {secs:.2} s)", p.display(), outcome.inputs)),
        None => rep.done(&format!(
            "computed gradients of {} inputs in {secs:.2} s (raw gradients not written)",
            outcome.inputs
        )),
    }
    Ok(outcome)
}

fn default_out(agent_path: &Path) -> PathBuf {
    agent::agent_dir(agent_path).join("gradient_analysis")
}

pub fn run(args: &RunArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    if args.ablate {
        check_draws(&args.ablation)?;
    }
    let agent_dir = agent::agent_dir(&args.agent.agent_path);
    must_exist(&args.agent.agent_path, "agent path")?;
    let cross = pipeline::cross_metric_path(&agent_dir);
    must_exist(&cross, "cross-metric file")?;
    // The candidate files are read and checked before any work, as the master script does.
    let candidates = read_candidate_inputs(&cross, &args.selection.useful_neurons_path, Some(&agent_dir))?;
    let (agent, net, target) = load(&args.agent)?;
    let out_dir = args.output_dir.clone().unwrap_or_else(|| default_out(&args.agent.agent_path));
    let mut measures = args.agent.measures.clone().map(|l| l.0).unwrap_or_default();
    if let Some(m) = args.select_by {
        if !measures.contains(&m) {
            measures.push(m);
            measures.sort();
        }
    }
    let outcome = gradient_step(&mut rep, &args.agent, &out_dir, &agent, &net, target, &measures, cancel)?;
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(pipeline::PipelineError::Cancelled.into());
    }
    let avg_path = out_dir.join(pipeline::AVERAGE_GRADIENTS);
    warn_non_finite(&rep, outcome.averages.write(&avg_path)?, pipeline::AVERAGE_GRADIENTS);
    rep.done(&format!("wrote {}", avg_path.display()));
    let ranked = match args.select_by {
        Some(m) => outcome.measures.as_ref().and_then(|set| set.as_averages(m)).unwrap_or_default(),
        None => outcome.averages.clone(),
    };
    let named = extract_and_write(&rep, &candidates, &ranked, &args.selection, &out_dir)?;
    if args.ablate {
        let inputs = pipeline::clean_inputs_path(&agent_dir);
        let what = format!("the selection of k={} m={}", args.selection.k, args.selection.m);
        let job = AblationJob { agent: &agent, net: &net, inputs: &inputs, target, out_dir: &out_dir };
        run_ablation(&mut rep, &job, &named, &what, &args.ablation, args.agent.model.batch_size, cancel)?;
    }
    Ok(())
}

pub fn gradients(args: &GradientsArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    let (agent, net, target) = load(&args.agent)?;
    let out_dir = args.output_dir.clone().unwrap_or_else(|| default_out(&args.agent.agent_path));
    if args.agent.raw_gradients == RawGradients::None {
        bail!("`saliency gradients` writes the per-input gradients; --raw-gradients none makes sense only with `run`");
    }
    let measures = args.agent.measures.clone().map(|l| l.0).unwrap_or_default();
    gradient_step(&mut rep, &args.agent, &out_dir, &agent, &net, target, &measures, cancel)?;
    Ok(())
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub fn average(args: &AverageArgs, cancel: &AtomicBool) -> Result<()> {
    let rep = Reporter::new(args.quiet.quiet);
    must_exist(&args.gradients_path, "gradients file")?;
    let out_dir = args.output_dir.clone().unwrap_or_else(|| parent_dir(&args.gradients_path));
    let avgs = gradfile::average_file(&args.gradients_path, |_, _| {})?;
    if cancel.load(std::sync::atomic::Ordering::Relaxed) {
        return Err(pipeline::PipelineError::Cancelled.into());
    }
    let dest = out_dir.join(pipeline::AVERAGE_GRADIENTS);
    warn_non_finite(&rep, avgs.write(&dest)?, pipeline::AVERAGE_GRADIENTS);
    rep.done(&format!("wrote {} ({} inputs)", dest.display(), avgs.num_examples.unwrap_or(0)));
    Ok(())
}

pub fn extract(args: &ExtractArgs) -> Result<()> {
    let rep = Reporter::new(args.quiet.quiet);
    must_exist(&args.cross_metric_path, "cross-metric file")?;
    must_exist(&args.average_gradients_path, "averages file")?;
    // <agent dir>/patching_results/cross_metric_summary.json -> <agent dir>
    let agent_dir = args.cross_metric_path.parent().and_then(Path::parent);
    let candidates = read_candidate_inputs(&args.cross_metric_path, &args.selection.useful_neurons_path, agent_dir)?;
    let mut avgs = Averages::read(&args.average_gradients_path)?;
    if let Some(m) = args.select_by {
        let path = args
            .measures_path
            .clone()
            .unwrap_or_else(|| parent_dir(&args.average_gradients_path).join(pipeline::measures::MEASURES_FILE));
        must_exist(&path, "measures file")?;
        avgs = pipeline::measures::read(&path, m, &avgs)?;
    }
    let out_dir = args.output_dir.clone().unwrap_or_else(|| parent_dir(&args.average_gradients_path));
    extract_and_write(&rep, &candidates, &avgs, &args.selection, &out_dir)?;
    Ok(())
}

/// The number of random draws is capped (each is a forward pass over every input).
fn check_draws(args: &AblationArgs) -> Result<()> {
    if args.random > args.max_random {
        bail!(
            "--random {} is over the limit of {} draws (each is a forward pass over every input); raise it with \
             --max-random",
            args.random,
            args.max_random
        );
    }
    Ok(())
}

/// What an ablation runs on.
struct AblationJob<'a> {
    agent: &'a Agent,
    net: &'a Net,
    inputs: &'a Path,
    target: Target,
    out_dir: &'a Path,
}

/// Ablates `named` (described as `what` in messages), writes ablation.json and prints the
/// headline numbers.
fn run_ablation(
    rep: &mut Reporter,
    job: &AblationJob,
    named: &[NamedWeight],
    what: &str,
    args: &AblationArgs,
    batch_size: Option<usize>,
    cancel: &AtomicBool,
) -> Result<()> {
    check_draws(args)?;
    let change = Change::from_named(job.agent, named, what).map_err(|e| eyre!(e))?;
    if change.is_empty() {
        bail!("{what} selects no weights: there is nothing to ablate");
    }
    must_exist(job.inputs, "inputs file")?;
    let opts =
        ablation::Options { mode: args.mode, target: job.target, random: args.random, seed: args.seed, batch_size };
    let start = Instant::now();
    let report = ablation::run(job.agent, job.net, job.inputs, &change, &opts, &mut |p| rep.progress(p), cancel);
    rep.finish();
    let report = report?;
    let dest = job.out_dir.join(ablation::report::ABLATION);
    ablation::report::write(&dest, &report)?;
    let s = &report.selection;
    let vs = |name: &str, sel: f64, st: Option<&ablation::Stat>| match st {
        Some(st) => format!(
            "{name} {} (random {} ± {}, percentile {:.0})",
            crate::format::num(sel),
            crate::format::num(st.mean),
            crate::format::num(st.std),
            100.0 * st.percentile
        ),
        None => format!("{name} {}", crate::format::num(sel)),
    };
    let r = report.random.as_ref();
    rep.done(&format!(
        "ablated {} weights ({}, target {}) on {} inputs: {}; {}; {}; predicted drop {}",
        report.num_weights,
        report.mode,
        report.target,
        report.per_input.len(),
        vs("flip rate", s.flip_rate, r.map(|b| &b.flip_rate)),
        vs("target drop", s.mean_target_drop, r.map(|b| &b.mean_target_drop)),
        vs("KL", s.mean_kl, r.map(|b| &b.mean_kl)),
        crate::format::num(s.mean_predicted_drop),
    ));
    rep.done(&format!("wrote {} ({:.2} s)", dest.display(), start.elapsed().as_secs_f64()));
    Ok(())
}

pub fn ablate(args: &AblateArgs, cancel: &AtomicBool) -> Result<()> {
    let mut rep = Reporter::new(args.quiet.quiet);
    check_draws(&args.ablation)?;
    must_exist(&args.agent_path, "agent path")?;
    let agent_dir = agent::agent_dir(&args.agent_path);
    let out_dir = args.output_dir.clone().unwrap_or_else(|| default_out(&args.agent_path));
    let inputs = pipeline::clean_inputs_path(&agent_dir);
    must_exist(&inputs, "inputs file")?;
    // The selection: a candidate file, or k and m applied as `extract` would.
    let by_knobs = args.k.is_some() || args.m.is_some();
    let candidates = if by_knobs {
        let cross = pipeline::cross_metric_path(&agent_dir);
        must_exist(&cross, "cross-metric file")?;
        Some(read_candidate_inputs(&cross, &args.useful_neurons_path, Some(&agent_dir))?)
    } else {
        None
    };
    let file = args.candidates.clone().unwrap_or_else(|| out_dir.join(pipeline::CANDIDATE_WEIGHTS));
    if !by_knobs && !file.exists() {
        bail!(
            "no selection to ablate: {} does not exist (give --candidates FILE, or --k K --m M to select as \
             `saliency extract` would)",
            file.display()
        );
    }
    let (agent, net, target) = load_model(&args.agent_path, &args.model, args.target)?;
    let (named, what) = match candidates {
        None => (ablation::report::read_weight_targets(&file)?, file.display().to_string()),
        Some(cands) => {
            let (k, m) = (args.k.unwrap_or(2), args.m.unwrap_or(4));
            let avgs = averages_for(&mut rep, &agent, &net, &out_dir, &inputs, target, args.model.batch_size, cancel)?;
            let (resolved, sel) = select(&rep, &cands, &avgs, k, m);
            (named_weights(&avgs, &resolved, &sel), format!("the selection of k={k} m={m}"))
        }
    };
    let job = AblationJob { agent: &agent, net: &net, inputs: &inputs, target, out_dir: &out_dir };
    run_ablation(&mut rep, &job, &named, &what, &args.ablation, args.model.batch_size, cancel)
}

/// The averages a k/m selection needs: `<out dir>/average_gradients.json` when it exists and
/// fits the agent (as `extract` would read it), else computed now for `target` (nothing is
/// written).
#[allow(clippy::too_many_arguments)]
fn averages_for(
    rep: &mut Reporter,
    agent: &Agent,
    net: &Net,
    out_dir: &Path,
    inputs: &Path,
    target: Target,
    batch_size: Option<usize>,
    cancel: &AtomicBool,
) -> Result<Averages> {
    let existing = out_dir.join(pipeline::AVERAGE_GRADIENTS);
    if existing.is_file() {
        let avgs = Averages::read(&existing)?;
        let fits = avgs.params.len() == agent.params.len()
            && avgs.params.iter().zip(&agent.params).all(|(a, p)| a.name == p.name && a.shape == p.shape);
        if fits {
            rep.note(&format!("selecting from the averages in {}", existing.display()));
            return Ok(avgs);
        }
        rep.warn(&format!("{} does not fit this agent's parameters: computing the averages again", existing.display()));
    }
    rep.note("no averages yet: running the gradient pass first (nothing is written but ablation.json)");
    let opts = pipeline::PassOptions {
        raw: RawFormat::None,
        out_dir: out_dir.to_path_buf(),
        batch_size,
        target,
        measures: Vec::new(),
        input_saliency: false,
    };
    let outcome = pipeline::gradient_pass(agent, net, inputs, &opts, &mut |p, _| rep.progress(p), cancel);
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
