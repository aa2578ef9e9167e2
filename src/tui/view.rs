//! Drawing: reads `App`, writes the frame, never mutates. Chrome uses ANSI named colours (the
//! user's palette applies); with NO_COLOR only modifiers are used.

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders, Cell, Clear, LineGauge, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::app::{App, Focus, Knob, Popup, Status, MIN_HEIGHT, MIN_WIDTH};
use super::color::{self, ColorMode};
use super::heatmap::{cell_value, HeatmapView, MatrixShape};
use super::keymap::{self, Scope, KEYMAP};
use crate::json::pyfloat;
use crate::pipeline::extract::Pick;

/// Styles that respect NO_COLOR.
struct Theme {
    color: bool,
}

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }
    fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.dim()
        }
    }
    fn guaranteed(&self) -> Style {
        self.fg(Color::LightRed)
    }
    fn additional(&self) -> Style {
        self.fg(Color::LightCyan)
    }
}

/// Short number text for tables: 4 decimals, or 2 significant digits in exponent form.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x == 0.0 {
        "0".into()
    } else if x.abs() >= 1e-3 && x.abs() < 1e5 {
        let s = format!("{x:.4}");
        let s = s.trim_end_matches('0').trim_end_matches('.');
        s.to_string()
    } else {
        // at most 7 characters: "4.0e-5", "1.5e-12"
        format!("{x:.1e}")
    }
}

/// Keeps the end of a long name (the meaningful part): "…tor.mlp.0.weight".
fn tail(name: &str, width: usize) -> String {
    let n = name.chars().count();
    if n <= width || width < 2 {
        return name.to_string();
    }
    let keep: String = name.chars().skip(n - (width - 1)).collect();
    format!("…{keep}")
}

fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("×")
}

fn block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(theme.border(focused))
        .title(title)
}

pub fn draw(app: &App, f: &mut Frame) {
    let area = f.area();
    let theme = Theme { color: app.color_mode != ColorMode::None };
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = vec![
            Line::from(Span::styled("Terminal too small", theme.error())),
            Line::from(format!("need at least {MIN_WIDTH}×{MIN_HEIGHT}, have {}×{}", area.width, area.height)),
            Line::from("enlarge the window, or q to quit"),
        ];
        let y = area.height / 2;
        let r = Rect { y: area.y + y.saturating_sub(1), height: 3.min(area.height), ..area };
        f.render_widget(Paragraph::new(text).alignment(Alignment::Center), r);
        return;
    }
    let r = app.regions;
    draw_header(app, f, r.header, &theme);
    draw_layers(app, f, r.layers, &theme);
    draw_heatmap(app, f, r.heatmap, &theme);
    draw_targets(app, f, r.targets, &theme);
    draw_footer(app, f, r.footer, &theme);
    match &app.popup {
        Some(Popup::Help) => draw_help(app, f, area, &theme),
        Some(Popup::Neuron { param, row }) => draw_neuron(app, f, area, *param, *row, &theme),
        Some(Popup::Prompt { knob, text }) => draw_prompt(f, area, *knob, text, &theme),
        None => {}
    }
}

