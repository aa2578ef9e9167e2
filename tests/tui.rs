//! The explorer against ratatui's TestBackend: scripted keys, screen text, cell colours,
//! snapshots at two sizes, and export bytes equal to the headless commands'.

mod common;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use clap::Parser;
use common::*;
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::Terminal;
use saliency::cli::Cli;
use saliency::tui::app::{App, Effect, Focus, Popup};
use saliency::tui::color::{self, ColorMode};
use saliency::tui::{keymap, plan, run_to_end, view};

fn explore_args(extra: &[&str]) -> saliency::cli::ExploreArgs {
    let mut argv = vec!["saliency".to_string()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(argv).explore
}

/// The demo's Python-made averages opened as files (no model run).
fn demo_from_files(extra: &[&str]) -> App {
    let avg = reference_dir("demo").join("average_gradients.json");
    let cross = fixture("demo").join("patching_results/cross_metric_summary.json");
    let useful = fixture("demo").join("useful_neurons.json");
    let mut args = vec![
        "--average-gradients".to_string(),
        avg.display().to_string(),
        "--cross-metric".to_string(),
        cross.display().to_string(),
        "--useful-neurons".to_string(),
        useful.display().to_string(),
    ];
    if !extra.contains(&"--color") {
        args.extend(["--color".to_string(), "truecolor".to_string()]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    run_to_end(plan(&explore_args(&refs)).unwrap(), Duration::from_secs(60)).unwrap()
}

fn key(c: char) -> KeyEvent {
    let mods = if c.is_ascii_uppercase() || "?{}<>+".contains(c) { KeyModifiers::SHIFT } else { KeyModifiers::NONE };
    KeyEvent::new(KeyCode::Char(c), mods)
}

/// Types keys: plain characters, or names in angle brackets: <tab> <enter> <esc> <down> <up>.
/// Effects run as the event loop runs them (an export is written before this returns); they
/// are returned.
fn press(app: &mut App, script: &str) -> Vec<Effect> {
    let mut effects = Vec::new();
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
                other => panic!("unknown key <{other}>"),
            };
            KeyEvent::new(code, KeyModifiers::NONE)
        } else {
            key(c)
        };
        let prompt = matches!(app.popup, Some(Popup::Prompt { .. }));
        if let Some(a) = keymap::lookup(ev, prompt) {
            for effect in app.update(a) {
                effects.push(effect.clone());
                saliency::tui::run_effect_blocking(app, effect, None);
            }
        }
    }
    effects
}

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    app.prepare(Rect::new(0, 0, w, h));
    t.draw(|f| view::draw(app, f)).unwrap();
    t
}

fn screen_text(t: &Terminal<TestBackend>) -> String {
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

#[test]
fn opens_on_the_first_candidate_layer_with_the_selection() {
    let mut app = demo_from_files(&[]);
    let t = render(&mut app, 200, 60);
    let s = screen_text(&t);
    assert!(s.contains("q_net.2.weight [64×64]"), "{s}");
    assert!(s.contains("Targets 24 · k=2 m=4"), "{s}");
    assert!(s.contains("20 guaranteed + 4 additional"), "{s}");
    assert!(s.contains("features_extractor.mlp.0.weight"), "{s}");
    // Footer hints come from the keymap.
    for (k, hint) in keymap::hints() {
        assert!(s.contains(&format!("{k} {hint}")), "footer lacks {k} {hint}");
    }
}

#[test]
fn k_and_m_change_the_selection_on_the_same_frame() {
    let mut app = demo_from_files(&[]);
    let candidates = app.resolved.candidates.len();
    press(&mut app, "+");
    assert_eq!(app.k, 3);
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains(&format!("Targets {} · k=3 m=4", 3 * candidates + 4)), "{s}");
    press(&mut app, "]]}");
    assert_eq!(app.m, 16);
    press(&mut app, "K12<enter>M0<enter>");
    assert_eq!((app.k, app.m), (12, 0));
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains(&format!("Targets {} · k=12 m=0", 12 * candidates)), "{s}");
    press(&mut app, "<-");
    assert_eq!(app.k, 1);
    press(&mut app, "K<esc>");
    assert_eq!(app.k, 1);
    assert!(app.popup.is_none());
}

