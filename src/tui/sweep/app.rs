//! The explorer of many agents: its state and what each key does. `update` does no I/O:
//! comparing two agents, loading a run's training curve and opening an agent are effects the
//! runtime carries out, and their results come back through `on_*`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::jobs::Outcome;
use crate::study::sweep::compare::Comparison;
use crate::study::sweep::live::{LiveEnd, LiveMsg};
use crate::study::sweep::manifest::{Row, Status};
use crate::study::sweep::results::SweepResults;
use crate::study::sweep::summary::{self, Group};
use crate::study::sweep::training::Training;
use crate::study::sweep::{Ending, SummaryFlags};

use super::super::color::{ColorMode, Colormap};
use super::super::keymap::{Scope, SweepAction};
use super::table::Table;

/// The views, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Agents,
    Groups,
    Training,
}

impl View {
    pub const ALL: [View; 3] = [View::Agents, View::Groups, View::Training];

    pub fn name(self) -> &'static str {
        match self {
            View::Agents => "Agents",
            View::Groups => "Groups",
            View::Training => "Training",
        }
    }

    fn scope(self) -> Scope {
        match self {
            View::Agents => Scope::Agents,
            View::Groups => Scope::Groups,
            View::Training => Scope::Training,
        }
    }
}

/// Something loaded in the background.
#[derive(Debug, Clone, Default)]
pub enum Loadable<T> {
    #[default]
    None,
    Loading,
    Ready(T),
    Failed(String),
}

/// The comparison of two agents (entry indices of the table).
#[derive(Debug, Clone)]
pub struct ComparePart {
    pub a: usize,
    pub b: usize,
    pub data: Loadable<Arc<Comparison>>,
    /// The layer shown (an index into the comparison's shares).
    pub layer: usize,
    /// Log ratio instead of the signed difference.
    pub ratio: bool,
}

/// The running sweep.
#[derive(Debug, Clone, Default)]
pub struct LivePart {
    pub running: bool,
    pub done: usize,
    pub failed: usize,
    pub total: usize,
    /// How it ended.
    pub ending: Option<String>,
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq)]
pub enum SweepEffect {
    Quit,
    /// Open the agent of this table entry in the single-agent explorer.
    Open(usize),
    Compare(String, String),
    Training(String),
}

pub struct SweepApp {
    results: Arc<SweepResults>,
    table: Table,
    view: View,
    help: bool,
    /// Typing a filter: its text so far.
    filter_prompt: Option<String>,
    compare: Option<ComparePart>,
    groups_scroll: usize,
    /// The groups computed while a sweep runs (None: those of `results`).
    live_groups: Option<Vec<Group>>,
    runs: Vec<String>,
    run: usize,
    training: Loadable<Arc<Training>>,
    live: Option<LivePart>,
    notes: Vec<String>,
    message: Option<String>,
    pub colormap: Colormap,
    pub color_mode: ColorMode,
}

impl SweepApp {
    /// On a finished sweep.
    pub fn new(results: SweepResults, colormap: Colormap, color_mode: ColorMode) -> SweepApp {
        let mut app = SweepApp::empty(results, colormap, color_mode);
        app.load_table();
        app
    }

    /// Before a sweep it starts (rows arrive as it discovers them).
    pub fn live(out: PathBuf, flags: SummaryFlags, colormap: Colormap, color_mode: ColorMode) -> SweepApp {
        let results = SweepResults {
            out,
            rows: Vec::new(),
            summaries: BTreeMap::new(),
            groups: Vec::new(),
            runs: Vec::new(),
            flags,
        };
        let mut app = SweepApp::empty(results, colormap, color_mode);
        app.live = Some(LivePart { running: true, ..LivePart::default() });
        app
    }

    fn empty(results: SweepResults, colormap: Colormap, color_mode: ColorMode) -> SweepApp {
        SweepApp {
            results: Arc::new(results),
            table: Table::default(),
            view: View::Agents,
            help: false,
            filter_prompt: None,
            compare: None,
            groups_scroll: 0,
            live_groups: None,
            runs: Vec::new(),
            run: 0,
            training: Loadable::None,
            live: None,
            notes: Vec::new(),
            message: None,
            colormap,
            color_mode,
        }
    }

    /// The table from `results`, keeping the filter, sort, marks, pin and cursor where the
    /// rows are the same ones (a live sweep's end).
    fn load_table(&mut self) {
        let mut table = Table::new(self.results.rows.clone());
        table.set_summaries(self.results.summaries.values().map(|s| Arc::new(s.clone())));
        if self.table.len() == table.len() {
            table.take_state(&self.table);
        }
        table.refresh();
        self.table = table;
        self.runs = self.results.runs.iter().map(|r| r.run.clone()).collect();
        self.run = self.run.min(self.runs.len().saturating_sub(1));
    }

    // --- what is shown ---

