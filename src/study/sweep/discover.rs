//! Finding agents: research-layout folders, bare zips, RL Zoo log folders (at any depth) and
//! folders of these, or `@FILE` lists; each found zip described as a manifest row.
//!
//! An RL Zoo run folder `<algo>/<env>_<id>/` holds `<env>.zip` (kind `final`),
//! `best_model.zip` (`best`), `rl_model_<N>_steps.zip` (`checkpoint`, step N), and `<env>/` with
//! `args.yml` (the seed) and, when observations were normalised, `vecnormalize.pkl` (exact for
//! the final model only; a checkpoint's own `rl_model_vecnormalize_<N>_steps.pkl` is exact).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::agent::zoo_args;
use crate::pipeline;

/// Most entries looked at while searching folders, and the deepest folder searched.
pub const MAX_ENTRIES: usize = 1_000_000;
const MAX_DEPTH: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A research-layout folder or a zip on its own.
    Agent,
    /// An RL Zoo run's final model.
    Final,
    /// RL Zoo's best model (often a copy of a checkpoint).
    Best,
    Checkpoint,
}

impl Kind {
    pub const ALL: [Kind; 4] = [Kind::Agent, Kind::Final, Kind::Best, Kind::Checkpoint];

    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Agent => "agent",
            Kind::Final => "final",
            Kind::Best => "best",
            Kind::Checkpoint => "checkpoint",
        }
    }
}

/// How the VecNormalize statistics of a found agent are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VecNorm {
    None,
    /// This agent's own statistics.
    Exact(PathBuf),
    /// The run's final statistics, used for a checkpoint or best model (approximate).
    FinalStats(PathBuf),
}

impl VecNorm {
    pub fn status(&self) -> &'static str {
        match self {
            VecNorm::None => "none",
            VecNorm::Exact(_) => "exact",
            VecNorm::FinalStats(_) => "final-stats",
        }
    }

    pub fn file(&self) -> Option<&Path> {
        match self {
            VecNorm::None => None,
            VecNorm::Exact(p) | VecNorm::FinalStats(p) => Some(p),
        }
    }
}

/// A zip found, and what its place says about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Found {
    /// The path as given or found (the manifest's `path`).
    pub path: String,
    pub zip: PathBuf,
    pub kind: Kind,
    /// The run folder, or the agent folder.
    pub run: String,
    pub step: Option<u64>,
    pub environment: Option<String>,
    pub seed: Option<i64>,
    /// The agent folder's own inputs and patching results (research layout).
    pub own_inputs: Option<PathBuf>,
    pub cross_metric: Option<PathBuf>,
    pub vec_normalize: VecNorm,
}

/// The run folders' step of a checkpoint name: `rl_model_<N>_steps.zip`.
fn checkpoint_step(name: &str) -> Option<u64> {
    name.strip_prefix("rl_model_")?.strip_suffix("_steps.zip")?.parse().ok()
}

/// `<env>_<id>` -> `<env>` when the folder looks like an RL Zoo run (holds its `<env>.zip`,
/// a checkpoint, a best model or the `<env>/` parameters folder).
fn zoo_run_env(dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let (env, id) = name.rsplit_once('_')?;
    if env.is_empty() || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let has = |p: PathBuf| p.exists();
    let zips = std::fs::read_dir(dir).ok()?.flatten().any(|e| {
        let n = e.file_name().to_string_lossy().into_owned();
        n == format!("{env}.zip") || n == "best_model.zip" || checkpoint_step(&n).is_some()
    });
    (zips && (has(dir.join(env)) || has(dir.join(format!("{env}.zip"))))).then(|| env.to_string())
}

/// A research-layout agent folder: an agent zip beside `activation_inputs/` or
/// `patching_results/`.
fn is_agent_folder(dir: &Path) -> bool {
    let zip = ["agent.zip", "model.zip", "dqn.zip"].iter().any(|z| dir.join(z).is_file());
    zip && (dir.join("activation_inputs").is_dir() || dir.join("patching_results").is_dir())
}

