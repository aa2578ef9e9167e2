//! Drawing: reads `App`, writes the frame, never mutates. Chrome uses ANSI named colours (the
//! user's palette applies); with NO_COLOR only modifiers are used.

use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, LineGauge, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use super::app::{App, EvidenceStatus, ExportState, Focus, Knob, Popup, Status, MIN_HEIGHT, MIN_WIDTH};
use super::color::{self, ColorMode};
use super::heatmap::{cell_value, HeatmapView, MatrixShape, Scaler};
use super::keymap::{self, KEYMAP};
use super::layout::{abbreviate_names, choose_columns, fit_parts, fit_words, width, Column};
use super::theme::{block, centered, hint_spans, Theme};
use crate::ablation::{Evidence, Stat};
use crate::format::num;
use crate::json::pyfloat;
use crate::pipeline::extract::Pick;
use crate::target::Target;

fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("×")
}

pub fn draw(app: &App, f: &mut Frame) {
    let area = f.area();
    let theme = Theme { color: app.color_mode() != ColorMode::None };
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
    let r = app.layout().regions;
    draw_header(app, f, r.header, &theme);
    if r.layers.area() > 0 {
        draw_layers(app, f, r.layers, &theme);
    }
    draw_heatmap(app, f, r.heatmap, &theme);
    if r.selected.area() > 0 {
        draw_selected(app, f, r.selected, &theme);
    }
    draw_footer(app, f, r.footer, &theme);
    match app.popup() {
        Some(Popup::Help) => draw_help(app, f, area, &theme),
        Some(Popup::Neuron { param, row }) => draw_neuron(app, f, area, *param, *row, &theme),
        Some(Popup::Prompt { knob, text }) => draw_prompt(f, area, *knob, text, &theme),
        Some(Popup::Inputs { index }) => draw_inputs(app, f, area, *index, &theme),
        Some(Popup::Scatter) => draw_scatter(app, f, area, &theme),
        None => {}
    }
}

/// The validation in the header: its progress, or the best predictor.
fn validation_text(app: &App) -> String {
    use super::app::validation::ValidationState;
    match app.validation().state() {
        ValidationState::Running { phase, fraction } => format!(" · validating: {phase} {:.0}%", 100.0 * fraction),
        ValidationState::Done(v) => match v.best() {
            Some(b) => format!(" · best predictor {} ρ{:+.2}", b.measure.name(), b.spearman.unwrap_or(f64::NAN)),
            None => " · validated: no correlation".into(),
        },
        _ => String::new(),
    }
}

fn draw_header(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let w = area.width as usize;
    let name = " saliency ";
    let source = fit_words(&format!(" {} ", app.run().source()), w.saturating_sub(width(name)));
    // Target and measure: what the numbers are (the measure only when others exist).
    let what = if app.run().computed_here() || app.data().measures().is_some() {
        let measure = if app.data().measures().is_some() {
            let m = app.data().measure();
            let rho =
                app.validation().score(m).and_then(|s| s.spearman).map(|r| format!(" ρ{r:+.2}")).unwrap_or_default();
            format!(" · measure {}{rho}", m.name())
        } else {
            String::new()
        };
        format!("· target {}{measure}{} ", app.run().target(), validation_text(app))
    } else {
        String::new()
    };
    let what = fit_words(&what, w.saturating_sub(width(name) + width(&source)));
    let rest = w.saturating_sub(width(name) + width(&source) + width(&what));
    let title = Line::from(vec![
        Span::styled(name, theme.accent()),
        Span::raw(source),
        Span::styled(what, theme.accent()),
        Span::styled(fit_words(app.run().arch_summary().unwrap_or(""), rest), theme.dim()),
    ]);
    f.render_widget(Paragraph::new(title), Rect { height: 1, ..area });
    let line = Rect { y: area.y + 1, height: 1, ..area };
    match app.run().status() {
        Status::Loading => f.render_widget(Paragraph::new(" loading ..."), line),
        Status::Running(p) => {
            let ratio = if p.total > 0 { p.done as f64 / p.total as f64 } else { 0.0 };
            let rate = if p.elapsed_s > 0.0 { p.done as f64 / p.elapsed_s } else { 0.0 };
            let eta = if rate > 0.0 { (p.total - p.done.min(p.total)) as f64 / rate } else { f64::NAN };
            let count = format!(" {}/{}{} inputs", p.done, if p.total_exact { "" } else { "~" }, p.total);
            let rate = format!("{rate:.0} inputs/s");
            let eta = format!("ETA {}", if eta.is_finite() { format!("{eta:.0} s") } else { "?".into() });
            // (the gauge's line takes 7 more cells or so)
            let label = fit_parts(
                &[(&format!("gradients{count}"), 0), (&rate, 2), (&eta, 1), ("Esc cancels", 3)],
                " · ",
                w.saturating_sub(8),
            );
            let gauge = LineGauge::default()
                .ratio(ratio.clamp(0.0, 1.0))
                .label(format!(" {label}"))
                .filled_style(theme.fg(Color::Cyan))
                .unfilled_style(theme.dim());
            f.render_widget(gauge, line);
        }
        Status::Done | Status::Cancelled(_) => draw_selection_status(app, f, line, theme),
        Status::Failed(e) => {
            f.render_widget(Paragraph::new(Span::styled(fit_words(&format!(" failed: {e}"), w), theme.error())), line);
        }
    }
    draw_evidence(app, f, Rect { y: area.y + 2, height: 1, ..area }, theme);
}

