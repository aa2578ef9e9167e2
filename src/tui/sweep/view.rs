//! Drawing the sweep explorer: reads `SweepApp`, writes the frame (`prepare` only scrolls the
//! table to its cursor for the frame's size). Only what is on screen is formatted, so a table
//! of thousands of agents draws as fast as one of ten.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Chart, Clear, Dataset, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use crate::format::num;
use crate::pipeline::average::AvgParam;
use crate::study::sweep::compare::{Comparison, Side, Weights};
use crate::study::sweep::summary::{Group, Iqm};
use crate::study::sweep::training::Training;

use super::super::color::{self, ColorMode};
use super::super::heatmap::{pool, HeatmapView, Mark, MatrixShape, Pooling, Scale, Scaler, Viewport};
use super::super::keymap::{self, Scope, SWEEP_KEYMAP};
use super::super::layout::{abbreviate_names, fit_words, tail, width};
use super::super::theme::{block, centered, hint_spans, Theme};
use super::app::{ComparePart, Loadable, SweepApp, View};
use super::table::{Col, Heat, Table};

/// Lines above and below the body.
const HEADER: u16 = 2;
const FOOTER: u16 = 2;

/// The body's area for a frame of `area`.
fn body(area: Rect) -> Rect {
    let h = area.height.saturating_sub(HEADER + FOOTER);
    Rect { y: area.y + HEADER, height: h, ..area }
}

/// Where the table's first scrolled column starts (after the marks and the frozen id).
fn frozen_width(t: &Table) -> usize {
    2 + t.width(Col::Id) + 1
}

/// How many of `cols` from `left` fit in `room` cells (a space after each).
fn fitting(t: &Table, cols: &[Col], left: usize, room: usize) -> usize {
    let mut used = 0;
    let mut n = 0;
    for &c in cols.iter().skip(left) {
        used += t.width(c) + 1;
        if used > room {
            break;
        }
        n += 1;
    }
    n
}

/// Scrolls the table to its cursor for this frame's size.
pub fn prepare(app: &mut SweepApp, area: Rect) {
    let b = body(area);
    // (less the header row and the detail line)
    let rows = b.height.saturating_sub(2) as usize;
    let t = app.table_mut();
    let cols = t.columns();
    let room = (b.width as usize).saturating_sub(frozen_width(t));
    let fits: Vec<usize> = (0..cols.len()).map(|l| fitting(t, &cols, l, room)).collect();
    t.scroll_to_cursor(rows, |left| fits.get(left).copied().unwrap_or(0));
}

pub fn draw(app: &SweepApp, f: &mut Frame) {
    let area = f.area();
    let theme = Theme { color: app.color_mode != ColorMode::None };
    draw_header(app, f, Rect { height: HEADER.min(area.height), ..area }, &theme);
    let b = body(area);
    if app.compare().is_some() {
        draw_compare(app, f, b, &theme);
    } else {
        match app.view() {
            View::Agents => draw_table(app, f, b, &theme),
            View::Groups => draw_groups(app, f, b, &theme),
            View::Training => draw_training(app, f, b, &theme),
        }
    }
    let foot = Rect { y: area.bottom().saturating_sub(FOOTER), height: FOOTER.min(area.height), ..area };
    draw_footer(app, f, foot, &theme);
    if app.help() {
        draw_help(app, f, area, &theme);
    }
}

fn draw_header(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    let r = app.results();
    let analysed = r.summaries.len();
    let failed = r.rows.iter().filter(|x| x.status == crate::study::sweep::manifest::Status::Failed).count();
    let counts = format!(" {} agents, {analysed} analysed", r.rows.len());
    let failed_text = if failed > 0 { format!(", {failed} failed") } else { String::new() };
    let tabs: Vec<Span> = View::ALL
        .iter()
        .flat_map(|&v| {
            let style = if v == app.view() && app.compare().is_none() { theme.selected() } else { theme.dim() };
            [Span::raw(" "), Span::styled(format!(" {} ", v.name()), style)]
        })
        .collect();
    let tabs_w: usize = tabs.iter().map(|s| width(&s.content)).sum();
    // The counts always; then the name and the folder, as far as they fit.
    let mut room = (area.width as usize).saturating_sub(tabs_w + width(&counts) + width(&failed_text) + 1);
    let mut title = Vec::new();
    if room >= 16 {
        title.push(Span::styled(" saliency sweep", theme.accent()));
        room -= 15;
        let out = r.out.display().to_string();
        if room >= 11 {
            title.push(Span::raw(format!(" {} ·", tail(&out, room - 3))));
        }
    }
    title.extend([Span::raw(counts), Span::styled(failed_text, theme.error())]);
    let [left, right] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(tabs_w as u16)]).areas(Rect { height: 1, ..area });
    f.render_widget(Paragraph::new(Line::from(title)), left);
    f.render_widget(Paragraph::new(Line::from(tabs)), right);
    if area.height > 1 {
        let line = Rect { y: area.y + 1, height: 1, ..area };
        f.render_widget(Paragraph::new(status_line(app, theme, area.width as usize)), line);
    }
}

