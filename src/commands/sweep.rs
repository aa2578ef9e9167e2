//! `saliency sweep` and `saliency sweep merge`: flags -> `study::sweep`, and what it reports
//! as progress bars (one per agent at work and one overall) and lines.

use std::collections::{BTreeMap, HashMap};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::{SweepArgs, SweepCommand};
use crate::pipeline::Progress;
use crate::study::sweep::agent::AgentSummary;
use crate::study::sweep::manifest::Row;
use crate::study::sweep::runner::{self, Observer, SweepOutcome, SweepRequest};
use crate::study::sweep::shard::{self, SlurmResources};
use crate::study::sweep::{Shard, SweepFlags};

use super::raw_format;

/// Progress bars on a terminal (one overall, one per agent at work); lines otherwise.
struct Bars {
    quiet: bool,
    multi: Option<MultiProgress>,
    overall: Option<ProgressBar>,
    agents: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new(quiet: bool) -> Bars {
        let tty = !quiet && std::io::stderr().is_terminal();
        let multi = tty.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Bars { quiet, multi, overall: None, agents: Mutex::new(HashMap::new()) }
    }

    /// A line on stderr (above the bars); notes and progress lines only without --quiet.
    fn line(&self, text: &str) {
        if self.quiet && !text.starts_with("warning:") && !text.starts_with("failed:") {
            return;
        }
        match &self.multi {
            Some(m) => {
                let _ = m.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

impl Observer for Bars {
    fn discovered(&self, rows: &[Row], warnings: &[String]) {
        for w in warnings {
            self.line(w);
        }
        let pending = rows.iter().filter(|r| r.status == crate::study::sweep::manifest::Status::Pending).count();
        if !self.quiet {
            self.line(&format!("found {} agents ({pending} to analyse here)", rows.len()));
        }
    }

    fn started(&self, row: &Row) {
        let Some(m) = &self.multi else { return };
        let bar = m.add(ProgressBar::new(0));
        bar.set_style(
            ProgressStyle::with_template("  {prefix:.cyan} {bar:24} {pos}/{len} inputs {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_prefix(row.agent_id.clone());
        bar.set_message(row.path.clone());
        if let Ok(mut a) = self.agents.lock() {
            a.insert(row.agent_id.clone(), bar);
        }
    }

    fn progress(&self, row: &Row, p: Progress) {
        if let Some(bar) = self.agents.lock().ok().and_then(|a| a.get(&row.agent_id).cloned()) {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
        }
    }

    fn finished(&self, row: &Row, outcome: &std::result::Result<(&AgentSummary, bool), String>) {
        if let Some(bar) = self.agents.lock().ok().and_then(|mut a| a.remove(&row.agent_id)) {
            bar.finish_and_clear();
        }
        if let Some(o) = &self.overall {
            o.inc(1);
        }
        match outcome {
            Err(e) => self.line(&format!("failed: {}: {e}", row.path)),
            Ok((_, skipped)) if !self.quiet && self.multi.is_none() => self.line(&format!(
                "{} {}: {}",
                if *skipped { "done already" } else { "analysed" },
                row.agent_id,
                row.path
            )),
            Ok(_) => {}
        }
    }

    fn warning(&self, row: &Row, text: &str) {
        self.line(&format!("warning: {}: {text}", row.path));
    }
}

/// The sweep's flags, from the command line.
fn flags(args: &SweepArgs) -> Result<SweepFlags> {
    let (mut inputs, mut by_env) = (None, BTreeMap::new());
    for spec in &args.inputs {
        match spec.split_once('=') {
            Some((env, file)) if !env.is_empty() && !file.is_empty() => {
                by_env.insert(env.to_string(), PathBuf::from(file));
            }
            _ if inputs.is_some() => {
                bail!("--inputs {spec}: a second plain --inputs FILE (give ENV_ID=FILE per environment)")
            }
            _ => inputs = Some(PathBuf::from(spec)),
        }
    }
    for f in inputs.iter().chain(by_env.values()) {
        crate::paths::must_exist(f, "inputs file")?;
    }
    let group_by = match &args.group_by {
        Some(re) => Some(regex::Regex::new(re).map_err(|e| eyre!("--group-by {re}: not a regular expression: {e}"))?),
        None => None,
    };
    let mut measures = args.measures.clone().map(|l| l.0).unwrap_or_default();
    // The summary reads the --select-by measure from each agent's measures.safetensors.
    if let Some(m) = args.select_by.filter(|m| !measures.contains(m)) {
        measures.push(m);
        measures.sort();
    }
    let ablation = args.ablation.settings();
    if args.ablate {
        ablation.check()?;
    }
    Ok(SweepFlags {
        k: args.k,
        m: args.m,
        target: args.target,
        measures,
        select_by: args.select_by,
        raw: raw_format(args.raw_gradients),
        ablate: args.ablate.then_some(ablation),
        validate: match args.validate {
            true => {
                let v = crate::study::validate::ValidateSettings {
                    bootstrap: args.bootstrap,
                    ..args.validation.settings(&args.ablation)
                };
                v.check()?;
                Some(v)
            }
            false => None,
        },
        candidates_by: args.candidates_by,
        useful_neurons: args.useful_neurons_path.clone(),
        inputs,
        inputs_by_env: by_env,
        group_by,
        top: args.top,
        bootstrap: args.bootstrap,
        seed: args.ablation.seed,
        every: args.every,
        device: args.model.device.clone(),
        overrides: args.model.overrides()?,
        limits: args.model.limits(),
        batch_size: args.model.batch_size,
    })
}

/// `--emit-sbatch FILE`: the job-array script, and how to submit it and the merge.
fn emit_sbatch(args: &SweepArgs, file: &std::path::Path) -> Result<()> {
    let exe = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "saliency".into());
    // The same command line, less what is only for the emitting.
    let mut rest: Vec<String> = Vec::new();
    let mut argv = std::env::args().skip(2).peekable();
    while let Some(a) = argv.next() {
        let takes_value = [
            "--emit-sbatch",
            "--slurm-tasks",
            "--slurm-cpus",
            "--slurm-mem",
            "--slurm-time",
            "--slurm-partition",
            "--shard",
            "--jobs",
        ];
        if ["--explore", "--mouse"].contains(&a.as_str()) {
            continue;
        }
        if takes_value.contains(&a.as_str()) {
            argv.next();
            continue;
        }
        if takes_value.iter().any(|f| a.starts_with(&format!("{f}="))) {
            continue;
        }
        rest.push(a);
    }
    let out = std::path::absolute(&args.output_dir).unwrap_or_else(|_| args.output_dir.clone());
    let resources = SlurmResources {
        tasks: args.slurm_tasks.max(1),
        cpus: args.slurm_cpus.max(1),
        mem: args.slurm_mem.clone(),
        time: args.slurm_time.clone(),
        partition: args.slurm_partition.clone(),
    };
    let cwd = std::env::current_dir().wrap_err("cannot tell the working directory")?;
    let script = shard::sbatch_script(&exe, &rest, &cwd, &out, &resources);
    std::fs::create_dir_all(out.join("logs")).wrap_err_with(|| format!("cannot create {}/logs", out.display()))?;
    std::fs::write(file, script).wrap_err_with(|| format!("cannot write {}", file.display()))?;
    let shown = file.display();
    println!("wrote {shown}: a job array of {} tasks; submit it and the merge with", resources.tasks);
    println!("  jid=$(sbatch --parsable {shown})");
    println!(
        "  sbatch --dependency=afterok:$jid --output={}/logs/merge_%j.out --wrap \"{exe} sweep merge {}\"",
        out.display(),
        out.display()
    );
    Ok(())
}

fn report(outcome: &SweepOutcome, quiet: bool) -> u8 {
    if !quiet {
        for l in &outcome.table {
            println!("{l}");
        }
    }
    for (path, e) in &outcome.failed {
        eprintln!("failed: {path}: {e}");
    }
    outcome.ending.code()
}

/// The sweep the flags ask for (one process, or one shard).
pub fn request(args: &SweepArgs) -> Result<SweepRequest> {
    let shard = match args.shard.as_deref() {
        None => Shard::WHOLE,
        Some("slurm") => shard::from_slurm(&|k| std::env::var(k).ok()).map_err(|e| eyre!(e))?,
        Some(s) => shard::parse(s).map_err(|e| eyre!(e))?,
    };
    if args.explore && (shard != Shard::WHOLE || args.emit_sbatch.is_some()) {
        bail!("--explore watches a whole sweep in one process: not with --shard or --emit-sbatch");
    }
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)).max(1);
    Ok(SweepRequest {
        paths: args.paths.clone(),
        out: args.output_dir.clone(),
        flags: flags(args)?,
        jobs,
        force: args.force,
        shard,
    })
}

/// `saliency sweep`: returns the exit status (0 all ok, 3 some failed, 1 none ran).
pub fn sweep(args: &SweepArgs, cancel: &AtomicBool) -> Result<u8> {
    if let Some(SweepCommand::Merge { out, quiet }) = &args.merge {
        crate::paths::must_exist(out, "sweep folder")?;
        let outcome = runner::merge(out)?;
        if !quiet.quiet {
            println!("merged the shards of {}: wrote manifest.jsonl, sweep.json, sweep.csv", out.display());
        }
        return Ok(report(&outcome, quiet.quiet));
    }
    if let Some(file) = &args.emit_sbatch {
        emit_sbatch(args, file)?;
        return Ok(0);
    }
    let req = request(args)?;
    let shard = req.shard;
    let bars = Bars::new(args.quiet.quiet);
    let outcome = runner::sweep(&req, &bars, cancel)?;
    if let Some(file) = &outcome.shard_file {
        if !args.quiet.quiet {
            println!(
                "shard {}/{} done: wrote {}; when every shard is done: saliency sweep merge {}",
                shard.index,
                shard.count,
                file.display(),
                args.output_dir.display()
            );
        }
    } else if !args.quiet.quiet {
        println!("wrote {}/manifest.jsonl, sweep.json, sweep.csv", args.output_dir.display());
    }
    Ok(report(&outcome, args.quiet.quiet))
}
