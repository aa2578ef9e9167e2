//! The one keymap: every key maps to a named `Action` here, and the footer hints and the help
//! screen are generated from this table, so they cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    /// Esc: close the top popup, else cancel a running pipeline.
    Back,
    CancelRun,
    Restart,
    ToggleHelp,
    FocusNext,
    FocusPrev,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    KUp,
    KDown,
    KUpBig,
    KDownBig,
    MUp,
    MDown,
    MUpBig,
    MDownBig,
    TypeK,
    TypeM,
    ZoomIn,
    ZoomOut,
    ZoomReset,
    TogglePooling,
    CycleScale,
    ToggleRange,
    CycleColormap,
    CycleSort,
    NextCandidate,
    PrevCandidate,
    Open,
    ToggleKernel,
    Export,
    /// Export, plus the full ablation of the selection (ablation.json).
    Ablate,
    /// Show the next measure.
    CycleMeasure,
    /// Differentiate the next target (re-runs).
    CycleTarget,
    /// The input saliency view.
    InputView,
    /// Validate the measures against the damage (again: the scatter of the measure shown).
    Validate,
    /// A digit, Backspace or Enter inside a number prompt.
    Digit(u8),
    Backspace,
    Confirm,
}

/// Where a binding applies: everywhere in its table (`Global`), in one view, or inside a
/// prompt (whose bindings replace the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Global,
    Heatmap,
    Prompt,
    /// The sweep's views.
    Agents,
    Groups,
    Training,
    Compare,
    /// Typing a filter.
    Filter,
}

impl Scope {
    /// Whether the scope's bindings replace all others (a prompt takes text).
    pub fn is_prompt(self) -> bool {
        matches!(self, Scope::Prompt | Scope::Filter)
    }

    /// How the help names where a binding applies.
    pub fn note(self) -> &'static str {
        match self {
            Scope::Global => "",
            Scope::Heatmap => " (heatmap)",
            Scope::Prompt => " (in a number prompt)",
            Scope::Agents => " (agents)",
            Scope::Groups => " (groups)",
            Scope::Training => " (training)",
            Scope::Compare => " (compare)",
            Scope::Filter => " (typing a filter)",
        }
    }
}

pub struct Binding<A: 'static = Action> {
    pub keys: &'static [(KeyCode, KeyModifiers)],
    /// How the keys are shown ("+ -", "Tab").
    pub label: &'static str,
    pub action: A,
    pub scope: Scope,
    pub help: &'static str,
    /// Short text for the footer, for the bindings worth a hint.
    pub hint: Option<&'static str>,
}