fn status_line<'a>(app: &SweepApp, theme: &Theme, w: usize) -> Line<'a> {
    let t = app.table();
    let mut parts: Vec<Span> = Vec::new();
    if let Some(l) = app.live_part() {
        let text = match (&l.ending, l.running) {
            (Some(e), _) => format!(" {e} "),
            (None, true) => format!(" analysing: {} of {} done, {} failed ", l.done, l.total, l.failed),
            (None, false) => " starting ".into(),
        };
        parts.push(Span::styled(text, theme.accent()));
    }
    let mut info = vec![format!("{} of {} rows", t.visible().len(), t.len())];
    if let Some(flt) = t.filter() {
        info.push(format!("filter /{}", flt.text));
    }
    if let Some((col, rev)) = t.sort() {
        info.push(format!("sorted by {} {}", col_title(t, col), if rev { "↓" } else { "↑" }));
    }
    if !t.marks().is_empty() {
        info.push(format!("{} marked", t.marks().len()));
    }
    if let Some(p) = t.pin() {
        info.push(format!("baseline {} (layers: difference in points)", t.cell(p, Col::Id).text));
    }
    if let Some(th) = t.diff_only() {
        info.push(format!("only layers differing > {:.2}%", 100.0 * th));
    }
    info.push(format!("measure {}", app.results().flags.measure().name()));
    parts.push(Span::styled(fit_words(&format!(" {}", info.join(" · ")), w), theme.dim()));
    Line::from(parts)
}

fn col_title(t: &Table, col: Col) -> String {
    match col {
        Col::Layer(l) => t.layers().get(l).cloned().unwrap_or_default(),
        c => c.title().to_string(),
    }
}

/// Short labels of the layer columns (`weight` and `bias` as `w` and `b`, kept distinct).
fn layer_labels(t: &Table) -> Vec<String> {
    let short: Vec<String> = t
        .layers()
        .iter()
        .map(|n| {
            n.strip_suffix(".weight")
                .map(|s| format!("{s}.w"))
                .or_else(|| n.strip_suffix(".bias").map(|s| format!("{s}.b")))
                .unwrap_or_else(|| n.clone())
        })
        .collect();
    let refs: Vec<&str> = short.iter().map(String::as_str).collect();
    let mut labels = abbreviate_names(&refs, super::table::LAYER_WIDTH);
    // A name of two long components (`action_net.w`): initials but the last, if distinct.
    for (i, l) in labels.clone().iter().enumerate() {
        let parts: Vec<&str> = refs[i].split('.').collect();
        let initials: Vec<String> = parts
            .iter()
            .enumerate()
            .map(|(j, p)| if j + 1 < parts.len() { p[..1].to_string() } else { p.to_string() })
            .collect();
        let short = initials.join(".");
        if l.starts_with('…') && width(&short) <= super::table::LAYER_WIDTH && !labels.contains(&short) {
            labels[i] = short;
        }
    }
    labels
}

fn put(buf: &mut Buffer, x: u16, y: u16, text: &str, w: usize, style: Style, right: bool) {
    let shown = if width(text) > w { tail(text, w) } else { text.to_string() };
    let pad = w.saturating_sub(width(&shown));
    let s = if right { format!("{}{shown}", " ".repeat(pad)) } else { format!("{shown}{}", " ".repeat(pad)) };
    buf.set_stringn(x, y, s, w, style);
}

fn heat_style(heat: Option<Heat>, mode: ColorMode, colormap: color::Colormap) -> Style {
    let rgb = match heat {
        Some(Heat::Share(t)) => colormap.rgb(t),
        Some(Heat::Diff(t)) => crate::colormap::diverging(t),
        None => return Style::default(),
    };
    if mode == ColorMode::None {
        return Style::default();
    }
    let fg = if color::luminance(rgb) > 0.5 { Color::Black } else { Color::White };
    Style::default().bg(mode.color(rgb)).fg(fg)
}

/// Where the table's parts are for a body of `area` (None when too small to draw): the header
/// row, the rows under it, the detail line, and each column shown with its index in
/// `Table::columns`, its x and width. Drawing and clicks both read it.
struct TableLayout {
    area: Rect,
    detail: Rect,
    shown: Vec<(usize, Col, u16, usize)>,
}