    pub fn results(&self) -> &Arc<SweepResults> {
        &self.results
    }

    pub fn table(&self) -> &Table {
        &self.table
    }

    pub fn table_mut(&mut self) -> &mut Table {
        &mut self.table
    }

    pub fn view(&self) -> View {
        self.view
    }

    pub fn help(&self) -> bool {
        self.help
    }

    pub fn filter_prompt(&self) -> Option<&str> {
        self.filter_prompt.as_deref()
    }

    pub fn compare(&self) -> Option<&ComparePart> {
        self.compare.as_ref()
    }

    pub fn groups(&self) -> &[Group] {
        self.live_groups.as_deref().unwrap_or(&self.results.groups)
    }

    pub fn groups_scroll(&self) -> usize {
        self.groups_scroll
    }

    pub fn runs(&self) -> &[String] {
        &self.runs
    }

    pub fn run_index(&self) -> usize {
        self.run
    }

    pub fn training(&self) -> &Loadable<Arc<Training>> {
        &self.training
    }

    pub fn live_part(&self) -> Option<&LivePart> {
        self.live.as_ref()
    }

    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }

    pub fn set_message(&mut self, m: impl Into<String>) {
        self.message = Some(m.into());
    }

    /// Whether background work is going on (a sweep, a comparison, a training curve).
    pub fn busy(&self) -> bool {
        self.live.as_ref().is_some_and(|l| l.running)
            || matches!(self.training, Loadable::Loading)
            || self.compare.as_ref().is_some_and(|c| matches!(c.data, Loadable::Loading))
    }

    /// The keymap scope of what has the keys now.
    pub fn scope(&self) -> Scope {
        if self.filter_prompt.is_some() {
            Scope::Filter
        } else if self.compare.is_some() {
            Scope::Compare
        } else {
            self.view.scope()
        }
    }

    // --- background results ---

    pub fn on_live(&mut self, msg: LiveMsg) {
        match msg {
            LiveMsg::Discovered { rows, warnings } => self.on_discovered(rows, warnings),
            LiveMsg::Started(pos) => self.table.set_running(pos, Some(0.0)),
            LiveMsg::Progress(pos, f) => self.table.set_running(pos, Some(f)),
            LiveMsg::Finished { pos, result } => self.on_finished(pos, result),
            LiveMsg::Warning(pos, text) => {
                let path = self.results.rows.get(pos).map(|r| r.path.as_str()).unwrap_or_default();
                self.notes.push(format!("{path}: {text}"));
            }
        }
    }

    fn on_discovered(&mut self, rows: Vec<Row>, warnings: Vec<String>) {
        self.notes.extend(warnings);
        let pending = rows.iter().filter(|r| r.status == Status::Pending).count();
        if let Some(l) = &mut self.live {
            l.total = pending;
            // (zips that cannot be read fail before any analysis)
            l.failed = rows.iter().filter(|r| r.status == Status::Failed).count();
        }
        Arc::make_mut(&mut self.results).rows = rows;
        self.load_table();
    }

    fn on_finished(
        &mut self,
        pos: usize,
        result: std::result::Result<crate::study::sweep::agent::AgentSummary, String>,
    ) {
        let live = self.live.get_or_insert_with(LivePart::default);
        live.done += 1;
        let results = Arc::make_mut(&mut self.results);
        match result {
            Ok(s) => {
                if let Some(r) = results.rows.get_mut(pos) {
                    r.status = Status::Ok;
                }
                self.table.set_status(pos, Status::Ok, None);
                self.table.set_summary(Arc::new(s.clone()));
                results.summaries.insert(s.agent_id.clone(), s);
                if self.view == View::Training {
                    let run = results.rows.get(pos).map(|r| r.run.clone());
                    self.runs_so_far(run.as_deref());
                }
            }
            Err(e) => {
                live.failed += 1;
                if let Some(r) = results.rows.get_mut(pos) {
                    r.status = Status::Failed;
                    r.error = Some(e.clone());
                }
                self.table.set_status(pos, Status::Failed, Some(e));
            }
        }
        self.table.refresh();
        // The groups shown follow the agents done so far.
        self.live_groups = (self.view == View::Groups).then(|| self.groups_so_far());
    }

    /// The sweep ended: its results as written, or why it stopped.
    pub fn on_live_end(&mut self, outcome: Outcome<LiveEnd>) {
        let live = self.live.get_or_insert_with(LivePart::default);
        live.running = false;
        match outcome {
            Outcome::Done(end) => {
                // (failures of discovery too: a zip that cannot be read never starts)
                live.failed = end.results.rows.iter().filter(|r| r.status == Status::Failed).count();
                live.ending = Some(match end.ending {
                    Ending::AllOk => "sweep finished".into(),
                    Ending::SomeFailed => format!("sweep finished; {} failed", live.failed),
                    Ending::NoneRan => "sweep finished; no agent could be analysed".into(),
                });
                self.results = Arc::new(end.results);
                self.live_groups = None;
                self.load_table();
                if self.view == View::Training {
                    self.training = Loadable::None;
                }
            }
            Outcome::Failed(e) => live.ending = Some(format!("sweep failed: {e}")),
            Outcome::Cancelled => live.ending = Some("sweep cancelled".into()),
        }
    }

    pub fn on_compare(&mut self, outcome: Outcome<Comparison>) {
        if let Some(c) = &mut self.compare {
            c.data = match outcome {
                Outcome::Done(cmp) => Loadable::Ready(Arc::new(cmp)),
                Outcome::Failed(e) => Loadable::Failed(e),
                Outcome::Cancelled => Loadable::None,
            };
        }
    }

    pub fn on_training(&mut self, outcome: Outcome<Training>) {
        self.training = match outcome {
            Outcome::Done(t) => Loadable::Ready(Arc::new(t)),
            Outcome::Failed(e) => Loadable::Failed(e),
            Outcome::Cancelled => Loadable::None,
        };
    }

    /// Effects to run once the app is shown (the training view's first run).
    pub fn pending_effects(&mut self) -> Vec<SweepEffect> {
        if self.view == View::Training && matches!(self.training, Loadable::None) {
            if let Some(run) = self.runs.get(self.run).cloned() {
                self.training = Loadable::Loading;
                return vec![SweepEffect::Training(run)];
            }
        }
        Vec::new()
    }

    // --- keys ---

    pub fn update(&mut self, action: SweepAction) -> Vec<SweepEffect> {
        self.message = None;
        let mut effects = if action == SweepAction::Quit {
            vec![SweepEffect::Quit]
        } else if self.filter_prompt.is_some() {
            self.update_filter(action);
            Vec::new()
        } else if self.help {
            if matches!(action, SweepAction::Back | SweepAction::ToggleHelp) {
                self.help = false;
            }
            Vec::new()
        } else if action == SweepAction::ToggleHelp {
            self.help = true;
            Vec::new()
        } else if self.compare.is_some() {
            self.update_compare(action);
            Vec::new()
        } else {
            self.update_view(action)
        };
        effects.extend(self.pending_effects());
        effects
    }

    fn update_filter(&mut self, action: SweepAction) {
        let Some(text) = &mut self.filter_prompt else { return };
        match action {
            SweepAction::Char(c) => text.push(c),
            SweepAction::Backspace => {
                text.pop();
            }
            SweepAction::Confirm => {
                let text = text.clone();
                match self.table.set_filter(&text) {
                    Ok(()) => self.filter_prompt = None,
                    Err(e) => self.message = Some(e),
                }
            }
            SweepAction::Back => self.filter_prompt = None,
            _ => {}
        }
    }

    fn update_compare(&mut self, action: SweepAction) {
        let Some(c) = &mut self.compare else { return };
        let layers = match &c.data {
            Loadable::Ready(cmp) => cmp.shares.len(),
            _ => 0,
        };
        match action {
            SweepAction::Back => self.compare = None,
            SweepAction::Up | SweepAction::Left => c.layer = c.layer.saturating_sub(1),
            SweepAction::Down | SweepAction::Right => c.layer = (c.layer + 1).min(layers.saturating_sub(1)),
            SweepAction::Top => c.layer = 0,
            SweepAction::Bottom => c.layer = layers.saturating_sub(1),
            SweepAction::SwitchScale => c.ratio = !c.ratio,
            _ => {}
        }
    }

    fn update_view(&mut self, action: SweepAction) -> Vec<SweepEffect> {
        match action {
            SweepAction::NextView | SweepAction::PrevView => {
                let n = View::ALL.len();
                let i = View::ALL.iter().position(|&v| v == self.view).unwrap_or(0);
                let step = if action == SweepAction::NextView { 1 } else { n - 1 };
                self.view = View::ALL[(i + step) % n];
                if self.live.as_ref().is_some_and(|l| l.running) {
                    match self.view {
                        View::Groups => self.live_groups = Some(self.groups_so_far()),
                        View::Training => self.runs_so_far(None),
                        View::Agents => {}
                    }
                }
                Vec::new()
            }
            _ => match self.view {
                View::Agents => self.update_agents(action),
                View::Groups => {
                    self.update_groups(action);
                    Vec::new()
                }
                View::Training => self.update_training(action),
            },
        }
    }

    /// The groups of the agents analysed so far (while a sweep runs).
    fn groups_so_far(&self) -> Vec<Group> {
        summary::groups(&self.results.rows, &self.results.summaries, &self.results.flags)
    }

    /// While a sweep runs: the runs with a finished final model and a finished checkpoint; the
    /// curve shown is loaded again when it is gone or when `finished` (a run) is its run.
    fn runs_so_far(&mut self, finished: Option<&str>) {
        let shown = self.runs.get(self.run).cloned();
        self.runs = summary::run_names(&summary::finished_rows(&self.results.rows));
        self.run = shown.as_ref().and_then(|r| self.runs.iter().position(|x| x == r)).unwrap_or(0);
        if shown.as_deref() != self.runs.get(self.run).map(String::as_str) || finished == shown.as_deref() {
            self.training = Loadable::None;
        }
    }

    fn update_agents(&mut self, action: SweepAction) -> Vec<SweepEffect> {
        let t = &mut self.table;
        match action {
            SweepAction::Up => t.move_rows(-1),
            SweepAction::Down => t.move_rows(1),
            SweepAction::PageUp => t.page_rows(-1),
            SweepAction::PageDown => t.page_rows(1),
            SweepAction::Top => t.move_rows(isize::MIN / 2),
            SweepAction::Bottom => t.move_rows(isize::MAX / 2),
            SweepAction::Left => t.move_cols(-1),
            SweepAction::Right => t.move_cols(1),
            SweepAction::Filter => {
                self.filter_prompt = Some(t.filter().map(|f| f.text.clone()).unwrap_or_default());
            }
            SweepAction::Back if t.filter().is_some() => {
                let _ = t.set_filter("");
            }
            SweepAction::Click { row, col, double } => {
                t.click(row, col);
                if double {
                    return self.open();
                }
            }
            SweepAction::Sort => t.sort_by_cursor(false),
            SweepAction::SortReverse => t.sort_by_cursor(true),
            SweepAction::Mark => {
                t.toggle_mark();
                t.move_rows(1);
            }
            SweepAction::Unmark => t.clear_marks(),
            SweepAction::Pin => t.toggle_pin(),
            SweepAction::DiffOnly => t.toggle_diff_only(),
            SweepAction::ThresholdUp => t.scale_threshold(2.0),
            SweepAction::ThresholdDown => t.scale_threshold(0.5),
            SweepAction::Open => return self.open(),
            SweepAction::Compare => return self.start_compare(),
            _ => {}
        }
        Vec::new()
    }

    fn open(&mut self) -> Vec<SweepEffect> {
        let Some(e) = self.table.current() else { return Vec::new() };
        let analysed = self.results.summaries.contains_key(&e.row.agent_id);
        if analysed {
            return vec![SweepEffect::Open(e.pos)];
        }
        self.message = Some(match (&e.row.status, &e.row.error) {
            (Status::Failed, Some(err)) => format!("this agent failed: {err}"),
            _ => "this agent is not analysed (yet): nothing to open".into(),
        });
        Vec::new()
    }

    fn start_compare(&mut self) -> Vec<SweepEffect> {
        let (a, b) = match self.table.compare_pair() {
            Ok(p) => p,
            Err(e) => {
                self.message = Some(e.into());
                return Vec::new();
            }
        };
        let entries = self.table.entries();
        let (ida, idb) = (entries[a].row.agent_id.clone(), entries[b].row.agent_id.clone());
        for id in [&ida, &idb] {
            if !self.results.summaries.contains_key(id) {
                self.message = Some(format!("agent {} is not analysed: nothing to compare", &id[..id.len().min(8)]));
                return Vec::new();
            }
        }
        self.compare = Some(ComparePart { a, b, data: Loadable::Loading, layer: 0, ratio: false });
        vec![SweepEffect::Compare(ida, idb)]
    }

    fn update_groups(&mut self, action: SweepAction) {
        match action {
            SweepAction::Up => self.groups_scroll = self.groups_scroll.saturating_sub(1),
            SweepAction::Down => self.groups_scroll += 1,
            SweepAction::PageUp => self.groups_scroll = self.groups_scroll.saturating_sub(10),
            SweepAction::PageDown => self.groups_scroll += 10,
            SweepAction::Top => self.groups_scroll = 0,
            SweepAction::Bottom => self.groups_scroll = usize::MAX / 2,
            _ => {}
        }
    }

    fn update_training(&mut self, action: SweepAction) -> Vec<SweepEffect> {
        let before = self.run;
        let last = self.runs.len().saturating_sub(1);
        match action {
            SweepAction::Up => self.run = self.run.saturating_sub(1),
            SweepAction::Down => self.run = (self.run + 1).min(last),
            SweepAction::Top => self.run = 0,
            SweepAction::Bottom => self.run = last,
            _ => {}
        }
        if self.run != before {
            self.training = Loadable::None;
        }
        Vec::new()
    }

    /// Clamps the groups' scroll to what there is to show (`lines` of content, `height` shown).
    pub fn clamp_groups_scroll(&mut self, lines: usize, height: usize) {
        self.groups_scroll = self.groups_scroll.min(lines.saturating_sub(height));
    }
}
