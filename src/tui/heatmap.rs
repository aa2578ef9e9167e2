//! Heatmaps of a parameter's average magnitudes: pooling to the screen, colour scales, and the
//! widget that draws half-block pixels (two per cell: upper = foreground, lower = background).

use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::Widget;

use super::color::{self, ColorMode, Colormap};
use crate::pipeline::average::AvgParam;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    Max,
    Mean,
}

impl Pooling {
    pub fn name(self) -> &'static str {
        match self {
            Pooling::Max => "max",
            Pooling::Mean => "mean",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    Linear,
    Log,
    Rank,
}

impl Scale {
    pub fn name(self) -> &'static str {
        match self {
            Scale::Linear => "linear",
            Scale::Log => "log",
            Scale::Rank => "rank",
        }
    }

    pub fn next(self) -> Scale {
        match self {
            Scale::Linear => Scale::Log,
            Scale::Log => Scale::Rank,
            Scale::Rank => Scale::Linear,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeMode {
    Layer,
    Global,
}

impl RangeMode {
    pub fn name(self) -> &'static str {
        match self {
            RangeMode::Layer => "layer",
            RangeMode::Global => "global",
        }
    }
}

/// A parameter seen as a matrix: rows are neurons; columns are incoming weights, or for a conv
/// weight (out, in, kh, kw) the input channels, each cell aggregating a kh x kw kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixShape {
    pub rows: usize,
    pub cols: usize,
    /// Elements per cell (kh * kw for conv weights, else 1).
    pub kernel: usize,
    pub kh: usize,
    pub kw: usize,
}

impl MatrixShape {
    pub fn of(shape: &[usize]) -> MatrixShape {
        match shape.len() {
            0 => MatrixShape { rows: 1, cols: 1, kernel: 1, kh: 1, kw: 1 },
            1 => MatrixShape { rows: 1, cols: shape[0], kernel: 1, kh: 1, kw: 1 },
            2 => MatrixShape { rows: shape[0], cols: shape[1], kernel: 1, kh: 1, kw: 1 },
            4 => {
                MatrixShape { rows: shape[0], cols: shape[1], kernel: shape[2] * shape[3], kh: shape[2], kw: shape[3] }
            }
            _ => MatrixShape { rows: shape[0], cols: shape[1..].iter().product(), kernel: 1, kh: 1, kw: 1 },
        }
    }

    pub fn is_conv(&self) -> bool {
        self.kernel > 1 || self.kh > 1
    }

    /// The cell (row, col) holding flat weight `index` of a row (a candidate's weight_index).
    pub fn col_of_weight(&self, weight_index: usize) -> usize {
        weight_index / self.kernel.max(1)
    }
}

/// The value of one cell: conv kernels are aggregated by the pooling mode.
#[inline]
pub fn cell_value(p: &AvgParam, ms: &MatrixShape, r: usize, c: usize, pooling: Pooling) -> f64 {
    let k = ms.kernel;
    if k == 1 {
        return p.data[r * ms.cols + c];
    }
    let start = (r * ms.cols + c) * k;
    let vals = &p.data[start..start + k];
    match pooling {
        Pooling::Max => vals.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Pooling::Mean => vals.iter().sum::<f64>() / k as f64,
    }
}

/// The visible part of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Viewport {
    pub r0: usize,
    pub rows: usize,
    pub c0: usize,
    pub cols: usize,
}

/// Matrix ranges covered by each pixel along one axis: `len` elements onto `pixels` pixels.
/// More elements than pixels: contiguous bins that cover the range exactly; fewer: each pixel
/// shows the element under it (nearest), so small layers fill the pane.
pub fn bins(start: usize, len: usize, pixels: usize) -> Vec<(usize, usize)> {
    if len == 0 || pixels == 0 {
        return Vec::new();
    }
    if len >= pixels {
        (0..pixels).map(|i| (start + i * len / pixels, start + (i + 1) * len / pixels)).collect()
    } else {
        (0..pixels).map(|i| (start + i * len / pixels, start + i * len / pixels + 1)).collect()
    }
}

/// Pooled values, one per pixel.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Grid {
    pub row_bins: Vec<(usize, usize)>,
    pub col_bins: Vec<(usize, usize)>,
    /// row-major, `row_bins.len()` x `col_bins.len()`
    pub values: Vec<f64>,
}