fn table_layout(t: &Table, area: Rect) -> Option<TableLayout> {
    if area.height < 2 || area.width < 20 {
        return None;
    }
    let detail = Rect { y: area.bottom() - 1, height: 1, ..area };
    let area = Rect { height: area.height - 1, ..area };
    let cols = t.columns();
    let room = (area.width as usize).saturating_sub(frozen_width(t));
    let scrolled = (t.left()..cols.len()).take(fitting(t, &cols, t.left(), room));
    let mut x = area.x + 2;
    let shown = std::iter::once(0)
        .chain(scrolled)
        .map(|i| {
            let (c, w) = (cols[i], t.width(cols[i]));
            let at = x;
            x += w as u16 + 1;
            (i, c, at, w)
        })
        .collect();
    Some(TableLayout { area, detail, shown })
}

/// What a click at (x, y) of a frame of `frame` hits in the agents table: the column (an index
/// into `Table::columns`) and the row (an index into `Table::visible`; None: the header).
pub fn table_hit(app: &SweepApp, frame: Rect, x: u16, y: u16) -> Option<(Option<usize>, usize)> {
    let t = app.table();
    let l = table_layout(t, body(frame))?;
    let &(col, ..) = l.shown.iter().find(|&&(_, _, at, w)| x >= at && x < at + w as u16 + 1)?;
    if y == l.area.y {
        return Some((None, col));
    }
    let row = t.top() + y.checked_sub(l.area.y + 1)? as usize;
    (y < l.area.bottom() && row < t.visible().len()).then_some((Some(row), col))
}

fn draw_table(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    let t = app.table();
    let Some(TableLayout { area, detail, shown }) = table_layout(t, area) else { return };
    let buf = f.buffer_mut();
    let labels = layer_labels(t);
    // The header.
    for &(i, c, x, w) in &shown {
        let title = match c {
            Col::Layer(l) => labels.get(l).cloned().unwrap_or_default(),
            other => other.title().to_string(),
        };
        let mut style = theme.accent();
        if i == t.col() {
            style = style.add_modifier(Modifier::REVERSED);
        }
        put(buf, x, area.y, &title, w, style, matches!(c, Col::Layer(_)));
    }
    // The rows on screen.
    for (i, &entry) in t.visible().iter().enumerate().skip(t.top()).take(area.height as usize - 1) {
        let y = area.y + 1 + (i - t.top()) as u16;
        let e = &t.entries()[entry];
        let cursor = i == t.cursor();
        let base = match e.row.status {
            crate::study::sweep::manifest::Status::Failed => theme.fg(Color::Red),
            crate::study::sweep::manifest::Status::Ok => Style::default(),
            _ => theme.dim(),
        };
        let base = if cursor { base.add_modifier(Modifier::REVERSED) } else { base };
        let mark = match (t.pin() == Some(entry), t.is_marked(entry)) {
            (true, true) => "◆✓",
            (true, false) => "◆ ",
            (false, true) => " ✓",
            _ => "  ",
        };
        buf.set_stringn(area.x, y, mark, 2, theme.accent());
        for &(_, c, x, w) in &shown {
            let cell = t.cell(entry, c);
            let style = match cell.heat {
                Some(_) if !cursor => heat_style(cell.heat, app.color_mode, app.colormap),
                _ => base,
            };
            let right = !matches!(c, Col::Id | Col::Run | Col::Kind | Col::Algorithm | Col::Environment | Col::Status);
            put(buf, x, y, &cell.text, w, style, right);
            if x + (w as u16) < area.right() {
                buf.set_stringn(x + w as u16, y, " ", 1, base);
            }
        }
    }
    if t.visible().is_empty() {
        let text = if t.is_empty() { "no agents (yet)" } else { "no row matches the filter (Esc clears it)" };
        buf.set_stringn(area.x + 2, area.y + 1, text, area.width as usize - 2, theme.dim());
    }
    f.render_widget(Paragraph::new(detail_line(t, theme, detail.width as usize)), detail);
}