#[test]
fn overlay_colours_mark_guaranteed_and_additional_weights() {
    let mut app = demo_from_files(&[]);
    let t = render(&mut app, 200, 60);
    let buf = t.backend().buffer();
    let hm = app.layout.regions.heatmap;
    let marks = app.cache.marks.clone();
    assert!(marks.iter().any(|m| m.2 == saliency::tui::heatmap::Mark::Guaranteed));
    for (py, px, mark) in marks {
        let cell = &buf[(hm.x + 2 + px as u16, hm.y + 1 + (py / 2) as u16)];
        if app.cache.cursor_px == Some((py, px)) {
            continue;
        }
        let want = match mark {
            saliency::tui::heatmap::Mark::Guaranteed => color::GUARANTEED_RGB,
            saliency::tui::heatmap::Mark::Additional => color::ADDITIONAL_RGB,
        };
        let got = if py % 2 == 0 { cell.fg } else { cell.bg };
        assert_eq!(got, Color::Rgb(want[0], want[1], want[2]), "pixel {py},{px}");
    }
    // An unmarked pixel has a viridis colour.
    let cell = &buf[(hm.x + 2, hm.y + 20)];
    let Color::Rgb(r, g, b) = cell.fg else { panic!("{:?}", cell.fg) };
    assert!(saliency::tui::colormaps::VIRIDIS.contains(&[r, g, b]));
}

#[test]
fn no_color_uses_a_glyph_ramp_and_256_colour_terminals_get_indexed_colours() {
    let mut app = demo_from_files(&["--color", "none"]);
    let t = render(&mut app, 160, 50);
    let buf = t.backend().buffer();
    for y in 0..50 {
        for x in 0..160 {
            let c = &buf[(x, y)];
            assert!(matches!(c.fg, Color::Reset) && matches!(c.bg, Color::Reset), "colour at {x},{y}");
        }
    }
    let s = screen_text(&t);
    assert!(s.contains('●') && (s.contains('░') || s.contains('▒') || s.contains('▓')), "{s}");
    let mut app = demo_from_files(&["--color", "256"]);
    app.color_mode = ColorMode::Ansi256;
    let t = render(&mut app, 160, 50);
    let hm = app.layout.regions.heatmap;
    assert!(matches!(t.backend().buffer()[(hm.x + 2, hm.y + 3)].fg, Color::Indexed(_)));
}

#[test]
fn navigation_drill_down_help_and_small_terminals() {
    let mut app = demo_from_files(&[]);
    press(&mut app, "g"); // first layer (layers pane has focus)
    assert_eq!(app.current_param(), Some(0));
    press(&mut app, "j");
    assert_eq!(app.current_param(), Some(1));
    press(&mut app, "k<tab>");
    assert_eq!(app.focus, Focus::Heatmap);
    press(&mut app, "n");
    let row = app.hm.cursor.0;
    assert!(app.resolved.candidates.iter().any(|c| c.param == 0 && c.neuron == row));
    press(&mut app, "<enter>");
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains(&format!("neuron {row} of features_extractor.mlp.0.weight")), "{s}");
    assert!(s.contains("candidate exp_"), "{s}");
    assert!(s.contains("top1"), "{s}");
    press(&mut app, "<esc>?");
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("Keys (one keymap"), "{s}");
    for b in keymap::KEYMAP {
        assert!(s.contains(b.help), "help lacks {}", b.help);
    }
    press(&mut app, "?<tab>");
    assert_eq!(app.focus, Focus::Targets);
    press(&mut app, "<down><enter>");
    assert!(matches!(app.popup, Some(Popup::Neuron { .. })));
    let s = screen_text(&render(&mut app, 50, 12));
    assert!(s.contains("Terminal too small"), "{s}");
    assert!(matches!(press(&mut app, "q")[..], [Effect::Quit]));
}

#[test]
fn zoom_pooling_scale_and_range_keys() {
    let mut app = demo_from_files(&[]);
    press(&mut app, "<tab>zz");
    assert_eq!(app.hm.zoom, 4);
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("zoom 4×"), "{s}");
    assert_eq!(app.cache.view.rows, 16);
    press(&mut app, "Z0psrC");
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("mean pool · log · global range · magma · zoom 1×"), "{s}");
    press(&mut app, "s");
    render(&mut app, 200, 60);
    assert!(app.cache.scaler.as_ref().unwrap().sorted.is_some(), "rank scale needs sorted values");
}

/// The text of a screen rectangle's rows (inside its border).
fn pane_rows(t: &Terminal<TestBackend>, r: Rect) -> Vec<String> {
    let buf = t.backend().buffer();
    (r.y + 1..r.bottom().saturating_sub(1))
        .map(|y| (r.x + 1..r.right().saturating_sub(1)).map(|x| buf[(x, y)].symbol()).collect::<String>())
        .collect()
}

/// First cell of each row: the name column.
fn first_cells(rows: &[String]) -> Vec<String> {
    rows.iter().map(|r| r.split("  ").next().unwrap_or("").trim().to_string()).collect()
}