/// The second header line once a run ended: k and m, what the selection holds and captures.
fn draw_selection_status(app: &App, f: &mut Frame, line: Rect, theme: &Theme) {
    let w = line.width as usize;
    let (all, cand) = app.captured();
    let sel = app.knobs().selection();
    let knobs = format!(" k={} m={} ", app.knobs().k(), app.knobs().m());
    let mut spans = Vec::new();
    let mut room = w.saturating_sub(width(&knobs));
    if let Status::Cancelled(p) = app.run().status() {
        let done = p.map(|p| format!(" after {}/{} inputs", p.done, p.total)).unwrap_or_default();
        let text = fit_words(&format!(" cancelled{done} (provisional; R re-runs) "), room);
        room = room.saturating_sub(width(&text));
        spans.push(Span::styled(text, theme.error()));
    }
    spans.push(Span::styled(knobs, theme.accent()));
    let weights = format!(
        "{} weights ({} guaranteed + {} additional) from {} candidates",
        sel.weights.len(),
        sel.guaranteed_count,
        sel.additional_count,
        app.knobs().resolved().candidates.len()
    );
    let short_weights = format!("{} weights", sel.weights.len());
    let captured =
        format!("captures {:.2}% of all weight saliency, {:.1}% of the candidate rows'", 100.0 * all, 100.0 * cand);
    let short_captured = format!("{:.2}% of saliency", 100.0 * all);
    let inputs = match (app.run().status(), app.data().shown()) {
        (Status::Done, Some(a)) => format!("{} inputs", a.num_examples.unwrap_or(0)),
        _ => String::new(),
    };
    // The longest wording that fits.
    let text = [
        vec![weights.as_str(), captured.as_str(), inputs.as_str()],
        vec![weights.as_str(), short_captured.as_str(), inputs.as_str()],
        vec![short_weights.as_str(), short_captured.as_str(), inputs.as_str()],
        vec![short_weights.as_str()],
    ]
    .into_iter()
    .map(|parts| parts.into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" · "))
    .find(|t| width(t) + 2 <= room)
    .unwrap_or_default();
    spans.push(Span::raw(format!("· {text}")));
    f.render_widget(Paragraph::new(Line::from(spans)), line);
}

/// "flips 55% (random 7%, pct 100)": a measure of the selection against the random draws.
fn versus(name: &str, value: String, st: Option<&Stat>, fmt: &dyn Fn(f64) -> String) -> String {
    match st {
        Some(st) => format!("{name} {value} (random {}, pct {:.0})", fmt(st.mean), 100.0 * st.percentile),
        None => format!("{name} {value}"),
    }
}

/// The parts of an evidence line, most important first (the drop named by the target).
pub fn evidence_parts(e: &Evidence, target: Target) -> Vec<String> {
    let pct = |x: f64| format!("{:.0}%", 100.0 * x);
    let r = e.random.as_ref();
    vec![
        versus("flips", pct(e.selection.flip_rate), r.map(|b| &b.flip_rate), &pct),
        versus(target.drop_name(), num(e.selection.mean_target_drop), r.map(|b| &b.mean_target_drop), &num),
        format!("predicted {}", num(e.selection.mean_predicted_drop)),
        versus("KL", num(e.selection.mean_kl), r.map(|b| &b.mean_kl), &num),
    ]
}

/// The third header line: what zeroing the selection does, against random weights.
fn draw_evidence(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let ev = app.evidence();
    let w = area.width as usize;
    let final_averages = !app.data().provisional() && app.run().done();
    let (text, style) = match (ev.status(), ev.line()) {
        (EvidenceStatus::Off, _) => {
            (" evidence: needs the agent (these averages were opened from files)".to_string(), theme.dim())
        }
        (EvidenceStatus::Failed(e), _) => (format!(" evidence failed: {e}"), theme.error()),
        _ if !final_averages => (" evidence: when the averages are final".to_string(), theme.dim()),
        (EvidenceStatus::Loading, _) | (_, None) => (" evidence: computing ...".to_string(), theme.dim()),
        (EvidenceStatus::Ready(ready), Some((e, stale))) => {
            let head = format!(
                " zeroing the selection ({} input{}{})",
                ready.inputs,
                if ready.inputs == 1 { "" } else { "s" },
                if ready.all { "" } else { ", the first ones" }
            );
            let parts = match e {
                Some(e) => evidence_parts(e, app.run().target()),
                None => vec!["nothing selected".to_string()],
            };
            let updating = if stale { "updating ..." } else { "" };
            let mut pri: Vec<(&str, u8)> = vec![(&head, 0)];
            for (i, p) in parts.iter().enumerate() {
                pri.push((p, i as u8 + 2));
            }
            pri.push((updating, 1));
            let style = if stale { theme.dim() } else { Style::default() };
            (fit_parts(&pri, " · ", w), style)
        }
    };
    f.render_widget(Paragraph::new(Span::styled(fit_words(&text, w), style)), area);
}

