//! The sweep in one process (or one shard of it): discover, identify, analyse the agents on
//! worker threads, then write the shard's file or the whole summary (`finish`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::pipeline::{PipelineError, Progress};
use crate::study::run::RunEvent;
use crate::study::{Result, StudyError};

use super::agent::{self, AgentSummary};
use super::manifest::{self, Plan, Row, Status};
use super::{discover, shard, summary, Ending, Shard, SummaryFlags, SweepFlags};

/// A sweep to run.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    pub paths: Vec<String>,
    pub out: PathBuf,
    pub flags: SweepFlags,
    pub jobs: usize,
    /// Analyse again even agents whose done.json matches.
    pub force: bool,
    pub shard: Shard,
}

/// What the sweep tells its user while it runs (called from worker threads).
pub trait Observer: Sync {
    fn discovered(&self, rows: &[Row], warnings: &[String]);
    fn started(&self, row: &Row);
    fn progress(&self, row: &Row, p: Progress);
    /// An agent finished: analysed or skipped as done (with its summary and whether it was
    /// skipped), or failed.
    fn finished(&self, row: &Row, outcome: &std::result::Result<(&AgentSummary, bool), String>);
    /// A warning of one agent's run.
    fn warning(&self, row: &Row, text: &str);
}

/// How a sweep ended, and the table to print.
pub struct SweepOutcome {
    pub ending: Ending,
    pub table: Vec<String>,
    /// Where the shard's file went (a shard), or None (the whole sweep).
    pub shard_file: Option<PathBuf>,
    pub failed: Vec<(String, String)>,
}

/// The manifest's rows, each pending agent's plan, and discovery's warnings.
pub struct Planned {
    pub rows: Vec<Row>,
    pub plans: Vec<Option<Plan>>,
    pub warnings: Vec<String>,
}

/// The rows and plans as discovery and identification give them (the same in every shard).
pub fn plan(req: &SweepRequest) -> Result<Planned> {
    let (found, warnings) = discover::discover(&req.paths, req.flags.every).map_err(StudyError::Refused)?;
    let (mut rows, plans): (Vec<Row>, Vec<Option<Plan>>) =
        found.iter().map(|f| manifest::identify(f, &req.flags, &req.flags.limits)).unzip();
    manifest::mark_duplicates(&mut rows);
    Ok(Planned { rows, plans, warnings })
}

/// A digest of the discovery (every row as identified): shards of one sweep share it.
fn discovery_digest(rows: &[Row]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for r in rows {
        h.update(r.to_json().as_bytes());
        h.update(b"\n");
    }
    h.finalize().iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Refuses an output folder that holds another sweep (other flags), unless forced.
fn check_output(out: &Path, flags: &SweepFlags, force: bool) -> Result<()> {
    let existing = out.join(summary::SWEEP_JSON);
    let Ok(file) = std::fs::File::open(&existing) else { return Ok(()) };
    let theirs = crate::json::reader::read_value_from(std::io::BufReader::new(file), "sweep.json")
        .ok()
        .and_then(|v| v.get("metadata")?.get("flags")?.as_str().map(str::to_string));
    match theirs {
        Some(d) if d == flags.digest() || force => Ok(()),
        _ if force => Ok(()),
        _ => Err(StudyError::Refused(format!(
            "{} holds another sweep (its sweep.json was made with other flags or by another tool): use another \
             --output-dir, or --force to replace it",
            out.display()
        ))),
    }
}

/// Runs the pending agents this shard owns on `jobs` threads; fills in their rows' status.
fn analyse(
    req: &SweepRequest,
    rows: &mut [Row],
    plans: &[Option<Plan>],
    observer: &dyn Observer,
    cancel: &AtomicBool,
) -> BTreeMap<String, AgentSummary> {
    let todo: Vec<usize> =
        (0..rows.len()).filter(|&p| req.shard.owns(p) && rows[p].status == Status::Pending).collect();
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, std::result::Result<AgentSummary, String>)>> = Mutex::new(Vec::new());
    let rows_ro: &[Row] = rows;
    std::thread::scope(|scope| {
        for _ in 0..req.jobs.max(1).min(todo.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&p) = todo.get(i) else { break };
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                let (row, Some(plan)) = (&rows_ro[p], &plans[p]) else { continue };
                observer.started(row);
                let mut events = |e: RunEvent| match e {
                    RunEvent::Progress(pr) => observer.progress(row, pr),
                    RunEvent::Warning(w) => observer.warning(row, &w),
                    _ => {}
                };
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    agent::run_agent(row, plan, &req.flags, &req.out, req.force, &mut events, cancel)
                }));
                let result = match outcome {
                    Ok(Ok((s, skipped))) => {
                        observer.finished(row, &Ok((&s, skipped)));
                        Ok(s)
                    }
                    Ok(Err(e)) if e.is_cancelled() => break,
                    Ok(Err(e)) => Err(agent::failure_text(&e)),
                    Err(p) => Err(format!("the analysis panicked: {}", crate::jobs::panic_text(p.as_ref()))),
                };
                if let Err(e) = &result {
                    observer.finished(row, &Err(e.clone()));
                }
                if let Ok(mut r) = results.lock() {
                    r.push((p, result));
                }
            });
        }
    });
    let mut summaries = BTreeMap::new();
    for (p, r) in results.into_inner().unwrap_or_default() {
        match r {
            Ok(s) => {
                rows[p].status = Status::Ok;
                summaries.insert(s.agent_id.clone(), s);
            }
            Err(e) => {
                rows[p].status = Status::Failed;
                rows[p].error = Some(e);
            }
        }
    }
    summaries
}