#[test]
fn common_terminal_sizes_show_distinct_names_and_whole_headers() {
    for (w, h) in [(80, 24), (100, 30), (60, 16)] {
        let mut app = demo_from_files(&[]);
        let n_params = app.averages.as_ref().unwrap().params.len();
        // Layers list: every visible row's name is different, and names keep their tails.
        press(&mut app, "g");
        let mut seen = Vec::new();
        for _ in 0..n_params {
            let t = render(&mut app, w, h);
            let rows = pane_rows(&t, app.layout.regions.layers);
            let header = rows[0].clone();
            let headers: Vec<&str> = header.split_whitespace().collect();
            for word in &headers {
                assert!(
                    ["parameter", "name", "shape", "mean", "max", "selected", "sel"].contains(word),
                    "{w}x{h}: a layer column header was cut: {header:?}"
                );
            }
            let names = first_cells(&rows[1..]);
            let row = app.layout.layer_rows.iter().position(|&(_, i)| i == app.layer_cursor).unwrap();
            let name = names[row].trim_start_matches("· ").to_string();
            let full = &app.averages.as_ref().unwrap().params[app.layer_order[app.layer_cursor]].name;
            assert!(!name.contains('…'), "{w}x{h}: {name} lost its head and tail");
            let tail: Vec<&str> = full.rsplitn(3, '.').collect();
            assert!(name.ends_with(&format!("{}.{}", tail[1], tail[0])), "{w}x{h}: {name} for {full}");
            seen.push(name);
            press(&mut app, "j");
        }
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), n_params, "{w}x{h}: names not distinct: {seen:?}");
        if (w, h) == (80, 24) {
            assert!(
                seen.contains(&"f.mlp.0.weight".to_string()) && seen.contains(&"q_net.2.weight".to_string()),
                "{seen:?}"
            );
        }
        // Targets list: whole headers, distinct layer names for distinct layers.
        press(&mut app, "<tab><tab>");
        let t = render(&mut app, w, h);
        let rows = pane_rows(&t, app.layout.regions.targets);
        for word in rows[0].split_whitespace() {
            assert!(
                ["layer", "#", "neuron", "n", "weight", "w", "|grad|", "|g|", "pick"].contains(&word),
                "{w}x{h}: a target column header was cut: {:?}",
                rows[0]
            );
        }
        let sel = &app.selection;
        let mut by_layer = std::collections::HashMap::new();
        for (k, &(_, i)) in app.layout.target_rows.iter().enumerate() {
            let p = app.resolved.candidates[sel.targets[i].candidate].param;
            let name = first_cells(&rows[1..])[k].clone();
            let prev = by_layer.insert(name.clone(), p);
            assert!(prev.is_none() || prev == Some(p), "{w}x{h}: two layers shown as {name}");
        }
        // Block titles and the status line are never cut mid-word.
        let s = screen_text(&t);
        assert!(!s.contains("paramete ") && !s.contains("neuro "), "{s}");
        if w < 80 {
            assert!(app.layout.regions.folded, "{w}x{h} should fold the lists");
            assert!(s.contains("Tab: layers"), "{s}");
        }
    }
}

#[test]
fn clicks_use_the_drawn_layout() {
    let mut app = demo_from_files(&[]);
    for (w, h) in [(200, 60), (80, 24)] {
        render(&mut app, w, h);
        // Click the third visible layer row.
        let (y, i) = app.layout.layer_rows[2];
        app.click(app.layout.regions.layers.x + 3, y);
        assert_eq!((app.focus, app.layer_cursor), (Focus::Layers, i));
        // Scroll the targets list down so it starts later, then click its first visible row.
        press(&mut app, "<tab><tab>G");
        render(&mut app, w, h);
        let (y, i) = app.layout.target_rows[0];
        app.click(app.layout.regions.targets.x + 2, y);
        assert_eq!((app.focus, app.target_cursor), (Focus::Targets, i));
        // A heatmap pixel moves the cursor to the matrix cell drawn there.
        render(&mut app, w, h);
        let p = app.layout.heatmap_pixels;
        app.click(p.x + 3, p.y + 2);
        assert_eq!(app.focus, Focus::Heatmap);
        let g = &app.cache.grid;
        assert_eq!(app.hm.cursor, (g.row_bins[4].0, g.col_bins[3].0));
    }
}

