//! The manifest: one row per discovered zip, what it is and what became of it
//! (`manifest.jsonl`, one JSON object per line, sorted by path).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::agent::{AgentFile, AgentLimits, ArchOverrides};
use crate::json::writer::push_json_string;
use crate::json::Value;
use crate::study::candidates::{CandidateChoice, Candidates};

use super::discover::{Found, Kind};
use super::SweepFlags;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Not run yet (only while the sweep runs).
    Pending,
    Ok,
    Failed,
    SkippedDuplicate,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Ok => "ok",
            Status::Failed => "failed",
            Status::SkippedDuplicate => "skipped-duplicate",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [Status::Pending, Status::Ok, Status::Failed, Status::SkippedDuplicate].into_iter().find(|x| x.name() == s)
    }
}

/// One manifest line.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub agent_id: String,
    pub path: String,
    pub kind: Kind,
    pub run: String,
    pub step: Option<u64>,
    pub algorithm: Option<String>,
    pub environment: Option<String>,
    pub seed: Option<i64>,
    pub group: String,
    /// `own`, or the `--inputs` file used.
    pub inputs: String,
    /// `patching` or `saliency:N`.
    pub candidates: String,
    pub vec_normalize: String,
    pub duplicate_of: Option<String>,
    pub status: Status,
    pub error: Option<String>,
}

impl Row {
    /// The JSON line (Python's `json.dumps` layout: `", "` and `": "` separators).
    pub fn to_json(&self) -> String {
        let mut out = Vec::new();
        let mut fields: Vec<(&str, Option<String>)> = Vec::new();
        let s = |v: &str| {
            let mut b = Vec::new();
            push_json_string(&mut b, v);
            String::from_utf8(b).unwrap_or_default()
        };
        let opt_s = |v: &Option<String>| v.as_ref().map(|x| s(x));
        fields.push(("agent_id", Some(s(&self.agent_id))));
        fields.push(("path", Some(s(&self.path))));
        fields.push(("kind", Some(s(self.kind.name()))));
        fields.push(("run", Some(s(&self.run))));
        fields.push(("step", self.step.map(|v| v.to_string())));
        fields.push(("algorithm", opt_s(&self.algorithm)));
        fields.push(("environment", opt_s(&self.environment)));
        fields.push(("seed", self.seed.map(|v| v.to_string())));
        fields.push(("group", Some(s(&self.group))));
        fields.push(("inputs", Some(s(&self.inputs))));
        fields.push(("candidates", Some(s(&self.candidates))));
        fields.push(("vec_normalize", Some(s(&self.vec_normalize))));
        fields.push(("duplicate_of", opt_s(&self.duplicate_of)));
        fields.push(("status", Some(s(self.status.name()))));
        fields.push(("error", opt_s(&self.error)));
        out.push(b'{');
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b", ");
            }
            push_json_string(&mut out, k);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_deref().unwrap_or("null").as_bytes());
        }
        out.push(b'}');
        String::from_utf8(out).unwrap_or_default()
    }

    /// A row from its JSON (a shard file holds them).
    pub fn from_json(v: &Value) -> Option<Row> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
        let kind = Kind::parse(&s("kind")?)?;
        Some(Row {
            agent_id: s("agent_id")?,
            path: s("path")?,
            kind,
            run: s("run")?,
            step: v.get("step").and_then(Value::as_i64).map(|x| x as u64),
            algorithm: s("algorithm"),
            environment: s("environment"),
            seed: v.get("seed").and_then(Value::as_i64),
            group: s("group")?,
            inputs: s("inputs")?,
            candidates: s("candidates")?,
            vec_normalize: s("vec_normalize")?,
            duplicate_of: s("duplicate_of"),
            status: Status::parse(&s("status")?)?,
            error: s("error"),
        })
    }
}

pub const MANIFEST: &str = "manifest.jsonl";

/// Reads `manifest.jsonl` (at most `MAX_SMALL_FILE` bytes); a line that is not a row is an
/// error naming its number.
pub fn read(path: &Path) -> crate::study::Result<Vec<Row>> {
    use crate::pipeline::extract::MAX_SMALL_FILE;
    let refused = |why: String| crate::study::StudyError::Refused(format!("{}: {why}", path.display()));
    let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if len > MAX_SMALL_FILE {
        return Err(refused(format!("{len} bytes, over the limit of {MAX_SMALL_FILE}")));
    }
    let text = std::fs::read_to_string(path).map_err(crate::pipeline::PipelineError::io("read manifest", path))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            crate::json::reader::read_value_from(line.as_bytes(), "manifest line")
                .ok()
                .as_ref()
                .and_then(Row::from_json)
                .ok_or_else(|| refused(format!("line {} is not a manifest row", i + 1)))
        })
        .collect()
}