/// The binding of a key among those of `scopes` (a prompt's scope alone inside a prompt).
pub fn find<A: Copy>(table: &'static [Binding<A>], key: KeyEvent, scopes: &[Scope]) -> Option<&'static Binding<A>> {
    let mods = key.modifiers & (KeyModifiers::SHIFT | KeyModifiers::CONTROL | KeyModifiers::ALT);
    table
        .iter()
        .filter(|b| scopes.contains(&b.scope))
        .find(|b| b.keys.iter().any(|&(code, m)| code == key.code && m == mods))
}

/// Footer hints of a table's bindings in `scopes`: "q quit  ? help  ...".
pub fn hints_of<A>(table: &'static [Binding<A>], scopes: &[Scope]) -> Vec<(&'static str, &'static str)> {
    table
        .iter()
        .filter(|b| scopes.contains(&b.scope))
        .filter_map(|b| b.hint.map(|h| (b.label.split(' ').next().unwrap_or(b.label), h)))
        .collect()
}

const NONE: KeyModifiers = KeyModifiers::NONE;
const SHIFT: KeyModifiers = KeyModifiers::SHIFT;
const CTRL: KeyModifiers = KeyModifiers::CONTROL;

macro_rules! b {
    ($keys:expr, $label:expr, $action:expr, $scope:expr, $help:expr, $hint:expr) => {
        Binding { keys: $keys, label: $label, action: $action, scope: $scope, help: $help, hint: $hint }
    };
}

use KeyCode::Char as C;

pub static KEYMAP: &[Binding] = &[
    b!(&[(C('q'), NONE), (C('c'), CTRL)], "q Ctrl-C", Action::Quit, Scope::Global, "quit", Some("quit")),
    b!(
        &[(C('?'), NONE), (C('?'), SHIFT), (KeyCode::F(1), NONE)],
        "?",
        Action::ToggleHelp,
        Scope::Global,
        "toggle this help",
        Some("help")
    ),
    b!(&[(KeyCode::Esc, NONE)], "Esc", Action::Back, Scope::Global, "close the popup; cancel a running pipeline", None),
    b!(&[(C('c'), NONE)], "c", Action::CancelRun, Scope::Global, "cancel the running pipeline", None),
    b!(&[(C('R'), SHIFT), (C('R'), NONE)], "R", Action::Restart, Scope::Global, "run the pipeline again", None),
    b!(
        &[(KeyCode::Tab, NONE)],
        "Tab",
        Action::FocusNext,
        Scope::Global,
        "next pane (layers, heatmap, targets)",
        Some("pane")
    ),
    b!(
        &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        "S-Tab",
        Action::FocusPrev,
        Scope::Global,
        "previous pane",
        None
    ),
    b!(&[(KeyCode::Up, NONE), (C('k'), NONE)], "↑ k", Action::Up, Scope::Global, "move up", None),
    b!(&[(KeyCode::Down, NONE), (C('j'), NONE)], "↓ j", Action::Down, Scope::Global, "move down", None),
    b!(&[(KeyCode::Left, NONE), (C('h'), NONE)], "← h", Action::Left, Scope::Global, "move left (heatmap)", None),
    b!(&[(KeyCode::Right, NONE), (C('l'), NONE)], "→ l", Action::Right, Scope::Global, "move right (heatmap)", None),
    b!(&[(KeyCode::PageUp, NONE)], "PgUp", Action::PageUp, Scope::Global, "move up a page", None),
    b!(&[(KeyCode::PageDown, NONE)], "PgDn", Action::PageDown, Scope::Global, "move down a page", None),
    b!(&[(C('g'), NONE), (KeyCode::Home, NONE)], "g", Action::Top, Scope::Global, "go to the top", None),
    b!(
        &[(C('G'), SHIFT), (C('G'), NONE), (KeyCode::End, NONE)],
        "G",
        Action::Bottom,
        Scope::Global,
        "go to the bottom",
        None
    ),
    b!(
        &[(C('+'), NONE), (C('+'), SHIFT), (C('='), NONE), (C('.'), NONE)],
        "+ .",
        Action::KUp,
        Scope::Global,
        "k + 1 (top weights per neuron)",
        Some("k±")
    ),
    b!(&[(C('-'), NONE), (C(','), NONE)], "- ,", Action::KDown, Scope::Global, "k - 1", None),
    b!(&[(C('>'), SHIFT), (C('>'), NONE)], ">", Action::KUpBig, Scope::Global, "k + 10", None),
    b!(&[(C('<'), SHIFT), (C('<'), NONE)], "<", Action::KDownBig, Scope::Global, "k - 10", None),
    b!(&[(C(']'), NONE)], "]", Action::MUp, Scope::Global, "m + 1 (additional weights)", Some("m±")),
    b!(&[(C('['), NONE)], "[", Action::MDown, Scope::Global, "m - 1", None),
    b!(&[(C('}'), SHIFT), (C('}'), NONE)], "}", Action::MUpBig, Scope::Global, "m + 10", None),
    b!(&[(C('{'), SHIFT), (C('{'), NONE)], "{", Action::MDownBig, Scope::Global, "m - 10", None),
    b!(&[(C('K'), SHIFT), (C('K'), NONE)], "K", Action::TypeK, Scope::Global, "type a value for k", Some("type k")),
    b!(&[(C('M'), SHIFT), (C('M'), NONE)], "M", Action::TypeM, Scope::Global, "type a value for m", Some("type m")),
    b!(&[(C('z'), NONE)], "z", Action::ZoomIn, Scope::Heatmap, "zoom in (around the cursor)", Some("zoom")),
    b!(&[(C('Z'), SHIFT), (C('Z'), NONE)], "Z", Action::ZoomOut, Scope::Heatmap, "zoom out", None),
    b!(&[(C('0'), NONE)], "0", Action::ZoomReset, Scope::Heatmap, "fit the whole layer", None),
    b!(&[(C('p'), NONE)], "p", Action::TogglePooling, Scope::Global, "pooling: max / mean", None),
    b!(&[(C('s'), NONE)], "s", Action::CycleScale, Scope::Global, "scale: linear / log / rank", Some("scale")),
    b!(&[(C('r'), NONE)], "r", Action::ToggleRange, Scope::Global, "colour range: this layer / all layers", None),
    b!(
        &[(C('C'), SHIFT), (C('C'), NONE)],
        "C",
        Action::CycleColormap,
        Scope::Global,
        "colormap: viridis / magma / inferno / cividis",
        None
    ),
    b!(
        &[(C('o'), NONE)],
        "o",
        Action::CycleSort,
        Scope::Global,
        "sort layers: file order / mean / max / size / selected",
        None
    ),
    b!(&[(C('n'), NONE)], "n", Action::NextCandidate, Scope::Heatmap, "next candidate neuron", None),
    b!(
        &[(C('N'), SHIFT), (C('N'), NONE)],
        "N",
        Action::PrevCandidate,
        Scope::Heatmap,
        "previous candidate neuron",
        None
    ),
    b!(
        &[(KeyCode::Enter, NONE)],
        "Enter",
        Action::Open,
        Scope::Global,
        "open: layer -> heatmap, cell or target -> neuron details",
        Some("neuron")
    ),
    b!(
        &[(C('x'), NONE)],
        "x",
        Action::ToggleKernel,
        Scope::Heatmap,
        "conv layers: show the kernel under the cursor",
        None
    ),
    b!(&[(C('e'), NONE)], "e", Action::Export, Scope::Global, "export candidate_weights.json", Some("export")),
    b!(
        &[(C('A'), SHIFT), (C('A'), NONE)],
        "A",
        Action::Ablate,
        Scope::Global,
        "ablate on every input vs 20 random draws; export with ablation.json",
        Some("ablate")
    ),
    b!(
        &[(C('v'), NONE)],
        "v",
        Action::CycleMeasure,
        Scope::Global,
        "next measure: mean-abs, mean, mean-sq, ..., fisher, variance, snr (docs/measures.md)",
        Some("measure")
    ),
    b!(
        &[(C('t'), NONE)],
        "t",
        Action::CycleTarget,
        Scope::Global,
        "target: q / margin / logsoftmax / action:N (runs again)",
        None
    ),
    b!(
        &[(C('i'), NONE)],
        "i",
        Action::InputView,
        Scope::Global,
        "input saliency view (left/right: inputs)",
        Some("inputs")
    ),
    b!(
        &[(C('V'), SHIFT), (C('V'), NONE)],
        "V",
        Action::Validate,
        Scope::Global,
        "validate: which measure predicts the damage (again: measure against damage)",
        Some("validate")
    ),
    // In a number prompt (k or m): these replace the keys above. The digit binding carries the
    // digit pressed (see `lookup`).
    b!(
        &[
            (C('0'), NONE),
            (C('1'), NONE),
            (C('2'), NONE),
            (C('3'), NONE),
            (C('4'), NONE),
            (C('5'), NONE),
            (C('6'), NONE),
            (C('7'), NONE),
            (C('8'), NONE),
            (C('9'), NONE)
        ],
        "0-9",
        Action::Digit(0),
        Scope::Prompt,
        "type the number",
        None
    ),
    b!(&[(KeyCode::Backspace, NONE)], "Backspace", Action::Backspace, Scope::Prompt, "delete the last digit", None),
    b!(&[(KeyCode::Enter, NONE)], "Enter", Action::Confirm, Scope::Prompt, "set the value", None),
    b!(&[(KeyCode::Esc, NONE)], "Esc", Action::Back, Scope::Prompt, "cancel the prompt", None),
    b!(&[(C('c'), CTRL)], "Ctrl-C", Action::Quit, Scope::Prompt, "quit", None),
];

/// The action for a key: from the prompt's bindings inside a number prompt, else from the
/// others.
pub fn lookup(key: KeyEvent, in_prompt: bool) -> Option<Action> {
    let scopes: &[Scope] = if in_prompt { &[Scope::Prompt] } else { &[Scope::Global, Scope::Heatmap] };
    let binding = find(KEYMAP, key, scopes)?;
    match (binding.action, key.code) {
        (Action::Digit(_), KeyCode::Char(c)) => c.to_digit(10).map(|d| Action::Digit(d as u8)),
        (action, _) => Some(action),
    }
}

/// Footer hints: "q quit  ? help  ...".
pub fn hints() -> Vec<(&'static str, &'static str)> {
    hints_of(KEYMAP, &[Scope::Global, Scope::Heatmap])
}

/// What a key does in the sweep's views.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SweepAction {
    Quit,
    ToggleHelp,
    /// Esc: close the help, the compare view or the filter prompt; clear the filter.
    Back,
    NextView,
    PrevView,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Filter,
    Sort,
    SortReverse,
    Mark,
    Unmark,
    Open,
    Compare,
    Pin,
    DiffOnly,
    ThresholdUp,
    ThresholdDown,
    /// Compare: signed difference or log ratio.
    SwitchScale,
    /// Typing a filter: a character, Backspace, Enter.
    Char(char),
    Backspace,
    Confirm,
    /// A left click in the agents table: on a row (an index into the visible rows) or on the
    /// header (None), in a column (an index into the table's columns); `double` when it is the
    /// second of a double click on that row (which opens the agent, as Enter does).
    Click {
        row: Option<usize>,
        col: usize,
        double: bool,
    },
}

