//! The agents table: one row per agent of the manifest, the base columns and one column per
//! layer (its share of the saliency), with the conventions of terminal run tables: a regular
//! expression filter (`!` keeps what does not match), sort by any column, marks, a pinned
//! baseline the layer columns are shown against, and only the layers that differ. Pure state:
//! the view draws what `visible` and `cell` give; keys change it. No cap on rows: only the
//! visible ones are ever drawn.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::format::num;
use crate::study::sweep::agent::AgentSummary;
use crate::study::sweep::manifest::{Row, Status};

/// The width of a layer column.
pub const LAYER_WIDTH: usize = 7;

/// A column of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    Id,
    Run,
    Kind,
    Step,
    Seed,
    Algorithm,
    Environment,
    Status,
    Inputs,
    Selected,
    Flip,
    Percentile,
    Gini,
    /// With `--validate`: the measure that best predicts single-weight damage, and its Spearman.
    Predictor,
    /// A layer (an index into `Table::layers`).
    Layer(usize),
}

impl Col {
    /// Shown before the layers (so the agents × layers heatmap starts on the first screen).
    pub const LEAD: [Col; 5] = [Col::Id, Col::Run, Col::Kind, Col::Step, Col::Status];
    /// Shown after the layers.
    pub const TRAIL: [Col; 9] = [
        Col::Gini,
        Col::Flip,
        Col::Percentile,
        Col::Predictor,
        Col::Selected,
        Col::Inputs,
        Col::Seed,
        Col::Algorithm,
        Col::Environment,
    ];
    /// Every column but the layers, in the order shown.
    pub const BASE: [Col; 14] = {
        let mut out = [Col::Id; 14];
        let mut i = 0;
        while i < out.len() {
            out[i] = if i < Col::LEAD.len() { Col::LEAD[i] } else { Col::TRAIL[i - Col::LEAD.len()] };
            i += 1;
        }
        out
    };

    /// The header of a base column.
    pub fn title(self) -> &'static str {
        match self {
            Col::Id => "id",
            Col::Run => "run",
            Col::Kind => "kind",
            Col::Step => "step",
            Col::Seed => "seed",
            Col::Algorithm => "algo",
            Col::Environment => "env",
            Col::Status => "status",
            Col::Inputs => "inputs",
            Col::Selected => "sel",
            Col::Flip => "flip",
            Col::Percentile => "pct",
            Col::Gini => "gini",
            Col::Predictor => "predictor",
            Col::Layer(_) => "",
        }
    }

    /// What the column means (the status line names the column under the cursor).
    pub fn meaning(self) -> &'static str {
        match self {
            Col::Id => "agent id (the SHA-256 of its policy.pth, shortened while unique)",
            Col::Run => "the run or agent folder",
            Col::Kind => "agent, final, best or checkpoint",
            Col::Step => "training step (checkpoints)",
            Col::Seed => "seed (RL Zoo args.yml)",
            Col::Algorithm => "algorithm",
            Col::Environment => "environment",
            Col::Status => "ok, failed, duplicate (of an agent analysed once), or live: pending, running",
            Col::Inputs => "inputs analysed",
            Col::Selected => "weights selected (k per candidate neuron plus m)",
            Col::Flip => "flip rate of the selection's ablation (with --ablate)",
            Col::Percentile => "the selection's percentile among random draws (with --ablate)",
            Col::Gini => "Gini concentration of the per-weight saliency",
            Col::Predictor => {
                "the measure whose ranking best predicts single-weight damage, and its Spearman (with --validate)"
            }
            Col::Layer(_) => "this layer's share of the network's saliency, in %",
        }
    }

    fn numeric(self) -> bool {
        matches!(
            self,
            Col::Step
                | Col::Seed
                | Col::Inputs
                | Col::Selected
                | Col::Flip
                | Col::Percentile
                | Col::Gini
                | Col::Predictor
                | Col::Layer(_)
        )
    }
}

/// One agent of the table.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its position in the manifest.
    pub pos: usize,
    pub row: Row,
    pub summary: Option<Arc<AgentSummary>>,
    /// Per layer of the table (None: not in this network, or not analysed).
    shares: Vec<Option<f64>>,
    /// While a live sweep analyses it: the fraction done.
    pub running: Option<f64>,
    /// The run as the table shows it.
    run_label: String,
    haystack: String,
}