/// Writes `manifest.jsonl` atomically.
pub fn write(dest: &Path, rows: &[Row]) -> crate::study::Result<()> {
    let mut f = crate::pipeline::output::AtomicFile::create(dest)?;
    let mut text = String::new();
    for r in rows {
        text.push_str(&r.to_json());
        text.push('\n');
    }
    f.file().write_all(text.as_bytes()).map_err(crate::pipeline::output::write_err(dest))?;
    f.commit()?;
    Ok(())
}

/// What an agent runs with, once identified.
#[derive(Debug, Clone)]
pub struct Plan {
    pub zip: PathBuf,
    pub inputs: PathBuf,
    pub candidates: CandidateChoice,
    pub vec_normalize: Option<PathBuf>,
}

/// A short stable text for a value (the default group's architecture part).
fn digest_hex(text: &str, digits: usize) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes()).iter().take(digits.div_ceil(2)).map(|b| format!("{b:02x}")).collect::<String>()
        [..digits]
        .to_string()
}

/// The group of an agent: the first capture group of `--group-by` on its path, or by
/// default its algorithm, environment and parameters (names and shapes).
fn group_of(found: &Found, algorithm: &str, params: &[(String, Vec<usize>)], flags: &SweepFlags) -> String {
    if let Some(re) = &flags.group_by {
        if let Some(c) = re.captures(&found.path).and_then(|c| c.get(1)) {
            return c.as_str().to_string();
        }
        return found.path.clone();
    }
    let arch: String = params.iter().map(|(n, s)| format!("{n}:{s:?};")).collect();
    format!("{algorithm}/{}/{}", found.environment.as_deref().unwrap_or("-"), digest_hex(&arch, 8))
}

/// The inputs of an agent: its own, else `--inputs ENV=FILE` for its environment, else the
/// plain `--inputs FILE`.
fn inputs_of(found: &Found, flags: &SweepFlags) -> Result<(PathBuf, String), String> {
    if let Some(own) = &found.own_inputs {
        return Ok((own.clone(), "own".into()));
    }
    let per_env = found.environment.as_ref().and_then(|e| flags.inputs_by_env.get(e));
    match per_env.or(flags.inputs.as_ref()) {
        Some(f) => Ok((f.clone(), f.display().to_string())),
        None => Err(format!(
            "no inputs: {} has no activation_inputs/clean_inputs.json and no --inputs {}FILE applies",
            found.path,
            found.environment.as_deref().map(|e| format!("{e}=")).unwrap_or_default()
        )),
    }
}

/// A row and plan for a found zip (a zip that cannot be read is a failed row, with why).
pub fn identify(found: &Found, flags: &SweepFlags, limits: &AgentLimits) -> (Row, Option<Plan>) {
    let mut row = Row {
        agent_id: String::new(),
        path: found.path.clone(),
        kind: found.kind,
        run: found.run.clone(),
        step: found.step,
        algorithm: None,
        environment: found.environment.clone(),
        seed: found.seed,
        group: String::new(),
        inputs: String::new(),
        candidates: String::new(),
        vec_normalize: found.vec_normalize.status().to_string(),
        duplicate_of: None,
        status: Status::Pending,
        error: None,
    };
    let failed = |mut row: Row, e: String| {
        row.status = Status::Failed;
        row.error = Some(e);
        (row, None)
    };
    // Opened first: its errors say best what is wrong with a zip (truncated, not SB3's).
    let overrides = ArchOverrides { vec_normalize: crate::agent::vecnorm::Choice::Off, ..Default::default() };
    let opened = AgentFile::open(&found.zip, &overrides, limits)
        .and_then(|f| crate::agent::torchzip::policy_digest(&found.zip, limits).map(|id| (f, id)));
    let file = match opened {
        Ok((f, id)) => {
            row.agent_id = id;
            f
        }
        Err(e) => {
            row.agent_id = file_digest(&found.zip);
            row.group = "unreadable".into();
            return failed(row, crate::error_text(&e));
        }
    };
    let algorithm = file.family().name().to_string();
    row.group = group_of(found, &algorithm, &file.param_shapes(), flags);
    row.algorithm = Some(algorithm);
    let candidates = match &found.cross_metric {
        Some(cross) => {
            let dir = cross.parent().and_then(Path::parent);
            match Candidates::read(cross, flags.useful_neurons.as_deref(), dir) {
                Ok(c) => CandidateChoice::Patching(c),
                Err(e) => return failed(row, e.to_string()),
            }
        }
        None => CandidateChoice::Saliency(flags.candidates_by),
    };
    row.candidates = candidates.label();
    let (inputs, label) = match inputs_of(found, flags) {
        Ok(x) => x,
        Err(e) => return failed(row, e),
    };
    row.inputs = label;
    // (--no-vec-normalize turns the statistics off; --vec-normalize FILE gives them all one)
    let vec_normalize = match &flags.overrides.vec_normalize {
        crate::agent::vecnorm::Choice::Off => None,
        crate::agent::vecnorm::Choice::File(f) => Some(f.clone()),
        crate::agent::vecnorm::Choice::Auto => found.vec_normalize.file().map(Path::to_path_buf),
    };
    if vec_normalize.is_none() {
        row.vec_normalize = "none".into();
    }
    (row, Some(Plan { zip: found.zip.clone(), inputs, candidates, vec_normalize }))
}