/// The title of a list pane, from the parts that fit; in a folded column it names the other
/// list first.
fn list_title(app: &App, main: &str, detail: &str, other: &str, area: Rect) -> String {
    let tab = format!("Tab: {other}");
    let tab = if app.layout().regions.folded { tab.as_str() } else { "" };
    format!(" {} ", fit_parts(&[(main, 0), (detail, 2), (tab, 1)], " · ", area.width.saturating_sub(4) as usize))
}

fn draw_layers(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let focused = app.focus() == Focus::Layers;
    let sort = format!("sort: {}", app.layers().sort_key().name());
    let b = block(list_title(app, "Layers", &sort, "selected", area), focused, theme);
    let Some(avgs) = app.data().shown() else {
        f.render_widget(Paragraph::new("waiting for the first averages ...").block(b), area);
        return;
    };
    let shape_w = avgs.params.iter().map(|p| width(&shape_text(&p.shape))).max().unwrap_or(5);
    // name, shape, mean, max, sel: the name first, then sel, max, shape, mean as room allows.
    let longest = avgs.params.iter().map(|p| width(&p.name)).max().unwrap_or(0);
    let cols = [
        Column::new("parameter", "name", longest, 0),
        Column::new("shape", "shape", shape_w, 3),
        // (the mean only when the names fit whole)
        Column::new("mean", "mean", 7, 4).leaving(longest),
        Column::new("max", "max", 7, 2),
        Column::new("selected", "sel", 3, 1),
    ];
    let shown = choose_columns(&cols, area.width.saturating_sub(2) as usize, 14);
    let name_w = shown[0].1;
    let names: Vec<&str> = avgs.params.iter().map(|p| p.name.as_str()).collect();
    // Biases are shown dimmed behind "· ", so their names get two characters less.
    let weights = abbreviate_names(&names, name_w);
    let biases = abbreviate_names(&names, name_w.saturating_sub(2));
    let rows = app.layout().layer_rows.iter().map(|&(_, i)| {
        let p = app.layers().order()[i];
        let param = &avgs.params[p];
        let st = app.data().stats().get(p).cloned().unwrap_or_default();
        let style = if i == app.layers().cursor() {
            theme.selected()
        } else if param.is_bias() {
            theme.dim()
        } else {
            Style::default()
        };
        let cells = shown.iter().map(|&(c, _, _)| match c {
            0 if param.is_bias() => Cell::from(format!("· {}", biases[p])),
            0 => Cell::from(weights[p].clone()),
            1 => Cell::from(shape_text(&param.shape)),
            2 => Cell::from(num(st.mean)),
            3 => Cell::from(num(st.max)),
            _ => Cell::from(match app.knobs().selected_in(p) {
                0 => String::new(),
                n => n.to_string(),
            }),
        });
        Row::new(cells.collect::<Vec<_>>()).style(style)
    });
    let header = Row::new(shown.iter().map(|c| c.2).collect::<Vec<_>>()).style(theme.accent());
    let widths: Vec<Constraint> = shown.iter().map(|c| Constraint::Length(c.1 as u16)).collect();
    let table = Table::new(rows, widths).header(header).block(b).column_spacing(1);
    f.render_widget(table, area);
}