fn shown(base: &str, rel: &Path) -> String {
    let rel = rel.to_string_lossy();
    if rel.is_empty() {
        base.to_string()
    } else if base.ends_with('/') {
        format!("{base}{rel}")
    } else {
        format!("{base}/{rel}")
    }
}

struct Walk {
    found: Vec<Found>,
    warnings: Vec<String>,
    entries: usize,
    /// Canonical paths of what was taken, to notice a path given twice.
    seen: BTreeMap<PathBuf, String>,
}

impl Walk {
    fn take(&mut self, f: Found) {
        let canon = f.zip.canonicalize().unwrap_or_else(|_| f.zip.clone());
        match self.seen.get(&canon) {
            Some(first) if *first == f.path => {
                self.warnings.push(format!("warning: {} is listed twice: analysed once", f.path))
            }
            Some(first) => {
                self.warnings.push(format!("warning: {} is {first} again (listed twice): analysed once", f.path))
            }
            None => {
                self.seen.insert(canon, f.path.clone());
                self.found.push(f);
            }
        }
    }

    fn agent_folder(&mut self, dir: &Path, path: &str) {
        let Ok(zip) = crate::agent::resolve_agent_zip(dir) else { return };
        let zip_name = zip.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let inputs = pipeline::clean_inputs_path(dir);
        let cross = pipeline::cross_metric_path(dir);
        let vec_normalize = match crate::agent::vecnorm::find(&zip, &Default::default()) {
            Some(p) => VecNorm::Exact(p),
            None => VecNorm::None,
        };
        self.take(Found {
            path: shown(path, Path::new(&zip_name)),
            zip,
            kind: Kind::Agent,
            run: path.to_string(),
            step: None,
            environment: None,
            seed: None,
            own_inputs: inputs.is_file().then_some(inputs),
            cross_metric: cross.is_file().then_some(cross),
            vec_normalize,
        });
    }

    fn bare_zip(&mut self, zip: &Path, path: &str) {
        let vec_normalize = match crate::agent::vecnorm::find(zip, &Default::default()) {
            Some(p) => VecNorm::Exact(p),
            None => VecNorm::None,
        };
        self.take(Found {
            path: path.to_string(),
            zip: zip.to_path_buf(),
            kind: Kind::Agent,
            run: path.to_string(),
            step: None,
            environment: None,
            seed: None,
            own_inputs: None,
            cross_metric: None,
            vec_normalize,
        });
    }

    fn zoo_run(&mut self, dir: &Path, path: &str, env: &str, every: Option<usize>) {
        let params = dir.join(env);
        let seed = match zoo_args::read_args(&params.join("args.yml")) {
            Ok(a) => a.seed,
            Err(e) => {
                self.warnings.push(format!("warning: {path}: no seed (its args.yml cannot be read as data: {e})"));
                None
            }
        };
        let final_stats = params.join("vecnormalize.pkl");
        let mut zips: Vec<(Kind, Option<u64>, String)> = Vec::new();
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        names.sort();
        for n in names {
            if n == format!("{env}.zip") {
                zips.push((Kind::Final, None, n));
            } else if n == "best_model.zip" {
                zips.push((Kind::Best, None, n));
            } else if let Some(step) = checkpoint_step(&n) {
                zips.push((Kind::Checkpoint, Some(step), n));
            }
        }
        keep_every(&mut zips, every);
        let mut approximate = false;
        for (kind, step, name) in zips {
            let own = step.map(|s| dir.join(format!("rl_model_vecnormalize_{s}_steps.pkl"))).filter(|p| p.is_file());
            let vec_normalize = match (own, kind, final_stats.is_file()) {
                (Some(p), _, _) => VecNorm::Exact(p),
                (None, Kind::Final, true) => VecNorm::Exact(final_stats.clone()),
                (None, _, true) => VecNorm::FinalStats(final_stats.clone()),
                _ => VecNorm::None,
            };
            approximate |= matches!(vec_normalize, VecNorm::FinalStats(_));
            self.take(Found {
                path: shown(path, Path::new(&name)),
                zip: dir.join(&name),
                kind,
                run: path.to_string(),
                step,
                environment: Some(env.to_string()),
                seed,
                own_inputs: None,
                cross_metric: None,
                vec_normalize,
            });
        }
        if approximate {
            self.warnings.push(format!(
                "note: {path}: the run's final VecNormalize statistics ({env}/vecnormalize.pkl) are used for its \
                 checkpoints and best model, which RL Zoo keeps none of their own for: their normalisation is \
                 approximate (vec_normalize \"final-stats\" in the manifest)"
            ));
        }
    }