pub static SWEEP_KEYMAP: &[Binding<SweepAction>] = &[
    b!(&[(C('q'), NONE), (C('c'), CTRL)], "q Ctrl-C", SweepAction::Quit, Scope::Global, "quit", Some("quit")),
    b!(
        &[(C('?'), NONE), (C('?'), SHIFT), (KeyCode::F(1), NONE)],
        "?",
        SweepAction::ToggleHelp,
        Scope::Global,
        "toggle this help",
        Some("help")
    ),
    b!(
        &[(KeyCode::Esc, NONE)],
        "Esc",
        SweepAction::Back,
        Scope::Global,
        "back: close the help or the comparison; clear the filter",
        None
    ),
    b!(
        &[(KeyCode::Tab, NONE)],
        "Tab",
        SweepAction::NextView,
        Scope::Global,
        "next view: agents, groups, training",
        Some("view")
    ),
    b!(
        &[(KeyCode::BackTab, SHIFT), (KeyCode::BackTab, NONE)],
        "S-Tab",
        SweepAction::PrevView,
        Scope::Global,
        "previous view",
        None
    ),
    b!(&[(KeyCode::Up, NONE), (C('k'), NONE)], "↑ k", SweepAction::Up, Scope::Global, "move up", None),
    b!(&[(KeyCode::Down, NONE), (C('j'), NONE)], "↓ j", SweepAction::Down, Scope::Global, "move down", None),
    b!(&[(KeyCode::Left, NONE), (C('h'), NONE)], "← h", SweepAction::Left, Scope::Global, "column or layer left", None),
    b!(
        &[(KeyCode::Right, NONE), (C('l'), NONE)],
        "→ l",
        SweepAction::Right,
        Scope::Global,
        "column or layer right",
        None
    ),
    b!(&[(KeyCode::PageUp, NONE)], "PgUp", SweepAction::PageUp, Scope::Global, "up a page", None),
    b!(&[(KeyCode::PageDown, NONE)], "PgDn", SweepAction::PageDown, Scope::Global, "down a page", None),
    b!(&[(C('g'), NONE), (KeyCode::Home, NONE)], "g", SweepAction::Top, Scope::Global, "go to the top", None),
    b!(
        &[(C('G'), SHIFT), (C('G'), NONE), (KeyCode::End, NONE)],
        "G",
        SweepAction::Bottom,
        Scope::Global,
        "go to the bottom",
        None
    ),
    b!(
        &[(C('/'), NONE)],
        "/",
        SweepAction::Filter,
        Scope::Agents,
        "filter rows: a regular expression, any case (!REGEX: the rows that do not match)",
        Some("filter")
    ),
    b!(&[(C('o'), NONE)], "o", SweepAction::Sort, Scope::Agents, "sort by the column under the cursor", Some("sort")),
    b!(&[(C('O'), SHIFT), (C('O'), NONE)], "O", SweepAction::SortReverse, Scope::Agents, "sort, reversed", None),
    b!(&[(C(' '), NONE)], "space", SweepAction::Mark, Scope::Agents, "mark the row (two marks: compare)", Some("mark")),
    b!(&[(C('u'), NONE)], "u", SweepAction::Unmark, Scope::Agents, "clear the marks", None),
    b!(
        &[(KeyCode::Enter, NONE)],
        "Enter",
        SweepAction::Open,
        Scope::Agents,
        "open the agent in the single-agent explorer (Esc comes back)",
        Some("open")
    ),
    b!(
        &[(C('C'), SHIFT), (C('C'), NONE)],
        "C",
        SweepAction::Compare,
        Scope::Agents,
        "compare the two marked agents (or the marked one and the cursor's)",
        Some("compare")
    ),
    b!(
        &[(C('p'), NONE)],
        "p",
        SweepAction::Pin,
        Scope::Agents,
        "pin the row as the baseline: layers shown as differences from it (again: unpin)",
        Some("pin")
    ),
    b!(
        &[(C('d'), NONE)],
        "d",
        SweepAction::DiffOnly,
        Scope::Agents,
        "only the layers whose share differs by more than the threshold",
        None
    ),
    b!(
        &[(C('+'), NONE), (C('+'), SHIFT), (C('='), NONE)],
        "+",
        SweepAction::ThresholdUp,
        Scope::Agents,
        "threshold x 2",
        None
    ),
    b!(&[(C('-'), NONE)], "-", SweepAction::ThresholdDown, Scope::Agents, "threshold / 2", None),
    b!(
        &[(C('s'), NONE)],
        "s",
        SweepAction::SwitchScale,
        Scope::Compare,
        "difference A - B, or log10 ratio A / B",
        Some("scale")
    ),
    b!(&[(KeyCode::Enter, NONE)], "Enter", SweepAction::Confirm, Scope::Filter, "apply the filter", None),
    b!(&[(KeyCode::Esc, NONE)], "Esc", SweepAction::Back, Scope::Filter, "cancel", None),
    b!(&[(KeyCode::Backspace, NONE)], "Backspace", SweepAction::Backspace, Scope::Filter, "delete a character", None),
    b!(&[(C('c'), CTRL)], "Ctrl-C", SweepAction::Quit, Scope::Filter, "quit", None),
];