fn draw_header(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let title = Line::from(vec![
        Span::styled(" saliency ", theme.accent()),
        Span::raw(format!(" {} ", app.source)),
        Span::styled(app.arch_summary.clone().unwrap_or_default(), theme.dim()),
    ]);
    f.render_widget(Paragraph::new(title), Rect { height: 1, ..area });
    let line = Rect { y: area.y + 1, height: 1, ..area };
    match &app.status {
        Status::Loading => f.render_widget(Paragraph::new(" loading ..."), line),
        Status::Running(p) => {
            let ratio = if p.total > 0 { p.done as f64 / p.total as f64 } else { 0.0 };
            let rate = if p.elapsed_s > 0.0 { p.done as f64 / p.elapsed_s } else { 0.0 };
            let eta = if rate > 0.0 { (p.total - p.done.min(p.total)) as f64 / rate } else { f64::NAN };
            let label = format!(
                " gradients {}/{}{} inputs · {:.0} inputs/s · ETA {} · Esc cancels",
                p.done,
                if p.total_exact { "" } else { "~" },
                p.total,
                rate,
                if eta.is_finite() { format!("{eta:.0} s") } else { "?".into() }
            );
            let gauge = LineGauge::default()
                .ratio(ratio.clamp(0.0, 1.0))
                .label(label)
                .filled_style(theme.fg(Color::Cyan))
                .unfilled_style(theme.dim());
            f.render_widget(gauge, line);
        }
        Status::Done | Status::Cancelled(_) => {
            let (all, cand) = app.captured();
            let sel = &app.selection;
            let mut spans = vec![
                Span::styled(format!(" k={} m={} ", app.k, app.m), theme.accent()),
                Span::raw(format!(
                    "· {} weights ({} guaranteed + {} additional) from {} candidates · captures {:.2}% of all weight saliency, {:.1}% of the candidate rows'",
                    sel.targets.len(),
                    sel.guaranteed_count,
                    sel.additional_count,
                    app.resolved.candidates.len(),
                    100.0 * all,
                    100.0 * cand
                )),
            ];
            if let Status::Cancelled(p) = &app.status {
                let done = p.map(|p| format!(" after {}/{} inputs", p.done, p.total)).unwrap_or_default();
                spans.insert(0, Span::styled(format!(" cancelled{done} (provisional; R re-runs) "), theme.error()));
            } else if let Some(a) = &app.averages {
                spans.push(Span::styled(format!(" · {} inputs", a.num_examples.unwrap_or(0)), theme.dim()));
            }
            f.render_widget(Paragraph::new(Line::from(spans)), line);
        }
        Status::Failed(e) => {
            f.render_widget(Paragraph::new(Span::styled(format!(" failed: {e}"), theme.error())), line);
        }
    }
}

fn draw_layers(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let focused = app.focus == Focus::Layers;
    let title = format!(" Layers · sort: {} ", app.sort.name());
    let b = block(title, focused, theme);
    let Some(avgs) = &app.averages else {
        f.render_widget(Paragraph::new("waiting for the first averages ...").block(b), area);
        return;
    };
    // Narrow panes drop the mean column, so names keep room.
    let wide = area.width >= 52;
    let fixed = 2 + 9 + 7 + 3 + if wide { 7 + 4 } else { 3 };
    let name_w = (area.width as usize).saturating_sub(fixed).max(4);
    let rows = app.layer_order.iter().enumerate().map(|(i, &p)| {
        let param = &avgs.params[p];
        let st = app.stats.get(p).cloned().unwrap_or_default();
        let style = if i == app.layer_cursor {
            theme.selected()
        } else if param.is_bias() {
            theme.dim()
        } else {
            Style::default()
        };
        let name = if param.is_bias() {
            format!("· {}", tail(&param.name, name_w.saturating_sub(2)))
        } else {
            tail(&param.name, name_w)
        };
        let mut cells = vec![Cell::from(name), Cell::from(shape_text(&param.shape))];
        if wide {
            cells.push(Cell::from(num(st.mean)));
        }
        cells.push(Cell::from(num(st.max)));
        cells.push(Cell::from(if st.selected > 0 { st.selected.to_string() } else { String::new() }));
        Row::new(cells).style(style)
    });
    let (header, widths) = if wide {
        (
            vec!["parameter", "shape", "mean", "max", "sel"],
            vec![
                Constraint::Min(8),
                Constraint::Length(9),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(3),
            ],
        )
    } else {
        (
            vec!["parameter", "shape", "max", "sel"],
            vec![Constraint::Min(8), Constraint::Length(9), Constraint::Length(7), Constraint::Length(3)],
        )
    };
    let header = Row::new(header).style(theme.accent());
    // Scroll so the cursor stays visible.
    let inner_h = area.height.saturating_sub(3) as usize;
    let skip = app.layer_cursor.saturating_sub(inner_h.saturating_sub(1));
    let table = Table::new(rows.skip(skip), widths).header(header).block(b).column_spacing(1);
    f.render_widget(table, area);
}