/// The cursor's agent in full, and what the cursor's column means.
fn detail_line<'a>(t: &Table, theme: &Theme, w: usize) -> Line<'a> {
    let Some(e) = t.current() else { return Line::from("") };
    let col = t.current_col();
    let what = match col {
        Col::Layer(l) => format!("{}: {}", t.layers().get(l).cloned().unwrap_or_default(), col.meaning()),
        c => c.meaning().to_string(),
    };
    let mut text = format!(" {} · {}", e.row.agent_id, e.row.path);
    if let Some(d) = &e.row.duplicate_of {
        text.push_str(&format!(" · same network as {d}"));
    }
    match &e.row.error {
        Some(err) => Line::from(vec![
            Span::raw(fit_words(&text, w / 2)),
            Span::styled(fit_words(&format!(" · {err}"), w.saturating_sub(width(&text).min(w / 2))), theme.error()),
        ]),
        None => {
            let left = if width(&text) > w { tail(&text, w) } else { text };
            let right = fit_words(&format!("· {what}"), w.saturating_sub(width(&left) + 1));
            Line::from(vec![Span::raw(left), Span::raw(" "), Span::styled(right, theme.dim())])
        }
    }
}

fn interval_text(s: &Iqm, pct: bool) -> String {
    let f = |v: f64| if pct { format!("{:.1}%", 100.0 * v) } else { format!("{v:.3}") };
    match s.interval {
        Some([lo, hi]) => format!("{} [{}, {}]", f(s.iqm), f(lo), f(hi)),
        None => format!("{} (one agent)", f(s.iqm)),
    }
}

/// An interval on an axis [0, max] of `w` cells: `━` from lo to hi, `●` at the IQM.
fn interval_plot(s: &Iqm, max: f64, w: usize) -> String {
    let at =
        |v: f64| if max > 0.0 { ((v / max) * (w - 1) as f64).round().clamp(0.0, (w - 1) as f64) as usize } else { 0 };
    let mut cells = vec!['·'; w];
    if let Some([lo, hi]) = s.interval {
        for c in cells.iter_mut().take(at(hi) + 1).skip(at(lo)) {
            *c = '━';
        }
    }
    if s.iqm.is_finite() {
        cells[at(s.iqm)] = '●';
    }
    cells.into_iter().collect()
}

fn group_lines<'a>(groups: &[Group], w: usize, theme: &Theme) -> Vec<Line<'a>> {
    let max = groups
        .iter()
        .flat_map(|g| g.layers.iter().map(|(_, s)| s.interval.map(|i| i[1]).unwrap_or(s.iqm)))
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let name_w = (w / 4).clamp(8, 32);
    let text_w = 24;
    let plot_w = w.saturating_sub(name_w + text_w + 6).max(10);
    let axis = format!("0%{:>w$}", format!("{:.1}%", 100.0 * max), w = plot_w.saturating_sub(2));
    let mut lines = vec![
        Line::from(Span::styled(
            fit_words(
                " each layer's share: interquartile mean ● and 95% bootstrap interval ━ over the group's agents",
                w,
            ),
            theme.dim(),
        )),
        Line::from(Span::styled(format!("   {:name_w$} {axis}", ""), theme.dim())),
    ];
    for g in groups {
        let mut head = format!(" {}  n={}  gini {}", g.group, g.agents.len(), interval_text(&g.gini, false));
        if let Some(fl) = &g.flip_rate {
            head.push_str(&format!("  flip rate {}", interval_text(fl, true)));
        }
        lines.push(Line::from(Span::styled(fit_words(&head, w), theme.accent())));
        if g.validation.is_some() {
            let best: Vec<String> =
                g.best_predictors().iter().take(3).map(|(m, s)| format!("{m} {}", interval_text(s, false))).collect();
            let text = format!("   best predictors of damage (Spearman): {}", best.join(", "));
            lines.push(Line::from(Span::styled(fit_words(&text, w), theme.dim())));
        }
        let names: Vec<&str> = g.layers.iter().map(|(n, _)| n.as_str()).collect();
        for ((_, s), name) in g.layers.iter().zip(abbreviate_names(&names, name_w)) {
            lines.push(Line::from(vec![
                Span::raw(format!("   {name:name_w$} ")),
                Span::styled(interval_plot(s, max, plot_w), theme.fg(Color::Cyan)),
                Span::raw(format!("  {}", interval_text(s, true))),
            ]));
        }
        lines.push(Line::from(""));
    }
    lines
}

fn draw_groups(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    let groups = app.groups();
    if groups.is_empty() {
        let text = if app.live_part().is_some_and(|l| l.running) {
            "no agent of kind agent or final analysed yet: groups fill in as the sweep goes"
        } else {
            "no groups: a group holds the analysed agents of kind agent and final (checkpoints are under Training)"
        };
        f.render_widget(Paragraph::new(text).style(theme.dim()).wrap(Wrap { trim: true }), area);
        return;
    }
    let lines = group_lines(groups, area.width as usize, theme);
    let scroll = app.groups_scroll().min(lines.len().saturating_sub(area.height as usize));
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)), area);
}