#[test]
fn prompt_keys_and_their_help_come_from_the_keymap() {
    let mut app = demo_from_files(&[]);
    press(&mut app, "K");
    // In the prompt, '0' is a digit (not zoom reset) and q does nothing.
    press(&mut app, "10q<bs>7<enter>");
    assert_eq!(app.k, 17);
    press(&mut app, "?");
    let s = screen_text(&render(&mut app, 200, 60));
    for b in keymap::KEYMAP.iter().filter(|b| b.scope == keymap::Scope::Prompt) {
        assert!(s.contains(b.help), "help lacks the prompt key {}", b.label);
    }
}

#[test]
fn export_runs_as_an_effect_with_its_stages() {
    let out = tempfile::tempdir().unwrap();
    let mut app = demo_from_files(&["--output-dir", out.path().to_str().unwrap()]);
    let effects = app.update(keymap::Action::Export);
    let [Effect::Export(job)] = &effects[..] else { panic!("{effects:?}") };
    assert!(matches!(app.export, saliency::tui::app::ExportState::Running { .. }));
    // A second export while one runs is refused.
    assert!(app.update(keymap::Action::Export).is_empty());
    assert!(app.message.as_deref().unwrap().contains("already running"));
    let mut stages = Vec::new();
    let last = saliency::tui::export::run(job, &mut |s| stages.push(s));
    assert_eq!(stages, ["writing candidate_weights.json (1/1)"]);
    app.on_export(last);
    assert!(app.message.as_deref().unwrap().starts_with("exported"));
    assert!(out.path().join("candidate_weights.json").is_file());
    // A failed export is a message, not a crash.
    let blocked = out.path().join("file");
    std::fs::write(&blocked, "x").unwrap();
    app.out_dir = blocked.join("sub");
    press(&mut app, "e");
    assert!(app.message.as_deref().unwrap().starts_with("export failed"), "{:?}", app.message);
}

#[test]
fn snapshots_at_three_sizes() {
    let mut app = demo_from_files(&[]);
    app.source = "assets/demo (averages from tests/fixtures/demo_reference)".into();
    let small = screen_text(&render(&mut app, 100, 30));
    insta::assert_snapshot!("demo_100x30", small);
    let common = screen_text(&render(&mut app, 80, 24));
    insta::assert_snapshot!("demo_80x24", common);
    let large = screen_text(&render(&mut app, 180, 50));
    insta::assert_snapshot!("demo_180x50", large);
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn export_writes_the_same_bytes_as_extract() {
    let out = tempfile::tempdir().unwrap();
    let mut app = demo_from_files(&["--output-dir", out.path().to_str().unwrap()]);
    press(&mut app, "K3<enter>]e");
    assert!(app.message.as_deref().unwrap_or("").starts_with("exported"), "{:?}", app.message);
    let cli = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["extract", "-q", "--k", "3", "--m", "5", "--cross-metric-path"])
        .arg(fixture("demo").join("patching_results/cross_metric_summary.json"))
        .arg("--average-gradients-path")
        .arg(reference_dir("demo").join("average_gradients.json"))
        .arg("--output-dir")
        .arg(cli.path())
        .assert()
        .success();
    assert!(read(&out.path().join("candidate_weights.json")) == read(&cli.path().join("candidate_weights.json")));
}

#[test]
fn pipeline_export_writes_the_same_bytes_as_run() {
    let out = tempfile::tempdir().unwrap();
    let args = explore_args(&[
        "--agent-path",
        fixture("demo").to_str().unwrap(),
        "--output-dir",
        out.path().to_str().unwrap(),
        "--k",
        "3",
        "--m",
        "5",
    ]);
    let mut app = run_to_end(plan(&args).unwrap(), Duration::from_secs(120)).unwrap();
    assert!(!app.provisional);
    press(&mut app, "e");
    let cli = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["run", "-q", "--raw-gradients", "none", "--k", "3", "--m", "5", "--agent-path"])
        .arg(fixture("demo"))
        .arg("--output-dir")
        .arg(cli.path())
        .assert()
        .success();
    for f in ["candidate_weights.json", "average_gradients.json"] {
        assert!(read(&out.path().join(f)) == read(&cli.path().join(f)), "{f} differs");
    }
}

/// A copy of the demo with its inputs repeated, so a run lasts long enough to cancel.
fn long_demo(repeats: usize) -> tempfile::TempDir {
    let dir = copy_fixture("demo");
    let path = dir.path().join("activation_inputs/clean_inputs.json");
    let v = saliency::json::reader::read_value_from(std::fs::File::open(&path).unwrap(), "x").unwrap();
    let mut w = saliency::json::PyJsonWriter::new(std::fs::File::create(&path).unwrap());
    w.begin_object().unwrap();
    for r in 0..repeats {
        for (id, entry) in v.as_object().unwrap() {
            w.key(&format!("{id}-{r}")).unwrap();
            w.begin_object().unwrap();
            w.key("input").unwrap();
            w.begin_array().unwrap();
            for x in entry.get("input").unwrap().as_array().unwrap() {
                w.float(x.as_f64().unwrap()).unwrap();
            }
            w.end_array().unwrap();
            w.end_object().unwrap();
        }
    }
    w.end_object().unwrap();
    w.finish().unwrap();
    dir
}