/// Writes the manifest and the summary of a whole sweep (from one process or merged shards).
pub fn finish(
    out: &Path,
    rows: &[Row],
    summaries: &BTreeMap<String, AgentSummary>,
    flags: &SummaryFlags,
) -> Result<Vec<String>> {
    manifest::write(&out.join(manifest::MANIFEST), rows)?;
    let groups = summary::groups(rows, summaries, flags);
    let runs = summary::runs(rows, out, flags)?;
    summary::write_json(&out.join(summary::SWEEP_JSON), rows, summaries, &groups, &runs, flags)?;
    summary::write_csv(&out.join(summary::SWEEP_CSV), rows, summaries)?;
    Ok(summary::table(&groups, &runs))
}

/// How the agents a process was responsible for ended.
fn ending(rows: &[Row], owned: impl Fn(usize) -> bool) -> (Ending, Vec<(String, String)>) {
    let mine: Vec<&Row> = rows.iter().enumerate().filter(|(p, _)| owned(*p)).map(|(_, r)| r).collect();
    let failed: Vec<(String, String)> = mine
        .iter()
        .filter(|r| r.status == Status::Failed)
        .map(|r| (r.path.clone(), r.error.clone().unwrap_or_default()))
        .collect();
    let ok = mine.iter().any(|r| r.status == Status::Ok);
    let ending = match (ok, failed.is_empty()) {
        (_, true) if ok || mine.iter().any(|r| r.status == Status::SkippedDuplicate) => Ending::AllOk,
        (true, false) => Ending::SomeFailed,
        _ => Ending::NoneRan,
    };
    (ending, failed)
}

/// The sweep: every agent the paths name (this shard's), then its summary or its shard file.
pub fn sweep(req: &SweepRequest, observer: &dyn Observer, cancel: &AtomicBool) -> Result<SweepOutcome> {
    let Planned { mut rows, plans, warnings } = plan(req)?;
    check_output(&req.out, &req.flags, req.force)?;
    observer.discovered(&rows, &warnings);
    let discovery = discovery_digest(&rows);
    crate::pipeline::output::ensure_dir(&req.out)?;
    // Each agent's pass on one libtorch thread, agents in parallel: the same kernels whatever
    // --jobs is, and no oversubscription.
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    tch::set_num_threads((cores / req.jobs.max(1)).max(1) as i32);
    let summaries = analyse(req, &mut rows, &plans, observer, cancel);
    if cancel.load(Ordering::Relaxed) {
        return Err(PipelineError::Cancelled.into());
    }
    let flags = req.flags.summary();
    let (ending, failed) = ending(&rows, |p| req.shard.owns(p));
    if req.shard.count > 1 {
        let mine: Vec<(usize, Row)> =
            rows.iter().enumerate().filter(|(p, _)| req.shard.owns(*p)).map(|(p, r)| (p, r.clone())).collect();
        let file = shard::write_shard(&req.out, req.shard, &discovery, &flags, &mine, &summaries)?;
        return Ok(SweepOutcome { ending, table: Vec::new(), shard_file: Some(file), failed });
    }
    let table = finish(&req.out, &rows, &summaries, &flags)?;
    Ok(SweepOutcome { ending, table, shard_file: None, failed })
}

/// `saliency sweep merge OUT`: the shards put back together, written as the one-process sweep
/// writes it.
pub fn merge(out: &Path) -> Result<SweepOutcome> {
    let merged = shard::merge(out)?;
    let (ending, failed) = ending(&merged.rows, |_| true);
    let table = finish(out, &merged.rows, &merged.summaries, &merged.flags)?;
    Ok(SweepOutcome { ending, table, shard_file: None, failed })
}
