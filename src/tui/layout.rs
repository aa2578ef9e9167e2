//! Where things go on the screen, and text that fits its space.
//!
//! Panes have priorities: the heatmap always shows; the layer list and the selected-weights list share a
//! left column (side by side with the heatmap at 150 columns and more, stacked under each other
//! below that); on narrow or short terminals the left column folds to the one of the two lists
//! that has (or last had) focus. Text is shortened by dropping whole parts or words, never by
//! cutting a word in the middle, and parameter names are shortened from the left by components,
//! keeping the tail that tells them apart (`features_extractor.mlp.0.weight` ->
//! `f.mlp.0.weight`).

use ratatui::layout::{Constraint, Layout, Rect};

/// Where the explorer's screen regions are. A folded pane has an empty rectangle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Regions {
    pub header: Rect,
    pub layers: Rect,
    pub heatmap: Rect,
    pub selected: Rect,
    pub footer: Rect,
    /// The layer and selected-weights lists share one column and only one of them is shown.
    pub folded: bool,
}

/// Lines of the header: title, status, evidence.
pub const HEADER_LINES: u16 = 3;

/// Splits the screen. `show_selected` picks the list a folded left column shows.
pub fn regions(area: Rect, show_selected: bool) -> Regions {
    let [header, body, footer] =
        Layout::vertical([Constraint::Length(HEADER_LINES), Constraint::Fill(1), Constraint::Length(1)]).areas(area);
    if body.width >= 150 {
        let [layers, heatmap, selected] =
            Layout::horizontal([Constraint::Length(56), Constraint::Fill(1), Constraint::Length(50)]).areas(body);
        return Regions { header, layers, heatmap, selected, footer, folded: false };
    }
    let left_w = (body.width * 9 / 20).clamp(30, 48);
    let [left, heatmap] = Layout::horizontal([Constraint::Length(left_w), Constraint::Fill(1)]).areas(body);
    // Stacked lists need room for a few rows each (border, header, 3 rows).
    let folded = body.width < 80 || body.height < 16;
    if folded {
        let (layers, selected) = if show_selected { (Rect::default(), left) } else { (left, Rect::default()) };
        return Regions { header, layers, heatmap, selected, footer, folded };
    }
    let [layers, selected] = Layout::vertical([Constraint::Percentage(50), Constraint::Fill(1)]).areas(left);
    Regions { header, layers, heatmap, selected, footer, folded }
}

/// Character count (what a terminal cell shows for these texts).
pub fn width(s: &str) -> usize {
    s.chars().count()
}

/// Shortens each name to at most `max` characters, keeping them distinct: leading dotted
/// components are abbreviated to their first letters (from the left, one at a time) until the
/// name fits; a name that still does not fit keeps its tail behind "…". Where two names would
/// come out the same, their abbreviations keep more letters.
pub fn abbreviate_names(names: &[&str], max: usize) -> Vec<String> {
    let mut letters = vec![1usize; names.len()];
    let mut out: Vec<String> = names.iter().zip(&letters).map(|(n, &l)| abbreviate(n, max, l)).collect();
    for _ in 0..8 {
        let mut clash = false;
        for i in 0..names.len() {
            let dup = (0..names.len()).any(|j| j != i && out[j] == out[i] && names[j] != names[i]);
            if dup {
                clash = true;
                letters[i] += 1;
            }
        }
        if !clash {
            break;
        }
        out = names.iter().zip(&letters).map(|(n, &l)| abbreviate(n, max, l)).collect();
    }
    out
}

/// One name shortened to `max` characters (see `abbreviate_names`); abbreviated components keep
/// `letters` letters.
pub fn abbreviate(name: &str, max: usize, letters: usize) -> String {
    if width(name) <= max {
        return name.to_string();
    }
    let mut parts: Vec<String> = name.split('.').map(str::to_string).collect();
    // Never abbreviate the last two components (`0.weight`): they tell layers apart.
    let keep = parts.len().saturating_sub(2);
    for i in 0..keep {
        let short: String = parts[i].chars().take(letters).collect();
        parts[i] = short;
        let joined = parts.join(".");
        if width(&joined) <= max {
            return joined;
        }
    }
    let joined = parts.join(".");
    tail(&joined, max)
}