#[test]
fn background_run_reports_progress_snapshots_and_cancels() {
    use saliency::tui::worker::{Msg, Worker};
    let dir = long_demo(200); // 8,000 inputs
    let args = explore_args(&["--agent-path", dir.path().to_str().unwrap(), "--batch-size", "4"]);
    let plan = plan(&args).unwrap();
    let mut app = plan.app;
    let worker = Worker::spawn(plan.job).unwrap();
    let mut saw_snapshot = false;
    let mut cancelled = false;
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        let Some(msg) = worker.recv_timeout(Duration::from_millis(200)) else { continue };
        match &msg {
            Msg::Snapshot(a) => {
                saw_snapshot = true;
                assert!(a.num_examples.unwrap() < 8000);
                // The UI is usable on provisional averages: the selection updates.
                let _ = app.on_msg(msg);
                assert!(app.provisional);
                press(&mut app, "+");
                assert!(!app.selection.targets.is_empty());
                // Export refuses provisional averages.
                press(&mut app, "e");
                assert!(app.message.as_deref().unwrap().contains("provisional"));
                assert!(matches!(press(&mut app, "<esc>")[..], [Effect::CancelRun]));
                worker.cancel();
                continue;
            }
            Msg::Cancelled => {
                cancelled = true;
                let _ = app.on_msg(msg);
                break;
            }
            Msg::Finished(..) | Msg::Failed(_) => panic!("expected a cancel, got {msg:?}"),
            _ => {
                let _ = app.on_msg(msg);
            }
        }
    }
    assert!(saw_snapshot && cancelled);
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("cancelled after"), "{s}");
}

#[test]
fn failures_are_shown_not_crashed() {
    let dir = copy_fixture("acrobot");
    std::fs::write(dir.path().join("activation_inputs/clean_inputs.json"), r#"{"a": {"input": [1, 2]}}"#).unwrap();
    let args = explore_args(&["--agent-path", dir.path().to_str().unwrap()]);
    let mut app = run_to_end(plan(&args).unwrap(), Duration::from_secs(60)).unwrap();
    let s = screen_text(&render(&mut app, 160, 40));
    assert!(s.contains("The pipeline failed"), "{s}");
    assert!(s.contains("expected a list of 6 values, found 2"), "{s}");
}

#[test]
fn not_a_terminal_names_the_headless_command() {
    Command::cargo_bin("saliency")
        .unwrap()
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicates::str::contains("needs an interactive terminal"))
        .stderr(predicates::str::contains("saliency run --agent-path"));
}

/// The demo run in the explorer, with an evidence engine answering its requests at once.
fn demo_with_evidence(extra: &[&str]) -> (App, saliency::tui::evidence::Engine, Vec<Effect>) {
    let mut argv = vec!["--agent-path", "assets/demo", "--color", "truecolor"];
    argv.extend_from_slice(extra);
    let args = explore_args(&argv);
    let plan = plan(&args).unwrap();
    let engine = saliency::tui::evidence::Engine::load(plan.app.model.as_ref().unwrap()).unwrap();
    let (mut app, effects) = saliency::tui::run_to_end_with_effects(plan, Duration::from_secs(120)).unwrap();
    app.on_evidence(saliency::tui::evidence::Msg::Ready { inputs: engine.prepared.sig.n, all: engine.all });
    (app, engine, effects)
}

/// Answers the app's pending evidence requests.
fn settle(app: &mut App, engine: &saliency::tui::evidence::Engine, effects: Vec<Effect>) {
    for e in effects {
        saliency::tui::run_effect_blocking(app, e, Some(engine));
    }
}

