//! The explorer's state: an `App` of parts, each with private fields and its own update, and
//! `App::update(Action) -> Vec<Effect>` dispatching to them. Nothing here draws or does I/O:
//! long work is an `Effect` the event loop hands to a background job, whose messages come back
//! through `on_browse`, `on_evidence` and `on_export`. `prepare` lays out the screen for its
//! size and fills the caches the widgets read; mouse clicks are resolved on that same layout.

pub mod data;
pub mod evidence;
pub mod export;
pub mod heatmap;
pub mod inputs;
pub mod layers;
pub mod run;
pub mod selection;
pub mod validation;

use std::path::PathBuf;
use std::sync::Arc;

use ratatui::layout::Rect;

use super::color::ColorMode;
use super::heatmap::MatrixShape;
use super::keymap::Action;
use super::layout::{self, Regions};
use crate::jobs::{Outcome, Reply, Update};
use crate::pipeline::average::Averages;
use crate::pipeline::measures::Measure;
use crate::study::browse::{BrowseMsg, Browsed};
use crate::study::candidates::CandidateChoice;
use crate::study::evidence::{Answer, EngineSpec, Ready, Request};
use crate::study::export::{AblationJob, ExportJob};
use crate::target::Target;

pub use data::{Data, LayerStat};
pub use evidence::{EvidencePart, EvidenceStatus};
pub use export::{ExportPart, ExportState};
pub use heatmap::HeatmapPane;
pub use inputs::InputsPart;
pub use layers::{Layers, SortKey};
pub use run::{RunPart, Status};
pub use selection::{Knob, Knobs};

/// Smallest terminal the explorer draws in.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    Layers,
    Heatmap,
    /// The selected weights (the right pane).
    Selected,
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
    /// The validation's scatter: the measure shown against the damage.
    Scatter,
}

/// What the event loop does for `update`.
#[derive(Debug, Clone)]
pub enum Effect {
    Quit,
    /// Stop the running pipeline (at its next batch).
    CancelRun,
    /// Run the pipeline again, and the evidence engine for `target` when it changed.
    Run {
        target: Option<Target>,
    },
    /// Write the files (and with `A` ablate), off the UI thread.
    Export(Box<ExportJob>),
    /// Stop the running export or ablation.
    CancelExport,
    /// Ask the evidence engine (the newest request of each kind wins).
    Evidence(Box<Request>),
    /// Validate the measures against the damage, off the UI thread.
    Validate(Box<crate::study::validate::ValidateJob>),
}

/// The screen as the last `prepare` laid it out: the regions, and where each visible list row
/// and the heatmap pixels are (the widgets draw from these, and clicks are resolved on them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScreenLayout {
    pub regions: Regions,
    /// (screen row, index into the layer order) of the visible layer rows.
    pub layer_rows: Vec<(u16, usize)>,
    /// (screen row, index into the selected weights) of the visible rows.
    pub selected_rows: Vec<(u16, usize)>,
    /// The heatmap's pixel area (after the candidate margin).
    pub heatmap_pixels: Rect,
}

/// The pixel area of a heatmap pane: inside its border, less the margin column and the two
/// lines for the colour bar and the cursor readout.
pub fn heatmap_pixels(pane: Rect, mode: ColorMode) -> (usize, usize) {
    let w = pane.width.saturating_sub(3) as usize;
    let h = pane.height.saturating_sub(4) as usize;
    (w, if mode == ColorMode::None { h } else { 2 * h })
}

/// Where the explorer writes, and with what it can run the agent.
pub struct Setup {
    pub source: String,
    pub candidates: crate::study::candidates::CandidateChoice,
    pub notes: Vec<String>,
    pub out_dir: PathBuf,
    /// The agent, its inputs and the ablation settings, when the explorer can run it.
    pub engine: Option<EngineSpec>,
    /// What `V` validates (the sample, the inputs, the ablation's mode and seed).
    pub validate: crate::study::validate::ValidateSettings,
    pub feature_names: Option<crate::study::features::FeatureNames>,
    pub k: usize,
    pub m: usize,
    pub target: Target,
    pub colormap: crate::colormap::Colormap,
    pub color_mode: ColorMode,
}

