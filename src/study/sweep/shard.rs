//! Past one machine: shards, their files, the merge, and the Slurm job array.
//!
//! Shard I of N analyses the agents at manifest positions p with p mod N = I - 1 and writes
//! `shards/shard-I-of-N.json` (its rows, its agents' summaries, the flags and a digest of the
//! whole discovery). `merge` checks that all N shards are there and agree, and writes the same
//! `manifest.jsonl`, `sweep.json` and `sweep.csv` as the one-process sweep.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::json::{reader::read_value_from, Value};
use crate::pipeline::measures::Measure;
use crate::pipeline::output::{write_err, JsonOutput};
use crate::study::{Result, StudyError};

use super::agent::{AblationSummary, AgentSummary};
use super::manifest::Row;
use super::{Shard, SummaryFlags};

pub const SHARDS: &str = "shards";
/// Largest shard file read.
const MAX_SHARD_BYTES: u64 = 1 << 30;

/// `I/N` with 1 <= I <= N.
pub fn parse(text: &str) -> std::result::Result<Shard, String> {
    let bad = || format!("--shard {text}: expected I/N with 1 <= I <= N (e.g. 2/8), or slurm");
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (index, count) = (i.trim().parse::<usize>().map_err(|_| bad())?, n.trim().parse::<usize>().map_err(|_| bad())?);
    if index == 0 || count == 0 || index > count {
        return Err(bad());
    }
    Ok(Shard { index, count })
}

/// The shard of a Slurm job-array task: I = SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN + 1,
/// N = SLURM_ARRAY_TASK_COUNT. An array whose ids are not contiguous from MIN is an error.
pub fn from_slurm(var: &dyn Fn(&str) -> Option<String>) -> std::result::Result<Shard, String> {
    let get = |k: &str| -> std::result::Result<i64, String> {
        let v = var(k).ok_or_else(|| format!("--shard slurm: {k} is not set (is this a Slurm job-array task?)"))?;
        v.trim().parse().map_err(|_| format!("--shard slurm: {k} is '{v}', not a number"))
    };
    let (id, min, count) = (get("SLURM_ARRAY_TASK_ID")?, get("SLURM_ARRAY_TASK_MIN")?, get("SLURM_ARRAY_TASK_COUNT")?);
    let max = get("SLURM_ARRAY_TASK_MAX").unwrap_or(min + count - 1);
    if count < 1 || max - min + 1 != count {
        return Err(format!(
            "--shard slurm: the job array is not contiguous (ids {min}..{max} but {count} tasks, e.g. --array=1,3,5 or \
             a step): submit it as --array=1-N"
        ));
    }
    if id < min || id > max {
        return Err(format!("--shard slurm: SLURM_ARRAY_TASK_ID {id} is outside {min}..{max}"));
    }
    Ok(Shard { index: (id - min + 1) as usize, count: count as usize })
}

pub fn shard_path(out: &Path, shard: Shard) -> PathBuf {
    out.join(SHARDS).join(format!("shard-{}-of-{}.json", shard.index, shard.count))
}

pub type W = crate::pipeline::output::JsonFileWriter;

fn write_summary(w: &mut W, s: &AgentSummary) -> std::io::Result<()> {
    w.begin_object()?;
    w.key_string("agent_id", &s.agent_id)?;
    w.key_int("inputs", s.inputs as i64)?;
    w.key_float("gini", s.gini)?;
    s.write_layers(w)?;
    if let Some(a) = &s.ablation {
        w.key("ablation")?;
        w.begin_array()?;
        for v in [Some(a.flip_rate), Some(a.mean_target_drop), a.random_flip_rate, a.percentile] {
            match v {
                Some(x) => w.float(x)?,
                None => w.null()?,
            }
        }
        w.end_array()?;
    }
    s.write_validation(w)?;
    w.end_object()
}

fn read_summary(v: &Value) -> Option<AgentSummary> {
    let ablation = match v.get("ablation").and_then(Value::as_array) {
        Some(a) if a.len() == 4 => Some(AblationSummary {
            flip_rate: a[0].as_f64()?,
            mean_target_drop: a[1].as_f64()?,
            random_flip_rate: a[2].as_f64(),
            percentile: a[3].as_f64(),
        }),
        _ => None,
    };
    AgentSummary::from_json(v, ablation)
}