fn draw_heatmap(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let focused = app.focus == Focus::Heatmap;
    let (Some(avgs), Some(p)) = (&app.averages, app.current_param()) else {
        let text = match &app.status {
            Status::Failed(e) => vec![
                Line::from(Span::styled("The pipeline failed", theme.error())),
                Line::from(""),
                Line::from(e.clone()),
                Line::from(""),
                Line::from("R runs it again, q quits"),
            ],
            _ => vec![Line::from("computing the first averages ...")],
        };
        f.render_widget(
            Paragraph::new(text).wrap(Wrap { trim: false }).block(block(" Heatmap ", focused, theme)),
            area,
        );
        return;
    };
    let param = &avgs.params[p];
    let ms = MatrixShape::of(&param.shape);
    let hm = &app.hm;
    let kind = if ms.is_conv() {
        format!(" · cells = {}×{} kernels ({})", ms.kh, ms.kw, hm.pooling.name())
    } else {
        String::new()
    };
    let title = format!(
        " {} [{}]{kind} · {} pool · {} · {} range · {} · zoom {}× ",
        param.name,
        shape_text(&param.shape),
        hm.pooling.name(),
        hm.scale.name(),
        hm.range.name(),
        hm.colormap.name(),
        hm.zoom
    );
    let b = block(title, focused, theme);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let Some(scaler) = &app.cache.scaler else { return };
    let map_area = Rect { height: inner.height.saturating_sub(2), ..inner };
    let view = HeatmapView {
        grid: &app.cache.grid,
        scaler,
        colormap: hm.colormap,
        mode: app.color_mode,
        marks: &app.cache.marks,
        candidate_rows: &app.cache.candidate_rows,
        cursor: if focused || app.popup.is_none() { app.cache.cursor_px } else { None },
    };
    f.render_widget(&view, map_area);

    // Colour bar: lo [ramp] hi, with the overlay legend.
    let bar_y = inner.bottom().saturating_sub(2);
    let lo = num(scaler.value_at(0.0));
    let hi = num(scaler.value_at(1.0));
    let legend = " ■ top-k ■ additional ▶ candidate";
    let ramp_w = (inner.width as usize).saturating_sub(lo.len() + hi.len() + legend.chars().count() + 3).min(64);
    let mut spans = vec![Span::raw(format!("{lo} "))];
    for i in 0..ramp_w {
        let t = i as f64 / (ramp_w.max(2) - 1) as f64;
        if app.color_mode == ColorMode::None {
            spans.push(Span::raw(color::glyph(t).to_string()));
        } else {
            spans.push(Span::styled("█", Style::default().fg(app.color_mode.color(hm.colormap.rgb(t)))));
        }
    }
    spans.push(Span::raw(format!(" {hi}")));
    if app.color_mode == ColorMode::None {
        spans.push(Span::raw("  ● top-k ○ additional ▶ candidate"));
    } else {
        spans.push(Span::raw(" "));
        spans.push(Span::styled("■", Style::default().fg(app.color_mode.color(color::GUARANTEED_RGB))));
        spans.push(Span::raw(" top-k "));
        spans.push(Span::styled("■", Style::default().fg(app.color_mode.color(color::ADDITIONAL_RGB))));
        spans.push(Span::raw(" additional ▶ candidate"));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), Rect { y: bar_y, height: 1, ..inner });

    // Cursor readout.
    let (r, c) = hm.cursor;
    let value = cell_value(param, &ms, r, c, hm.pooling);
    let col_name = if ms.is_conv() {
        "in channel"
    } else if param.shape.len() == 1 {
        "index"
    } else {
        "weight"
    };
    let cand = app
        .resolved
        .candidates
        .iter()
        .find(|x| x.param == p && x.neuron == r)
        .map(|x| format!(" · candidate {}", x.key))
        .unwrap_or_default();
    let readout = if param.shape.len() >= 2 {
        format!(" neuron {r}, {col_name} {c}: {}{cand}", pyfloat::to_string(value))
    } else {
        format!(" {col_name} {c}: {}", pyfloat::to_string(value))
    };
    f.render_widget(Paragraph::new(readout), Rect { y: bar_y + 1, height: 1, ..inner });

    if hm.show_kernel && ms.is_conv() {
        draw_kernel(app, f, inner, param, &ms, theme);
    }
}