/// The end of `text` in `max` characters, behind "…".
pub fn tail(text: &str, max: usize) -> String {
    let n = width(text);
    if n <= max {
        return text.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let keep: String = text.chars().skip(n - (max - 1)).collect();
    format!("…{keep}")
}

/// Whole words of `text` that fit in `max` characters, with "…" when words were dropped.
pub fn fit_words(text: &str, max: usize) -> String {
    if width(text) <= max {
        return text.to_string();
    }
    let mut out = String::new();
    for word in text.split(' ') {
        let extra = if out.is_empty() { 0 } else { 1 };
        if width(&out) + extra + width(word) + 1 > max {
            break;
        }
        if extra == 1 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.is_empty() {
        String::new()
    } else {
        out.push('…');
        out
    }
}

/// Joins the parts that fit in `max` characters, taking them in priority order (lower first)
/// and showing them in their given order. Part 0 is always kept (shortened by words if needed).
pub fn fit_parts(parts: &[(&str, u8)], sep: &str, max: usize) -> String {
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.sort_by_key(|&i| (parts[i].1, i));
    let mut chosen = vec![false; parts.len()];
    let mut used = 0usize;
    for &i in &order {
        if parts[i].0.is_empty() {
            continue;
        }
        let w = width(parts[i].0) + if used == 0 { 0 } else { width(sep) };
        if used + w <= max {
            chosen[i] = true;
            used += w;
        }
    }
    if !chosen.iter().any(|&c| c) && !parts.is_empty() {
        return fit_words(parts[0].0, max);
    }
    parts.iter().zip(&chosen).filter(|(_, &c)| c).map(|(p, _)| p.0).collect::<Vec<_>>().join(sep)
}

/// A table column: its header (a full word, and a shorter form used when the column is
/// narrower; never cut), the width of its widest value, and its priority (lower shows first).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub short: &'static str,
    pub content: usize,
    pub priority: u8,
    /// Shown only if the first column keeps at least this much (0: the caller's minimum).
    pub leaves: usize,
}

impl Column {
    pub fn new(header: &'static str, short: &'static str, content: usize, priority: u8) -> Column {
        Column { header, short, content, priority, leaves: 0 }
    }

    /// Shown only when the first column still gets `first` characters (e.g. only when the
    /// names fit whole).
    pub fn leaving(mut self, first: usize) -> Column {
        self.leaves = first;
        self
    }

    /// The narrowest this column may be: its content or its short header.
    fn min_width(&self) -> usize {
        self.content.max(width(self.short))
    }
}

/// Which columns fit in `total` characters (one space between columns), and their widths:
/// column 0 is the flexible one (names) and gets what is left, at least `min_first`; room
/// beyond its widest content (`cols[0].content`) widens the other columns to their full
/// headers. Returns (index, width, header) of the columns shown, in table order.
pub fn choose_columns(cols: &[Column], total: usize, min_first: usize) -> Vec<(usize, usize, &'static str)> {
    let mut order: Vec<usize> = (1..cols.len()).collect();
    order.sort_by_key(|&i| (cols[i].priority, i));
    let mut shown = vec![false; cols.len()];
    let mut used = 0usize;
    for &i in &order {
        let w = cols[i].min_width() + 1;
        if total.saturating_sub(used + w) >= min_first.max(cols[i].leaves) {
            shown[i] = true;
            used += w;
        }
    }
    let mut first = total.saturating_sub(used);
    let mut widths: Vec<usize> = cols.iter().map(Column::min_width).collect();
    for &i in order.iter().filter(|&&i| shown[i]) {
        let full = width(cols[i].header).max(cols[i].content);
        let extra = full - widths[i];
        if first.saturating_sub(extra) >= min_first.max(cols[0].content) {
            widths[i] = full;
            first -= extra;
        }
    }
    let mut out = Vec::new();
    for (i, c) in cols.iter().enumerate() {
        if i == 0 {
            let h = if width(c.header) <= first { c.header } else { c.short };
            out.push((0, first, h));
        } else if shown[i] {
            // The full header when it fits the column, else the short one.
            let h = if width(c.header) <= widths[i] { c.header } else { c.short };
            out.push((i, widths[i], h));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_distinguishing_tail() {
        let names = [
            "features_extractor.mlp.0.weight",
            "features_extractor.mlp.0.bias",
            "q_net.0.weight",
            "q_net.2.weight",
            "q_net.4.bias",
        ];
        let short = abbreviate_names(&names, 15);
        assert_eq!(short, ["f.mlp.0.weight", "f.mlp.0.bias", "q_net.0.weight", "q_net.2.weight", "q_net.4.bias"]);
        let tiny = abbreviate_names(&names, 10);
        assert!(tiny.iter().all(|s| width(s) <= 10), "{tiny:?}");
        let set: std::collections::HashSet<_> = tiny.iter().collect();
        assert_eq!(set.len(), names.len(), "{tiny:?}");
    }

    #[test]
    fn clashing_abbreviations_keep_more_letters() {
        let names = ["features.x.0.weight", "final.x.0.weight"];
        let short = abbreviate_names(&names, 14);
        assert_ne!(short[0], short[1], "{short:?}");
        assert!(short.iter().all(|s| width(s) <= 14), "{short:?}");
    }

    #[test]
    fn text_is_cut_at_words_and_parts() {
        assert_eq!(fit_words("NatureCNN, ReLU: [q_net: Linear 64->4]", 20), "NatureCNN, ReLU:…");
        assert_eq!(
            fit_parts(&[("name [64×64]", 0), ("max pool", 2), ("linear", 1)], " · ", 23),
            "name [64×64] · linear"
        );
        assert_eq!(tail("abcdef", 4), "…def");
    }

    #[test]
    fn columns_drop_by_priority_and_headers_are_never_cut() {
        let cols = [
            Column::new("parameter", "name", 20, 0),
            Column::new("shape", "shape", 6, 3),
            Column::new("mean", "mean", 7, 4),
            Column::new("max", "max", 7, 2),
            Column::new("selected", "sel", 3, 1),
        ];
        let wide = choose_columns(&cols, 60, 14);
        assert_eq!(wide.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let narrow = choose_columns(&cols, 34, 14);
        assert_eq!(narrow.iter().map(|c| c.0).collect::<Vec<_>>(), [0, 1, 3, 4]);
        for (i, w, h) in narrow {
            assert!(width(h) <= w, "column {i}: header {h} in {w}");
        }
    }

    #[test]
    fn narrow_screens_fold_the_lists() {
        let wide = regions(Rect::new(0, 0, 200, 60), false);
        assert!(!wide.folded && wide.layers.width > 0 && wide.selected.width > 0);
        assert_eq!(wide.layers.y, wide.selected.y);
        let mid = regions(Rect::new(0, 0, 80, 24), false);
        assert!(!mid.folded);
        assert_eq!(mid.layers.x, mid.selected.x);
        let narrow = regions(Rect::new(0, 0, 60, 16), true);
        assert!(narrow.folded && narrow.layers.width == 0 && narrow.selected.width > 0);
    }
}
