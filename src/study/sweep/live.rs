//! A sweep watched while it runs (the explorer's `--sweep`): the same `runner::sweep`, its
//! observer turned into messages that name agents by manifest position, and at the end the
//! results read back from the folder, as a finished sweep is opened.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use crate::pipeline::Progress;
use crate::study::Result;

use super::agent::AgentSummary;
use super::manifest::{Row, Status};
use super::results::{self, SweepResults};
use super::runner::{self, Observer, SweepRequest};
use super::Ending;

/// What a running sweep reports.
#[derive(Debug, Clone)]
pub enum LiveMsg {
    /// The manifest's rows as discovered (pending agents to analyse), and discovery's warnings.
    Discovered {
        rows: Vec<Row>,
        warnings: Vec<String>,
    },
    Started(usize),
    /// The fraction of an agent's inputs done.
    Progress(usize, f64),
    /// An agent finished: its summary, or why it failed.
    Finished {
        pos: usize,
        result: std::result::Result<AgentSummary, String>,
    },
    Warning(usize, String),
}

/// How a watched sweep ended.
#[derive(Debug, Clone)]
pub struct LiveEnd {
    pub ending: Ending,
    pub results: SweepResults,
}

struct Relay<'a> {
    send: &'a (dyn Fn(LiveMsg) + Sync),
    /// Agent id -> manifest position of the row that is analysed.
    positions: Mutex<HashMap<String, usize>>,
}

impl Relay<'_> {
    fn pos(&self, row: &Row) -> Option<usize> {
        self.positions.lock().ok()?.get(&row.agent_id).copied()
    }
}

impl Observer for Relay<'_> {
    fn discovered(&self, rows: &[Row], warnings: &[String]) {
        if let Ok(mut p) = self.positions.lock() {
            p.extend(
                rows.iter()
                    .enumerate()
                    .filter(|(_, r)| r.status == Status::Pending)
                    .map(|(i, r)| (r.agent_id.clone(), i)),
            );
        }
        (self.send)(LiveMsg::Discovered { rows: rows.to_vec(), warnings: warnings.to_vec() });
    }

    fn started(&self, row: &Row) {
        if let Some(p) = self.pos(row) {
            (self.send)(LiveMsg::Started(p));
        }
    }

    fn progress(&self, row: &Row, pr: Progress) {
        if let Some(p) = self.pos(row) {
            (self.send)(LiveMsg::Progress(p, pr.done as f64 / pr.total.max(1) as f64));
        }
    }

    fn finished(&self, row: &Row, outcome: &std::result::Result<(&AgentSummary, bool), String>) {
        if let Some(pos) = self.pos(row) {
            let result = outcome.as_ref().map(|(s, _)| (*s).clone()).map_err(String::clone);
            (self.send)(LiveMsg::Finished { pos, result });
        }
    }

    fn warning(&self, row: &Row, text: &str) {
        if let Some(p) = self.pos(row) {
            (self.send)(LiveMsg::Warning(p, text.to_string()));
        }
    }
}

/// Runs the whole sweep (one process), reporting as it goes; at the end, its results.
pub fn run(req: &SweepRequest, send: &(dyn Fn(LiveMsg) + Sync), cancel: &AtomicBool) -> Result<LiveEnd> {
    let relay = Relay { send, positions: Mutex::new(HashMap::new()) };
    let outcome = runner::sweep(req, &relay, cancel)?;
    Ok(LiveEnd { ending: outcome.ending, results: results::open(&req.out)? })
}