#[test]
fn evidence_line_follows_k_and_m_and_equals_saliency_ablate() {
    let (mut app, engine, first) = demo_with_evidence(&[]);
    assert_eq!(first.len(), 1, "one request for the line once the averages are final");
    assert!(app.evidence_effects().is_empty(), "no second request for the same selection");
    settle(&mut app, &engine, first);
    let s = screen_text(&render(&mut app, 200, 60));
    let line = s.lines().nth(2).unwrap().to_string();
    assert!(line.contains("zeroing the selection (40 inputs) · flips 55% (random 7%, pct 100)"), "{line}");
    assert!(!line.contains("updating"), "{line}");
    // The same numbers as `saliency ablate` on the same selection (zero, 20 draws, seed 0).
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["ablate", "-q", "--k", "2", "--m", "4", "--agent-path", "assets/demo", "--output-dir"])
        .arg(out.path())
        .assert()
        .success();
    let file = read_json(&out.path().join("ablation.json"));
    let Some((_, Some(e))) = &app.evidence.line else { panic!("no evidence") };
    let g = |path: [&str; 2]| file.get(path[0]).unwrap().get(path[1]).unwrap().as_f64().unwrap();
    assert_eq!(e.selection.flip_rate, g(["selection", "flip_rate"]));
    assert_eq!(e.selection.mean_target_drop, g(["selection", "mean_target_drop"]));
    assert_eq!(e.selection.mean_predicted_drop, g(["selection", "mean_predicted_drop"]));
    let r = e.random.as_ref().unwrap();
    let rf = file.get("random").unwrap();
    assert_eq!(r.flip_rate.percentile, rf.get("flip_rate").unwrap().get("percentile").unwrap().as_f64().unwrap());
    assert_eq!(r.mean_kl.mean, rf.get("mean_kl").unwrap().get("mean").unwrap().as_f64().unwrap());
    let before = e.clone();

    // k + 1: a new request; until it arrives the old numbers show, marked as updating.
    let effects = press(&mut app, "+");
    assert!(matches!(effects[..], [Effect::Evidence(_)]), "{effects:?}");
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.lines().nth(2).unwrap().contains("updating ..."), "{s}");
    settle(&mut app, &engine, effects);
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(!s.lines().nth(2).unwrap().contains("updating"), "{s}");
    let Some((_, Some(after))) = &app.evidence.line else { panic!("no evidence") };
    assert_ne!(after, &before, "k=3 should change the evidence");
    assert_eq!(after.num_weights, app.selection.targets.len());
    // An older result arriving late does not replace a newer one.
    let id_now = app.evidence.line.as_ref().unwrap().0;
    app.on_evidence(saliency::tui::evidence::Msg::Empty {
        id: id_now - 1,
        scope: saliency::tui::evidence::Scope::Selection,
    });
    assert_eq!(app.evidence.line.as_ref().unwrap().0, id_now);
    // m to 0 and k to 0: nothing selected.
    let effects = press(&mut app, "M0<enter>K0<enter>");
    settle(&mut app, &engine, effects);
    assert!(screen_text(&render(&mut app, 200, 60)).contains("nothing selected"));
}

#[test]
fn neuron_view_shows_what_zeroing_its_selected_weights_does() {
    let (mut app, engine, first) = demo_with_evidence(&[]);
    settle(&mut app, &engine, first);
    let effects = press(&mut app, "<tab><tab><enter>");
    assert!(matches!(app.popup, Some(Popup::Neuron { .. })));
    assert!(
        effects.iter().any(
            |e| matches!(e, Effect::Evidence(r) if matches!(r.scope, saliency::tui::evidence::Scope::Neuron { .. }))
        ),
        "{effects:?}"
    );
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("zeroing its selected weights: computing"), "{s}");
    settle(&mut app, &engine, effects);
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("zeroing its selected weights: flips"), "{s}");
}

#[test]
fn ablate_key_exports_ablation_json_as_saliency_ablate_writes_it() {
    let out = tempfile::tempdir().unwrap();
    let (mut app, engine, first) = demo_with_evidence(&["--output-dir", out.path().to_str().unwrap()]);
    settle(&mut app, &engine, first);
    press(&mut app, "A");
    let msg = app.message.clone().unwrap_or_default();
    assert!(msg.starts_with("exported") && msg.contains("ablation.json (flips"), "{msg}");
    let cli = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["ablate", "-q", "--agent-path", "assets/demo", "--candidates"])
        .arg(out.path().join("candidate_weights.json"))
        .arg("--output-dir")
        .arg(cli.path())
        .assert()
        .success();
    assert!(read(&out.path().join("ablation.json")) == read(&cli.path().join("ablation.json")));
    // From files there is no model to ablate: a message, no crash.
    let mut files = demo_from_files(&[]);
    press(&mut files, "A");
    assert!(files.message.as_deref().unwrap().contains("needs the agent"), "{:?}", files.message);
    assert!(screen_text(&render(&mut files, 200, 60)).contains("evidence: needs the agent"));
}