impl Entry {
    fn new(pos: usize, row: Row) -> Entry {
        let haystack = [
            row.agent_id.as_str(),
            &row.path,
            &row.run,
            row.kind.name(),
            &row.step.map(|s| s.to_string()).unwrap_or_default(),
            &row.seed.map(|s| format!("seed={s}")).unwrap_or_default(),
            row.algorithm.as_deref().unwrap_or_default(),
            row.environment.as_deref().unwrap_or_default(),
            &row.group,
            row.status.name(),
            row.error.as_deref().unwrap_or_default(),
        ]
        .join(" ");
        Entry { pos, row, summary: None, shares: Vec::new(), running: None, run_label: String::new(), haystack }
    }

    pub fn share(&self, layer: usize) -> Option<f64> {
        self.shares.get(layer).copied().flatten()
    }
}

/// The filter: a regular expression (case-insensitive) over each row's text.
#[derive(Debug, Clone)]
pub struct Filter {
    pub text: String,
    invert: bool,
    re: regex::Regex,
}

impl Filter {
    /// `REGEX`, or `!REGEX` for the rows that do not match.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let (invert, pattern) = match text.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let re = regex::RegexBuilder::new(pattern)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("not a regular expression: {}", e.to_string().lines().last().unwrap_or("")))?;
        Ok(Filter { text: text.to_string(), invert, re })
    }

    fn keeps(&self, e: &Entry) -> bool {
        self.re.is_match(&e.haystack) != self.invert
    }
}

/// A cell's colour: a share of the table's largest (t in [0, 1]), or a signed difference
/// from the pinned baseline (t in [0, 1], 0.5 none).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Heat {
    Share(f64),
    Diff(f64),
}

/// What a view shows of a cell.
#[derive(Debug, Clone, PartialEq)]
pub struct CellText {
    pub text: String,
    pub heat: Option<Heat>,
}

#[derive(Debug, Clone, Default)]
pub struct Table {
    entries: Vec<Entry>,
    layers: Vec<String>,
    /// Entries shown, in order (indices into `entries`).
    visible: Vec<usize>,
    /// Layer columns shown (all, or only those that differ).
    layer_cols: Vec<usize>,
    filter: Option<Filter>,
    sort: Option<(Col, bool)>,
    marks: BTreeSet<usize>,
    pin: Option<usize>,
    diff_only: bool,
    threshold: f64,
    /// The largest share in the table, and the largest difference from the pin shown.
    max_share: f64,
    max_diff: f64,
    /// Index into `visible`, and into `columns()`.
    cursor: usize,
    col: usize,
    /// First row and first scrolled column drawn.
    top: usize,
    left: usize,
    page: usize,
    id_len: usize,
    /// Widths of the base columns (measured over every row when the data changes).
    widths: Vec<usize>,
    widths_dirty: bool,
}

/// Shortest prefix length (at least 6) that tells the distinct ids apart.
fn unique_prefix(ids: &[&str]) -> usize {
    let mut sorted: Vec<&str> = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let common = |a: &str, b: &str| a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
    sorted.windows(2).map(|w| common(w[0], w[1]) + 1).max().unwrap_or(0).clamp(6, 16)
}

/// Each run's shortest ending of at least two path components that no other run shares
/// (`dqn/CartPole-v1_1`, `mixed/cartpole`).
fn run_labels(runs: &[&str]) -> Vec<String> {
    let mut distinct: Vec<&str> = runs.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let parts: Vec<Vec<&str>> = distinct.iter().map(|r| r.split('/').filter(|c| !c.is_empty()).collect()).collect();
    let ending = |p: &[&str], k: usize| p[p.len().saturating_sub(k)..].join("/");
    let label = |i: usize| -> String {
        let p = &parts[i];
        (2..=p.len().max(2))
            .map(|k| (k, ending(p, k)))
            .find(|(k, l)| parts.iter().enumerate().all(|(j, q)| j == i || ending(q, *k) != *l))
            .map(|(_, l)| l)
            .unwrap_or_else(|| distinct[i].to_string())
    };
    let labels: std::collections::HashMap<&str, String> =
        (0..distinct.len()).map(|i| (distinct[i], label(i))).collect();
    runs.iter().map(|r| labels[r].clone()).collect()
}