/// Writes this shard's file: its rows (with their manifest positions), its agents' summaries,
/// the summary flags and the discovery's digest.
pub fn write_shard(
    out: &Path,
    shard: Shard,
    discovery: &str,
    flags: &SummaryFlags,
    rows: &[(usize, Row)],
    summaries: &BTreeMap<String, AgentSummary>,
) -> Result<PathBuf> {
    let dest = shard_path(out, shard);
    let mut file = JsonOutput::create(&dest)?;
    let w = file.json();
    let res: std::io::Result<()> = (|| {
        w.begin_object()?;
        w.key_string("format", "saliency-sweep-shard-1")?;
        w.key_int("shard", shard.index as i64)?;
        w.key_int("of", shard.count as i64)?;
        w.key_string("discovery", discovery)?;
        w.key("flags")?;
        w.begin_object()?;
        w.key_string("digest", &flags.digest)?;
        w.key("select_by")?;
        match flags.select_by {
            Some(m) => w.string(m.name())?,
            None => w.null()?,
        }
        w.key("ablate")?;
        w.int(i64::from(flags.ablate))?;
        if flags.validate {
            w.key("validate")?;
            w.int(1)?;
        }
        w.key_int("top", flags.top as i64)?;
        w.key_int("bootstrap", flags.bootstrap as i64)?;
        w.key_int("seed", flags.seed as i64)?;
        w.end_object()?;
        w.key("rows")?;
        w.begin_array()?;
        for (p, r) in rows {
            w.begin_array()?;
            w.int(*p as i64)?;
            w.string(&r.to_json())?;
            w.end_array()?;
        }
        w.end_array()?;
        w.key("summaries")?;
        w.begin_array()?;
        for s in summaries.values() {
            write_summary(w, s)?;
        }
        w.end_array()?;
        w.end_object()
    })();
    res.map_err(write_err(&dest))?;
    file.commit()?;
    Ok(dest)
}

/// One shard file, read.
struct ShardFile {
    path: PathBuf,
    shard: Shard,
    discovery: String,
    flags: SummaryFlags,
    rows: Vec<(usize, Row)>,
    summaries: Vec<AgentSummary>,
}

fn read_shard(path: &Path) -> Result<ShardFile> {
    let foreign = |why: &str| StudyError::Refused(format!("{}: {why}", path.display()));
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_SHARD_BYTES {
        return Err(foreign(&format!("{len} bytes, over the limit of {MAX_SHARD_BYTES}")));
    }
    let file = std::fs::File::open(path).map_err(crate::pipeline::PipelineError::io("open shard file", path))?;
    let v = read_value_from(std::io::BufReader::new(file), &path.display().to_string())
        .map_err(crate::pipeline::PipelineError::Json)?;
    if v.get("format").and_then(Value::as_str) != Some("saliency-sweep-shard-1") {
        return Err(foreign("not a saliency sweep shard file"));
    }
    let int = |k: &str| v.get(k).and_then(Value::as_i64).map(|x| x as usize);
    let (index, count) =
        (int("shard").ok_or_else(|| foreign("no shard number"))?, int("of").ok_or_else(|| foreign("no shard count"))?);
    let fl = v.get("flags").ok_or_else(|| foreign("no flags"))?;
    let flags = SummaryFlags {
        select_by: fl.get("select_by").and_then(Value::as_str).and_then(|m| Measure::parse(m).ok()),
        ablate: fl.get("ablate").and_then(Value::as_i64) == Some(1),
        validate: fl.get("validate").and_then(Value::as_i64) == Some(1),
        top: fl.get("top").and_then(Value::as_i64).unwrap_or(0) as usize,
        bootstrap: fl.get("bootstrap").and_then(Value::as_i64).unwrap_or(0) as usize,
        seed: fl.get("seed").and_then(Value::as_i64).unwrap_or(0) as u64,
        digest: fl.get("digest").and_then(Value::as_str).unwrap_or_default().to_string(),
    };
    let rows = v
        .get("rows")
        .and_then(Value::as_array)
        .ok_or_else(|| foreign("no rows"))?
        .iter()
        .map(|pr| {
            let a = pr.as_array()?;
            let line = read_value_from(a.get(1)?.as_str()?.as_bytes(), "row").ok()?;
            Some((a.first()?.as_i64()? as usize, Row::from_json(&line)?))
        })
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| foreign("a row that cannot be read"))?;
    let summaries = v
        .get("summaries")
        .and_then(Value::as_array)
        .ok_or_else(|| foreign("no summaries"))?
        .iter()
        .map(read_summary)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| foreign("a summary that cannot be read"))?;
    Ok(ShardFile {
        path: path.to_path_buf(),
        shard: Shard { index, count },
        discovery: v.get("discovery").and_then(Value::as_str).unwrap_or_default().to_string(),
        flags,
        rows,
        summaries,
    })
}

/// What `merge` puts back together.
pub struct Merged {
    pub rows: Vec<crate::study::sweep::manifest::Row>,
    pub summaries: BTreeMap<String, AgentSummary>,
    pub flags: SummaryFlags,
}