#[test]
fn measures_switch_live_and_the_selection_follows_magnitudes() {
    let (mut app, _engine, _) = demo_with_evidence(&[]);
    assert_eq!(app.measure.name(), "mean-abs");
    let before = app.selection.clone();
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.lines().next().unwrap().contains("target q · measure mean-abs"), "{s}");
    // mean (signed, not a magnitude): colours and statistics follow, the selection stays.
    press(&mut app, "v");
    assert_eq!(app.measure.name(), "mean");
    assert_eq!(app.selection, before, "a signed measure does not rank");
    let mean = app.measures.as_ref().unwrap().get(saliency::pipeline::measures::Measure::Mean).unwrap();
    assert_eq!(app.averages.as_ref().unwrap().params[0].data, mean[0].data);
    assert!(app.stats.iter().any(|s| s.min < 0.0), "signed values shown");
    // mean-sq (a magnitude): the selection ranks by it.
    press(&mut app, "v");
    assert_eq!(app.measure.name(), "mean-sq");
    assert_ne!(app.selection, before);
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.lines().next().unwrap().contains("measure mean-sq"), "{s}");
    // The export ranks by the shown magnitude and writes the averages unchanged.
    let out = tempfile::tempdir().unwrap();
    app.out_dir = out.path().to_path_buf();
    press(&mut app, "e");
    let cand = read_json(&out.path().join("candidate_weights.json"));
    let t = &cand.get("weight_targets").unwrap().as_array().unwrap()[0];
    let layer = t.get("layer_name").unwrap().as_str().unwrap();
    let sq = app.measures.as_ref().unwrap().get(saliency::pipeline::measures::Measure::MeanSq).unwrap();
    let p = sq.iter().find(|p| p.name == layer).unwrap();
    let cols = p.rows_cols().1;
    let e = t.get("neuron_index").unwrap().as_i64().unwrap() as usize * cols
        + t.get("weight_index").unwrap().as_i64().unwrap() as usize;
    assert_eq!(t.get("gradient_magnitude").unwrap().as_f64().unwrap(), p.data[e]);
    let avgs = saliency::pipeline::average::Averages::read(&out.path().join("average_gradients.json")).unwrap();
    assert_eq!(avgs.params, app.mean_abs.as_ref().unwrap().params);
    // Back round to mean-abs after the seven.
    press(&mut app, "vvvvv");
    assert_eq!(app.measure.name(), "mean-abs");
    assert_eq!(app.selection, before);
}

#[test]
fn the_target_shows_and_changing_it_runs_again() {
    let (mut app, _engine, _) = demo_with_evidence(&[]);
    let effects = press(&mut app, "t");
    assert!(matches!(effects[..], [Effect::SetTarget(saliency::target::Target::Margin)]), "{effects:?}");
    assert!(app.running());
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.lines().next().unwrap().contains("target margin"), "{s}");
    // From files the target cannot change.
    let mut files = demo_from_files(&[]);
    assert!(press(&mut files, "t").is_empty());
    assert!(files.message.as_deref().unwrap().contains("cannot change"));
    // --target starts with it, and the run differentiates it.
    let args = explore_args(&["--agent-path", "assets/demo", "--target", "logsoftmax"]);
    let app = run_to_end(plan(&args).unwrap(), Duration::from_secs(120)).unwrap();
    assert_eq!(app.target, saliency::target::Target::LogSoftmax);
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args([
            "run",
            "-q",
            "--raw-gradients",
            "none",
            "--target",
            "logsoftmax",
            "--agent-path",
            "assets/demo",
            "--output-dir",
        ])
        .arg(out.path())
        .assert()
        .success();
    let want = saliency::pipeline::average::Averages::read(&out.path().join("average_gradients.json")).unwrap();
    assert_eq!(app.mean_abs.as_ref().unwrap().params, want.params);
}

