//! The chrome's styles, shared by the single-agent and the sweep views: ANSI named colours
//! (the user's palette applies); with NO_COLOR only modifiers.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Borders};

/// Styles that respect NO_COLOR.
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default().add_modifier(Modifier::DIM)
        }
    }
    pub fn error(&self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn border(&self, focused: bool) -> Style {
        if focused {
            self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
        } else {
            self.dim()
        }
    }
    pub fn guaranteed(&self) -> Style {
        self.fg(Color::LightRed)
    }
    pub fn additional(&self) -> Style {
        self.fg(Color::LightCyan)
    }
}

pub fn block<'a>(title: impl Into<Line<'a>>, focused: bool, theme: &Theme) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_type(if focused { BorderType::Thick } else { BorderType::Plain })
        .border_style(theme.border(focused))
        .title(title)
}

pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h }
}

/// Footer hints ("q quit  ? help ..."), whole, in keymap order, while they fit in `room` cells
/// after `used`.
pub fn hint_spans<'a>(hints: &[(&str, &str)], used: usize, room: usize, theme: &Theme) -> Vec<Span<'a>> {
    let mut spans = Vec::new();
    let mut used = used;
    for (key, hint) in hints {
        let hint = format!(" {hint} ");
        let w = 1 + key.chars().count() + hint.chars().count();
        if used + w > room {
            break;
        }
        used += w;
        spans.push(Span::styled(format!(" {key}"), theme.accent()));
        spans.push(Span::raw(hint));
    }
    spans
}