/// Reads every shard of `out`, checks they are all there and from the same sweep.
pub fn merge(out: &Path) -> Result<Merged> {
    let dir = out.join(SHARDS);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|_| {
            StudyError::Refused(format!("{} holds no shards (run the shards with --shard I/N first)", dir.display()))
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("shard-") && n.ends_with(".json"))
        })
        .collect();
    files.sort();
    let shards: Vec<ShardFile> = files.iter().map(|p| read_shard(p)).collect::<Result<_>>()?;
    if shards.is_empty() {
        return Err(StudyError::Refused(format!("{} holds no shard files", dir.display())));
    }
    // The sweep is what most shard files agree on; a file that differs is the odd one out.
    let key = |s: &ShardFile| (s.shard.count, s.flags.digest.clone(), s.discovery.clone());
    let first = shards
        .iter()
        .max_by_key(|a| (shards.iter().filter(|b| key(b) == key(a)).count(), std::cmp::Reverse(a.shard.index)))
        .unwrap_or(&shards[0]);
    for s in &shards {
        let other = |why: &str| {
            StudyError::Refused(format!(
                "{} is a shard of another sweep than the others in {} ({why}): remove it, or merge each sweep's \
                 shards in its own folder",
                s.path.display(),
                dir.display()
            ))
        };
        if s.shard.count != first.shard.count {
            return Err(other(&format!("{} shards, not {}", s.shard.count, first.shard.count)));
        }
        if s.flags != first.flags {
            return Err(other("other flags"));
        }
        if s.discovery != first.discovery {
            return Err(other("other agents found"));
        }
    }
    let n = first.shard.count;
    for i in 1..=n {
        if !shards.iter().any(|s| s.shard.index == i) {
            let missing = super::shard::shard_path(out, Shard { index: i, count: n });
            return Err(StudyError::Refused(format!(
                "shard {i} of {n} is missing: {} does not exist (run that shard again with --shard {i}/{n})",
                missing.display()
            )));
        }
    }
    let mut rows: Vec<(usize, Row)> = shards.iter().flat_map(|s| s.rows.iter().cloned()).collect();
    rows.sort_by_key(|(p, _)| *p);
    let summaries = shards.iter().flat_map(|s| s.summaries.iter().cloned()).map(|s| (s.agent_id.clone(), s)).collect();
    Ok(Merged { rows: rows.into_iter().map(|(_, r)| r).collect(), summaries, flags: first.flags.clone() })
}

/// Resources of the Slurm tasks.
#[derive(Debug, Clone)]
pub struct SlurmResources {
    pub tasks: usize,
    pub cpus: usize,
    pub mem: String,
    pub time: String,
    pub partition: Option<String>,
}

fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// The job-array script: the same sweep with `--shard slurm`, one task per shard, logs in
/// `OUT/logs/%A_%a.out`.
pub fn sbatch_script(exe: &str, args: &[String], cwd: &Path, out: &Path, r: &SlurmResources) -> String {
    let out_s = out.display().to_string();
    let mut s = String::from("#!/bin/bash\n");
    s.push_str("# The sweep as a Slurm job array: each task analyses one shard (saliency sweep --shard slurm).\n");
    s.push_str("# Submit it, then the merge once every task has succeeded:\n");
    s.push_str(&format!("#   jid=$(sbatch --parsable THIS_FILE)\n#   sbatch --dependency=afterok:$jid --output={}/logs/merge_%j.out --wrap \"{} sweep merge {}\"\n", shell_quote(&out_s), shell_quote(exe), shell_quote(&out_s)));
    s.push_str("#SBATCH --job-name=saliency-sweep\n");
    s.push_str(&format!("#SBATCH --array=1-{}\n", r.tasks));
    s.push_str(&format!("#SBATCH --output={}/logs/%A_%a.out\n", out_s));
    s.push_str(&format!("#SBATCH --cpus-per-task={}\n", r.cpus));
    s.push_str(&format!("#SBATCH --mem={}\n", r.mem));
    s.push_str(&format!("#SBATCH --time={}\n", r.time));
    if let Some(p) = &r.partition {
        s.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    s.push_str("set -euo pipefail\n");
    // A part of the array resubmitted alone (--array=3) would see a count of 1 and analyse
    // everything as shard 1 of 1: refuse it. Resubmitting the whole array skips what is done.
    s.push_str(&format!(
        "if [ \"${{SLURM_ARRAY_TASK_COUNT:-}}\" != {n} ]; then\n  echo \"saliency sweep: this script is one job array of {n} tasks (--array=1-{n}), \
         not ${{SLURM_ARRAY_TASK_COUNT:-0}}; submit it whole (finished agents are skipped)\" >&2\n  exit 2\nfi\n",
        n = r.tasks
    ));
    // (the paths of the command line are as they were given, from this folder)
    s.push_str(&format!("cd {}\n", shell_quote(&cwd.display().to_string())));
    let mut cmd = vec![shell_quote(exe), "sweep".to_string()];
    cmd.extend(args.iter().map(|a| shell_quote(a)));
    cmd.extend(["--shard".into(), "slurm".into(), "--jobs".into(), r.cpus.to_string()]);
    s.push_str(&format!("exec {}\n", cmd.join(" ")));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_from_flags_and_slurm_variables() {
        assert_eq!(parse("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let ok = env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(from_slurm(&ok), Ok(Shard { index: 3, count: 4 }));
        let gaps = env(&[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_MAX", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(from_slurm(&gaps).unwrap_err().contains("not contiguous"));
        let none = env(&[]);
        assert!(from_slurm(&none).unwrap_err().contains("SLURM_ARRAY_TASK_ID is not set"));
        let owned: Vec<usize> = (0..10).filter(|&p| Shard { index: 2, count: 3 }.owns(p)).collect();
        assert_eq!(owned, [1, 4, 7]);
    }
}