pub struct App {
    run: RunPart,
    data: Data,
    knobs: Knobs,
    layers: Layers,
    heatmap: HeatmapPane,
    /// Cursor of the selected-weights list.
    selected_cursor: usize,
    evidence: EvidencePart,
    export: ExportPart,
    inputs: InputsPart,
    validation: validation::ValidationPart,
    engine: Option<EngineSpec>,
    validate: crate::study::validate::ValidateSettings,
    out_dir: PathBuf,
    focus: Focus,
    /// The list a folded left column shows (the one that last had focus).
    list_shown: Focus,
    popup: Option<Popup>,
    message: Option<String>,
    color_mode: ColorMode,
    layout: ScreenLayout,
}

impl App {
    pub fn new(s: Setup) -> App {
        let live = s.engine.is_some();
        App {
            run: RunPart::new(s.source, live, s.target, s.notes),
            data: Data::default(),
            knobs: Knobs::new(s.candidates, s.k, s.m),
            layers: Layers::default(),
            heatmap: HeatmapPane::new(s.colormap),
            selected_cursor: 0,
            evidence: EvidencePart::new(live),
            export: ExportPart::default(),
            inputs: InputsPart::new(s.feature_names),
            validation: validation::ValidationPart::default(),
            engine: s.engine,
            validate: s.validate,
            out_dir: s.out_dir,
            focus: Focus::Layers,
            list_shown: Focus::Layers,
            popup: None,
            message: None,
            color_mode: s.color_mode,
            layout: ScreenLayout::default(),
        }
    }

    // --- reading (widgets, tests) ---

    pub fn run(&self) -> &RunPart {
        &self.run
    }
    pub fn data(&self) -> &Data {
        &self.data
    }
    pub fn knobs(&self) -> &Knobs {
        &self.knobs
    }
    pub fn layers(&self) -> &Layers {
        &self.layers
    }
    pub fn heatmap(&self) -> &HeatmapPane {
        &self.heatmap
    }
    pub fn selected_cursor(&self) -> usize {
        self.selected_cursor
    }
    pub fn evidence(&self) -> &EvidencePart {
        &self.evidence
    }
    pub fn export(&self) -> &ExportPart {
        &self.export
    }
    pub fn inputs(&self) -> &InputsPart {
        &self.inputs
    }
    pub fn focus(&self) -> Focus {
        self.focus
    }
    pub fn popup(&self) -> Option<&Popup> {
        self.popup.as_ref()
    }
    /// A line for the footer (until the next key).
    pub fn set_message(&mut self, m: impl Into<String>) {
        self.message = Some(m.into());
    }
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
    pub fn color_mode(&self) -> ColorMode {
        self.color_mode
    }
    pub fn layout(&self) -> &ScreenLayout {
        &self.layout
    }
    pub fn out_dir(&self) -> &std::path::Path {
        &self.out_dir
    }
    /// The agent the explorer can run (its settings), if any.
    pub fn engine(&self) -> Option<&EngineSpec> {
        self.engine.as_ref()
    }
    /// Whether keys go to a number prompt.
    pub fn in_prompt(&self) -> bool {
        matches!(self.popup, Some(Popup::Prompt { .. }))
    }
    /// Whether the pipeline, an export or the validation is at work.
    pub fn busy(&self) -> bool {
        self.run.running() || self.export.running() || self.validation.running()
    }
    /// The parameter shown in the heatmap.
    pub fn current_param(&self) -> Option<usize> {
        self.layers.current()
    }
    pub fn matrix_shape_of(&self, param: usize) -> Option<MatrixShape> {
        Some(MatrixShape::of(&self.data.shown()?.params.get(param)?.shape))
    }
    pub fn matrix_shape(&self) -> Option<MatrixShape> {
        self.matrix_shape_of(self.current_param()?)
    }
    /// Share of the saliency captured by the selection: of all weights, of the candidate rows.
    pub fn captured(&self) -> (f64, f64) {
        self.knobs.captured(self.data.total())
    }
    /// Notes and warnings for the footer count and the help screen.
    pub fn notes(&self) -> Vec<String> {
        self.run.notes().iter().cloned().chain(self.knobs.warnings()).collect()
    }

