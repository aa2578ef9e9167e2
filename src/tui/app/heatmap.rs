//! The heatmap pane's state: zoom, cursor, pooling, scale, range, colormap, the kernel
//! drill-down, and the caches `prepare` fills for the widget (pooled grid, colour scale,
//! overlay), recomputed only when what they depend on changes.

use std::sync::Arc;

use crate::colormap::Colormap;
use crate::pipeline::average::Averages;
use crate::pipeline::extract::{Candidate, Pick, Selection};

use super::data::LayerStat;
use crate::tui::heatmap::{self, Grid, Mark, MatrixShape, Pooling, RangeMode, Scale, Scaler, Viewport};

/// What the pooled grid depends on.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GridKey {
    generation: u64,
    param: usize,
    view: Viewport,
    pooling: Pooling,
    pixels: (usize, usize),
}

/// What `prepare` needs from the rest of the explorer.
pub struct PaneInput<'a> {
    pub avgs: &'a Averages,
    pub generation: u64,
    pub param: usize,
    pub stats: &'a [LayerStat],
    pub selection: &'a Selection,
    pub candidates: &'a [Candidate],
    /// The pane's pixels (width, height).
    pub pixels: (usize, usize),
}

pub struct HeatmapPane {
    zoom: usize,
    /// Matrix coordinates (row, column) of the current layer.
    cursor: (usize, usize),
    pooling: Pooling,
    scale: Scale,
    range: RangeMode,
    colormap: Colormap,
    show_kernel: bool,
    key: Option<GridKey>,
    grid: Grid,
    scaler: Option<Scaler>,
    marks: Vec<(usize, usize, Mark)>,
    candidate_rows: Vec<usize>,
    cursor_px: Option<(usize, usize)>,
    /// Sorted values per parameter (rank scale) and of all weights, for one generation.
    sorted: Vec<Option<Arc<Vec<f64>>>>,
    sorted_all: Option<Arc<Vec<f64>>>,
    sorted_generation: u64,
}

impl HeatmapPane {
    pub fn new(colormap: Colormap) -> HeatmapPane {
        HeatmapPane {
            zoom: 1,
            cursor: (0, 0),
            pooling: Pooling::Max,
            scale: Scale::Linear,
            range: RangeMode::Layer,
            colormap,
            show_kernel: false,
            key: None,
            grid: Grid::default(),
            scaler: None,
            marks: Vec::new(),
            candidate_rows: Vec::new(),
            cursor_px: None,
            sorted: Vec::new(),
            sorted_all: None,
            sorted_generation: 0,
        }
    }

    pub fn zoom(&self) -> usize {
        self.zoom
    }
    pub fn cursor(&self) -> (usize, usize) {
        self.cursor
    }
    pub fn pooling(&self) -> Pooling {
        self.pooling
    }
    pub fn scale(&self) -> Scale {
        self.scale
    }
    pub fn range(&self) -> RangeMode {
        self.range
    }
    pub fn colormap(&self) -> Colormap {
        self.colormap
    }
    pub fn show_kernel(&self) -> bool {
        self.show_kernel
    }
    pub fn grid(&self) -> &Grid {
        &self.grid
    }
    pub fn scaler(&self) -> Option<&Scaler> {
        self.scaler.as_ref()
    }
    pub fn marks(&self) -> &[(usize, usize, Mark)] {
        &self.marks
    }
    pub fn candidate_rows(&self) -> &[usize] {
        &self.candidate_rows
    }
    pub fn cursor_px(&self) -> Option<(usize, usize)> {
        self.cursor_px
    }