fn draw_training(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    if app.runs().is_empty() {
        let text = if app.live_part().is_some_and(|l| l.running) {
            "no run has its final model and a checkpoint analysed yet: runs appear here as they finish"
        } else {
            "no run with checkpoints in this sweep (RL Zoo runs saved with --save-freq have them)"
        };
        f.render_widget(Paragraph::new(text).style(theme.dim()).wrap(Wrap { trim: true }), area);
        return;
    }
    let list_w = (area.width / 4).clamp(16, 36);
    let [list, main] = Layout::horizontal([Constraint::Length(list_w), Constraint::Fill(1)]).areas(area);
    let names: Vec<Line> = app
        .runs()
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let style = if i == app.run_index() { theme.selected() } else { Style::default() };
            Line::from(Span::styled(tail(app.table().run_label(r), list_w as usize - 2), style))
        })
        .collect();
    let scroll = app.run_index().saturating_sub(list.height.saturating_sub(3) as usize);
    f.render_widget(Paragraph::new(names).scroll((scroll as u16, 0)).block(block(" runs ", true, theme)), list);
    match app.training() {
        Loadable::Ready(t) => draw_run(app, t, f, main, theme),
        Loadable::Failed(e) => {
            f.render_widget(Paragraph::new(e.as_str()).style(theme.error()).wrap(Wrap { trim: true }), main)
        }
        _ => f.render_widget(Paragraph::new(" loading ...").style(theme.dim()), main),
    }
}

fn point_label(p: &crate::study::sweep::training::Point) -> String {
    use crate::study::sweep::discover::Kind;
    match (p.kind, p.step) {
        (Kind::Final, _) => "final".into(),
        (Kind::Best, _) => "best".into(),
        (_, Some(s)) if s >= 10_000 => format!("{}k", s / 1000),
        (_, Some(s)) => s.to_string(),
        (k, None) => k.name().into(),
    }
}

fn draw_run(app: &SweepApp, t: &Training, f: &mut Frame, area: Rect, theme: &Theme) {
    let title = format!(" {} · each layer's share (%) per checkpoint ", app.table().run_label(&t.run));
    let rows = t.layers.len() as u16 + 1;
    let [grid, charts] =
        Layout::vertical([Constraint::Length((rows + 2).min(area.height / 2)), Constraint::Fill(1)]).areas(area);
    let inner = {
        let b = block(title, false, theme);
        let inner = b.inner(grid);
        f.render_widget(b, grid);
        inner
    };
    let label_w = (inner.width as usize / 4).clamp(8, 24);
    let n = t.points.len().max(1);
    let cell_w = ((inner.width as usize).saturating_sub(label_w + 1) / n).clamp(3, 9);
    let max = t.points.iter().flat_map(|p| p.shares.iter().flatten()).fold(0.0, |a: f64, &b| a.max(b));
    let buf = f.buffer_mut();
    for (j, p) in t.points.iter().enumerate() {
        let x = inner.x + (label_w + 1 + j * cell_w) as u16;
        if x + cell_w as u16 <= inner.right() {
            put(buf, x, inner.y, &point_label(p), cell_w - 1, theme.accent(), true);
        }
    }
    let names: Vec<&str> = t.layers.iter().map(String::as_str).collect();
    for (i, name) in abbreviate_names(&names, label_w).iter().enumerate() {
        let y = inner.y + 1 + i as u16;
        if y >= inner.bottom() {
            break;
        }
        put(buf, inner.x, y, name, label_w, Style::default(), false);
        for (j, p) in t.points.iter().enumerate() {
            let x = inner.x + (label_w + 1 + j * cell_w) as u16;
            if x + cell_w as u16 > inner.right() {
                break;
            }
            let Some(v) = p.shares.get(i).copied().flatten() else { continue };
            let heat = Some(Heat::Share(if max > 0.0 { v / max } else { 0.0 }));
            put(
                buf,
                x,
                y,
                &format!("{:.1}", 100.0 * v),
                cell_w - 1,
                heat_style(heat, app.color_mode, app.colormap),
                true,
            );
        }
    }
    draw_run_charts(t, f, charts, theme);
}

/// A bar of `v` in [0, 1] over `w` cells, in eighths.
fn bar(v: f64, w: usize) -> String {
    const EIGHTHS: [char; 8] = ['▏', '▎', '▍', '▌', '▋', '▊', '▉', '█'];
    let n = (v.clamp(0.0, 1.0) * (w * 8) as f64).round() as usize;
    let mut s = "█".repeat(n / 8);
    if n % 8 > 0 {
        s.push(EIGHTHS[n % 8 - 1]);
    }
    format!("{s:w$}")
}