impl Grid {
    pub fn width(&self) -> usize {
        self.col_bins.len()
    }

    pub fn height(&self) -> usize {
        self.row_bins.len()
    }

    pub fn at(&self, py: usize, px: usize) -> f64 {
        self.values[py * self.width() + px]
    }

    /// The pixel (py, px) holding matrix cell (r, c), if visible.
    pub fn pixel_of(&self, r: usize, c: usize) -> Option<(usize, usize)> {
        let find = |bins: &[(usize, usize)], v: usize| -> Option<usize> {
            let i = bins.partition_point(|&(_, end)| end <= v);
            (i < bins.len() && bins[i].0 <= v).then_some(i)
        };
        Some((find(&self.row_bins, r)?, find(&self.col_bins, c)?))
    }
}

/// Pools the viewport of `p` onto a `px_w` x `px_h` pixel grid.
pub fn pool(p: &AvgParam, ms: &MatrixShape, view: Viewport, px_w: usize, px_h: usize, pooling: Pooling) -> Grid {
    let row_bins = bins(view.r0, view.rows, px_h);
    let col_bins = bins(view.c0, view.cols, px_w);
    let mut values = Vec::with_capacity(row_bins.len() * col_bins.len());
    let mut acc = vec![0.0f64; col_bins.len()];
    let mut counts = vec![0usize; col_bins.len()];
    for &(r_start, r_end) in &row_bins {
        acc.iter_mut().for_each(|a| *a = if pooling == Pooling::Max { f64::NEG_INFINITY } else { 0.0 });
        counts.iter_mut().for_each(|c| *c = 0);
        for r in r_start..r_end {
            for (i, &(c_start, c_end)) in col_bins.iter().enumerate() {
                if ms.kernel == 1 {
                    let row = &p.data[r * ms.cols + c_start..r * ms.cols + c_end];
                    match pooling {
                        Pooling::Max => acc[i] = row.iter().copied().fold(acc[i], f64::max),
                        Pooling::Mean => acc[i] += row.iter().sum::<f64>(),
                    }
                } else {
                    for c in c_start..c_end {
                        let v = cell_value(p, ms, r, c, pooling);
                        match pooling {
                            Pooling::Max => acc[i] = acc[i].max(v),
                            Pooling::Mean => acc[i] += v,
                        }
                    }
                }
                counts[i] += c_end - c_start;
            }
        }
        for (a, &n) in acc.iter().zip(&counts) {
            values.push(match pooling {
                Pooling::Max => *a,
                Pooling::Mean => *a / n.max(1) as f64,
            });
        }
    }
    Grid { row_bins, col_bins, values }
}

/// Maps magnitudes to [0, 1].
#[derive(Debug, Clone)]
pub struct Scaler {
    pub scale: Scale,
    pub lo: f64,
    pub hi: f64,
    /// Smallest positive value (log scale's floor).
    pub lo_pos: f64,
    /// Sorted values (rank scale).
    pub sorted: Option<std::sync::Arc<Vec<f64>>>,
}