impl Table {
    pub fn new(rows: Vec<Row>) -> Table {
        let ids: Vec<&str> = rows.iter().map(|r| r.agent_id.as_str()).collect();
        let runs: Vec<&str> = rows.iter().map(|r| r.run.as_str()).collect();
        let (id_len, labels) = (unique_prefix(&ids), run_labels(&runs));
        let entries = rows
            .into_iter()
            .zip(labels)
            .enumerate()
            .map(|(i, (r, run_label))| Entry { run_label, ..Entry::new(i, r) })
            .collect();
        let mut t = Table { entries, id_len, threshold: 0.05, page: 10, widths_dirty: true, ..Table::default() };
        t.refresh();
        t
    }

    // --- data ---

    /// An agent's summary (every row of its id: duplicates are the same network).
    pub fn set_summary(&mut self, summary: Arc<AgentSummary>) {
        self.set_summaries(std::iter::once(summary));
    }

    /// Agents' summaries, each given to every row of its id (duplicates are the same network);
    /// new layers become columns in the order the manifest lists their agents.
    pub fn set_summaries(&mut self, summaries: impl IntoIterator<Item = Arc<AgentSummary>>) {
        let by_id: std::collections::HashMap<String, Arc<AgentSummary>> =
            summaries.into_iter().map(|s| (s.agent_id.clone(), s)).collect();
        let mut known: std::collections::HashSet<String> = self.layers.iter().cloned().collect();
        for e in &self.entries {
            for l in by_id.get(&e.row.agent_id).map(|s| s.layers.as_slice()).unwrap_or_default() {
                if known.insert(l.name.clone()) {
                    self.layers.push(l.name.clone());
                }
            }
        }
        let index: std::collections::HashMap<&str, usize> =
            self.layers.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        for e in &mut self.entries {
            if let Some(s) = by_id.get(&e.row.agent_id) {
                e.shares = vec![None; self.layers.len()];
                for l in &s.layers {
                    e.shares[index[l.name.as_str()]] = Some(l.share);
                    self.max_share = self.max_share.max(l.share);
                }
                e.summary = Some(s.clone());
            }
            e.shares.resize(self.layers.len(), None);
        }
        self.widths_dirty = true;
    }

    /// A new status of the row at manifest position `pos` (live), with its error.
    pub fn set_status(&mut self, pos: usize, status: Status, error: Option<String>) {
        if let Some(e) = self.entries.get_mut(pos) {
            e.row.status = status;
            e.row.error = error;
            e.running = None;
            *e = Entry {
                summary: e.summary.take(),
                shares: std::mem::take(&mut e.shares),
                run_label: std::mem::take(&mut e.run_label),
                ..Entry::new(pos, e.row.clone())
            };
            self.widths_dirty = true;
        }
    }

    pub fn set_running(&mut self, pos: usize, fraction: Option<f64>) {
        if let Some(e) = self.entries.get_mut(pos) {
            e.running = fraction;
        }
    }