/// Each network's agreement with the final model: Spearman and the top-K overlap as bars.
fn agreement_lines<'a>(t: &Training, w: usize, theme: &Theme) -> Vec<Line<'a>> {
    let bar_w = w.saturating_sub(30) / 2;
    let mut lines = vec![Line::from(Span::styled(
        format!(" {:>6}  {:<w2$}  {:<w2$}", "", "Spearman", format!("top-{} overlap", t.top), w2 = bar_w + 5),
        theme.dim(),
    ))];
    for p in &t.points {
        let rho = p.spearman.map(|r| format!("{r:.2}")).unwrap_or_else(|| " -  ".into());
        lines.push(Line::from(vec![
            Span::raw(format!(" {:>6}  {rho} ", point_label(p))),
            Span::styled(bar(p.spearman.unwrap_or(0.0), bar_w), theme.fg(Color::Cyan)),
            Span::raw(format!("  {:.2} ", p.top_overlap)),
            Span::styled(bar(p.top_overlap, bar_w), theme.fg(Color::Magenta)),
        ]));
    }
    lines.push(Line::from(Span::styled(
        format!(" chance level of the overlap: {} (K / weights)", num(t.chance_overlap)),
        theme.dim(),
    )));
    lines
}

fn draw_run_charts(t: &Training, f: &mut Frame, area: Rect, theme: &Theme) {
    let [left, right] = Layout::horizontal([Constraint::Percentage(50), Constraint::Fill(1)]).areas(area);
    let b = block(" agreement with the final model ", false, theme);
    let inner = b.inner(left);
    f.render_widget(b, left);
    f.render_widget(Paragraph::new(agreement_lines(t, inner.width as usize, theme)), inner);
    match &t.evaluations {
        Ok(e) if !e.steps.is_empty() => {
            let pts: Vec<(f64, f64)> = e.steps.iter().copied().zip(e.mean.iter().copied()).collect();
            let lo = e.min.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = e.max.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let x_max = e.steps.iter().copied().fold(0.0, f64::max);
            let ds = Dataset::default()
                .marker(Marker::HalfBlock)
                .graph_type(GraphType::Line)
                .style(theme.fg(Color::Yellow))
                .data(&pts);
            let chart = Chart::new(vec![ds])
                .block(block(" evaluation reward (mean of the episodes) ", false, theme))
                .x_axis(Axis::default().bounds([0.0, x_max.max(1.0)]).labels(["0".to_string(), num(x_max)]))
                .y_axis(Axis::default().bounds([lo.min(0.0), hi.max(lo + 1.0)]).labels([num(lo.min(0.0)), num(hi)]));
            f.render_widget(chart, right);
        }
        Ok(_) => f.render_widget(Paragraph::new(" no evaluations recorded").style(theme.dim()), right),
        Err(e) => f.render_widget(
            Paragraph::new(format!(" reward: {e}")).style(theme.dim()).wrap(Wrap { trim: true }).block(block(
                " evaluation reward ",
                false,
                theme,
            )),
            right,
        ),
    }
}

fn agent_label(app: &SweepApp, entry: usize) -> String {
    let t = app.table();
    let e = &t.entries()[entry];
    let step = e.row.step.map(|s| format!(" {s}")).unwrap_or_default();
    format!("{} {} {}{step}", t.cell(entry, Col::Id).text, t.cell(entry, Col::Run).text, e.row.kind.name())
}

fn draw_compare(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    let Some(c) = app.compare() else { return };
    let head = Line::from(vec![
        Span::styled(" A ", theme.fg(Color::LightRed).add_modifier(Modifier::BOLD)),
        Span::raw(agent_label(app, c.a)),
        Span::styled("   B ", theme.fg(Color::LightCyan).add_modifier(Modifier::BOLD)),
        Span::raw(agent_label(app, c.b)),
    ]);
    f.render_widget(Paragraph::new(head), Rect { height: 1, ..area });
    let rest = Rect { y: area.y + 1, height: area.height.saturating_sub(1), ..area };
    match &c.data {
        Loadable::Ready(cmp) => draw_comparison(app, c, cmp, f, rest, theme),
        Loadable::Failed(e) => {
            f.render_widget(Paragraph::new(e.as_str()).style(theme.error()).wrap(Wrap { trim: true }), rest)
        }
        _ => f.render_widget(Paragraph::new(" reading both agents' files ...").style(theme.dim()), rest),
    }
}