/// The sweep's action for a key in a view (`Scope::Agents`, ...), or typing a filter.
pub fn lookup_sweep(key: KeyEvent, view: Scope) -> Option<SweepAction> {
    if view == Scope::Filter {
        if let Some(b) = find(SWEEP_KEYMAP, key, &[Scope::Filter]) {
            return Some(b.action);
        }
        return match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => Some(SweepAction::Char(c)),
            _ => None,
        };
    }
    find(SWEEP_KEYMAP, key, &[Scope::Global, view]).map(|b| b.action)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Within what applies at once (a table's global bindings and one view's, or a prompt's),
    /// no key is bound twice.
    fn unique<A>(table: &[Binding<A>], scopes: &[Scope]) {
        let mut seen = std::collections::HashSet::new();
        for b in table.iter().filter(|b| scopes.contains(&b.scope)) {
            for k in b.keys {
                assert!(seen.insert(*k), "{:?} bound twice in {scopes:?}", k);
            }
        }
    }

    #[test]
    fn no_key_is_bound_twice() {
        unique(KEYMAP, &[Scope::Global, Scope::Heatmap]);
        unique(KEYMAP, &[Scope::Prompt]);
        for view in [Scope::Agents, Scope::Groups, Scope::Training, Scope::Compare] {
            unique(SWEEP_KEYMAP, &[Scope::Global, view]);
        }
        unique(SWEEP_KEYMAP, &[Scope::Filter]);
    }

    #[test]
    fn sweep_lookups() {
        let key = |c, m| KeyEvent::new(KeyCode::Char(c), m);
        assert_eq!(lookup_sweep(key('o', NONE), Scope::Agents), Some(SweepAction::Sort));
        assert_eq!(lookup_sweep(key('O', SHIFT), Scope::Agents), Some(SweepAction::SortReverse));
        // per view: `s` only in the comparison, `o` only in the table
        assert_eq!(lookup_sweep(key('s', NONE), Scope::Compare), Some(SweepAction::SwitchScale));
        assert_eq!(lookup_sweep(key('o', NONE), Scope::Compare), None);
        // typing a filter: letters are text, q included
        assert_eq!(lookup_sweep(key('q', NONE), Scope::Filter), Some(SweepAction::Char('q')));
        assert_eq!(lookup_sweep(KeyEvent::new(KeyCode::Enter, NONE), Scope::Filter), Some(SweepAction::Confirm));
        assert_eq!(lookup_sweep(key('c', CTRL), Scope::Filter), Some(SweepAction::Quit));
    }

    #[test]
    fn lookups() {
        let key = |c, m| KeyEvent::new(KeyCode::Char(c), m);
        assert_eq!(lookup(key('q', NONE), false), Some(Action::Quit));
        assert_eq!(lookup(key('c', CTRL), false), Some(Action::Quit));
        assert_eq!(lookup(key('}', SHIFT), false), Some(Action::MUpBig));
        assert_eq!(lookup(key('j', NONE), false), Some(Action::Down));
        assert_eq!(lookup(key('y', NONE), false), None);
        // In a prompt, digits are digits (not zoom reset) and q is not quit.
        assert_eq!(lookup(key('0', NONE), false), Some(Action::ZoomReset));
        assert_eq!(lookup(key('7', NONE), true), Some(Action::Digit(7)));
        assert_eq!(lookup(key('q', NONE), true), None);
        assert_eq!(lookup(KeyEvent::new(KeyCode::Enter, NONE), true), Some(Action::Confirm));
    }
}