impl Scaler {
    pub fn new(scale: Scale, values: &[f64], sorted: Option<std::sync::Arc<Vec<f64>>>) -> Scaler {
        let (mut lo, mut hi, mut lo_pos) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY);
        for &v in values {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
                if v > 0.0 {
                    lo_pos = lo_pos.min(v);
                }
            }
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 0.0);
        }
        if !lo_pos.is_finite() {
            lo_pos = hi.max(f64::MIN_POSITIVE);
        }
        Scaler { scale, lo, hi, lo_pos, sorted }
    }

    #[inline]
    pub fn t(&self, v: f64) -> f64 {
        if !v.is_finite() {
            return if v == f64::INFINITY { 1.0 } else { 0.0 };
        }
        match self.scale {
            Scale::Linear => {
                if self.hi > self.lo {
                    (v - self.lo) / (self.hi - self.lo)
                } else {
                    0.5
                }
            }
            Scale::Log => {
                if v <= 0.0 {
                    return 0.0;
                }
                let (a, b) = (self.lo_pos.ln(), self.hi.ln());
                if b > a {
                    ((v.ln() - a) / (b - a)).clamp(0.0, 1.0)
                } else {
                    0.5
                }
            }
            Scale::Rank => match &self.sorted {
                Some(s) if s.len() > 1 => {
                    let below = s.partition_point(|&x| x < v);
                    below as f64 / (s.len() - 1) as f64
                }
                _ => 0.5,
            },
        }
    }

    /// From known bounds (non-finite bounds mean an empty layer).
    pub fn from_range(scale: Scale, lo: f64, hi: f64, lo_pos: f64, sorted: Option<std::sync::Arc<Vec<f64>>>) -> Scaler {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() { (lo, hi) } else { (0.0, 0.0) };
        let lo_pos = if lo_pos.is_finite() && lo_pos > 0.0 { lo_pos } else { hi.max(f64::MIN_POSITIVE) };
        Scaler { scale, lo, hi, lo_pos, sorted }
    }

    /// The value shown at t (for colour bar labels).
    pub fn value_at(&self, t: f64) -> f64 {
        match self.scale {
            Scale::Linear => self.lo + t * (self.hi - self.lo),
            Scale::Log => (self.lo_pos.ln() + t * (self.hi.ln() - self.lo_pos.ln())).exp(),
            Scale::Rank => match &self.sorted {
                Some(s) if !s.is_empty() => s[((s.len() - 1) as f64 * t).round() as usize],
                _ => f64::NAN,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    Guaranteed,
    Additional,
    /// Two agents compared: a weight both select, or one of them.
    Both,
    OnlyA,
    OnlyB,
}

impl Mark {
    fn rgb(self) -> [u8; 3] {
        match self {
            Mark::Guaranteed => color::GUARANTEED_RGB,
            Mark::Additional => color::ADDITIONAL_RGB,
            Mark::Both => color::BOTH_RGB,
            Mark::OnlyA => color::ONLY_A_RGB,
            Mark::OnlyB => color::ONLY_B_RGB,
        }
    }

    fn glyph(self) -> char {
        match self {
            Mark::Guaranteed | Mark::Both => '●',
            Mark::Additional => '○',
            Mark::OnlyA => '◐',
            Mark::OnlyB => '◑',
        }
    }
}

/// Everything the heatmap widget draws; built by the view from app state, read-only.
pub struct HeatmapView<'a> {
    pub grid: &'a Grid,
    pub scaler: &'a Scaler,
    pub colormap: Colormap,
    /// Signed values: the diverging map (the scaler's 0.5 is no difference).
    pub diverging: bool,
    pub mode: ColorMode,
    /// Marked pixels (py, px, mark).
    pub marks: &'a [(usize, usize, Mark)],
    /// Pixel rows holding candidate neurons.
    pub candidate_rows: &'a [usize],
    /// The cursor's pixel.
    pub cursor: Option<(usize, usize)>,
}

fn pixel_rgb(v: &HeatmapView, py: usize, px: usize, marks: &[Option<Mark>]) -> [u8; 3] {
    match marks[py * v.grid.width() + px] {
        Some(m) => m.rgb(),
        None => {
            let x = v.grid.at(py, px);
            if x.is_nan() {
                color::EMPTY_RGB
            } else if v.diverging {
                crate::colormap::diverging(v.scaler.t(x))
            } else {
                v.colormap.rgb(v.scaler.t(x))
            }
        }
    }
}

impl Widget for &HeatmapView<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (w, h) = (self.grid.width(), self.grid.height());
        if area.width < 2 || area.height == 0 || w == 0 || h == 0 {
            return;
        }
        let mut marks = vec![None; w * h];
        for &(py, px, m) in self.marks {
            if py < h && px < w {
                let slot = &mut marks[py * w + px];
                if *slot != Some(Mark::Guaranteed) {
                    *slot = Some(m);
                }
            }
        }
        // Margin column: candidate neurons.
        let glyphs = self.mode == ColorMode::None;
        let pixels_per_cell = if glyphs { 1 } else { 2 };
        for &py in self.candidate_rows {
            let y = area.y + (py / pixels_per_cell) as u16;
            if y < area.bottom() {
                if let Some(cell) = buf.cell_mut((area.x, y)) {
                    cell.set_symbol("▶");
                    if !glyphs {
                        cell.set_fg(self.mode.color(color::GUARANTEED_RGB));
                    }
                }
            }
        }
        let x0 = area.x + 1;
        let rows = h.div_ceil(pixels_per_cell);
        for cy in 0..rows.min(area.height as usize) {
            for px in 0..w.min((area.width - 1) as usize) {
                let Some(cell) = buf.cell_mut((x0 + px as u16, area.y + cy as u16)) else { continue };
                if glyphs {
                    let py = cy;
                    let ch = match marks[py * w + px] {
                        Some(m) => m.glyph(),
                        None => {
                            let x = self.grid.at(py, px);
                            if x.is_nan() {
                                '·'
                            } else {
                                color::glyph(self.scaler.t(x))
                            }
                        }
                    };
                    cell.set_char(ch);
                } else {
                    let top = pixel_rgb(self, 2 * cy, px, &marks);
                    cell.set_symbol("▀").set_fg(self.mode.color(top));
                    if 2 * cy + 1 < h {
                        let bottom = pixel_rgb(self, 2 * cy + 1, px, &marks);
                        cell.set_bg(self.mode.color(bottom));
                    } else {
                        cell.set_bg(Color::Reset);
                    }
                }
            }
        }
        if let Some((py, px)) = self.cursor {
            let (x, y) = (x0 + px as u16, area.y + (py / pixels_per_cell) as u16);
            if x < area.right() && y < area.bottom() {
                if let Some(cell) = buf.cell_mut((x, y)) {
                    let under = pixel_rgb(self, py, px, &marks);
                    let fg = if color::luminance(under) > 0.5 { Color::Black } else { Color::White };
                    cell.set_symbol("╋");
                    if glyphs {
                        cell.set_style(Style::default().add_modifier(Modifier::REVERSED));
                    } else {
                        cell.set_fg(fg).set_bg(self.mode.color(under));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(rows: usize, cols: usize) -> AvgParam {
        AvgParam { name: "w".into(), shape: vec![rows, cols], data: (0..rows * cols).map(|i| i as f64).collect() }
    }

    #[test]
    fn bins_cover_exactly() {
        let b = bins(0, 3136, 180);
        assert_eq!(b[0].0, 0);
        assert_eq!(b.last().unwrap().1, 3136);
        assert!(b.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 < w[0].1));
        assert_eq!(bins(10, 4, 6), vec![(10, 11), (10, 11), (11, 12), (12, 13), (12, 13), (13, 14)]);
    }

    #[test]
    fn max_and_mean_pooling() {
        let p = param(4, 6);
        let ms = MatrixShape::of(&p.shape);
        let g = pool(&p, &ms, Viewport { r0: 0, rows: 4, c0: 0, cols: 6 }, 3, 2, Pooling::Max);
        assert_eq!(g.values, vec![7.0, 9.0, 11.0, 19.0, 21.0, 23.0]);
        let g = pool(&p, &ms, Viewport { r0: 0, rows: 4, c0: 0, cols: 6 }, 3, 2, Pooling::Mean);
        assert_eq!(g.values, vec![3.5, 5.5, 7.5, 15.5, 17.5, 19.5]);
        assert_eq!(g.pixel_of(3, 5), Some((1, 2)));
        assert_eq!(g.pixel_of(4, 0), None);
    }

    #[test]
    fn conv_cells_aggregate_kernels() {
        let p = AvgParam { name: "c".into(), shape: vec![2, 3, 2, 2], data: (0..24).map(|i| i as f64).collect() };
        let ms = MatrixShape::of(&p.shape);
        assert_eq!((ms.rows, ms.cols, ms.kernel), (2, 3, 4));
        assert_eq!(cell_value(&p, &ms, 1, 2, Pooling::Max), 23.0);
        assert_eq!(cell_value(&p, &ms, 0, 1, Pooling::Mean), 5.5);
        assert_eq!(ms.col_of_weight(9), 2);
    }

    #[test]
    fn scales() {
        let vals = [0.0, 1.0, 10.0, 100.0];
        let lin = Scaler::new(Scale::Linear, &vals, None);
        assert_eq!(lin.t(50.0), 0.5);
        let log = Scaler::new(Scale::Log, &vals, None);
        assert!((log.t(10.0) - 0.5).abs() < 1e-12);
        assert_eq!(log.t(0.0), 0.0);
        let rank = Scaler::new(Scale::Rank, &vals, Some(std::sync::Arc::new(vals.to_vec())));
        assert!((rank.t(10.0) - 2.0 / 3.0).abs() < 1e-12);
    }
}