fn weights_line<'a>(w: &std::result::Result<Weights, String>, theme: &Theme, mode: ColorMode) -> Line<'a> {
    match w {
        Ok(w) => {
            let on = |s: Side| w.selected.iter().filter(|x| x.2 == s).count();
            Line::from(vec![
                Span::styled(
                    format!(
                        " Spearman {} · top-{} overlap {} (chance {})",
                        w.spearman.map(|r| format!("{r:.3}")).unwrap_or_else(|| "-".into()),
                        w.top,
                        num(w.top_overlap),
                        num(w.chance_overlap)
                    ),
                    theme.accent(),
                ),
                Span::raw(" · selected: "),
                Span::styled(format!("● {} both", on(Side::Both)), mark_style(mode, color::BOTH_RGB)),
                Span::styled(format!("  ● {} only A", on(Side::OnlyA)), mark_style(mode, color::ONLY_A_RGB)),
                Span::styled(format!("  ● {} only B", on(Side::OnlyB)), mark_style(mode, color::ONLY_B_RGB)),
            ])
        }
        Err(why) => Line::from(Span::styled(
            format!(" no per-weight comparison: {why}; the layers' shares are always comparable"),
            theme.fg(Color::Yellow),
        )),
    }
}

fn mark_style(mode: ColorMode, rgb: [u8; 3]) -> Style {
    match mode {
        ColorMode::None => Style::default(),
        m => Style::default().fg(m.color(rgb)),
    }
}

fn draw_comparison(app: &SweepApp, c: &ComparePart, cmp: &Comparison, f: &mut Frame, area: Rect, theme: &Theme) {
    f.render_widget(
        Paragraph::new(weights_line(&cmp.weights, theme, app.color_mode)).wrap(Wrap { trim: true }),
        Rect { height: 2, ..area },
    );
    let rest = Rect { y: area.y + 2, height: area.height.saturating_sub(2), ..area };
    let share_w = 44.min(rest.width);
    let [shares, map] = Layout::horizontal([Constraint::Length(share_w), Constraint::Fill(1)]).areas(rest);
    let name_w = share_w.saturating_sub(26) as usize;
    let names: Vec<&str> = cmp.shares.iter().map(|s| s.name.as_str()).collect();
    let pct = |v: Option<f64>| v.map(|x| format!("{:.1}", 100.0 * x)).unwrap_or_else(|| "-".into());
    let mut lines = vec![Line::from(Span::styled(
        format!(" {:name_w$} {:>6} {:>6} {:>7}", "layer (share %)", "A", "B", "A-B"),
        theme.dim(),
    ))];
    for (i, (s, name)) in cmp.shares.iter().zip(abbreviate_names(&names, name_w)).enumerate() {
        let d = match (s.a, s.b) {
            (Some(a), Some(b)) => format!("{:+.1}", 100.0 * (a - b)),
            _ => "-".into(),
        };
        let style = if i == c.layer { theme.selected() } else { Style::default() };
        lines.push(Line::from(Span::styled(format!(" {name:name_w$} {:>6} {:>6} {d:>7}", pct(s.a), pct(s.b)), style)));
    }
    let scroll = c.layer.saturating_sub(shares.height.saturating_sub(3) as usize);
    f.render_widget(Paragraph::new(lines).scroll((scroll as u16, 0)).block(block(" shares ", false, theme)), shares);
    if let Ok(w) = &cmp.weights {
        let name = cmp.shares.get(c.layer).map(|s| s.name.as_str()).unwrap_or_default();
        if let Some(p) = w.a.params.iter().position(|p| p.name == name) {
            draw_diff_map(app, c, w, p, f, map, theme);
        }
    }
}

