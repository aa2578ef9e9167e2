//! The explorer's state and `update(Action) -> Vec<Effect>`. Nothing here draws or does I/O:
//! `update` changes state and returns the effects (export, cancel, restart, quit) for the event
//! loop to run; `prepare` lays out the screen for its size and fills the caches the widgets
//! read (pooled heatmap, colour scale, overlay, list scrolling), and mouse clicks are resolved
//! against that same layout.

use std::path::PathBuf;
use std::sync::Arc;

use ratatui::layout::Rect;

use super::color::{ColorMode, Colormap};
use super::evidence::{self, Scope};
use super::export::{AblationJob, ExportJob, ExportMsg};
use super::features::FeatureNames;
use super::heatmap::{self, Grid, Mark, MatrixShape, Pooling, RangeMode, Scale, Scaler, Viewport};
use super::keymap::Action;
use super::layout::{self, Regions};
use super::worker::Msg;
use crate::ablation;
use crate::json::Value;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{self, CandidateKey, Pick, Resolved, Selection};
use crate::pipeline::input_saliency::{InputKey, InputMeans};
use crate::pipeline::measures::{Measure, MeasureSet};
use crate::pipeline::Progress;
use crate::target::Target;

/// Smallest terminal the explorer draws in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Layers,
    Heatmap,
    Targets,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Status {
    Loading,
    Running(Progress),
    Done,
    Failed(String),
    Cancelled(Option<Progress>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Knob {
    K,
    M,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Popup {
    Help,
    /// Drill-down into one neuron (row `row` of parameter `param`).
    Neuron {
        param: usize,
        row: usize,
    },
    Prompt {
        knob: Knob,
        text: String,
    },
    /// The input view: input saliency, and input `index`'s values and own saliency.
    Inputs {
        index: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    File,
    Mean,
    Max,
    Size,
    Selected,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::File => "file order",
            SortKey::Mean => "mean",
            SortKey::Max => "max",
            SortKey::Size => "size",
            SortKey::Selected => "selected",
        }
    }

    fn next(self) -> SortKey {
        match self {
            SortKey::File => SortKey::Mean,
            SortKey::Mean => SortKey::Max,
            SortKey::Max => SortKey::Size,
            SortKey::Size => SortKey::Selected,
            SortKey::Selected => SortKey::File,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerStat {
    pub mean: f64,
    pub min: f64,
    /// Smallest positive value (the log scale's floor).
    pub min_pos: f64,
    pub max: f64,
    pub sum: f64,
    pub selected: usize,
}

/// Heatmap view settings and cursor (matrix coordinates of the current layer).
#[derive(Debug, Clone)]
pub struct HeatmapState {
    pub zoom: usize,
    pub cursor: (usize, usize),
    pub pooling: Pooling,
    pub scale: Scale,
    pub range: RangeMode,
    pub colormap: Colormap,
    pub show_kernel: bool,
}

/// What the event loop does for `update`.
#[derive(Debug, Clone)]
pub enum Effect {
    Quit,
    /// Stop the running pipeline (at its next batch).
    CancelRun,
    /// Start the pipeline again.
    Restart,
    /// Write the files, off the UI thread.
    Export(Box<ExportJob>),
    /// Ask the evidence worker (the newest request wins).
    Evidence(Box<evidence::Request>),
    /// Run the pipeline (and the evidence) again for another target.
    SetTarget(Target),
}

/// The evidence worker's state as the explorer shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum EvidenceStatus {
    /// No model to ablate (the averages were opened from files).
    Off,
    /// The worker is loading the agent and preparing the inputs.
    Loading,
    /// Inputs kept for the evidence, and whether that is all of them.
    Ready {
        inputs: usize,
        all: bool,
    },
    Failed(String),
}

/// Requested and received evidence: the line (the whole selection) and the open neuron.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidenceState {
    pub status: EvidenceStatus,
    pub next_id: u64,
    /// The selection version last requested, and the request's id.
    pub requested: Option<(u64, u64)>,
    /// The newest result for the line: its request id and evidence (None: empty selection).
    pub line: Option<(u64, Option<ablation::Evidence>)>,
    /// The newest neuron request (id, scope) and its result.
    pub neuron_wanted: Option<(u64, Scope)>,
    pub neuron: Option<(u64, Scope, Option<ablation::Evidence>)>,
    /// The newest input-view request (id, input index) and its answer.
    pub input_wanted: Option<(u64, usize)>,
    pub input: Option<evidence::InputSample>,
}

impl EvidenceState {
    fn store(&mut self, id: u64, scope: Scope, e: Option<ablation::Evidence>) {
        match scope {
            Scope::Selection if self.line.as_ref().is_none_or(|(old, _)| *old < id) => self.line = Some((id, e)),
            Scope::Neuron { .. } if self.neuron.as_ref().is_none_or(|(old, _, _)| *old < id) => {
                self.neuron = Some((id, scope, e))
            }
            _ => {}
        }
    }

    /// Whether the line shows an older selection than the current one.
    pub fn line_stale(&self) -> bool {
        match (self.requested, &self.line) {
            (Some((_, want)), Some((got, _))) => *got != want,
            (Some(_), None) => true,
            _ => false,
        }
    }
}

/// The screen as the last `prepare` laid it out: the regions, and where each visible list row
/// and the heatmap pixels are (the widgets draw from these, and clicks are resolved on them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScreenLayout {
    pub regions: Regions,
    /// First visible row of each list.
    pub layers_skip: usize,
    pub targets_skip: usize,
    /// (screen row, index into `layer_order`) of the visible layer rows.
    pub layer_rows: Vec<(u16, usize)>,
    /// (screen row, index into the selection's targets) of the visible target rows.
    pub target_rows: Vec<(u16, usize)>,
    /// The heatmap's pixel area (after the candidate margin).
    pub heatmap_pixels: Rect,
}

/// Where the export stands.
#[derive(Debug, Clone, PartialEq)]
pub enum ExportState {
    Idle,
    Running { stage: String },
}

/// The pixel area of a heatmap pane: inside its border, less the margin column and the two
/// lines for the colour bar and the cursor readout.
pub fn heatmap_pixels(pane: Rect, mode: ColorMode) -> (usize, usize) {
    let w = pane.width.saturating_sub(3) as usize;
    let h = pane.height.saturating_sub(4) as usize;
    (w, if mode == ColorMode::None { h } else { 2 * h })
}

/// What the pooled grid depends on: averages generation, parameter, zoom, viewport, pooling,
/// pixel size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridKey {
    generation: u64,
    param: usize,
    view: Viewport,
    pooling: Pooling,
    pixels: (usize, usize),
}

/// Caches computed by `prepare` for the widgets.
#[derive(Debug, Clone, Default)]
pub struct ViewCache {
    pub key: Option<GridKey>,
    pub grid: Grid,
    pub view: Viewport,
    pub scaler: Option<Scaler>,
    pub marks: Vec<(usize, usize, Mark)>,
    pub candidate_rows: Vec<usize>,
    pub cursor_px: Option<(usize, usize)>,
    /// Sorted values per parameter (rank scale) and of all weights, for one generation.
    pub sorted: Vec<Option<Arc<Vec<f64>>>>,
    pub sorted_all: Option<Arc<Vec<f64>>>,
    pub sorted_generation: u64,
}

pub struct App {
    /// The agent or files being explored.
    pub source: String,
    pub status: Status,
    pub arch_summary: Option<String>,
    pub notes: Vec<String>,
    /// What is shown: the averages (mean-abs), or the measure chosen with `v`.
    pub averages: Option<Arc<Averages>>,
    /// The averages themselves (mean-abs): what export writes as average_gradients.json, and
    /// what the selection ranks while the shown measure is not a magnitude.
    pub mean_abs: Option<Arc<Averages>>,
    /// Every measure, once a run in the explorer finished.
    pub measures: Option<Arc<MeasureSet>>,
    /// The measure shown (and, when a magnitude, ranked by).
    pub measure: Measure,
    /// What the run differentiates.
    pub target: Target,
    /// The targets the agent offers (`t` steps through them).
    pub targets: Vec<Target>,
    pub n_actions: Option<usize>,
    /// The observation keys, their input saliency means (after a run), and feature names.
    pub input_keys: Vec<InputKey>,
    pub input_lens: Vec<usize>,
    pub input_means: Option<Arc<InputMeans>>,
    pub feature_names: Option<FeatureNames>,
    /// Averages of a run still in progress (or cancelled).
    pub provisional: bool,
    pub generation: u64,
    pub keys: Vec<CandidateKey>,
    pub useful: Option<Value>,
    pub resolved: Resolved,
    pub k: usize,
    pub m: usize,
    pub selection: Selection,
    pub stats: Vec<LayerStat>,
    /// Sum of every weight magnitude (biases excluded), and of the candidate rows.
    pub total_saliency: f64,
    pub candidate_saliency: f64,
    pub focus: Focus,
    pub sort: SortKey,
    pub layer_order: Vec<usize>,
    pub layer_cursor: usize,
    pub target_cursor: usize,
    pub hm: HeatmapState,
    pub color_mode: ColorMode,
    pub popup: Option<Popup>,
    pub message: Option<String>,
    pub out_dir: PathBuf,
    /// Whether export also writes average_gradients.json (averages computed here).
    pub computed_here: bool,
    pub export: ExportState,
    /// The agent the averages come from, when it can be run (evidence and ablation need it).
    pub model: Option<evidence::Source>,
    pub evidence: EvidenceState,
    /// Bumped whenever the selection changes.
    pub selection_version: u64,
    /// The list a folded left column shows (the one that last had focus).
    pub list_shown: Focus,
    pub cache: ViewCache,
    pub layout: ScreenLayout,
}

impl App {
    pub fn new(
        source: String,
        keys: Vec<CandidateKey>,
        useful: Option<Value>,
        out_dir: PathBuf,
        computed_here: bool,
    ) -> App {
        App {
            source,
            status: Status::Loading,
            arch_summary: None,
            notes: Vec::new(),
            averages: None,
            mean_abs: None,
            measures: None,
            measure: Measure::MeanAbs,
            target: Target::Q,
            targets: Vec::new(),
            n_actions: None,
            input_keys: Vec::new(),
            input_lens: Vec::new(),
            input_means: None,
            feature_names: None,
            provisional: false,
            generation: 0,
            keys,
            useful,
            resolved: Resolved::default(),
            k: 2,
            m: 4,
            selection: Selection::default(),
            stats: Vec::new(),
            total_saliency: 0.0,
            candidate_saliency: 0.0,
            focus: Focus::Layers,
            sort: SortKey::File,
            layer_order: Vec::new(),
            layer_cursor: 0,
            target_cursor: 0,
            hm: HeatmapState {
                zoom: 1,
                cursor: (0, 0),
                pooling: Pooling::Max,
                scale: Scale::Linear,
                range: RangeMode::Layer,
                colormap: Colormap::Viridis,
                show_kernel: false,
            },
            color_mode: ColorMode::TrueColor,
            popup: None,
            message: None,
            out_dir,
            computed_here,
            export: ExportState::Idle,
            model: None,
            evidence: EvidenceState {
                status: EvidenceStatus::Off,
                next_id: 0,
                requested: None,
                line: None,
                neuron_wanted: None,
                neuron: None,
                input_wanted: None,
                input: None,
            },
            selection_version: 0,
            list_shown: Focus::Layers,
            cache: ViewCache::default(),
            layout: ScreenLayout::default(),
        }
    }

    pub fn running(&self) -> bool {
        matches!(self.status, Status::Loading | Status::Running(_))
    }

    /// The parameter shown in the heatmap.
    pub fn current_param(&self) -> Option<usize> {
        self.layer_order.get(self.layer_cursor).copied()
    }

    /// Takes new averages (provisional or final) and recomputes what depends on them.
    pub fn set_averages(&mut self, avgs: Arc<Averages>, provisional: bool) {
        self.mean_abs = Some(avgs.clone());
        let shown = match (&self.measures, self.measure) {
            (Some(set), m) if m != Measure::MeanAbs && !provisional => set.as_averages(m).map(Arc::new).unwrap_or(avgs),
            _ => avgs,
        };
        self.show_averages(shown, provisional);
    }

    /// Shows `avgs` (the averages or a measure) and recomputes what depends on it.
    fn show_averages(&mut self, avgs: Arc<Averages>, provisional: bool) {
        let first = self.averages.is_none();
        let shapes_changed = self
            .averages
            .as_ref()
            .map(|a| a.params.iter().map(|p| (&p.name, &p.shape)).ne(avgs.params.iter().map(|p| (&p.name, &p.shape))))
            .unwrap_or(true);
        self.averages = Some(avgs);
        self.provisional = provisional;
        self.generation += 1;
        if shapes_changed {
            let avgs = self.averages.clone().unwrap_or_default();
            self.resolved = extract::resolve(&self.keys, self.useful.as_ref(), &avgs);
            if first {
                self.layer_cursor = 0;
                // Start on the layer of the first candidate, where the interest is.
                let start = self.resolved.candidates.first().map(|c| c.param).unwrap_or(0);
                self.layer_order = (0..avgs.params.len()).collect();
                self.layer_cursor = start;
                self.reset_cursor();
            }
        }
        self.compute_stats();
        self.reselect();
        self.sort_layers();
    }

    fn compute_stats(&mut self) {
        let Some(avgs) = self.averages.clone() else { return };
        self.stats = avgs
            .params
            .iter()
            .map(|p| {
                let (mut sum, mut max, mut min, mut min_pos) =
                    (0.0f64, f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY);
                for &v in &p.data {
                    if v.is_finite() {
                        sum += v;
                        max = max.max(v);
                        min = min.min(v);
                        if v > 0.0 {
                            min_pos = min_pos.min(v);
                        }
                    }
                }
                let n = p.data.len().max(1) as f64;
                let fin = |x: f64| if x.is_finite() { x } else { 0.0 };
                LayerStat {
                    mean: sum / n,
                    min: fin(min),
                    min_pos: if min_pos.is_finite() { min_pos } else { fin(max) },
                    max: fin(max),
                    sum,
                    selected: 0,
                }
            })
            .collect();
        self.total_saliency =
            avgs.params.iter().zip(&self.stats).filter(|(p, _)| !p.is_bias()).map(|(_, s)| s.sum).sum();
        self.candidate_saliency = self
            .resolved
            .candidates
            .iter()
            .map(|c| avgs.params[c.param].row(c.neuron).iter().filter(|v| v.is_finite()).sum::<f64>())
            .sum();
    }

    /// Re-runs the selection for the current k and m (pure, cheap).
    pub fn reselect(&mut self) {
        let Some(avgs) = self.ranking() else { return };
        self.selection = extract::select(&avgs, &self.resolved.candidates, self.k, self.m);
        for s in &mut self.stats {
            s.selected = 0;
        }
        for t in &self.selection.targets {
            let p = self.resolved.candidates[t.candidate].param;
            if let Some(s) = self.stats.get_mut(p) {
                s.selected += 1;
            }
        }
        self.target_cursor = self.target_cursor.min(self.selection.targets.len().saturating_sub(1));
        self.selection_version += 1;
    }

    /// What the selection ranks: the shown measure when it is a magnitude, else the averages.
    pub fn ranking(&self) -> Option<Arc<Averages>> {
        if self.measure.is_magnitude() {
            self.averages.clone()
        } else {
            self.mean_abs.clone()
        }
    }

    /// Switches the shown measure (no re-run: every measure is kept).
    pub fn set_measure(&mut self, m: Measure) {
        let Some(set) = self.measures.clone() else {
            self.message = Some("the other measures come with the finished run".into());
            return;
        };
        self.measure = m;
        let shown = if m == Measure::MeanAbs { self.mean_abs.clone() } else { set.as_averages(m).map(Arc::new) };
        if let Some(a) = shown {
            self.show_averages(a, self.provisional);
        }
    }

    /// The current selection as elements of the agent's parameters.
    pub fn selection_change(&self) -> ablation::Change {
        let Some(avgs) = &self.averages else { return ablation::Change::default() };
        let named: Vec<ablation::NamedWeight> = self
            .selection
            .targets
            .iter()
            .map(|t| {
                let c = &self.resolved.candidates[t.candidate];
                ablation::NamedWeight {
                    layer_name: avgs.params[c.param].name.clone(),
                    neuron_index: c.neuron as i64,
                    weight_index: t.weight_index as i64,
                }
            })
            .collect();
        let mut map: std::collections::BTreeMap<usize, Vec<usize>> = Default::default();
        for (t, n) in self.selection.targets.iter().zip(&named) {
            let c = &self.resolved.candidates[t.candidate];
            let cols = avgs.params[c.param].rows_cols().1;
            map.entry(c.param).or_default().push(n.neuron_index as usize * cols + n.weight_index as usize);
        }
        ablation::Change {
            per_param: map
                .into_iter()
                .map(|(p, mut v)| {
                    v.sort_unstable();
                    v.dedup();
                    (p, v)
                })
                .collect(),
        }
    }

    /// Evidence requests for what changed since the last ones: the line when the selection
    /// changed, the open neuron when it changed or the selection did. Only on final averages
    /// of a model the explorer can run.
    pub fn evidence_effects(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        let live = matches!(self.evidence.status, EvidenceStatus::Loading | EvidenceStatus::Ready { .. });
        if !live || self.provisional || self.status != Status::Done || self.averages.is_none() {
            return out;
        }
        let changed = self.evidence.requested.map(|(v, _)| v) != Some(self.selection_version);
        if changed {
            self.evidence.next_id += 1;
            let id = self.evidence.next_id;
            self.evidence.requested = Some((self.selection_version, id));
            let change = self.selection_change();
            out.push(Effect::Evidence(Box::new(evidence::Request { id, scope: Scope::Selection, change })));
        }
        if let Some(Popup::Inputs { index }) = self.popup {
            if self.evidence.input_wanted.map(|(_, i)| i) != Some(index) {
                self.evidence.next_id += 1;
                let id = self.evidence.next_id;
                self.evidence.input_wanted = Some((id, index));
                let change = ablation::Change::default();
                out.push(Effect::Evidence(Box::new(evidence::Request { id, scope: Scope::Input { index }, change })));
            }
        }
        if let Some(Popup::Neuron { param, row }) = self.popup {
            let scope = Scope::Neuron { param, row };
            if changed || self.evidence.neuron_wanted.map(|(_, s)| s) != Some(scope) {
                self.evidence.next_id += 1;
                let id = self.evidence.next_id;
                self.evidence.neuron_wanted = Some((id, scope));
                let cols = self.averages.as_ref().map(|a| a.params[param].rows_cols().1).unwrap_or(1);
                let change = self.selection_change().row(param, row, cols);
                out.push(Effect::Evidence(Box::new(evidence::Request { id, scope, change })));
            }
        }
        out
    }

    /// Applies a message from the evidence worker (results for outdated requests are kept
    /// only until a newer one arrives, and shown as stale).
    pub fn on_evidence(&mut self, msg: evidence::Msg) {
        let ev = &mut self.evidence;
        match msg {
            evidence::Msg::Ready { inputs, all } => ev.status = EvidenceStatus::Ready { inputs, all },
            evidence::Msg::Failed(e) => ev.status = EvidenceStatus::Failed(e),
            evidence::Msg::Result { id, scope, evidence } => ev.store(id, scope, Some(evidence)),
            evidence::Msg::Empty { id, scope } => ev.store(id, scope, None),
            evidence::Msg::Input(sample) => {
                if ev.input.as_ref().is_none_or(|old| old.id < sample.id) {
                    ev.input = Some(*sample);
                }
            }
        }
    }

    fn sort_layers(&mut self) {
        let current = self.current_param();
        let n = self.stats.len();
        let mut order: Vec<usize> = (0..n).collect();
        let avgs = self.averages.clone().unwrap_or_default();
        let key = |i: usize| -> f64 {
            match self.sort {
                SortKey::File => -(i as f64),
                SortKey::Mean => self.stats[i].mean,
                SortKey::Max => self.stats[i].max,
                SortKey::Size => avgs.params[i].data.len() as f64,
                SortKey::Selected => self.stats[i].selected as f64,
            }
        };
        order.sort_by(|&a, &b| key(b).partial_cmp(&key(a)).unwrap_or(std::cmp::Ordering::Equal).then(a.cmp(&b)));
        self.layer_order = order;
        if let Some(c) = current {
            self.layer_cursor = self.layer_order.iter().position(|&i| i == c).unwrap_or(0);
        }
    }

    pub fn matrix_shape(&self) -> Option<MatrixShape> {
        let p = self.current_param()?;
        Some(MatrixShape::of(&self.averages.as_ref()?.params.get(p)?.shape))
    }

    fn reset_cursor(&mut self) {
        self.hm.cursor = (0, 0);
        self.hm.zoom = 1;
        if let (Some(p), Some(ms)) = (self.current_param(), self.matrix_shape()) {
            if let Some(c) = self.resolved.candidates.iter().find(|c| c.param == p) {
                self.hm.cursor = (c.neuron.min(ms.rows - 1), 0);
            }
        }
    }

    /// Moves the heatmap to parameter `param`, cursor on (row, col).
    pub fn show(&mut self, param: usize, row: usize, col: usize) {
        if let Some(i) = self.layer_order.iter().position(|&x| x == param) {
            self.layer_cursor = i;
            self.hm.cursor = (row, col);
        }
    }

    /// Matrix cells per pixel along each axis at the current zoom (>= 1).
    fn steps(&self) -> (usize, usize) {
        let g = &self.cache.grid;
        let rows = g.row_bins.first().map(|b| b.1 - b.0).unwrap_or(1).max(1);
        let cols = g.col_bins.first().map(|b| b.1 - b.0).unwrap_or(1).max(1);
        (rows, cols)
    }

    fn move_cursor(&mut self, dr: isize, dc: isize) {
        let Some(ms) = self.matrix_shape() else { return };
        let (sr, sc) = self.steps();
        let r = self.hm.cursor.0 as isize + dr * sr as isize;
        let c = self.hm.cursor.1 as isize + dc * sc as isize;
        self.hm.cursor = (r.clamp(0, ms.rows as isize - 1) as usize, c.clamp(0, ms.cols as isize - 1) as usize);
    }

    fn jump_candidate(&mut self, forward: bool) {
        let Some(p) = self.current_param() else { return };
        let mut rows: Vec<usize> = self.resolved.candidates.iter().filter(|c| c.param == p).map(|c| c.neuron).collect();
        rows.sort_unstable();
        let cur = self.hm.cursor.0;
        let next = if forward {
            rows.iter().copied().find(|&r| r > cur).or(rows.first().copied())
        } else {
            rows.iter().rev().copied().find(|&r| r < cur).or(rows.last().copied())
        };
        match next {
            Some(r) => self.hm.cursor.0 = r,
            None => self.message = Some("no candidate neuron in this layer".into()),
        }
    }

    fn set_knob(&mut self, knob: Knob, value: usize) {
        let value = value.min(1_000_000_000);
        match knob {
            Knob::K => self.k = value,
            Knob::M => self.m = value,
        }
        self.reselect();
        if self.sort == SortKey::Selected {
            self.sort_layers();
        }
    }

    fn step_knob(&mut self, knob: Knob, delta: isize) {
        let cur = match knob {
            Knob::K => self.k,
            Knob::M => self.m,
        } as isize;
        self.set_knob(knob, (cur + delta).max(0) as usize);
    }

    fn open(&mut self) {
        match self.focus {
            Focus::Layers => self.focus = Focus::Heatmap,
            Focus::Heatmap => {
                if let (Some(p), Some(ms)) = (self.current_param(), self.matrix_shape()) {
                    if ms.rows > 0 && self.averages.as_ref().is_some_and(|a| a.params[p].shape.len() >= 2) {
                        self.popup = Some(Popup::Neuron { param: p, row: self.hm.cursor.0 });
                    } else {
                        self.message = Some("a bias has no incoming weights".into());
                    }
                }
            }
            Focus::Targets => {
                if let Some(t) = self.selection.targets.get(self.target_cursor) {
                    let c = self.resolved.candidates[t.candidate].clone();
                    let col = self.matrix_shape_of(c.param).map(|ms| ms.col_of_weight(t.weight_index)).unwrap_or(0);
                    self.show(c.param, c.neuron, col);
                    self.popup = Some(Popup::Neuron { param: c.param, row: c.neuron });
                }
            }
        }
    }

    pub fn matrix_shape_of(&self, param: usize) -> Option<MatrixShape> {
        Some(MatrixShape::of(&self.averages.as_ref()?.params.get(param)?.shape))
    }

    /// Applies an action; returns what the event loop must do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        let mut effects = Vec::new();
        // Number prompt first.
        if let Some(Popup::Prompt { knob, text }) = &mut self.popup {
            match action {
                Action::Digit(d) if text.len() < 9 => text.push(char::from(b'0' + d)),
                Action::Backspace => {
                    text.pop();
                }
                Action::Confirm => {
                    let (knob, value) = (*knob, text.parse::<usize>().ok());
                    self.popup = None;
                    if let Some(v) = value {
                        self.set_knob(knob, v);
                    }
                }
                Action::Back => self.popup = None,
                Action::Quit => effects.push(Effect::Quit),
                _ => {}
            }
            effects.extend(self.evidence_effects());
            return effects;
        }
        match action {
            Action::Quit => effects.push(Effect::Quit),
            Action::Back => {
                if self.popup.is_some() {
                    self.popup = None;
                } else if self.hm.show_kernel {
                    self.hm.show_kernel = false;
                } else if self.running() {
                    effects.push(Effect::CancelRun);
                }
            }
            Action::CancelRun => {
                if self.running() {
                    effects.push(Effect::CancelRun);
                } else {
                    self.message = Some("nothing is running".into());
                }
            }
            Action::Restart => {
                if self.computed_here {
                    self.status = Status::Loading;
                    effects.push(Effect::Restart);
                } else {
                    self.message = Some("these averages were read from a file; nothing to re-run".into());
                }
            }
            Action::ToggleHelp => {
                self.popup = if self.popup == Some(Popup::Help) { None } else { Some(Popup::Help) };
            }
            Action::Left | Action::Right if matches!(self.popup, Some(Popup::Inputs { .. })) => {
                if let Some(Popup::Inputs { index }) = &mut self.popup {
                    let last = match &self.evidence.status {
                        EvidenceStatus::Ready { inputs, .. } => inputs.saturating_sub(1),
                        _ => 0,
                    };
                    *index = if action == Action::Left { index.saturating_sub(1) } else { (*index + 1).min(last) };
                }
            }
            Action::InputView if matches!(self.popup, Some(Popup::Inputs { .. })) => self.popup = None,
            _ if self.popup.is_some() => {
                // Popups take only closing keys and knob changes (so k/m can be tuned while
                // looking at a neuron).
                self.update_knobs(action);
            }
            Action::CycleMeasure => {
                let i = Measure::ALL.iter().position(|&m| m == self.measure).unwrap_or(0);
                self.set_measure(Measure::ALL[(i + 1) % Measure::ALL.len()]);
            }
            Action::CycleTarget => match self.next_target() {
                Ok(t) => {
                    self.target = t;
                    self.status = Status::Loading;
                    self.measures = None;
                    self.input_means = None;
                    self.measure = Measure::MeanAbs;
                    self.evidence.requested = None;
                    self.evidence.line = None;
                    if self.model.is_some() {
                        self.evidence.status = EvidenceStatus::Loading;
                    }
                    effects.push(Effect::SetTarget(t));
                }
                Err(why) => self.message = Some(why),
            },
            Action::InputView => {
                if self.model.is_none() {
                    self.message =
                        Some("the input view needs the agent (these averages were opened from files)".into());
                } else {
                    self.popup = Some(Popup::Inputs { index: 0 });
                }
            }
            Action::FocusNext | Action::FocusPrev => {
                let order = [Focus::Layers, Focus::Heatmap, Focus::Targets];
                let i = order.iter().position(|&f| f == self.focus).unwrap_or(0);
                let j = if action == Action::FocusNext { (i + 1) % 3 } else { (i + 2) % 3 };
                self.set_focus(order[j]);
            }
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
                self.vertical(action)
            }
            Action::Left => self.move_cursor(0, -1),
            Action::Right => self.move_cursor(0, 1),
            Action::ZoomIn => {
                if let Some(ms) = self.matrix_shape() {
                    if ms.rows.max(ms.cols) / self.hm.zoom > 1 {
                        self.hm.zoom *= 2;
                    }
                }
            }
            Action::ZoomOut => self.hm.zoom = (self.hm.zoom / 2).max(1),
            Action::ZoomReset => self.hm.zoom = 1,
            Action::TogglePooling => {
                self.hm.pooling = if self.hm.pooling == Pooling::Max { Pooling::Mean } else { Pooling::Max }
            }
            Action::CycleScale => self.hm.scale = self.hm.scale.next(),
            Action::ToggleRange => {
                self.hm.range = if self.hm.range == RangeMode::Layer { RangeMode::Global } else { RangeMode::Layer }
            }
            Action::CycleColormap => self.hm.colormap = self.hm.colormap.next(),
            Action::CycleSort => {
                self.sort = self.sort.next();
                self.sort_layers();
            }
            Action::NextCandidate => self.jump_candidate(true),
            Action::PrevCandidate => self.jump_candidate(false),
            Action::Open => self.open(),
            Action::ToggleKernel => {
                if self.matrix_shape().is_some_and(|ms| ms.is_conv()) {
                    self.hm.show_kernel = !self.hm.show_kernel;
                } else {
                    self.message = Some("not a conv layer: there is no kernel to show".into());
                }
            }
            Action::Export | Action::Ablate => match self.export_job(action == Action::Ablate) {
                Ok(job) => {
                    self.export = ExportState::Running { stage: "starting".into() };
                    effects.push(Effect::Export(Box::new(job)));
                }
                Err(why) => self.message = Some(why),
            },
            other => self.update_knobs(other),
        }
        effects.extend(self.evidence_effects());
        effects
    }

    /// The target after the current one, among those the agent offers.
    fn next_target(&self) -> Result<Target, String> {
        if !self.computed_here {
            return Err("these averages were read from a file; the target cannot change".into());
        }
        if self.targets.is_empty() {
            return Err("the agent is not loaded yet".into());
        }
        let all = &self.targets;
        let i = all.iter().position(|&t| t == self.target).unwrap_or(0);
        Ok(all[(i + 1) % all.len()])
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        if focus != Focus::Heatmap {
            self.list_shown = focus;
        }
    }

    fn update_knobs(&mut self, action: Action) {
        match action {
            Action::KUp => self.step_knob(Knob::K, 1),
            Action::KDown => self.step_knob(Knob::K, -1),
            Action::KUpBig => self.step_knob(Knob::K, 10),
            Action::KDownBig => self.step_knob(Knob::K, -10),
            Action::MUp => self.step_knob(Knob::M, 1),
            Action::MDown => self.step_knob(Knob::M, -1),
            Action::MUpBig => self.step_knob(Knob::M, 10),
            Action::MDownBig => self.step_knob(Knob::M, -10),
            Action::TypeK => self.popup = Some(Popup::Prompt { knob: Knob::K, text: String::new() }),
            Action::TypeM => self.popup = Some(Popup::Prompt { knob: Knob::M, text: String::new() }),
            _ => {}
        }
    }

    fn vertical(&mut self, action: Action) {
        let page = 10isize;
        match self.focus {
            Focus::Layers | Focus::Targets => {
                let (cursor, len) = if self.focus == Focus::Layers {
                    (self.layer_cursor, self.layer_order.len())
                } else {
                    (self.target_cursor, self.selection.targets.len())
                };
                if len == 0 {
                    return;
                }
                let new = match action {
                    Action::Up => cursor.saturating_sub(1),
                    Action::Down => (cursor + 1).min(len - 1),
                    Action::PageUp => cursor.saturating_sub(page as usize),
                    Action::PageDown => (cursor + page as usize).min(len - 1),
                    Action::Top => 0,
                    _ => len - 1,
                };
                if self.focus == Focus::Layers {
                    if new != self.layer_cursor {
                        self.layer_cursor = new;
                        self.hm.show_kernel = false;
                        self.reset_cursor();
                    }
                } else {
                    self.target_cursor = new;
                    // The heatmap follows: the target's layer, cursor on its weight.
                    if let Some(t) = self.selection.targets.get(new) {
                        let c = self.resolved.candidates[t.candidate].clone();
                        let col = self.matrix_shape_of(c.param).map(|ms| ms.col_of_weight(t.weight_index)).unwrap_or(0);
                        self.show(c.param, c.neuron, col);
                    }
                }
            }
            Focus::Heatmap => match action {
                Action::Up => self.move_cursor(-1, 0),
                Action::Down => self.move_cursor(1, 0),
                Action::PageUp => self.move_cursor(-page, 0),
                Action::PageDown => self.move_cursor(page, 0),
                Action::Top => self.hm.cursor.0 = 0,
                _ => {
                    if let Some(ms) = self.matrix_shape() {
                        self.hm.cursor.0 = ms.rows.saturating_sub(1)
                    }
                }
            },
        }
    }

    /// What `e` exports now: candidate_weights.json for the current k and m, and
    /// average_gradients.json when the averages were computed here. Refused (with the reason)
    /// while the averages are provisional or an export is running.
    pub fn export_job(&self, ablate: bool) -> Result<ExportJob, String> {
        let Some(avgs) = self.averages.clone() else { return Err("nothing to export yet".into()) };
        if self.provisional || self.running() {
            return Err(
                "cannot export while the averages are provisional: wait for the run to finish (or R to re-run)".into(),
            );
        }
        if self.export != ExportState::Idle {
            return Err("an export is already running".into());
        }
        let ablation = if ablate {
            let Some(source) = self.model.clone() else {
                return Err("ablation needs the agent: these averages were opened from files (use --agent-path)".into());
            };
            let change = self.selection_change();
            if change.is_empty() {
                return Err("the selection is empty: nothing to ablate".into());
            }
            Some(AblationJob { source, change })
        } else {
            None
        };
        Ok(ExportJob {
            averages: self.mean_abs.clone().unwrap_or(avgs.clone()),
            ranked: self.ranking().unwrap_or(avgs),
            candidates: self.resolved.candidates.clone(),
            selection: self.selection.clone(),
            out_dir: self.out_dir.clone(),
            write_averages: self.computed_here,
            ablation,
        })
    }

    /// Applies a message from the export thread.
    pub fn on_export(&mut self, msg: ExportMsg) {
        match msg {
            ExportMsg::Stage(stage) => self.export = ExportState::Running { stage },
            ExportMsg::Done(text) | ExportMsg::Failed(text) => {
                self.export = ExportState::Idle;
                self.message = Some(text);
            }
        }
    }

    /// Applies a message from the worker; returns the evidence requests it calls for.
    pub fn on_msg(&mut self, msg: Msg) -> Vec<Effect> {
        match msg {
            Msg::Loaded { summary, notes, n_actions, keys, input_lens, target, targets } => {
                self.input_lens = input_lens;
                self.target = target;
                self.targets = targets;
                self.arch_summary = Some(summary);
                self.notes.extend(notes);
                self.n_actions = Some(n_actions);
                self.input_keys = keys;
                self.status = Status::Running(Progress { done: 0, total: 0, total_exact: false, elapsed_s: 0.0 });
            }
            Msg::Progress(p) => self.status = Status::Running(p),
            Msg::Snapshot(a) => self.set_averages(a, true),
            Msg::Finished(a, extras) => {
                self.status = Status::Done;
                if let Some(x) = extras {
                    self.measures = Some(Arc::new(x.measures.clone()));
                    self.input_means = Some(Arc::new(x.inputs.clone()));
                }
                self.set_averages(a, false);
            }
            Msg::Failed(e) => self.status = Status::Failed(e),
            Msg::Cancelled => {
                let p = match &self.status {
                    Status::Running(p) => Some(*p),
                    _ => None,
                };
                self.status = Status::Cancelled(p);
            }
        }
        self.evidence_effects()
    }

    /// Share of the saliency captured by the selection: of all weights, of the candidate rows.
    pub fn captured(&self) -> (f64, f64) {
        let c = self.selection.captured();
        let share = |total: f64| if total > 0.0 { c / total } else { 0.0 };
        (share(self.total_saliency), share(self.candidate_saliency))
    }

    /// A left click, resolved on the layout the last frame was drawn with: selects a layer
    /// or target row, or moves the heatmap cursor.
    pub fn click(&mut self, x: u16, y: u16) {
        let inside = |r: Rect| x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
        let l = self.layout.clone();
        if inside(l.regions.layers) {
            self.set_focus(Focus::Layers);
            if let Some(&(_, i)) = l.layer_rows.iter().find(|(row, _)| *row == y) {
                if i != self.layer_cursor {
                    self.layer_cursor = i;
                    self.hm.show_kernel = false;
                    self.reset_cursor();
                }
            }
        } else if inside(l.regions.targets) {
            self.set_focus(Focus::Targets);
            if let Some(&(_, i)) = l.target_rows.iter().find(|(row, _)| *row == y) {
                self.target_cursor = i;
            }
        } else if inside(l.regions.heatmap) {
            self.set_focus(Focus::Heatmap);
            let p = l.heatmap_pixels;
            if inside(p) {
                let px = (x - p.x) as usize;
                let per_cell = if self.color_mode == ColorMode::None { 1 } else { 2 };
                let py = (y - p.y) as usize * per_cell;
                let g = &self.cache.grid;
                if let (Some(&(r0, _)), Some(&(c0, _))) = (g.row_bins.get(py), g.col_bins.get(px)) {
                    self.hm.cursor = (r0, c0);
                }
            }
        }
    }

    /// Lays out the screen and the list scrolling for a screen of size `area`.
    fn lay_out(&mut self, area: Rect) {
        let regions = layout::regions(area, self.list_shown == Focus::Targets);
        // Lists: inside the border, under the header row; the cursor row stays visible.
        let list = |r: Rect, cursor: usize, len: usize| -> (usize, Vec<(u16, usize)>) {
            let visible = r.height.saturating_sub(3) as usize;
            let skip = cursor.saturating_sub(visible.saturating_sub(1));
            let rows = (skip..len.min(skip + visible)).enumerate().map(|(k, i)| (r.y + 2 + k as u16, i)).collect();
            (skip, rows)
        };
        let (layers_skip, layer_rows) = list(regions.layers, self.layer_cursor, self.layer_order.len());
        let (targets_skip, target_rows) = list(regions.targets, self.target_cursor, self.selection.targets.len());
        // Heatmap: border, one margin column for candidate marks, two lines for the colour bar
        // and the cursor readout.
        let hm = regions.heatmap;
        let (w, h) = heatmap_pixels(hm, ColorMode::TrueColor);
        let heatmap_pixels = Rect { x: hm.x + 2, y: hm.y + 1, width: w as u16, height: (h / 2) as u16 };
        self.layout = ScreenLayout { regions, layers_skip, targets_skip, layer_rows, target_rows, heatmap_pixels };
    }

    /// Computes the view caches for a screen of size `area`.
    pub fn prepare(&mut self, area: Rect) {
        self.lay_out(area);
        let Some(avgs) = self.averages.clone() else { return };
        let Some(p) = self.current_param() else { return };
        let param = &avgs.params[p];
        let ms = MatrixShape::of(&param.shape);
        if ms.rows == 0 || ms.cols == 0 {
            return;
        }
        self.hm.cursor.0 = self.hm.cursor.0.min(ms.rows - 1);
        self.hm.cursor.1 = self.hm.cursor.1.min(ms.cols - 1);
        let (px_w, px_h) = heatmap_pixels(self.layout.regions.heatmap, self.color_mode);
        let zoom = self.hm.zoom.max(1);
        let vis_r = ms.rows.div_ceil(zoom).max(1);
        let vis_c = ms.cols.div_ceil(zoom).max(1);
        // Keep the cursor inside the viewport, centred when zoomed.
        let center = |cur: usize, vis: usize, total: usize| cur.saturating_sub(vis / 2).min(total - vis);
        let view = Viewport {
            r0: center(self.hm.cursor.0, vis_r, ms.rows),
            rows: vis_r,
            c0: center(self.hm.cursor.1, vis_c, ms.cols),
            cols: vis_c,
        };
        let key =
            GridKey { generation: self.generation, param: p, view, pooling: self.hm.pooling, pixels: (px_w, px_h) };
        if self.cache.key != Some(key) {
            self.cache.grid = heatmap::pool(param, &ms, view, px_w, px_h, self.hm.pooling);
            self.cache.view = view;
            self.cache.key = Some(key);
        }
        // Colour scale.
        if self.cache.sorted_generation != self.generation || self.cache.sorted.len() != avgs.params.len() {
            self.cache.sorted = vec![None; avgs.params.len()];
            self.cache.sorted_all = None;
            self.cache.sorted_generation = self.generation;
        }
        let global = self.hm.range == RangeMode::Global;
        let sorted = if self.hm.scale == Scale::Rank {
            Some(if global {
                self.cache
                    .sorted_all
                    .get_or_insert_with(|| {
                        let mut all: Vec<f64> =
                            avgs.params.iter().filter(|q| !q.is_bias()).flat_map(|q| q.data.iter().copied()).collect();
                        all.sort_by(f64::total_cmp);
                        Arc::new(all)
                    })
                    .clone()
            } else {
                self.cache.sorted[p]
                    .get_or_insert_with(|| {
                        let mut v = param.data.clone();
                        v.sort_by(f64::total_cmp);
                        Arc::new(v)
                    })
                    .clone()
            })
        } else {
            None
        };
        let scaler = if global {
            let weights = || avgs.params.iter().zip(&self.stats).filter(|(q, _)| !q.is_bias()).map(|(_, st)| st);
            let lo = weights().map(|st| st.min).fold(f64::INFINITY, f64::min);
            let hi = weights().map(|st| st.max).fold(f64::NEG_INFINITY, f64::max);
            let lo_pos = weights().map(|st| st.min_pos).fold(f64::INFINITY, f64::min);
            Scaler::from_range(self.hm.scale, lo, hi, lo_pos, sorted)
        } else {
            let st = &self.stats[p];
            Scaler::from_range(self.hm.scale, st.min, st.max, st.min_pos, sorted)
        };
        self.cache.scaler = Some(scaler);
        // Overlay: selected weights of this layer, candidate rows, cursor.
        let grid = &self.cache.grid;
        self.cache.marks.clear();
        for t in &self.selection.targets {
            let c = &self.resolved.candidates[t.candidate];
            if c.param != p {
                continue;
            }
            if let Some((py, px)) = grid.pixel_of(c.neuron, ms.col_of_weight(t.weight_index)) {
                let mark = if t.pick == Pick::Additional { Mark::Additional } else { Mark::Guaranteed };
                self.cache.marks.push((py, px, mark));
            }
        }
        self.cache.candidate_rows.clear();
        for c in self.resolved.candidates.iter().filter(|c| c.param == p) {
            if let Some((py, _)) = grid.pixel_of(c.neuron, view.c0) {
                self.cache.candidate_rows.push(py);
            }
        }
        self.cache.cursor_px = grid.pixel_of(self.hm.cursor.0, self.hm.cursor.1);
    }
}