#[test]
fn input_view_shows_vector_bars_with_feature_names_and_image_pictures() {
    // The demo's 106-value observation, named.
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..100)
        .map(|i| format!("cell{}_{}", i / 10, i % 10))
        .chain(["x", "y", "east", "south", "west", "north"].map(String::from))
        .collect();
    let file = dir.path().join("names.json");
    std::fs::write(
        &file,
        format!("{{\"MLP_input\": [{}]}}", names.iter().map(|n| format!("\"{n}\"")).collect::<Vec<_>>().join(", ")),
    )
    .unwrap();
    let (mut app, engine, _) = demo_with_evidence(&["--feature-names", file.to_str().unwrap()]);
    let effects = press(&mut app, "i");
    assert!(matches!(app.popup, Some(Popup::Inputs { index: 0 })));
    settle(&mut app, &engine, effects);
    let s = screen_text(&render(&mut app, 170, 48));
    assert!(s.contains("input saliency · target q · input 1/40 GridNav-0-"), "{s}");
    assert!(s.contains("MLP_input [106]: mean |d q / d input| over 40 inputs"), "{s}");
    // Bars sorted by saliency, labelled by name, with this input's value and gradient.
    let means = app.input_means.as_ref().unwrap();
    let top = (0..106).max_by(|&a, &b| means.mean_abs[0][a].total_cmp(&means.mean_abs[0][b])).unwrap();
    assert!(s.contains(&names[top]), "the most salient feature {} is not shown:\n{s}", names[top]);
    assert!(s.contains("value") && s.contains("grad"), "{s}");
    // Right: the next input.
    let effects = press(&mut app, "<right>");
    settle(&mut app, &engine, effects);
    assert_eq!(app.evidence.input.as_ref().unwrap().index, 1);
    assert!(screen_text(&render(&mut app, 170, 48)).contains("input 2/40"));
    press(&mut app, "i");
    assert!(app.popup.is_none());

    // The CNN fixture: pictures of each channel, coloured.
    let args = explore_args(&["--agent-path", fixture("cnn").to_str().unwrap(), "--color", "truecolor"]);
    let plan = plan(&args).unwrap();
    let engine = saliency::tui::evidence::Engine::load(plan.app.model.as_ref().unwrap()).unwrap();
    let (mut app, _) = saliency::tui::run_to_end_with_effects(plan, Duration::from_secs(120)).unwrap();
    app.on_evidence(saliency::tui::evidence::Msg::Ready { inputs: engine.prepared.sig.n, all: engine.all });
    let effects = press(&mut app, "i");
    settle(&mut app, &engine, effects);
    let t = render(&mut app, 170, 48);
    let s = screen_text(&t);
    assert!(s.contains("obs [2, 44, 44]") && s.contains("channel 1: saliency") && s.contains("its saliency"), "{s}");
    let buf = t.backend().buffer();
    let colored = (0..48u16)
        .flat_map(|y| (0..170u16).map(move |x| (x, y)))
        .filter(|&(x, y)| buf[(x, y)].symbol() == "▀" && matches!(buf[(x, y)].fg, Color::Rgb(..)))
        .count();
    assert!(colored > 500, "only {colored} picture cells");
}

#[test]
fn neuron_view_shows_the_signed_mean() {
    let (mut app, _engine, _) = demo_with_evidence(&[]);
    press(&mut app, "<tab><tab><enter>");
    let s = screen_text(&render(&mut app, 200, 60));
    assert!(s.contains("signed mean beside") && s.contains(" mean "), "{s}");
    // The signed mean shown is the measure's value for that weight.
    let Some(Popup::Neuron { param, row }) = app.popup else { panic!() };
    let mean = &app.measures.as_ref().unwrap().get(saliency::pipeline::measures::Measure::Mean).unwrap()[param];
    let first = mean.row(row)[88];
    assert!(s.contains(&format!("mean {:>9}", saliency::format::num(first))), "{s}");
}

#[test]
fn a_ppo_agent_opens_and_switches_between_actor_and_critic() {
    let args = explore_args(&["--agent-path", fixture("ppo_cartpole").to_str().unwrap()]);
    let mut app = run_to_end(plan(&args).unwrap(), Duration::from_secs(120)).unwrap();
    let s = screen_text(&render(&mut app, 200, 60));
    let head = s.lines().next().unwrap().to_string();
    assert!(head.contains("target logprob") && head.contains("PPO"), "{head}");
    let names: Vec<String> = app.mean_abs.as_ref().unwrap().params.iter().map(|p| p.name.clone()).collect();
    assert!(
        names.iter().all(|n| n.starts_with("mlp_extractor.policy_net.") || n.starts_with("action_net.")),
        "{names:?}"
    );
    // t: the critic next (actor or critic is the first question about a policy).
    let effects = press(&mut app, "t");
    assert!(matches!(effects[..], [Effect::SetTarget(saliency::target::Target::Value)]), "{effects:?}");
    // The run for the critic reports the critic's path.
    let args = explore_args(&["--agent-path", fixture("ppo_cartpole").to_str().unwrap(), "--target", "value"]);
    let mut app = run_to_end(plan(&args).unwrap(), Duration::from_secs(120)).unwrap();
    let names: Vec<String> = app.mean_abs.as_ref().unwrap().params.iter().map(|p| p.name.clone()).collect();
    assert!(
        names.iter().all(|n| n.starts_with("mlp_extractor.value_net.") || n.starts_with("value_net.")),
        "{names:?}"
    );
    assert!(screen_text(&render(&mut app, 200, 60)).lines().next().unwrap().contains("target value"));
}