/// The layer's signed difference A − B (or log10 of A / B) as a heatmap, with both
/// selections marked.
fn draw_diff_map(app: &SweepApp, c: &ComparePart, w: &Weights, p: usize, f: &mut Frame, area: Rect, theme: &Theme) {
    let (a, b) = (&w.a.params[p], &w.b.params[p]);
    let floor = a.data.iter().chain(&b.data).copied().filter(|v| v.is_finite()).fold(0.0, f64::max) * 1e-6;
    let data: Vec<f64> = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| if c.ratio { ((x + floor) / (y + floor)).log10() } else { x - y })
        .map(|v| if v.is_finite() { v } else { 0.0 })
        .collect();
    let diff = AvgParam { name: a.name.clone(), shape: a.shape.clone(), data };
    let what = if c.ratio { "log10(A / B)" } else { "A − B" };
    let title = format!(" {what} · {} [{}] · red: A larger, blue: B larger ", a.name, shape_text(&a.shape));
    let outer = block(title, true, theme);
    let inner = outer.inner(area);
    f.render_widget(outer, area);
    if inner.width < 4 || inner.height < 2 {
        return;
    }
    let ms = MatrixShape::of(&diff.shape);
    let view = Viewport { r0: 0, rows: ms.rows, c0: 0, cols: ms.cols };
    let glyphs = app.color_mode == ColorMode::None;
    let px_h = inner.height as usize * if glyphs { 1 } else { 2 };
    let grid = pool(&diff, &ms, view, inner.width as usize - 1, px_h, Pooling::Mean);
    let m = grid.values.iter().copied().map(f64::abs).fold(0.0, f64::max);
    let scaler = Scaler::from_range(Scale::Linear, -m, m, f64::NAN, None);
    let (_, cols) = a.rows_cols();
    let marks: Vec<(usize, usize, Mark)> = w
        .selected
        .iter()
        .filter(|s| s.0 == p)
        .filter_map(|&(_, i, side)| {
            let (r, col) = (i / cols, ms.col_of_weight(i % cols));
            let (py, px) = grid.pixel_of(r, col)?;
            Some((
                py,
                px,
                match side {
                    Side::Both => Mark::Both,
                    Side::OnlyA => Mark::OnlyA,
                    Side::OnlyB => Mark::OnlyB,
                },
            ))
        })
        .collect();
    let hv = HeatmapView {
        grid: &grid,
        scaler: &scaler,
        colormap: app.colormap,
        diverging: true,
        mode: app.color_mode,
        marks: &marks,
        candidate_rows: &[],
        cursor: None,
    };
    f.render_widget(&hv, inner);
}

fn shape_text(shape: &[usize]) -> String {
    shape.iter().map(|s| s.to_string()).collect::<Vec<_>>().join("×")
}

fn draw_footer(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    let w = area.width as usize;
    let line = Rect { y: area.bottom().saturating_sub(1), height: 1, ..area };
    if let Some(text) = app.filter_prompt() {
        let l = Line::from(vec![
            Span::styled(" filter /", theme.accent()),
            Span::raw(format!("{text}▏")),
            Span::styled("  Enter applies · Esc cancels · !REGEX inverts", theme.dim()),
        ]);
        f.render_widget(Paragraph::new(l), line);
        if let Some(m) = app.message() {
            f.render_widget(
                Paragraph::new(Span::styled(fit_words(&format!(" {m}"), w), theme.error())),
                Rect { y: area.y, height: 1, ..area },
            );
        }
        return;
    }
    let mut top: Vec<Span> = Vec::new();
    if let Some(m) = app.message() {
        top.push(Span::styled(fit_words(&format!(" {m} "), w), theme.accent()));
    } else if !app.notes().is_empty() {
        let n = app.notes().len();
        top.push(Span::styled(
            fit_words(&format!(" {n} note{} (? shows them)", if n == 1 { "" } else { "s" }), w),
            theme.fg(Color::Yellow),
        ));
    }
    if area.height > 1 {
        f.render_widget(Paragraph::new(Line::from(top)), Rect { y: area.y, height: 1, ..area });
    }
    let mut spans = hint_spans(&keymap::hints_of(SWEEP_KEYMAP, &[Scope::Global, app.scope()]), 0, w, theme);
    if app.compare().is_some() || app.view() != View::Agents {
        let esc = if app.compare().is_some() { " Esc back" } else { "" };
        spans.push(Span::styled(esc.to_string(), theme.accent()));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), line);
}

fn draw_help(app: &SweepApp, f: &mut Frame, area: Rect, theme: &Theme) {
    let mut lines = Vec::new();
    for n in app.notes().iter().take(8) {
        lines.push(Line::from(Span::styled(format!("note: {n}"), theme.fg(Color::Yellow))));
    }
    if app.notes().len() > 8 {
        lines.push(Line::from(Span::styled(
            format!("... and {} more notes", app.notes().len() - 8),
            theme.fg(Color::Yellow),
        )));
    }
    if !lines.is_empty() {
        lines.push(Line::from(""));
    }
    let scope = app.scope();
    let view = match scope {
        Scope::Compare => "the comparison",
        Scope::Filter => "the filter prompt",
        _ => app.view().name(),
    };
    let title = format!("Keys of {view} (the one keymap: the footer hints too)");
    lines.push(Line::from(Span::styled(title, theme.accent())));
    for b in SWEEP_KEYMAP.iter().filter(|b| b.scope == Scope::Global || b.scope == scope) {
        lines.push(Line::from(vec![Span::styled(format!("{:>10}  ", b.label), theme.accent()), Span::raw(b.help)]));
    }
    let r = centered(area, 100, lines.len() as u16 + 2);
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(block(" Help · Esc or ? closes ", true, theme)),
        r,
    );
}