    pub fn toggle_pooling(&mut self) {
        self.pooling = if self.pooling == Pooling::Max { Pooling::Mean } else { Pooling::Max };
    }
    pub fn cycle_scale(&mut self) {
        self.scale = self.scale.next();
    }
    pub fn toggle_range(&mut self) {
        self.range = if self.range == RangeMode::Layer { RangeMode::Global } else { RangeMode::Layer };
    }
    pub fn cycle_colormap(&mut self) {
        self.colormap = self.colormap.next();
    }
    pub fn close_kernel(&mut self) -> bool {
        std::mem::replace(&mut self.show_kernel, false)
    }
    /// `x`: the kernel under the cursor (conv layers only).
    pub fn toggle_kernel(&mut self, ms: Option<MatrixShape>) -> Result<(), &'static str> {
        if !ms.is_some_and(|ms| ms.is_conv()) {
            return Err("not a conv layer: there is no kernel to show");
        }
        self.show_kernel = !self.show_kernel;
        Ok(())
    }

    pub fn zoom_in(&mut self, ms: Option<MatrixShape>) {
        if ms.is_some_and(|ms| ms.rows.max(ms.cols) / self.zoom > 1) {
            self.zoom *= 2;
        }
    }
    pub fn zoom_out(&mut self) {
        self.zoom = (self.zoom / 2).max(1);
    }
    pub fn zoom_reset(&mut self) {
        self.zoom = 1;
    }

    /// Cursor on (row, col), unzoomed kernel view closed: a new layer.
    pub fn focus(&mut self, row: usize, col: usize) {
        self.cursor = (row, col);
        self.zoom = 1;
        self.show_kernel = false;
    }

    /// Moves the cursor to (row, col) at the current zoom.
    pub fn place(&mut self, row: usize, col: usize) {
        self.cursor = (row, col);
    }

    /// Moves the cursor by whole pixels (so a pooled view moves a pixel per key).
    pub fn move_by(&mut self, ms: Option<MatrixShape>, dr: isize, dc: isize) {
        let Some(ms) = ms.filter(|ms| ms.rows > 0 && ms.cols > 0) else { return };
        let step = |bins: &[(usize, usize)]| bins.first().map(|b| b.1 - b.0).unwrap_or(1).max(1) as isize;
        let (sr, sc) = (step(&self.grid.row_bins), step(&self.grid.col_bins));
        let r = self.cursor.0 as isize + dr * sr;
        let c = self.cursor.1 as isize + dc * sc;
        self.cursor = (r.clamp(0, ms.rows as isize - 1) as usize, c.clamp(0, ms.cols as isize - 1) as usize);
    }

    pub fn to_row(&mut self, row: usize) {
        self.cursor.0 = row;
    }

    /// The matrix cell under a pixel of the pane (a click).
    pub fn cell_at(&self, py: usize, px: usize) -> Option<(usize, usize)> {
        Some((self.grid.row_bins.get(py)?.0, self.grid.col_bins.get(px)?.0))
    }

    /// Computes the caches for one frame.
    pub fn prepare(&mut self, f: &PaneInput) {
        let param = &f.avgs.params[f.param];
        let ms = MatrixShape::of(&param.shape);
        if ms.rows == 0 || ms.cols == 0 {
            return;
        }
        self.cursor = (self.cursor.0.min(ms.rows - 1), self.cursor.1.min(ms.cols - 1));
        let (px_w, px_h) = f.pixels;
        let view = self.viewport(&ms);
        let key =
            GridKey { generation: f.generation, param: f.param, view, pooling: self.pooling, pixels: (px_w, px_h) };
        if self.key != Some(key) {
            self.grid = heatmap::pool(param, &ms, view, px_w, px_h, self.pooling);
            self.key = Some(key);
        }
        self.scaler = Some(self.scaler_for(f));
        self.overlay(f, &ms, view);
    }

    /// The visible part of the matrix: all of it, or around the cursor when zoomed.
    fn viewport(&self, ms: &MatrixShape) -> Viewport {
        let zoom = self.zoom.max(1);
        let (vis_r, vis_c) = (ms.rows.div_ceil(zoom).max(1), ms.cols.div_ceil(zoom).max(1));
        let center = |cur: usize, vis: usize, total: usize| cur.saturating_sub(vis / 2).min(total - vis);
        Viewport {
            r0: center(self.cursor.0, vis_r, ms.rows),
            rows: vis_r,
            c0: center(self.cursor.1, vis_c, ms.cols),
            cols: vis_c,
        }
    }

    /// The colour scale: this layer's range or all weights', linear, log or by rank.
    fn scaler_for(&mut self, f: &PaneInput) -> Scaler {
        let avgs = f.avgs;
        if self.sorted_generation != f.generation || self.sorted.len() != avgs.params.len() {
            self.sorted = vec![None; avgs.params.len()];
            self.sorted_all = None;
            self.sorted_generation = f.generation;
        }
        let global = self.range == RangeMode::Global;
        let sorted = (self.scale == Scale::Rank).then(|| {
            let sort = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                Arc::new(v)
            };
            if global {
                let all = || avgs.params.iter().filter(|q| !q.is_bias()).flat_map(|q| q.data.iter().copied()).collect();
                self.sorted_all.get_or_insert_with(|| sort(all())).clone()
            } else {
                self.sorted[f.param].get_or_insert_with(|| sort(avgs.params[f.param].data.clone())).clone()
            }
        });
        if !global {
            let st = &f.stats[f.param];
            return Scaler::from_range(self.scale, st.min, st.max, st.min_pos, sorted);
        }
        let weights = || avgs.params.iter().zip(f.stats).filter(|(q, _)| !q.is_bias()).map(|(_, st)| st);
        let lo = weights().map(|st| st.min).fold(f64::INFINITY, f64::min);
        let hi = weights().map(|st| st.max).fold(f64::NEG_INFINITY, f64::max);
        let lo_pos = weights().map(|st| st.min_pos).fold(f64::INFINITY, f64::min);
        Scaler::from_range(self.scale, lo, hi, lo_pos, sorted)
    }

    /// Selected weights of this layer, candidate rows and the cursor, as pixels.
    fn overlay(&mut self, f: &PaneInput, ms: &MatrixShape, view: Viewport) {
        let grid = &self.grid;
        self.marks.clear();
        for t in &f.selection.weights {
            let c = &f.candidates[t.candidate];
            if c.param != f.param {
                continue;
            }
            if let Some((py, px)) = grid.pixel_of(c.neuron, ms.col_of_weight(t.weight_index)) {
                let mark = if t.pick == Pick::Additional { Mark::Additional } else { Mark::Guaranteed };
                self.marks.push((py, px, mark));
            }
        }
        self.candidate_rows.clear();
        for c in f.candidates.iter().filter(|c| c.param == f.param) {
            if let Some((py, _)) = grid.pixel_of(c.neuron, view.c0) {
                self.candidate_rows.push(py);
            }
        }
        self.cursor_px = grid.pixel_of(self.cursor.0, self.cursor.1);
    }
}