fn draw_kernel(
    app: &App,
    f: &mut Frame,
    inner: Rect,
    param: &crate::pipeline::average::AvgParam,
    ms: &MatrixShape,
    theme: &Theme,
) {
    let (r, c) = app.hm.cursor;
    let start = (r * ms.cols + c) * ms.kernel;
    let vals = &param.data[start..start + ms.kernel];
    let (lo, hi) = vals.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let cell_w = 9u16;
    let w = (ms.kw as u16 * cell_w + 2).min(inner.width);
    let h = (ms.kh as u16 + 3).min(inner.height);
    let area = Rect { x: inner.right().saturating_sub(w), y: inner.y, width: w, height: h };
    f.render_widget(Clear, area);
    let b = block(format!(" kernel {r},{c} "), true, theme);
    let kin = b.inner(area);
    f.render_widget(b, area);
    for i in 0..ms.kh {
        let mut spans = Vec::new();
        for j in 0..ms.kw {
            let v = vals[i * ms.kw + j];
            let t = if hi > lo { (v - lo) / (hi - lo) } else { 0.5 };
            let style = if app.color_mode == ColorMode::None {
                Style::default()
            } else {
                let rgb = app.hm.colormap.rgb(t);
                let fg = if color::luminance(rgb) > 0.5 { Color::Black } else { Color::White };
                Style::default().bg(app.color_mode.color(rgb)).fg(fg)
            };
            spans.push(Span::styled(format!("{:>8} ", num(v)), style));
        }
        if (i as u16) < kin.height {
            f.render_widget(Paragraph::new(Line::from(spans)), Rect { y: kin.y + i as u16, height: 1, ..kin });
        }
    }
}