    /// Recomputes what is shown after a change of data, filter, sort or pin: the cursor stays on
    /// its agent when it is still shown.
    pub fn refresh(&mut self) {
        if self.widths_dirty {
            self.measure();
        }
        let current = self.visible.get(self.cursor).copied();
        let mut shown: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.filter.as_ref().is_none_or(|f| f.keeps(&self.entries[i])))
            .collect();
        if let Some((col, reverse)) = self.sort {
            self.sort_rows(&mut shown, col, reverse);
        }
        self.visible = shown;
        self.cursor = current.and_then(|c| self.visible.iter().position(|&i| i == c)).unwrap_or(self.cursor);
        self.cursor = self.cursor.min(self.visible.len().saturating_sub(1));
        self.refresh_layers();
    }

    /// The base columns' widths: their title's, or their widest cell's, within a cap.
    fn measure(&mut self) {
        self.widths_dirty = false;
        self.widths = Col::BASE
            .iter()
            .map(|&col| {
                let cap = match col {
                    Col::Run => 24,
                    Col::Environment => 20,
                    Col::Status => 12,
                    // ("mean-abs-gxw +0.98")
                    Col::Predictor => 18,
                    _ => 16,
                };
                let widest = (0..self.entries.len()).map(|i| self.cell(i, col).text.chars().count()).max().unwrap_or(0);
                // ("running 42%" while a sweep runs)
                let least = if col == Col::Status { 11 } else { 0 };
                widest.max(col.title().len()).max(least).min(cap)
            })
            .collect();
    }

    /// A column's width (layers: `LAYER_WIDTH`).
    pub fn width(&self, col: Col) -> usize {
        match col {
            Col::Layer(_) => LAYER_WIDTH,
            _ => Col::BASE.iter().position(|&c| c == col).and_then(|i| self.widths.get(i).copied()).unwrap_or(6),
        }
    }

    fn sort_rows(&self, rows: &mut [usize], col: Col, reverse: bool) {
        if col.numeric() {
            let key = |i: usize| self.number(&self.entries[i], col).filter(|v| v.is_finite());
            // Missing values last in either direction; ties in manifest order.
            rows.sort_by(|&a, &b| match (key(a), key(b)) {
                (Some(x), Some(y)) => {
                    let o = x.total_cmp(&y);
                    (if reverse { o.reverse() } else { o }).then(a.cmp(&b))
                }
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => a.cmp(&b),
            });
        } else {
            let key = |i: usize| self.text(&self.entries[i], col);
            rows.sort_by_cached_key(|&i| (key(i), i));
            if reverse {
                rows.reverse();
            }
        }
    }

    /// The layer columns shown, and the colour scale of differences.
    fn refresh_layers(&mut self) {
        let base = self.pin.map(|p| &self.entries[p]);
        let spread = |l: usize| -> f64 {
            let vals = self.visible.iter().filter_map(|&i| self.entries[i].share(l));
            match base.map(|b| b.share(l)) {
                Some(Some(b)) => vals.map(|v| (v - b).abs()).fold(0.0, f64::max),
                Some(None) => 0.0,
                None => {
                    let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
                    if hi >= lo {
                        hi - lo
                    } else {
                        0.0
                    }
                }
            }
        };
        let spreads: Vec<f64> = (0..self.layers.len()).map(spread).collect();
        self.layer_cols = (0..self.layers.len()).filter(|&l| !self.diff_only || spreads[l] > self.threshold).collect();
        self.max_diff = if base.is_some() { spreads.iter().copied().fold(0.0, f64::max) } else { 0.0 };
        self.col = self.col.min(self.columns().len().saturating_sub(1));
    }

    /// Takes the filter, sort, marks, pin and cursor of `other` (the same rows, new data).
    pub fn take_state(&mut self, other: &Table) {
        self.filter = other.filter.clone();
        self.sort = other.sort;
        self.marks = other.marks.clone();
        self.pin = other.pin;
        self.diff_only = other.diff_only;
        self.threshold = other.threshold;
        self.col = other.col;
        self.top = other.top;
        self.left = other.left;
        self.page = other.page;
        let current = other.visible.get(other.cursor).copied();
        self.refresh();
        self.cursor = current.and_then(|c| self.visible.iter().position(|&i| i == c)).unwrap_or(0);
    }

    // --- what is shown ---

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn layers(&self) -> &[String] {
        &self.layers
    }

    pub fn visible(&self) -> &[usize] {
        &self.visible
    }

    pub fn columns(&self) -> Vec<Col> {
        let layers = self.layer_cols.iter().map(|&l| Col::Layer(l));
        Col::LEAD.iter().copied().chain(layers).chain(Col::TRAIL.iter().copied()).collect()
    }

    /// How the table shows a run.
    pub fn run_label<'a>(&'a self, run: &'a str) -> &'a str {
        self.entries.iter().find(|e| e.row.run == run).map(|e| e.run_label.as_str()).unwrap_or(run)
    }

    pub fn filter(&self) -> Option<&Filter> {
        self.filter.as_ref()
    }

    pub fn sort(&self) -> Option<(Col, bool)> {
        self.sort
    }

    pub fn is_marked(&self, entry: usize) -> bool {
        self.marks.contains(&entry)
    }

    pub fn marks(&self) -> &BTreeSet<usize> {
        &self.marks
    }

    pub fn pin(&self) -> Option<usize> {
        self.pin
    }

    pub fn diff_only(&self) -> Option<f64> {
        self.diff_only.then_some(self.threshold)
    }

    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// The entry under the cursor.
    pub fn current(&self) -> Option<&Entry> {
        self.visible.get(self.cursor).map(|&i| &self.entries[i])
    }

    pub fn col(&self) -> usize {
        self.col
    }

    pub fn current_col(&self) -> Col {
        self.columns().get(self.col).copied().unwrap_or(Col::Id)
    }

    pub fn top(&self) -> usize {
        self.top
    }

    pub fn left(&self) -> usize {
        self.left
    }

    /// Rows and scrolled columns that fit: the first row and column drawn follow the cursor.
    /// `fits(left)` says how many scrolled columns fit from `left` on.
    pub fn scroll_to_cursor(&mut self, rows: usize, fits: impl Fn(usize) -> usize) {
        self.page = rows.max(1);
        if self.cursor < self.top {
            self.top = self.cursor;
        } else if self.cursor >= self.top + self.page {
            self.top = self.cursor + 1 - self.page;
        }
        self.top = self.top.min(self.visible.len().saturating_sub(self.page));
        // Column 0 (the id) is frozen; the others scroll.
        let c = self.col.max(1);
        self.left = self.left.max(1);
        if c < self.left {
            self.left = c;
        }
        while self.left < c && c >= self.left + fits(self.left).max(1) {
            self.left += 1;
        }
    }

    fn number(&self, e: &Entry, col: Col) -> Option<f64> {
        let s = e.summary.as_deref();
        let ablation = s.and_then(|s| s.ablation.as_ref());
        match col {
            Col::Step => e.row.step.map(|v| v as f64),
            Col::Seed => e.row.seed.map(|v| v as f64),
            Col::Inputs => s.map(|s| s.inputs as f64),
            Col::Selected => s.map(|s| s.selected() as f64),
            Col::Flip => ablation.map(|a| a.flip_rate),
            Col::Percentile => ablation.and_then(|a| a.percentile),
            Col::Gini => s.map(|s| s.gini),
            Col::Predictor => s.and_then(AgentSummary::best_predictor).map(|(_, rho)| rho),
            Col::Layer(l) => e.share(l),
            _ => None,
        }
    }

    fn status_text(e: &Entry) -> String {
        match (e.running, e.row.status) {
            (Some(f), _) => format!("running {:.0}%", 100.0 * f),
            (None, Status::SkippedDuplicate) => "duplicate".into(),
            (None, s) => s.name().into(),
        }
    }

    fn text(&self, e: &Entry, col: Col) -> String {
        let r = &e.row;
        match col {
            Col::Id => r.agent_id.chars().take(self.id_len).collect(),
            Col::Run => e.run_label.clone(),
            Col::Kind => r.kind.name().into(),
            Col::Algorithm => r.algorithm.clone().unwrap_or_default(),
            Col::Environment => r.environment.clone().unwrap_or_default(),
            Col::Status => Self::status_text(e),
            _ => String::new(),
        }
    }

    /// A cell as the view shows it.
    pub fn cell(&self, entry: usize, col: Col) -> CellText {
        let e = &self.entries[entry];
        if !col.numeric() {
            return CellText { text: self.text(e, col), heat: None };
        }
        let Some(v) = self.number(e, col).filter(|v| v.is_finite()) else {
            return CellText { text: String::new(), heat: None };
        };
        let text = match col {
            Col::Step | Col::Seed | Col::Inputs | Col::Selected => format!("{}", v as i64),
            Col::Flip => format!("{:.1}%", 100.0 * v),
            // (a share of the draws below the selection, shown in %)
            Col::Percentile => format!("{:.0}", 100.0 * v),
            Col::Gini => format!("{v:.3}"),
            Col::Predictor => {
                let name = e.summary.as_deref().and_then(AgentSummary::best_predictor).map_or("", |(n, _)| n);
                format!("{name} {v:+.2}")
            }
            Col::Layer(l) => return self.layer_cell(l, v),
            _ => num(v),
        };
        CellText { text, heat: None }
    }

    fn layer_cell(&self, l: usize, share: f64) -> CellText {
        match self.pin.map(|p| self.entries[p].share(l)) {
            Some(Some(base)) => {
                let d = share - base;
                let t = if self.max_diff > 0.0 { 0.5 + 0.5 * d / self.max_diff } else { 0.5 };
                CellText { text: format!("{:+.1}", 100.0 * d), heat: Some(Heat::Diff(t)) }
            }
            Some(None) => CellText { text: format!("{:.1}", 100.0 * share), heat: None },
            None => {
                let t = if self.max_share > 0.0 { share / self.max_share } else { 0.0 };
                CellText { text: format!("{:.1}", 100.0 * share), heat: Some(Heat::Share(t)) }
            }
        }
    }

    // --- keys ---

    pub fn move_rows(&mut self, delta: isize) {
        let last = self.visible.len().saturating_sub(1) as isize;
        self.cursor = (self.cursor as isize + delta).clamp(0, last.max(0)) as usize;
    }

    pub fn page_rows(&mut self, pages: isize) {
        self.move_rows(pages * self.page as isize);
    }

    pub fn move_cols(&mut self, delta: isize) {
        let last = self.columns().len().saturating_sub(1) as isize;
        self.col = (self.col as isize + delta).clamp(0, last) as usize;
    }

    pub fn set_filter(&mut self, text: &str) -> Result<(), String> {
        self.filter = if text.is_empty() { None } else { Some(Filter::parse(text)?) };
        self.refresh();
        Ok(())
    }

    /// Sorts by the cursor's column (`reverse`: descending); the same key again flips back.
    pub fn sort_by_cursor(&mut self, reverse: bool) {
        let col = self.current_col();
        self.sort = match self.sort {
            Some((c, r)) if c == col && r == reverse => None,
            _ => Some((col, reverse)),
        };
        self.refresh();
    }

    /// A click: on a row, the cursor goes to that row and column; on the header (`row` None),
    /// the table is sorted by that column, ascending, and descending on the next click.
    pub fn click(&mut self, row: Option<usize>, col: usize) {
        self.col = col.min(self.columns().len().saturating_sub(1));
        match row {
            Some(r) => self.cursor = r.min(self.visible.len().saturating_sub(1)),
            None => {
                let descending = self.sort == Some((self.current_col(), false));
                self.sort = Some((self.current_col(), descending));
                self.refresh();
            }
        }
    }

    pub fn toggle_mark(&mut self) {
        if let Some(&i) = self.visible.get(self.cursor) {
            if !self.marks.remove(&i) {
                self.marks.insert(i);
            }
        }
    }

    pub fn clear_marks(&mut self) {
        self.marks.clear();
    }

    /// Pins the cursor's row as the baseline (again on the pinned row: unpins).
    pub fn toggle_pin(&mut self) {
        let here = self.visible.get(self.cursor).copied();
        self.pin = if self.pin == here { None } else { here };
        self.refresh_layers();
    }

    pub fn toggle_diff_only(&mut self) {
        self.diff_only = !self.diff_only;
        self.refresh_layers();
    }

    pub fn scale_threshold(&mut self, factor: f64) {
        self.threshold = (self.threshold * factor).clamp(1e-4, 1.0);
        self.refresh_layers();
    }

    /// The two agents to compare (entry indices): the two marked, or the marked one and the
    /// cursor's.
    pub fn compare_pair(&self) -> Result<(usize, usize), &'static str> {
        let marks: Vec<usize> = self.marks.iter().copied().collect();
        match (marks.as_slice(), self.visible.get(self.cursor)) {
            ([a, b], _) => Ok((*a, *b)),
            ([a], Some(&c)) if *a != c => Ok((*a, c)),
            _ => Err("mark two agents with space to compare them (or one, with the cursor on the other)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::study::sweep::agent::LayerSummary;
    use crate::study::sweep::discover::Kind;

    fn row(id: &str, run: &str, step: Option<u64>) -> Row {
        Row {
            agent_id: id.into(),
            path: format!("{run}/x.zip"),
            kind: if step.is_some() { Kind::Checkpoint } else { Kind::Final },
            run: run.into(),
            step,
            algorithm: Some("DQN".into()),
            environment: Some("CartPole-v1".into()),
            seed: Some(1),
            group: "g".into(),
            inputs: "own".into(),
            candidates: "patching".into(),
            vec_normalize: "none".into(),
            duplicate_of: None,
            status: Status::Ok,
            error: None,
        }
    }

    fn summary(id: &str, shares: &[f64]) -> Arc<AgentSummary> {
        Arc::new(AgentSummary {
            agent_id: id.into(),
            inputs: 10,
            gini: 0.5,
            layers: shares
                .iter()
                .enumerate()
                .map(|(i, &s)| LayerSummary { name: format!("l{i}"), share: s, mean: s, max: s, selected: 1 })
                .collect(),
            ablation: None,
            validation: None,
        })
    }

    fn table() -> Table {
        let mut t = Table::new(vec![
            row("aaaaaaa111", "logs/dqn/run_1", Some(2000)),
            row("aaaaaaa222", "logs/dqn/run_1", Some(1000)),
            row("bbbbbbb333", "logs/dqn/run_2", None),
        ]);
        t.set_summary(summary("aaaaaaa111", &[0.5, 0.5]));
        t.set_summary(summary("aaaaaaa222", &[0.9, 0.1]));
        t.set_summary(summary("bbbbbbb333", &[0.52, 0.48]));
        t.refresh();
        t
    }

    #[test]
    fn ids_are_shortened_while_unique_and_runs_lose_their_common_folder() {
        let t = table();
        assert_eq!(t.cell(0, Col::Id).text, "aaaaaaa1");
        assert_eq!(t.cell(2, Col::Run).text, "dqn/run_2");
        let labels = run_labels(&["/a/x/logs/dqn/r_1", "/b/y/mixed/r_1", "/b/y/mixed/cart", "/c/dqn/r_1"]);
        assert_eq!(labels, ["logs/dqn/r_1", "mixed/r_1", "mixed/cart", "c/dqn/r_1"]);
        assert_eq!(t.cell(1, Col::Layer(0)).text, "90.0");
    }

    #[test]
    fn filter_sort_mark_pin_and_differences() {
        let mut t = table();
        t.set_filter("RUN_1").unwrap();
        assert_eq!(t.visible(), [0, 1]);
        t.set_filter("!run_1").unwrap();
        assert_eq!(t.visible(), [2]);
        assert!(t.set_filter("(").unwrap_err().contains("regular expression"));
        t.set_filter("").unwrap();
        // sort by step: the final model (no step) last either way
        t.col = t.columns().iter().position(|&c| c == Col::Step).unwrap();
        t.sort_by_cursor(false);
        assert_eq!(t.visible(), [1, 0, 2]);
        t.sort_by_cursor(true);
        assert_eq!(t.visible(), [0, 1, 2]);
        // the cursor follows its agent through a sort
        t.cursor = 1;
        t.sort_by_cursor(true);
        assert_eq!(t.current().unwrap().pos, 1);
        // marks survive filters; two marks make the pair
        t.cursor = 0;
        t.toggle_mark();
        assert!(t.compare_pair().is_err());
        t.move_rows(2);
        assert_eq!(t.compare_pair(), Ok((0, 2)));
        // pinned baseline: differences in points; only layers that differ by more than 5%
        t.move_rows(-2);
        t.toggle_pin();
        assert_eq!(t.cell(1, Col::Layer(0)).text, "+40.0");
        assert_eq!(t.cell(2, Col::Layer(1)).text, "-2.0");
        t.toggle_diff_only();
        assert_eq!(t.columns().len(), Col::BASE.len() + 2, "l0 and l1 both differ by 40 points");
        assert_eq!(t.columns()[Col::LEAD.len()], Col::Layer(0), "layers right after the lead columns");
        t.set_filter("run_2|aaaaaaa111").unwrap();
        assert_eq!(t.columns().len(), Col::BASE.len(), "2 points of difference is under 5%");
        t.scale_threshold(0.25);
        assert_eq!(t.columns().len(), Col::BASE.len() + 2);
    }
}