fn draw_heatmap(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let focused = app.focus() == Focus::Heatmap;
    let (Some(avgs), Some(p)) = (app.data().shown(), app.current_param()) else {
        let text = match app.run().status() {
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
    let hm = app.heatmap();
    let kind = if ms.is_conv() { format!("cells = {}×{} kernels", ms.kh, ms.kw) } else { String::new() };
    let head = format!("{} [{}]", param.name, shape_text(&param.shape));
    let (pool, range, zoom) = (
        format!("{} pool", hm.pooling().name()),
        format!("{} range", hm.range().name()),
        format!("zoom {}×", hm.zoom()),
    );
    let title = fit_parts(
        &[
            (&head, 0),
            (&kind, 6),
            (&pool, 3),
            (hm.scale().name(), 1),
            (&range, 4),
            (hm.colormap().name(), 5),
            (&zoom, 2),
        ],
        " · ",
        area.width.saturating_sub(4) as usize,
    );
    let b = block(format!(" {title} "), focused, theme);
    let inner = b.inner(area);
    f.render_widget(b, area);
    let Some(scaler) = hm.scaler() else { return };
    let map_area = Rect { height: inner.height.saturating_sub(2), ..inner };
    let view = HeatmapView {
        grid: hm.grid(),
        scaler,
        colormap: hm.colormap(),
        diverging: false,
        mode: app.color_mode(),
        marks: hm.marks(),
        candidate_rows: hm.candidate_rows(),
        cursor: if focused || app.popup().is_none() { hm.cursor_px() } else { None },
    };
    f.render_widget(&view, map_area);

    let bar_y = inner.bottom().saturating_sub(2);
    draw_colour_bar(app, f, Rect { y: bar_y, height: 1, ..inner }, scaler);
    draw_readout(app, f, Rect { y: bar_y + 1, height: 1, ..inner }, p);

    if hm.show_kernel() && ms.is_conv() {
        draw_kernel(app, f, inner, param, &ms, theme);
    }
}

/// The colour bar: lo [ramp] hi, with the overlay legend.
fn draw_colour_bar(app: &App, f: &mut Frame, area: Rect, scaler: &Scaler) {
    let (hm, inner) = (app.heatmap(), area);
    let lo = num(scaler.value_at(0.0));
    let hi = num(scaler.value_at(1.0));
    let long_legend = inner.width >= 64;
    let (add, cand) = if long_legend { ("additional", "candidate") } else { ("add", "cand") };
    let legend_w = width(&format!("  ● top-k ○ {add} ▶ {cand}"));
    let ramp_w = (inner.width as usize).saturating_sub(lo.len() + hi.len() + legend_w + 3).min(64);
    let mut spans = vec![Span::raw(format!("{lo} "))];
    for i in 0..ramp_w {
        let t = i as f64 / (ramp_w.max(2) - 1) as f64;
        if app.color_mode() == ColorMode::None {
            spans.push(Span::raw(color::glyph(t).to_string()));
        } else {
            spans.push(Span::styled("█", Style::default().fg(app.color_mode().color(hm.colormap().rgb(t)))));
        }
    }
    spans.push(Span::raw(format!(" {hi}")));
    if app.color_mode() == ColorMode::None {
        spans.push(Span::raw(format!("  ● top-k ○ {add} ▶ {cand}")));
    } else {
        spans.push(Span::raw(" "));
        spans.push(Span::styled("■", Style::default().fg(app.color_mode().color(color::GUARANTEED_RGB))));
        spans.push(Span::raw(" top-k "));
        spans.push(Span::styled("■", Style::default().fg(app.color_mode().color(color::ADDITIONAL_RGB))));
        spans.push(Span::raw(format!(" {add} ▶ {cand}")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// The cursor readout: the cell under the cursor, its value and candidate.
fn draw_readout(app: &App, f: &mut Frame, area: Rect, p: usize) {
    let (hm, inner) = (app.heatmap(), area);
    let Some(avgs) = app.data().shown() else { return };
    let param = &avgs.params[p];
    let ms = MatrixShape::of(&param.shape);
    let (r, c) = hm.cursor();
    let value = cell_value(param, &ms, r, c, hm.pooling());
    let col_name = if ms.is_conv() {
        "in channel"
    } else if param.shape.len() == 1 {
        "index"
    } else {
        "weight"
    };
    let cand = app
        .knobs()
        .resolved()
        .candidates
        .iter()
        .find(|x| x.param == p && x.neuron == r)
        .map(|x| format!("candidate {}", x.key))
        .unwrap_or_default();
    let at = if param.shape.len() >= 2 {
        format!("neuron {r}, {col_name} {c}: {}", pyfloat::to_string(value))
    } else {
        format!("{col_name} {c}: {}", pyfloat::to_string(value))
    };
    let readout = format!(" {}", fit_parts(&[(&at, 0), (&cand, 1)], " · ", inner.width.saturating_sub(1) as usize));
    f.render_widget(Paragraph::new(readout), area);
}

fn draw_kernel(
    app: &App,
    f: &mut Frame,
    inner: Rect,
    param: &crate::pipeline::average::AvgParam,
    ms: &MatrixShape,
    theme: &Theme,
) {
    let (r, c) = app.heatmap().cursor();
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
            let style = if app.color_mode() == ColorMode::None {
                Style::default()
            } else {
                let rgb = app.heatmap().colormap().rgb(t);
                let fg = if color::luminance(rgb) > 0.5 { Color::Black } else { Color::White };
                Style::default().bg(app.color_mode().color(rgb)).fg(fg)
            };
            spans.push(Span::styled(format!("{:>8} ", num(v)), style));
        }
        if (i as u16) < kin.height {
            f.render_widget(Paragraph::new(Line::from(spans)), Rect { y: kin.y + i as u16, height: 1, ..kin });
        }
    }
}

fn draw_selected(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let focused = app.focus() == Focus::Selected;
    let sel = app.knobs().selection();
    let (main, knobs) =
        (format!("Selected {}", sel.weights.len()), format!("k={} m={}", app.knobs().k(), app.knobs().m()));
    let b = block(list_title(app, &main, &knobs, "layers", area), focused, theme);
    let Some(avgs) = app.data().shown() else {
        f.render_widget(b, area);
        return;
    };
    let digits = |n: usize| n.max(1).to_string().len();
    let max_neuron =
        sel.weights.iter().map(|t| app.knobs().resolved().candidates[t.candidate].neuron).max().unwrap_or(0);
    let max_weight = sel.weights.iter().map(|t| t.weight_index).max().unwrap_or(0);
    let pick_w = sel.weights.iter().map(|t| pick_text(t.pick).len()).max().unwrap_or(3);
    // layer, then neuron, weight, pick, |grad|, # as room allows.
    let longest = sel
        .weights
        .iter()
        .map(|t| {
            width(avgs.params[app.knobs().resolved().candidates[t.candidate].param].name.trim_end_matches(".weight"))
        })
        .max()
        .unwrap_or(0);
    let cols = [
        Column::new("layer", "layer", longest, 0),
        Column::new("#", "#", digits(sel.weights.len()), 5),
        Column::new("neuron", "n", digits(max_neuron), 1),
        Column::new("weight", "w", digits(max_weight), 2),
        Column::new("|grad|", "|g|", 7, 4),
        Column::new("pick", "pick", pick_w, 3),
    ];
    let shown = choose_columns(&cols, area.width.saturating_sub(2) as usize, 10);
    // Layer names without ".weight", shortened together so they stay distinct.
    let layer_names: Vec<&str> =
        avgs.params.iter().map(|p| p.name.strip_suffix(".weight").unwrap_or(&p.name)).collect();
    let short = abbreviate_names(&layer_names, shown[0].1);
    let rows = app.layout().selected_rows.iter().map(|&(_, i)| {
        let t = &sel.weights[i];
        let c = &app.knobs().resolved().candidates[t.candidate];
        let style = match t.pick {
            Pick::Guaranteed(_) => theme.guaranteed(),
            Pick::Additional => theme.additional(),
        };
        let cells = shown.iter().map(|&(col, _, _)| match col {
            0 => Cell::from(short[c.param].clone()),
            1 => Cell::from((i + 1).to_string()),
            2 => Cell::from(c.neuron.to_string()),
            3 => Cell::from(t.weight_index.to_string()),
            4 => Cell::from(num(t.magnitude)),
            _ => Cell::from(Span::styled(pick_text(t.pick), style)),
        });
        let row = Row::new(cells.collect::<Vec<_>>());
        if focused && i == app.selected_cursor() {
            row.style(theme.selected())
        } else {
            row
        }
    });
    let header = Row::new(shown.iter().map(|c| c.2).collect::<Vec<_>>()).style(theme.accent());
    let widths: Vec<Constraint> = shown.iter().map(|c| Constraint::Length(c.1 as u16)).collect();
    f.render_widget(Table::new(rows, widths).header(header).block(b).column_spacing(1), area);
}

fn pick_text(p: Pick) -> String {
    match p {
        Pick::Guaranteed(rank) => format!("top{rank}"),
        Pick::Additional => "add".to_string(),
    }
}

fn draw_footer(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let w = area.width as usize;
    let mut spans = Vec::new();
    if let Some(m) = app.message() {
        spans.push(Span::styled(fit_words(&format!(" {m} "), w), theme.accent()));
    } else if let ExportState::Running { stage } = app.export().state() {
        spans.push(Span::styled(fit_words(&format!(" exporting: {stage} ..."), w), theme.accent()));
    } else {
        let mut used = 0;
        let notes = app.notes();
        if !notes.is_empty() {
            let n = notes.len();
            let text = format!(" {n} note{} (?) ·", if n == 1 { "" } else { "s" });
            used += width(&text);
            spans.push(Span::styled(text, theme.fg(Color::Yellow)));
        }
        spans.extend(hint_spans(&keymap::hints(), used, w, theme));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn draw_help(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines = Vec::new();
    for n in app.notes() {
        lines.push(Line::from(Span::styled(format!("note: {n}"), theme.fg(Color::Yellow))));
    }
    if !lines.is_empty() {
        lines.push(Line::from(""));
    }
    lines.push(Line::from(Span::styled("Keys (one keymap: these are also the footer hints)", theme.accent())));
    lines.push(Line::from(""));
    for b in KEYMAP {
        let scope = b.scope.note();
        lines.push(Line::from(vec![
            Span::styled(format!("{:>10}  ", b.label), theme.accent()),
            Span::raw(format!("{}{scope}", b.help)),
        ]));
    }
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
    let Some(avgs) = app.data().shown() else { return };
    let p = &avgs.params[param];
    if p.shape.len() < 2 || row >= p.rows_cols().0 {
        return;
    }
    let values = p.row(row);
    let cand = app.knobs().resolved().candidates.iter().position(|c| c.param == param && c.neuron == row);
    let mut picks = std::collections::HashMap::new();
    for t in &app.knobs().selection().weights {
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
            let c = &app.knobs().resolved().candidates[i];
            lines.push(Line::from(vec![Span::styled(format!("candidate {}", c.key), theme.accent())]));
            if let Some(k) = app.knobs().candidates().keys.iter().find(|k| k.key == c.key) {
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
    if cand.is_some() {
        lines.push(neuron_evidence(app, param, row, inner.width as usize, theme));
    }
    // The signed mean beside the magnitude: which way each weight pushes.
    let signed: Option<&[f64]> = app
        .data()
        .measures()
        .and_then(|m| m.get(crate::pipeline::measures::Measure::Mean))
        .map(|params| params[param].row(row));
    lines.push(Line::from(format!(
        "{} incoming weights by {} (sum {}), largest first{}:",
        values.len(),
        app.data().measure().name(),
        num(sum),
        if signed.is_some() { "; signed mean beside" } else { "" }
    )));
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    let max = values.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, f64::max);
    let bar_w = inner.width.saturating_sub(if signed.is_some() { 50 } else { 34 }) as usize;
    let room = (inner.height as usize).saturating_sub(lines.len());
    for (rank, &j) in order.iter().take(room).enumerate() {
        let v = values[j];
        let filled = if max > 0.0 { ((v / max) * bar_w as f64).round() as usize } else { 0 };
        let (tag, style) = match picks.get(&j) {
            Some(Pick::Guaranteed(k)) => (format!("top{k}"), theme.guaranteed()),
            Some(Pick::Additional) => ("add".into(), theme.additional()),
            None => (String::new(), Style::default()),
        };
        let mean = signed.map(|m| format!("mean {:>9} ", num(m[j]))).unwrap_or_default();
        lines.push(Line::from(vec![
            Span::raw(format!("{:>4} w{:<5} {:>10} {mean}", rank + 1, j, pyfloat_short(v))),
            Span::styled("█".repeat(filled.min(bar_w)), style),
            Span::styled(format!(" {tag}"), style),
        ]));
    }
    f.render_widget(Paragraph::new(lines), inner);
}

/// What zeroing this neuron's selected weights does (against as many random weights of the
/// same layer).
fn neuron_evidence<'a>(app: &App, param: usize, row: usize, width: usize, theme: &Theme) -> Line<'a> {
    let ev = app.evidence();
    let text = match (ev.status(), ev.neuron(param, row)) {
        (EvidenceStatus::Off, _) => return Line::from(""),
        (EvidenceStatus::Failed(_), _) => "evidence unavailable (see the header)".to_string(),
        (_, Some((e, stale))) => {
            let parts = match e {
                Some(e) => evidence_parts(e, app.run().target()).join(" · "),
                None => "no weight of this neuron is selected".to_string(),
            };
            format!("zeroing its selected weights: {parts}{}", if stale { " · updating ..." } else { "" })
        }
        _ => "zeroing its selected weights: computing ...".to_string(),
    };
    Line::from(Span::styled(fit_words(&text, width), theme.accent()))
}

fn pyfloat_short(v: f64) -> String {
    let s = pyfloat::to_string(v);
    if s.len() > 10 {
        num(v)
    } else {
        s
    }
}

/// The input view: per observation key, the input saliency (mean |d target / d input| over the
/// inputs), and input `index`'s own values and saliency. Images are pictures per channel (half
/// blocks, pooled by max to fit); vectors are bars sorted by saliency, labelled by
/// `--feature-names` when given.
fn draw_inputs(app: &App, f: &mut Frame, area: Rect, index: usize, theme: &Theme) {
    let r = Rect {
        x: area.x + 1,
        y: area.y + 1,
        width: area.width.saturating_sub(2),
        height: area.height.saturating_sub(2),
    };
    f.render_widget(Clear, r);
    let sample = app.evidence().input(index);
    let title = match sample {
        Some(s) => format!(
            " input saliency · target {} · input {}/{} {} (action {}) · ←/→ inputs · i or Esc closes ",
            app.run().target(),
            s.index + 1,
            s.inputs,
            s.input_id,
            s.action
        ),
        None => format!(" input saliency · target {} · i or Esc closes ", app.run().target()),
    };
    let b = block(fit_words(&title, r.width.saturating_sub(2) as usize), true, theme);
    let inner = b.inner(r);
    f.render_widget(b, r);
    let Some(means) = app.inputs().means() else {
        f.render_widget(Paragraph::new("the input saliency comes with the finished run"), inner);
        return;
    };
    let n_keys = means.keys.len().max(1) as u16;
    let per_key = inner.height / n_keys;
    let mut offset = 0usize;
    for (k, key) in means.keys.iter().enumerate() {
        let area = Rect { y: inner.y + per_key * k as u16, height: per_key, ..inner };
        let own = sample.map(|s| (&s.values[offset..offset + key_input_len(app, k, key)], &s.saliency[k]));
        offset += key_input_len(app, k, key);
        let head = format!(
            "{} {:?}: mean |d {} / d input| over {} inputs",
            key.name,
            key.shape,
            app.run().target(),
            means.count
        );
        f.render_widget(
            Paragraph::new(Span::styled(fit_words(&head, area.width as usize), theme.accent())),
            Rect { height: 1, ..area },
        );
        let body = Rect { y: area.y + 1, height: area.height.saturating_sub(1), ..area };
        if key.shape.len() == 3 {
            draw_image_key(app, f, body, key, &means.mean_abs[k], own, theme);
        } else {
            draw_vector_key(app, f, body, k, key, &means.mean_abs[k], own, theme);
        }
    }
}

/// Values of key `k` in an input as written: its saliency's length, except for a Discrete key
/// (one value as written, a one-hot vector of saliency).
fn key_input_len(app: &App, k: usize, key: &crate::pipeline::input_saliency::InputKey) -> usize {
    app.run().input_lens().get(k).copied().unwrap_or_else(|| key.len())
}

type Own<'a> = Option<(&'a [f32], &'a Vec<f32>)>;

fn draw_image_key(
    app: &App,
    f: &mut Frame,
    area: Rect,
    key: &crate::pipeline::input_saliency::InputKey,
    mean_abs: &[f64],
    own: Own,
    theme: &Theme,
) {
    let (c, h, w) = (key.shape[0], key.shape[1], key.shape[2]);
    let shown = c.min(4);
    let rows = (area.height as usize / shown.max(1)).max(1) as u16;
    let col_w = area.width / 3;
    for ch in 0..shown {
        let y = area.y + rows * ch as u16;
        let plane = |v: &[f64]| v[ch * h * w..(ch + 1) * h * w].to_vec();
        let label = |f: &mut Frame, x: u16, text: String| {
            f.render_widget(Paragraph::new(Span::styled(text, theme.dim())), Rect { x, y, width: col_w, height: 1 })
        };
        let pic = |x: u16| Rect { x, y: y + 1, width: col_w.saturating_sub(1), height: rows.saturating_sub(1) };
        label(f, area.x, format!("channel {ch}: saliency (all inputs)"));
        draw_picture(app, f, pic(area.x), &plane(mean_abs), h, w);
        if let Some((values, sal)) = own {
            let vals: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            let sal: Vec<f64> = sal.iter().map(|&v| f64::from(v).abs()).collect();
            label(f, area.x + col_w, "this input".to_string());
            draw_picture(app, f, pic(area.x + col_w), &plane(&vals), h, w);
            label(f, area.x + 2 * col_w, "its saliency".to_string());
            draw_picture(app, f, pic(area.x + 2 * col_w), &plane(&sal), h, w);
        }
    }
}

/// An h x w plane as half-block pixels, pooled by max to fit `area`, coloured from 0 to the
/// plane's largest value.
fn draw_picture(app: &App, f: &mut Frame, area: Rect, data: &[f64], h: usize, w: usize) {
    if area.width == 0 || area.height == 0 || h == 0 || w == 0 {
        return;
    }
    let per_cell = if app.color_mode() == ColorMode::None { 1 } else { 2 };
    let (px_w, px_h) = (area.width as usize, area.height as usize * per_cell);
    let step = h.div_ceil(px_h).max(w.div_ceil(px_w)).max(1);
    let (ph, pw) = (h.div_ceil(step), w.div_ceil(step));
    let max = data.iter().copied().filter(|v| v.is_finite()).fold(0.0f64, |m, v| m.max(v.abs()));
    let pixel = |py: usize, px: usize| -> Option<f64> {
        if py >= ph || px >= pw {
            return None;
        }
        let mut m = 0.0f64;
        for y in py * step..((py + 1) * step).min(h) {
            for x in px * step..((px + 1) * step).min(w) {
                m = m.max(data[y * w + x].abs());
            }
        }
        Some(if max > 0.0 { m / max } else { 0.0 })
    };
    let buf = f.buffer_mut();
    for cy in 0..(ph.div_ceil(per_cell)).min(area.height as usize) {
        for cx in 0..pw.min(area.width as usize) {
            let cell = &mut buf[(area.x + cx as u16, area.y + cy as u16)];
            if per_cell == 1 {
                if let Some(t) = pixel(cy, cx) {
                    cell.set_symbol(&color::glyph(t).to_string());
                }
                continue;
            }
            let (up, down) = (pixel(2 * cy, cx), pixel(2 * cy + 1, cx));
            if let Some(u) = up {
                cell.set_symbol("▀").set_fg(app.color_mode().color(app.heatmap().colormap().rgb(u)));
                if let Some(d) = down {
                    cell.set_bg(app.color_mode().color(app.heatmap().colormap().rgb(d)));
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn draw_vector_key(
    app: &App,
    f: &mut Frame,
    area: Rect,
    k: usize,
    key: &crate::pipeline::input_saliency::InputKey,
    mean_abs: &[f64],
    own: Own,
    theme: &Theme,
) {
    let single = app.inputs().means().is_some_and(|m| m.keys.len() == 1);
    let names = app.inputs().names().map(|n| n.for_key(key, single));
    let mut lines = Vec::new();
    let names: Option<&[String]> = match names {
        Some(Ok(n)) => n,
        Some(Err(note)) => {
            lines.push(Line::from(Span::styled(note.to_string(), theme.fg(Color::Yellow))));
            None
        }
        None => None,
    };
    let _ = k;
    let mut order: Vec<usize> = (0..mean_abs.len()).collect();
    order.sort_by(|&a, &b| mean_abs[b].total_cmp(&mean_abs[a]).then(a.cmp(&b)));
    let max = mean_abs.iter().copied().fold(0.0f64, f64::max);
    let label_w = names.map(|n| n.iter().map(|s| width(s)).max().unwrap_or(4)).unwrap_or(6).clamp(4, 24);
    let own_w = if own.is_some() { 34 } else { 0 };
    let bar_w = (area.width as usize).saturating_sub(label_w + 12 + own_w).max(4);
    let room = (area.height as usize).saturating_sub(lines.len());
    for &j in order.iter().take(room) {
        let label = names.map(|n| crate::tui::layout::tail(&n[j], label_w)).unwrap_or_else(|| format!("[{j}]"));
        let filled = if max > 0.0 { ((mean_abs[j] / max) * bar_w as f64).round() as usize } else { 0 };
        let mut spans = vec![
            Span::raw(format!("{label:>label_w$} ")),
            Span::styled(format!("{:<bar_w$}", "█".repeat(filled.min(bar_w))), theme.fg(Color::Cyan)),
            Span::raw(format!(" {:>9}", num(mean_abs[j]))),
        ];
        if let Some((values, sal)) = own {
            // (a Discrete key's saliency is over its one-hot vector: no value per element)
            let value = if values.len() == mean_abs.len() { num(f64::from(values[j])) } else { "-".into() };
            spans.push(Span::styled(format!("  value {value:>8} · grad {:>9}", num(f64::from(sal[j]))), theme.dim()));
        }
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines), area);
}

/// The validation's scatter: the measure shown (x) against each sampled weight's damage (y),
/// both on log10 axes (zeros drawn at the floor).
fn draw_scatter(app: &App, f: &mut Frame, area: Rect, theme: &Theme) {
    use ratatui::symbols::Marker;
    use ratatui::widgets::{Axis, Chart, Dataset, GraphType};
    let r = centered(area, area.width.saturating_sub(4), area.height.saturating_sub(2));
    f.render_widget(Clear, r);
    let Some(v) = app.validation().done() else { return };
    let m = app.data().measure();
    let Some(k) = v.measures.iter().position(|&x| x == m) else {
        let text = format!(" {} is signed: it is not scored (v: the next measure)", m.name());
        f.render_widget(Paragraph::new(text).block(block(" measure against damage ", true, theme)), r);
        return;
    };
    let xs: Vec<f64> = v.sample.iter().map(|s| s.measures[k]).collect();
    let ys: Vec<f64> = v.sample.iter().map(|s| s.damage).collect();
    let log = |vals: &[f64]| -> (Vec<f64>, f64, f64) {
        let pos = vals.iter().copied().filter(|x| *x > 0.0 && x.is_finite());
        let (lo, hi) = pos.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
        let (lo, hi) = if lo.is_finite() { (lo.log10() - 0.5, hi.log10()) } else { (-1.0, 0.0) };
        (vals.iter().map(|&x| if x > 0.0 && x.is_finite() { x.log10() } else { lo }).collect(), lo, hi.max(lo + 1.0))
    };
    let ((lx, x0, x1), (ly, y0, y1)) = (log(&xs), log(&ys));
    let points: Vec<(f64, f64)> = lx.into_iter().zip(ly).collect();
    let score = app.validation().score(m);
    let zeros = xs.iter().zip(&ys).filter(|(x, y)| **x <= 0.0 || **y <= 0.0).count();
    let title = format!(
        " {} against the damage of removing each of {} weights ({zeros} with a 0 on the axes) · Spearman {} · \
         top-decile hit {} · v next measure · V closes ",
        m.name(),
        v.sample.len(),
        score.and_then(|s| s.spearman).map(|r| format!("{r:+.3}")).unwrap_or_else(|| "-".into()),
        score.map(|s| format!("{:.2}", s.top_decile_hit)).unwrap_or_else(|| "-".into()),
    );
    let label = |x: f64| num(10f64.powf(x));
    let ds = Dataset::default()
        .marker(Marker::HalfBlock)
        .graph_type(GraphType::Scatter)
        .style(theme.fg(Color::Cyan))
        .data(&points);
    let chart = Chart::new(vec![ds])
        .block(block(fit_words(&title, r.width.saturating_sub(2) as usize), true, theme))
        .x_axis(Axis::default().title(format!("{} (log)", m.name())).bounds([x0, x1]).labels([label(x0), label(x1)]))
        .y_axis(Axis::default().title("damage (log)").bounds([y0, y1]).labels([label(y0), label(y1)]));
    f.render_widget(chart, r);
}