    // --- messages from the background jobs ---

    /// A message from the pipeline run; returns the evidence requests it calls for.
    pub fn on_browse(&mut self, msg: BrowseMsg) -> Vec<Effect> {
        match msg {
            BrowseMsg::Loaded(a) => self.run.on_loaded(*a),
            BrowseMsg::Progress(p) => self.run.on_progress(p),
            BrowseMsg::Snapshot(a) => self.set_averages(a, true),
        }
        self.evidence_effects()
    }

    /// The pipeline run ended.
    pub fn on_browse_end(&mut self, outcome: Outcome<Browsed>) -> Vec<Effect> {
        match outcome {
            Outcome::Done(b) => {
                self.run.on_done();
                if let Some(x) = b.extras {
                    self.data.set_measures(Some(Arc::new(x.measures.clone())));
                    self.inputs.set_means(Some(Arc::new(x.inputs.clone())));
                }
                self.set_averages(b.averages, false);
            }
            Outcome::Failed(e) => self.run.on_failed(e),
            Outcome::Cancelled => self.run.on_cancelled(),
        }
        self.evidence_effects()
    }

    /// A reply of the evidence engine.
    pub fn on_evidence(&mut self, reply: Reply<Ready, Answer>) {
        match reply {
            Reply::Ready(r) => self.evidence.on_ready(r),
            Reply::Answer(a) => self.evidence.on_answer(a),
            Reply::Failed(e) => self.evidence.on_failed(e),
        }
    }

    /// An update of the export job.
    pub fn on_export(&mut self, u: Update<String, String>) {
        match u {
            Update::Msg(stage) => self.export.on_stage(stage),
            Update::End(o) => {
                self.export.on_end();
                self.message = Some(match o {
                    Outcome::Done(text) => text,
                    Outcome::Failed(e) => format!("export failed: {e}"),
                    Outcome::Cancelled => "export cancelled; no file was changed".into(),
                });
            }
        }
    }

    /// New averages (provisional or final) and what depends on them.
    fn set_averages(&mut self, avgs: Arc<Averages>, provisional: bool) {
        let first = self.data.shown().is_none();
        if self.data.set_averages(avgs.clone(), provisional) {
            self.on_new_parameters(first);
        } else if !provisional && matches!(self.knobs.choice(), CandidateChoice::Saliency(_)) {
            // candidates chosen by saliency: from the final averages
            self.knobs.resolve(&avgs);
        }
        self.reselect();
    }

    /// Parameters (names, shapes) changed: resolve the candidates again (on the mean
    /// |gradient|, which saliency candidates are chosen by); on the first ones,
    /// start on the layer of the first candidate, where the interest is.
    fn on_new_parameters(&mut self, first: bool) {
        let Some(avgs) = self.data.mean_abs().cloned() else { return };
        self.knobs.resolve(&avgs);
        if first {
            let start = self.knobs.resolved().candidates.first().map(|c| c.param).unwrap_or(0);
            self.layers.reset(avgs.params.len(), start);
            self.reset_cursor();
        }
    }

    /// Re-runs the selection for the current k and m, and what follows from it.
    fn reselect(&mut self) {
        let (Some(ranked), Some(shown)) = (self.data.ranking(), self.data.shown().cloned()) else { return };
        self.knobs.reselect(&ranked, &shown);
        self.selected_cursor = self.selected_cursor.min(self.knobs.selection().weights.len().saturating_sub(1));
        let knobs = &self.knobs;
        self.layers.sort(&shown, self.data.stats(), &|p| knobs.selected_in(p));
    }