    /// A path given or found: what it is, searched to `depth`.
    fn visit(&mut self, p: &Path, path: &str, depth: usize, every: Option<usize>) -> Result<(), String> {
        self.entries += 1;
        if self.entries > MAX_ENTRIES {
            return Err(format!(
                "more than {MAX_ENTRIES} files and folders searched (limit): name the folders to sweep"
            ));
        }
        if p.is_file() {
            if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("zip")) {
                self.bare_zip(p, path);
            }
            return Ok(());
        }
        if !p.is_dir() {
            return Ok(());
        }
        if is_agent_folder(p) {
            self.agent_folder(p, path);
            return Ok(());
        }
        if let Some(env) = zoo_run_env(p) {
            self.zoo_run(p, path, &env, every);
            return Ok(());
        }
        if depth >= MAX_DEPTH {
            return Ok(());
        }
        let mut children: Vec<PathBuf> =
            std::fs::read_dir(p).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        children.sort();
        for c in children {
            // (folders by a symbolic link are not followed: no loops)
            if std::fs::symlink_metadata(&c).is_ok_and(|m| m.file_type().is_symlink() && c.is_dir()) {
                continue;
            }
            let name = c.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') {
                continue;
            }
            self.visit(&c, &shown(path, Path::new(&name)), depth + 1, every)?;
        }
        Ok(())
    }
}

/// `--every N`: keep every N-th checkpoint of a run, in step order, plus the last one.
fn keep_every(zips: &mut Vec<(Kind, Option<u64>, String)>, every: Option<usize>) {
    let Some(n) = every.filter(|&n| n > 1) else { return };
    let mut steps: Vec<u64> = zips.iter().filter_map(|z| z.1).collect();
    steps.sort_unstable();
    let last = steps.last().copied();
    let kept: Vec<u64> = steps.iter().enumerate().filter(|(i, _)| i % n == 0).map(|(_, &s)| s).chain(last).collect();
    zips.retain(|z| z.1.is_none_or(|s| kept.contains(&s)));
}

/// The paths an `@FILE` lists (one per line; blank lines and `#` comments skipped), relative
/// to the working directory.
fn read_list(file: &Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read the list {}: {e}", file.display()))?;
    Ok(text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_string).collect())
}

/// Everything the paths name, sorted by path (bytes, as UTF-8); and warnings (a path listed
/// twice). A path that does not exist is an error naming it.
pub fn discover(paths: &[String], every: Option<usize>) -> Result<(Vec<Found>, Vec<String>), String> {
    let mut walk = Walk { found: Vec::new(), warnings: Vec::new(), entries: 0, seen: BTreeMap::new() };
    let mut given = Vec::new();
    for p in paths {
        match p.strip_prefix('@') {
            Some(list) => given.extend(read_list(Path::new(list))?),
            None => given.push(p.clone()),
        }
    }
    for p in &given {
        let path = Path::new(p);
        crate::paths::must_exist(path, "sweep path").map_err(|e| e.to_string())?;
        walk.visit(path, p.trim_end_matches('/'), 0, every)?;
    }
    walk.found.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    Ok((walk.found, walk.warnings))
}