fn draw_targets(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let focused = app.focus == Focus::Targets;
    let sel = &app.selection;
    let title = format!(" Targets {} · k={} m={} ", sel.targets.len(), app.k, app.m);
    let b = block(title, focused, theme);
    let Some(avgs) = &app.averages else {
        f.render_widget(b, area);
        return;
    };
    let inner_h = area.height.saturating_sub(3) as usize;
    let skip = app.target_cursor.saturating_sub(inner_h.saturating_sub(1));
    let rows = sel.targets.iter().enumerate().skip(skip).map(|(i, t)| {
        let c = &app.resolved.candidates[t.candidate];
        let (kind, style) = match t.pick {
            Pick::Guaranteed(rank) => (format!("top{rank}"), theme.guaranteed()),
            Pick::Additional => ("add".to_string(), theme.additional()),
        };
        let layer_w = (area.width as usize).saturating_sub(2 + 3 + 6 + 5 + 7 + 4 + 5).max(4);
        let layer = tail(avgs.params[c.param].name.trim_end_matches(".weight"), layer_w);
        let row = Row::new(vec![
            Cell::from((i + 1).to_string()),
            Cell::from(layer),
            Cell::from(c.neuron.to_string()),
            Cell::from(t.weight_index.to_string()),
            Cell::from(num(t.magnitude)),
            Cell::from(Span::styled(kind, style)),
        ]);
        if focused && i == app.target_cursor {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let header = Row::new(vec!["#", "layer", "neuron", "w", "|grad|", "pick"]).style(theme.accent());
    let widths = [
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(4),
    ];
    f.render_widget(Table::new(rows, widths).header(header).block(b).column_spacing(1), area);
}

fn draw_footer(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let mut spans = Vec::new();
    if let Some(m) = &app.message {
        spans.push(Span::styled(format!(" {m} "), theme.accent()));
    } else {
        for (key, hint) in keymap::hints() {
            spans.push(Span::styled(format!(" {key}"), theme.accent()));
            spans.push(Span::raw(format!(" {hint} ")));
        }
        if !app.notes.is_empty() || !app.resolved.warnings.is_empty() {
            let n = app.notes.len() + app.resolved.warnings.len();
            spans.push(Span::styled(
                format!(" · {n} note{} (?) ", if n == 1 { "" } else { "s" }),
                theme.fg(Color::Yellow),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

fn draw_help(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines = Vec::new();
    for n in app.notes.iter().chain(&app.resolved.warnings) {
        lines.push(Line::from(Span::styled(format!("note: {n}"), theme.fg(Color::Yellow))));
    }
    if !lines.is_empty() {
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled("Keys (one keymap: these are also the footer hints)", theme.accent())));
    lines.push(Line::from(""));
    for b in KEYMAP {
        let scope = match b.scope {
            Scope::Heatmap => " (heatmap)",
            _ => "",
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:>10}  ", b.label), theme.accent()),
            Span::raw(format!("{}{scope}", b.help)),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from("In a number prompt: digits, Backspace, Enter to set, Esc to cancel."));
    let r = centered(area, 100, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(block(" Help · Esc or ? closes ", true, theme)),
        r,
    );
}

fn draw_prompt(f: &mut Frame, area: Rect, knob: Knob, text: &str, theme: &Theme) {
    let name = if knob == Knob::K { "k (top weights per neuron)" } else { "m (additional weights)" };
    let r = centered(area, 44, 3);
    f.render_widget(Clear, r);
    let line = Line::from(vec![Span::raw(format!(" {name} = ")), Span::styled(format!("{text}▏"), theme.accent())]);
    f.render_widget(Paragraph::new(line).block(block(" set ", true, theme)), r);
}

fn draw_neuron(app: &App, f: &mut Frame, area: Rect, param: usize, row: usize, theme: &Theme) {
    let Some(avgs) = &app.averages else { return };
    let p = &avgs.params[param];
    if p.shape.len() < 2 || row >= p.rows_cols().0 {
        return;
    }
    let values = p.row(row);
    let cand = app.resolved.candidates.iter().position(|c| c.param == param && c.neuron == row);
    let mut picks = std::collections::HashMap::new();
    for t in &app.selection.targets {
        if Some(t.candidate) == cand {
            picks.insert(t.weight_index, t.pick);
        }
    }
    let r = centered(area, 90.min(area.width), area.height.saturating_sub(4));
    f.render_widget(Clear, r);
    let title = format!(" neuron {row} of {} ", p.name);
    let b = block(title, true, theme);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let mut lines = Vec::new();
    let sum: f64 = values.iter().filter(|v| v.is_finite()).sum();
    match cand {
        Some(i) => {
            let c = &app.resolved.candidates[i];
            lines.push(Line::from(vec![Span::styled(format!("candidate {}", c.key), theme.accent())]));
            if let Some(k) = app.keys.iter().find(|k| k.key == c.key) {
                if let Some(obj) = k.metrics.as_object() {
                    let metrics: Vec<String> =
                        obj.iter().filter_map(|(name, v)| v.as_f64().map(|x| format!("{name} {}", num(x)))).collect();
                    for chunk in metrics.chunks(3) {
                        lines.push(Line::from(Span::styled(chunk.join(" · "), theme.dim())));
                    }
                }
            }
        }
        None => lines.push(Line::from(Span::styled("not a candidate neuron", theme.dim()))),
    }
    lines.push(Line::from(format!(
        "{} incoming weights · sum of |grad| {} · sorted, largest first:",
        values.len(),
        num(sum)
    )));
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    let bar_w = inner.width.saturating_sub(34) as usize;
    let room = (inner.height as usize).saturating_sub(lines.len());
    for (rank, &j) in order.iter().take(room).enumerate() {
        let v = values[j];
        let filled = if max > 0.0 { ((v / max) * bar_w as f64).round() as usize } else { 0 };
        let (tag, style) = match picks.get(&j) {
            Some(Pick::Guaranteed(k)) => (format!("top{k}"), theme.guaranteed()),
            Some(Pick::Additional) => ("add".into(), theme.additional()),
            None => (String::new(), Style::default()),
        };
        lines.push(Line::from(vec![
            Span::raw(format!("{:>4} w{:<5} {:>10} ", rank + 1, j, pyfloat_short(v))),
            Span::styled("█".repeat(filled.min(bar_w)), style),
            Span::styled(format!(" {tag}"), style),
        ]));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

fn pyfloat_short(v: f64) -> String {
    let s = pyfloat::to_string(v);
    if s.len() > 10 {
        num(v)
    } else {
        s
    }
}