    /// Evidence requests for what changed since the last ones: the line when the selection
    /// changed, the open neuron when it changed or the selection did, the input view's input.
    /// Only on final averages of a model the explorer can run.
    fn evidence_effects(&mut self) -> Vec<Effect> {
        let mut out: Vec<Request> = Vec::new();
        let Some(avgs) = self.data.shown().cloned() else { return Vec::new() };
        if !self.evidence.live() || self.data.provisional() || !self.run.done() {
            return Vec::new();
        }
        let version = self.knobs.version();
        let knobs = &self.knobs;
        let line = self.evidence.ask_line(version, || knobs.change(&avgs));
        let changed = line.is_some();
        out.extend(line);
        match self.popup {
            Some(Popup::Inputs { index }) => out.extend(self.evidence.ask_input(index)),
            Some(Popup::Neuron { param, row }) => {
                let cols = avgs.params[param].rows_cols().1;
                out.extend(self.evidence.ask_neuron(param, row, changed, || knobs.change(&avgs).row(param, row, cols)));
            }
            _ => {}
        }
        out.into_iter().map(|r| Effect::Evidence(Box::new(r))).collect()
    }

    // --- actions ---

    /// Applies an action; returns what the event loop must do.
    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        self.message = None;
        let mut effects = match &self.popup {
            Some(Popup::Prompt { .. }) => self.update_prompt(action),
            Some(_) => self.update_popup(action),
            None => self.update_main(action),
        };
        effects.extend(self.evidence_effects());
        effects
    }

    /// Inside a number prompt: digits, Backspace, Enter, Esc.
    fn update_prompt(&mut self, action: Action) -> Vec<Effect> {
        let Some(Popup::Prompt { knob, text }) = &mut self.popup else { return Vec::new() };
        match action {
            Action::Digit(d) if text.len() < 9 => text.push(char::from(b'0' + d)),
            Action::Backspace => {
                text.pop();
            }
            Action::Confirm => {
                let (knob, value) = (*knob, text.parse::<usize>().ok());
                self.popup = None;
                if let Some(v) = value {
                    self.knobs.set(knob, v);
                    self.reselect();
                }
            }
            Action::Back => self.popup = None,
            Action::Quit => return vec![Effect::Quit],
            _ => {}
        }
        Vec::new()
    }

    /// With a popup open: closing keys, the input view's stepping, and k/m (so they can be
    /// tuned while looking at a neuron).
    fn update_popup(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Back => self.popup = None,
            Action::ToggleHelp if self.popup == Some(Popup::Help) => self.popup = None,
            Action::Validate if self.popup == Some(Popup::Scatter) => self.popup = None,
            Action::CycleMeasure if self.popup == Some(Popup::Scatter) => self.cycle_measure(),
            Action::InputView if matches!(self.popup, Some(Popup::Inputs { .. })) => self.popup = None,
            Action::Left | Action::Right => {
                let last = self.evidence.inputs().unwrap_or(1).saturating_sub(1);
                if let Some(Popup::Inputs { index }) = &mut self.popup {
                    *index = if action == Action::Left { index.saturating_sub(1) } else { (*index + 1).min(last) };
                }
            }
            other => self.update_knobs(other),
        }
        Vec::new()
    }

    fn update_knobs(&mut self, action: Action) {
        let (knob, delta) = match action {
            Action::KUp => (Knob::K, 1),
            Action::KDown => (Knob::K, -1),
            Action::KUpBig => (Knob::K, 10),
            Action::KDownBig => (Knob::K, -10),
            Action::MUp => (Knob::M, 1),
            Action::MDown => (Knob::M, -1),
            Action::MUpBig => (Knob::M, 10),
            Action::MDownBig => (Knob::M, -10),
            Action::TypeK | Action::TypeM => {
                let knob = if action == Action::TypeK { Knob::K } else { Knob::M };
                self.popup = Some(Popup::Prompt { knob, text: String::new() });
                return;
            }
            _ => return,
        };
        self.knobs.step(knob, delta);
        self.reselect();
    }

    /// Without a popup: everything else.
    fn update_main(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Quit => return vec![Effect::Quit],
            Action::Back => return self.back(),
            Action::CancelRun => return self.cancel(),
            Action::Restart => return self.restart(),
            Action::CycleTarget => return self.next_target(),
            Action::Export | Action::Ablate => return self.start_export(action == Action::Ablate),
            Action::Validate => return self.validate(),
            Action::ToggleHelp => self.popup = Some(Popup::Help),
            Action::CycleMeasure => self.cycle_measure(),
            Action::InputView => self.open_inputs(),
            Action::FocusNext | Action::FocusPrev => self.cycle_focus(action == Action::FocusNext),
            Action::Up | Action::Down | Action::PageUp | Action::PageDown | Action::Top | Action::Bottom => {
                self.vertical(action)
            }
            Action::Left => self.heatmap.move_by(self.matrix_shape(), 0, -1),
            Action::Right => self.heatmap.move_by(self.matrix_shape(), 0, 1),
            Action::Open => self.open(),
            action => self.update_view(action),
        }
        Vec::new()
    }

    /// Keys that change only how things are shown.
    fn update_view(&mut self, action: Action) {
        let ms = self.matrix_shape();
        let h = &mut self.heatmap;
        match action {
            Action::ZoomIn => h.zoom_in(ms),
            Action::ZoomOut => h.zoom_out(),
            Action::ZoomReset => h.zoom_reset(),
            Action::TogglePooling => h.toggle_pooling(),
            Action::CycleScale => h.cycle_scale(),
            Action::ToggleRange => h.toggle_range(),
            Action::CycleColormap => h.cycle_colormap(),
            Action::ToggleKernel => self.message = h.toggle_kernel(ms).err().map(str::to_string),
            Action::NextCandidate | Action::PrevCandidate => self.jump_candidate(action == Action::NextCandidate),
            Action::CycleSort => {
                self.layers.cycle_sort();
                if let Some(avgs) = self.data.shown().cloned() {
                    let knobs = &self.knobs;
                    self.layers.sort(&avgs, self.data.stats(), &|p| knobs.selected_in(p));
                }
            }
            other => self.update_knobs(other),
        }
    }

    /// Esc: close the kernel view, else cancel what runs (an export first).
    fn back(&mut self) -> Vec<Effect> {
        if self.heatmap.close_kernel() {
            return Vec::new();
        }
        if self.export.running() {
            return vec![Effect::CancelExport];
        }
        if self.run.running() {
            return vec![Effect::CancelRun];
        }
        Vec::new()
    }

    /// `c`: cancel the export (or ablation) or the pipeline.
    fn cancel(&mut self) -> Vec<Effect> {
        match self.back() {
            e if e.is_empty() => {
                self.message = Some("nothing is running".into());
                e
            }
            e => e,
        }
    }

    fn restart(&mut self) -> Vec<Effect> {
        match self.run.restart() {
            Ok(()) => vec![Effect::Run { target: None }],
            Err(why) => {
                self.message = Some(why.into());
                Vec::new()
            }
        }
    }

    fn next_target(&mut self) -> Vec<Effect> {
        match self.run.next_target() {
            Ok(t) => {
                self.data.forget_measures();
                self.inputs.set_means(None);
                self.evidence.forget_line();
                if let Some(e) = &mut self.engine {
                    e.spec = e.spec.with_target(t);
                }
                vec![Effect::Run { target: Some(t) }]
            }
            Err(why) => {
                self.message = Some(why.into());
                Vec::new()
            }
        }
    }

    fn cycle_measure(&mut self) {
        let i = Measure::ALL.iter().position(|&m| m == self.data.measure()).unwrap_or(0);
        if !self.data.set_measure(Measure::ALL[(i + 1) % Measure::ALL.len()]) {
            self.message = Some("the other measures come with the finished run".into());
            return;
        }
        self.reselect();
    }

    fn open_inputs(&mut self) {
        if self.engine.is_none() {
            self.message = Some("the input view needs the agent (these averages were opened from files)".into());
        } else {
            self.popup = Some(Popup::Inputs { index: 0 });
        }
    }

    fn set_focus(&mut self, focus: Focus) {
        self.focus = focus;
        if focus != Focus::Heatmap {
            self.list_shown = focus;
        }
    }

    fn cycle_focus(&mut self, forward: bool) {
        let order = [Focus::Layers, Focus::Heatmap, Focus::Selected];
        let i = order.iter().position(|&f| f == self.focus).unwrap_or(0);
        self.set_focus(order[if forward { (i + 1) % 3 } else { (i + 2) % 3 }]);
    }

    /// Up, down, page, top, bottom in the focused pane.
    fn vertical(&mut self, action: Action) {
        let step = |cursor: usize, len: usize| -> usize {
            match action {
                Action::Up => cursor.saturating_sub(1),
                Action::Down => (cursor + 1).min(len.saturating_sub(1)),
                Action::PageUp => cursor.saturating_sub(10),
                Action::PageDown => (cursor + 10).min(len.saturating_sub(1)),
                Action::Top => 0,
                _ => len.saturating_sub(1),
            }
        };
        match self.focus {
            Focus::Layers => {
                if self.layers.set_cursor(step(self.layers.cursor(), self.layers.len())) {
                    self.reset_cursor();
                }
            }
            Focus::Selected => {
                let len = self.knobs.selection().weights.len();
                if len > 0 {
                    self.selected_cursor = step(self.selected_cursor, len);
                    self.show_selected(self.selected_cursor);
                }
            }
            Focus::Heatmap => {
                let ms = self.matrix_shape();
                match action {
                    Action::Up => self.heatmap.move_by(ms, -1, 0),
                    Action::Down => self.heatmap.move_by(ms, 1, 0),
                    Action::PageUp => self.heatmap.move_by(ms, -10, 0),
                    Action::PageDown => self.heatmap.move_by(ms, 10, 0),
                    Action::Top => self.heatmap.to_row(0),
                    _ => self.heatmap.to_row(ms.map_or(0, |ms| ms.rows.saturating_sub(1))),
                }
            }
        }
    }

    /// The heatmap follows the selected weight `i`: its layer, cursor on its weight.
    fn show_selected(&mut self, i: usize) -> Option<(usize, usize)> {
        let t = self.knobs.selection().weights.get(i)?.clone();
        let c = self.knobs.resolved().candidates[t.candidate].clone();
        let col = self.matrix_shape_of(c.param).map(|ms| ms.col_of_weight(t.weight_index)).unwrap_or(0);
        if self.layers.show(c.param) {
            self.heatmap.place(c.neuron, col);
        }
        Some((c.param, c.neuron))
    }

    /// A new layer: cursor on its first candidate row, unzoomed.
    fn reset_cursor(&mut self) {
        let (p, ms) = (self.current_param(), self.matrix_shape());
        let row = match (p, ms) {
            (Some(p), Some(ms)) if ms.rows > 0 => {
                self.knobs.resolved().candidates.iter().find(|c| c.param == p).map_or(0, |c| c.neuron.min(ms.rows - 1))
            }
            _ => 0,
        };
        self.heatmap.focus(row, 0);
    }

    fn jump_candidate(&mut self, forward: bool) {
        let Some(p) = self.current_param() else { return };
        let mut rows: Vec<usize> =
            self.knobs.resolved().candidates.iter().filter(|c| c.param == p).map(|c| c.neuron).collect();
        rows.sort_unstable();
        let cur = self.heatmap.cursor().0;
        let next = if forward {
            rows.iter().copied().find(|&r| r > cur).or(rows.first().copied())
        } else {
            rows.iter().rev().copied().find(|&r| r < cur).or(rows.last().copied())
        };
        match next {
            Some(r) => self.heatmap.to_row(r),
            None => self.message = Some("no candidate neuron in this layer".into()),
        }
    }

    /// Enter: the heatmap from the layers, a neuron from the heatmap or the selected list.
    fn open(&mut self) {
        match self.focus {
            Focus::Layers => self.set_focus(Focus::Heatmap),
            Focus::Heatmap => {
                let (Some(p), Some(ms)) = (self.current_param(), self.matrix_shape()) else { return };
                if ms.rows > 0 && self.data.shown().is_some_and(|a| a.params[p].shape.len() >= 2) {
                    self.popup = Some(Popup::Neuron { param: p, row: self.heatmap.cursor().0 });
                } else {
                    self.message = Some("a bias has no incoming weights".into());
                }
            }
            Focus::Selected => {
                if let Some((param, row)) = self.show_selected(self.selected_cursor) {
                    self.popup = Some(Popup::Neuron { param, row });
                }
            }
        }
    }

    /// What `e` exports now: candidate_weights.json for the current k and m, and
    /// average_gradients.json when the averages were computed here; with `A` also the full
    /// ablation. Refused (with the reason) while the averages are provisional or an export is
    /// running.
    pub fn export_job(&self, ablate: bool) -> Result<ExportJob, String> {
        let Some(avgs) = self.data.shown().cloned() else { return Err("nothing to export yet".into()) };
        if self.data.provisional() || self.run.running() {
            return Err(
                "cannot export while the averages are provisional: wait for the run to finish (or R to re-run)".into(),
            );
        }
        if self.export.running() {
            return Err("an export is already running (Esc cancels it)".into());
        }
        let ablation = match (ablate, &self.engine) {
            (false, _) => None,
            (true, None) => {
                return Err("ablation needs the agent: these averages were opened from files (use --agent-path)".into())
            }
            (true, Some(source)) => {
                let change = self.knobs.change(&avgs);
                if change.is_empty() {
                    return Err("the selection is empty: nothing to ablate".into());
                }
                Some(AblationJob { source: source.clone(), change })
            }
        };
        Ok(ExportJob {
            averages: self.data.mean_abs().cloned().unwrap_or(avgs.clone()),
            ranked: self.data.ranking().unwrap_or(avgs),
            resolved: self.knobs.resolved().clone(),
            selection: self.knobs.selection().clone(),
            out_dir: self.out_dir.clone(),
            write_averages: self.run.computed_here(),
            ablation,
        })
    }

    /// `V`: start the validation; when it is done, the scatter of the measure shown.
    fn validate(&mut self) -> Vec<Effect> {
        use validation::ValidationState;
        match (self.validation.state(), &self.engine) {
            (ValidationState::Done(_), _) => self.popup = Some(Popup::Scatter),
            (ValidationState::Running { fraction, .. }, _) => {
                self.message = Some(format!("validating ({:.0}%): the scatter comes when it is done", 100.0 * fraction))
            }
            (_, None) => {
                self.message = Some(
                    "validation ablates weights of the agent itself: open it with --agent-path (these averages come \
                     from a file)"
                        .into(),
                )
            }
            (_, Some(engine)) => {
                let job = crate::study::validate::ValidateJob { engine: engine.clone(), settings: self.validate };
                self.validation.start();
                return vec![Effect::Validate(Box::new(job))];
            }
        }
        Vec::new()
    }

    /// An update of the validation job.
    pub fn on_validation(&mut self, u: Update<(String, f64), crate::study::validate::Validation>) {
        match u {
            Update::Msg((phase, f)) => self.validation.on_progress(phase, f),
            Update::End(o) => self.message = Some(self.validation.on_end(o)),
        }
    }

    pub fn validation(&self) -> &validation::ValidationPart {
        &self.validation
    }

    fn start_export(&mut self, ablate: bool) -> Vec<Effect> {
        match self.export_job(ablate) {
            Ok(job) => {
                self.export.start();
                vec![Effect::Export(Box::new(job))]
            }
            Err(why) => {
                self.message = Some(why);
                Vec::new()
            }
        }
    }

    // --- layout and mouse ---

    /// A left click, resolved on the layout the last frame was drawn with: selects a layer
    /// or a selected weight, or moves the heatmap cursor.
    pub fn click(&mut self, x: u16, y: u16) {
        let inside = |r: Rect| x >= r.x && x < r.right() && y >= r.y && y < r.bottom();
        let l = self.layout.clone();
        if inside(l.regions.layers) {
            self.set_focus(Focus::Layers);
            if let Some(&(_, i)) = l.layer_rows.iter().find(|(row, _)| *row == y) {
                if self.layers.set_cursor(i) {
                    self.reset_cursor();
                }
            }
        } else if inside(l.regions.selected) {
            self.set_focus(Focus::Selected);
            if let Some(&(_, i)) = l.selected_rows.iter().find(|(row, _)| *row == y) {
                self.selected_cursor = i;
            }
        } else if inside(l.regions.heatmap) {
            self.set_focus(Focus::Heatmap);
            let p = l.heatmap_pixels;
            if inside(p) {
                let per_cell = if self.color_mode == ColorMode::None { 1 } else { 2 };
                let (px, py) = ((x - p.x) as usize, (y - p.y) as usize * per_cell);
                if let Some((r, c)) = self.heatmap.cell_at(py, px) {
                    self.heatmap.place(r, c);
                }
            }
        }
    }

    /// Lays out the screen and the list scrolling for a screen of size `area`.
    fn lay_out(&mut self, area: Rect) {
        let regions = layout::regions(area, self.list_shown == Focus::Selected);
        // Lists: inside the border, under the header row; the cursor row stays visible.
        let list = |r: Rect, cursor: usize, len: usize| -> Vec<(u16, usize)> {
            let visible = r.height.saturating_sub(3) as usize;
            let skip = cursor.saturating_sub(visible.saturating_sub(1));
            (skip..len.min(skip + visible)).enumerate().map(|(k, i)| (r.y + 2 + k as u16, i)).collect()
        };
        let layer_rows = list(regions.layers, self.layers.cursor(), self.layers.len());
        let selected_rows = list(regions.selected, self.selected_cursor, self.knobs.selection().weights.len());
        // Heatmap: border, one margin column for candidate marks, two lines for the colour bar
        // and the cursor readout.
        let hm = regions.heatmap;
        let (w, h) = heatmap_pixels(hm, ColorMode::TrueColor);
        let heatmap_pixels = Rect { x: hm.x + 2, y: hm.y + 1, width: w as u16, height: (h / 2) as u16 };
        self.layout = ScreenLayout { regions, layer_rows, selected_rows, heatmap_pixels };
    }

    /// Computes the layout and the view caches for a screen of size `area`.
    pub fn prepare(&mut self, area: Rect) {
        self.lay_out(area);
        let (Some(avgs), Some(param)) = (self.data.shown().cloned(), self.current_param()) else { return };
        let frame = heatmap::PaneInput {
            avgs: &avgs,
            generation: self.data.generation(),
            param,
            stats: self.data.stats(),
            selection: self.knobs.selection(),
            candidates: &self.knobs.resolved().candidates,
            pixels: heatmap_pixels(self.layout.regions.heatmap, self.color_mode),
        };
        self.heatmap.prepare(&frame);
    }
}