/// The whole zip file's digest (for a zip whose policy.pth cannot be read).
fn file_digest(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let _ = std::fs::File::open(path).and_then(|mut f| std::io::copy(&mut f, &mut h));
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Marks networks found more than once: one copy is analysed (a final model, else a
/// checkpoint, else an agent, else a best model; then by manifest order), the others are
/// `skipped-duplicate` with `duplicate_of`, and a best model takes the step of the checkpoint
/// it copies.
pub fn mark_duplicates(rows: &mut [Row]) {
    let mut by_id: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        if r.status != Status::Failed {
            by_id.entry(r.agent_id.clone()).or_default().push(i);
        }
    }
    let priority = |k: Kind| match k {
        Kind::Final => 0,
        Kind::Checkpoint => 1,
        Kind::Agent => 2,
        Kind::Best => 3,
    };
    for (_, idx) in by_id.into_iter().filter(|(_, v)| v.len() > 1) {
        let keep = *idx.iter().min_by_key(|&&i| (priority(rows[i].kind), i)).unwrap_or(&idx[0]);
        let step =
            idx.iter().filter_map(|&i| (rows[i].kind == Kind::Checkpoint).then_some(rows[i].step).flatten()).min();
        for &i in &idx {
            if i == keep {
                continue;
            }
            rows[i].status = Status::SkippedDuplicate;
            rows[i].duplicate_of = Some(rows[keep].agent_id.clone());
            if rows[i].kind == Kind::Best {
                rows[i].step = step.or(rows[keep].step);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, kind: Kind, step: Option<u64>) -> Row {
        Row {
            agent_id: id.into(),
            path: format!("run/{id}-{}", kind.name()),
            kind,
            run: "run".into(),
            step,
            algorithm: Some("DQN".into()),
            environment: None,
            seed: Some(1),
            group: "g".into(),
            inputs: "own".into(),
            candidates: "patching".into(),
            vec_normalize: "none".into(),
            duplicate_of: None,
            status: Status::Pending,
            error: None,
        }
    }

    #[test]
    fn a_best_model_copying_a_checkpoint_is_analysed_once() {
        let mut rows =
            vec![row("a", Kind::Best, None), row("a", Kind::Checkpoint, Some(2000)), row("b", Kind::Final, None)];
        mark_duplicates(&mut rows);
        assert_eq!(rows[0].status, Status::SkippedDuplicate);
        assert_eq!((rows[0].duplicate_of.as_deref(), rows[0].step), (Some("a"), Some(2000)));
        assert_eq!(rows[1].status, Status::Pending);
        let line = rows[0].to_json();
        assert!(line.starts_with("{\"agent_id\": \"a\", \"path\": \"run/a-best\", \"kind\": \"best\""), "{line}");
        assert!(line.contains("\"step\": 2000") && line.ends_with("\"error\": null}"), "{line}");
        let back = Row::from_json(&crate::json::reader::read_value_from(line.as_bytes(), "x").unwrap()).unwrap();
        assert_eq!(back, rows[0]);
    }
}
