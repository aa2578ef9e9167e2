//! Keys and screens for the explorer's tests (ratatui's TestBackend).

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

/// A character key as a terminal sends it (shifted for capitals and shifted symbols).
pub fn key(c: char) -> KeyEvent {
    let mods = if c.is_ascii_uppercase() || "?{}<>+".contains(c) { KeyModifiers::SHIFT } else { KeyModifiers::NONE };
    KeyEvent::new(KeyCode::Char(c), mods)
}

/// A script of keys: characters, or names in angle brackets: <tab> <enter> <esc> <down> <up>
/// <left> <right> <bs> <space> <end> <pgdn>.
pub fn events(script: &str) -> Vec<Event> {
    let mut out = Vec::new();
    let mut chars = script.chars().peekable();
    while let Some(c) = chars.next() {
        let ev = if c == '<' && chars.peek().is_some_and(|n| n.is_ascii_lowercase()) {
            let name: String = chars.by_ref().take_while(|&x| x != '>').collect();
            let code = match name.as_str() {
                "tab" => KeyCode::Tab,
                "enter" => KeyCode::Enter,
                "esc" => KeyCode::Esc,
                "down" => KeyCode::Down,
                "up" => KeyCode::Up,
                "left" => KeyCode::Left,
                "right" => KeyCode::Right,
                "bs" => KeyCode::Backspace,
                "space" => KeyCode::Char(' '),
                "end" => KeyCode::End,
                "pgdn" => KeyCode::PageDown,
                other => panic!("unknown key <{other}>"),
            };
            KeyEvent::new(code, KeyModifiers::NONE)
        } else {
            key(c)
        };
        out.push(Event::Key(ev));
    }
    out
}

/// The screen's text, one line per row.
pub fn screen_text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            out.push_str(buf[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}
