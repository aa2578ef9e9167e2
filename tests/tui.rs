//! The explorer against ratatui's TestBackend, through its real event loop step
//! (`Explorer::handle`, `poll`, `draw`) and its real background jobs: scripted keys, screen
//! text, cell colours, snapshots, export bytes equal to the headless commands', and the job
//! model's promises (latest wins per kind, a panic is shown, a failed export is a message,
//! `A` can be cancelled).

mod common;

use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use clap::Parser;
use common::screen::{events, screen_text};
use common::*;
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::style::Color;
use ratatui::Terminal;
use saliency::cli::Cli;
use saliency::tui::app::{App, Effect, EvidenceStatus, ExportState, Focus, Popup, Status};
use saliency::tui::color::{self, ColorMode};
use saliency::tui::keymap::{self, Action};
use saliency::tui::runtime::Faults;
use saliency::tui::{plan, Explorer};

const LONG: Duration = Duration::from_secs(180);

fn explore_args(extra: &[&str]) -> saliency::cli::ExploreArgs {
    let mut argv = vec!["saliency".to_string()];
    argv.extend(extra.iter().map(|s| s.to_string()));
    Cli::parse_from(argv).explore
}

/// The explorer with its jobs started.
fn explorer(argv: &[&str]) -> Explorer {
    let mut ex = plan(&explore_args(argv)).unwrap();
    ex.start();
    ex
}

/// The explorer, its jobs started with `faults`.
fn explorer_with_faults(argv: &[&str], faults: Faults) -> Explorer {
    let mut ex = plan(&explore_args(argv)).unwrap();
    ex.runtime.inject(faults);
    ex.start();
    ex
}

/// The demo's Python-made averages opened as files (no model), loaded.
fn demo_from_files(extra: &[&str]) -> Explorer {
    let mut args = vec![
        "--average-gradients",
        "tests/fixtures/demo_reference/average_gradients.json",
        "--cross-metric",
        "assets/demo/patching_results/cross_metric_summary.json",
        "--useful-neurons",
        "assets/demo/useful_neurons.json",
    ];
    if !extra.contains(&"--color") {
        args.extend(["--color", "truecolor"]);
    }
    args.extend_from_slice(extra);
    let mut ex = explorer(&args);
    ex.settle(LONG).unwrap();
    ex
}

/// Whether the evidence line shows the current selection.
fn line_current(app: &App) -> bool {
    app.evidence().line().is_some_and(|(_, stale)| !stale)
}

/// The demo run by the explorer, its evidence line answered.
fn demo_with_evidence(extra: &[&str]) -> Explorer {
    let mut argv = vec!["--agent-path", "assets/demo", "--color", "truecolor"];
    argv.extend_from_slice(extra);
    let mut ex = explorer(&argv);
    assert!(ex.wait_until(LONG, line_current), "no evidence");
    ex
}

/// Types keys through the event loop's step (see `common::screen::events`); effects go to the
/// real jobs. False when a key quits.
fn press(ex: &mut Explorer, script: &str) -> bool {
    events(script).into_iter().all(|e| ex.handle(e))
}

fn render(ex: &mut Explorer, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    ex.draw(&mut t).unwrap();
    t
}

fn line(t: &Terminal<TestBackend>, n: usize) -> String {
    screen_text(t).lines().nth(n).unwrap().to_string()
}

#[test]
fn opens_on_the_first_candidate_layer_with_the_selection() {
    let mut ex = demo_from_files(&[]);
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("q_net.2.weight [64×64]"), "{s}");
    assert!(s.contains("Selected 24 · k=2 m=4"), "{s}");
    assert!(s.contains("20 guaranteed + 4 additional"), "{s}");
    assert!(s.contains("features_extractor.mlp.0.weight"), "{s}");
    // Footer hints come from the keymap.
    for (k, hint) in keymap::hints() {
        assert!(s.contains(&format!("{k} {hint}")), "footer lacks {k} {hint}");
    }
}

#[test]
fn k_and_m_change_the_selection_on_the_same_frame() {
    let mut ex = demo_from_files(&[]);
    let candidates = ex.app.knobs().resolved().candidates.len();
    press(&mut ex, "+");
    assert_eq!(ex.app.knobs().k(), 3);
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains(&format!("Selected {} · k=3 m=4", 3 * candidates + 4)), "{s}");
    press(&mut ex, "]]}");
    assert_eq!(ex.app.knobs().m(), 16);
    press(&mut ex, "K12<enter>M0<enter>");
    assert_eq!((ex.app.knobs().k(), ex.app.knobs().m()), (12, 0));
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains(&format!("Selected {} · k=12 m=0", 12 * candidates)), "{s}");
    press(&mut ex, "<-");
    assert_eq!(ex.app.knobs().k(), 1);
    press(&mut ex, "K<esc>");
    assert_eq!(ex.app.knobs().k(), 1);
    assert!(ex.app.popup().is_none());
}

#[test]
fn overlay_colours_mark_guaranteed_and_additional_weights() {
    let mut ex = demo_from_files(&[]);
    let t = render(&mut ex, 200, 60);
    let buf = t.backend().buffer();
    let hm = ex.app.layout().regions.heatmap;
    let pane = ex.app.heatmap();
    assert!(pane.marks().iter().any(|m| m.2 == saliency::tui::heatmap::Mark::Guaranteed));
    for &(py, px, mark) in pane.marks() {
        let cell = &buf[(hm.x + 2 + px as u16, hm.y + 1 + (py / 2) as u16)];
        if pane.cursor_px() == Some((py, px)) {
            continue;
        }
        let want = match mark {
            saliency::tui::heatmap::Mark::Guaranteed => color::GUARANTEED_RGB,
            saliency::tui::heatmap::Mark::Additional => color::ADDITIONAL_RGB,
            other => panic!("{other:?}: only two agents compared have these"),
        };
        let got = if py % 2 == 0 { cell.fg } else { cell.bg };
        assert_eq!(got, Color::Rgb(want[0], want[1], want[2]), "pixel {py},{px}");
    }
    // An unmarked pixel has a viridis colour.
    let cell = &buf[(hm.x + 2, hm.y + 20)];
    let Color::Rgb(r, g, b) = cell.fg else { panic!("{:?}", cell.fg) };
    assert!(saliency::colormap::VIRIDIS.contains(&[r, g, b]));
}

#[test]
fn no_color_uses_a_glyph_ramp_and_256_colour_terminals_get_indexed_colours() {
    let mut ex = demo_from_files(&["--color", "none"]);
    let t = render(&mut ex, 160, 50);
    let buf = t.backend().buffer();
    for y in 0..50 {
        for x in 0..160 {
            let c = &buf[(x, y)];
            assert!(matches!(c.fg, Color::Reset) && matches!(c.bg, Color::Reset), "colour at {x},{y}");
        }
    }
    let s = screen_text(&t);
    assert!(s.contains('●') && (s.contains('░') || s.contains('▒') || s.contains('▓')), "{s}");
    let mut ex = demo_from_files(&["--color", "256"]);
    assert_eq!(ex.app.color_mode(), ColorMode::Ansi256);
    let t = render(&mut ex, 160, 50);
    let hm = ex.app.layout().regions.heatmap;
    assert!(matches!(t.backend().buffer()[(hm.x + 2, hm.y + 3)].fg, Color::Indexed(_)));
}

#[test]
fn navigation_drill_down_help_and_small_terminals() {
    let mut ex = demo_from_files(&[]);
    press(&mut ex, "g"); // first layer (layers pane has focus)
    assert_eq!(ex.app.current_param(), Some(0));
    press(&mut ex, "j");
    assert_eq!(ex.app.current_param(), Some(1));
    press(&mut ex, "k<tab>");
    assert_eq!(ex.app.focus(), Focus::Heatmap);
    press(&mut ex, "n");
    let row = ex.app.heatmap().cursor().0;
    assert!(ex.app.knobs().resolved().candidates.iter().any(|c| c.param == 0 && c.neuron == row));
    press(&mut ex, "<enter>");
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains(&format!("neuron {row} of features_extractor.mlp.0.weight")), "{s}");
    assert!(s.contains("candidate exp_"), "{s}");
    assert!(s.contains("top1"), "{s}");
    press(&mut ex, "<esc>?");
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("Keys (one keymap"), "{s}");
    for b in keymap::KEYMAP {
        assert!(s.contains(b.help), "help lacks {}", b.help);
    }
    press(&mut ex, "?<tab>");
    assert_eq!(ex.app.focus(), Focus::Selected);
    press(&mut ex, "<down><enter>");
    assert!(matches!(ex.app.popup(), Some(Popup::Neuron { .. })));
    let s = screen_text(&render(&mut ex, 50, 12));
    assert!(s.contains("Terminal too small"), "{s}");
    assert!(matches!(ex.app.update(Action::Quit)[..], [Effect::Quit]));
    assert!(!press(&mut ex, "q"), "q quits the event loop");
}

#[test]
fn zoom_pooling_scale_and_range_keys() {
    let mut ex = demo_from_files(&[]);
    press(&mut ex, "<tab>zz");
    assert_eq!(ex.app.heatmap().zoom(), 4);
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("zoom 4×"), "{s}");
    let g = ex.app.heatmap().grid();
    assert_eq!(g.row_bins.last().unwrap().1 - g.row_bins[0].0, 16, "a quarter of 64 rows");
    press(&mut ex, "Z0psrC");
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("mean pool · log · global range · magma · zoom 1×"), "{s}");
    press(&mut ex, "s");
    render(&mut ex, 200, 60);
    assert!(ex.app.heatmap().scaler().unwrap().sorted.is_some(), "rank scale needs sorted values");
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
        let mut ex = demo_from_files(&[]);
        let n_params = ex.app.data().shown().unwrap().params.len();
        // Layers list: every visible row's name is different, and names keep their tails.
        press(&mut ex, "g");
        let mut seen = Vec::new();
        for _ in 0..n_params {
            let t = render(&mut ex, w, h);
            let app = &ex.app;
            let rows = pane_rows(&t, app.layout().regions.layers);
            let header = rows[0].clone();
            for word in header.split_whitespace() {
                assert!(
                    ["parameter", "name", "shape", "mean", "max", "selected", "sel"].contains(&word),
                    "{w}x{h}: a layer column header was cut: {header:?}"
                );
            }
            let names = first_cells(&rows[1..]);
            let cursor = app.layers().cursor();
            let row = app.layout().layer_rows.iter().position(|&(_, i)| i == cursor).unwrap();
            let name = names[row].trim_start_matches("· ").to_string();
            let full = &app.data().shown().unwrap().params[app.layers().order()[cursor]].name;
            assert!(!name.contains('…'), "{w}x{h}: {name} lost its head and tail");
            let tail: Vec<&str> = full.rsplitn(3, '.').collect();
            assert!(name.ends_with(&format!("{}.{}", tail[1], tail[0])), "{w}x{h}: {name} for {full}");
            seen.push(name);
            press(&mut ex, "j");
        }
        let distinct: std::collections::HashSet<_> = seen.iter().collect();
        assert_eq!(distinct.len(), n_params, "{w}x{h}: names not distinct: {seen:?}");
        if (w, h) == (80, 24) {
            assert!(
                seen.contains(&"f.mlp.0.weight".to_string()) && seen.contains(&"q_net.2.weight".to_string()),
                "{seen:?}"
            );
        }
        // Selected list: whole headers, distinct layer names for distinct layers.
        press(&mut ex, "<tab><tab>");
        let t = render(&mut ex, w, h);
        let app = &ex.app;
        let rows = pane_rows(&t, app.layout().regions.selected);
        for word in rows[0].split_whitespace() {
            assert!(
                ["layer", "#", "neuron", "n", "weight", "w", "|grad|", "|g|", "pick"].contains(&word),
                "{w}x{h}: a selected-weights column header was cut: {:?}",
                rows[0]
            );
        }
        let mut by_layer = std::collections::HashMap::new();
        for (k, &(_, i)) in app.layout().selected_rows.iter().enumerate() {
            let p = app.knobs().candidate(i).unwrap().param;
            let name = first_cells(&rows[1..])[k].clone();
            let prev = by_layer.insert(name.clone(), p);
            assert!(prev.is_none() || prev == Some(p), "{w}x{h}: two layers shown as {name}");
        }
        // Block titles and the status line are never cut mid-word.
        let s = screen_text(&t);
        assert!(!s.contains("paramete ") && !s.contains("neuro "), "{s}");
        if w < 80 {
            assert!(app.layout().regions.folded, "{w}x{h} should fold the lists");
            assert!(s.contains("Tab: layers"), "{s}");
        }
    }
}

#[test]
fn clicks_use_the_drawn_layout() {
    let mut ex = demo_from_files(&[]);
    for (w, h) in [(200, 60), (80, 24)] {
        render(&mut ex, w, h);
        // Click the third visible layer row.
        let (y, i) = ex.app.layout().layer_rows[2];
        let x = ex.app.layout().regions.layers.x + 3;
        ex.app.click(x, y);
        assert_eq!((ex.app.focus(), ex.app.layers().cursor()), (Focus::Layers, i));
        // Scroll the selected list down so it starts later, then click its first visible row.
        press(&mut ex, "<tab><tab>G");
        render(&mut ex, w, h);
        let (y, i) = ex.app.layout().selected_rows[0];
        let x = ex.app.layout().regions.selected.x + 2;
        ex.app.click(x, y);
        assert_eq!((ex.app.focus(), ex.app.selected_cursor()), (Focus::Selected, i));
        // A heatmap pixel moves the cursor to the matrix cell drawn there.
        render(&mut ex, w, h);
        let p = ex.app.layout().heatmap_pixels;
        ex.app.click(p.x + 3, p.y + 2);
        assert_eq!(ex.app.focus(), Focus::Heatmap);
        let g = ex.app.heatmap().grid();
        assert_eq!(ex.app.heatmap().cursor(), (g.row_bins[4].0, g.col_bins[3].0));
    }
}

#[test]
fn prompt_keys_and_their_help_come_from_the_keymap() {
    let mut ex = demo_from_files(&[]);
    press(&mut ex, "K");
    // In the prompt, '0' is a digit (not zoom reset) and q does nothing.
    press(&mut ex, "10q<bs>7<enter>");
    assert_eq!(ex.app.knobs().k(), 17);
    press(&mut ex, "?");
    let s = screen_text(&render(&mut ex, 200, 60));
    for b in keymap::KEYMAP.iter().filter(|b| b.scope == keymap::Scope::Prompt) {
        assert!(s.contains(b.help), "help lacks the prompt key {}", b.label);
    }
}

#[test]
fn export_runs_as_a_job_with_its_stages_and_a_failed_export_is_a_message() {
    let out = tempfile::tempdir().unwrap();
    let mut ex = demo_from_files(&["--output-dir", out.path().to_str().unwrap()]);
    press(&mut ex, "e");
    assert!(matches!(ex.app.export().state(), ExportState::Running { .. }));
    // A second export while one runs is refused.
    assert!(ex.app.update(Action::Export).is_empty());
    assert!(ex.app.message().unwrap().contains("already running"));
    ex.settle(LONG).unwrap();
    assert!(ex.app.message().unwrap().starts_with("exported"), "{:?}", ex.app.message());
    assert!(out.path().join("candidate_weights.json").is_file());
    assert_eq!(ex.app.export().state(), &ExportState::Idle);
    // A failed export is a message, not a crash, and the next export is accepted.
    let blocked = out.path().join("file");
    std::fs::write(&blocked, "x").unwrap();
    let mut ex = demo_from_files(&["--output-dir", blocked.join("sub").to_str().unwrap()]);
    press(&mut ex, "e");
    ex.settle(LONG).unwrap();
    assert!(ex.app.message().unwrap().starts_with("export failed"), "{:?}", ex.app.message());
    assert!(ex.app.message().unwrap().contains("Not a directory"), "{:?}", ex.app.message());
    press(&mut ex, "e");
    assert!(matches!(ex.app.export().state(), ExportState::Running { .. }), "not stuck after a failure");
    ex.settle(LONG).unwrap();
}

#[test]
fn a_panicking_export_is_shown_and_nothing_stays_running() {
    let out = tempfile::tempdir().unwrap();
    let avg = "tests/fixtures/demo_reference/average_gradients.json";
    let argv = [
        "--average-gradients",
        avg,
        "--cross-metric",
        "assets/demo/patching_results/cross_metric_summary.json",
        "--useful-neurons",
        "assets/demo/useful_neurons.json",
        "--output-dir",
        out.path().to_str().unwrap(),
    ];
    let mut ex = explorer_with_faults(&argv, Faults { panic_in_export: true, ..Faults::default() });
    ex.settle(LONG).unwrap();
    press(&mut ex, "e");
    ex.settle(LONG).unwrap();
    let msg = ex.app.message().unwrap().to_string();
    assert!(msg.starts_with("export failed") && msg.contains("export thread panicked"), "{msg}");
    assert_eq!(ex.app.export().state(), &ExportState::Idle);
}

#[test]
fn snapshots_at_three_sizes() {
    let mut ex = demo_from_files(&[]);
    let small = screen_text(&render(&mut ex, 100, 30));
    insta::assert_snapshot!("demo_100x30", small);
    let common = screen_text(&render(&mut ex, 80, 24));
    insta::assert_snapshot!("demo_80x24", common);
    let large = screen_text(&render(&mut ex, 180, 50));
    insta::assert_snapshot!("demo_180x50", large);
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn export_writes_the_same_bytes_as_extract() {
    let out = tempfile::tempdir().unwrap();
    let mut ex = demo_from_files(&["--output-dir", out.path().to_str().unwrap()]);
    press(&mut ex, "K3<enter>]e");
    ex.settle(LONG).unwrap();
    assert!(ex.app.message().unwrap_or("").starts_with("exported"), "{:?}", ex.app.message());
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
    let mut ex = explorer(&[
        "--agent-path",
        fixture("demo").to_str().unwrap(),
        "--output-dir",
        out.path().to_str().unwrap(),
        "--k",
        "3",
        "--m",
        "5",
    ]);
    ex.settle(LONG).unwrap();
    assert!(!ex.app.data().provisional());
    press(&mut ex, "e");
    ex.settle(LONG).unwrap();
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
    let dir = long_demo(200); // 8,000 inputs
    let mut ex = explorer(&["--agent-path", dir.path().to_str().unwrap(), "--batch-size", "4"]);
    assert!(ex.wait_until(LONG, |a| a.data().provisional()), "no provisional averages");
    assert!(ex.app.data().shown().unwrap().num_examples.unwrap() < 8000);
    // The UI is usable on provisional averages: the selection updates.
    press(&mut ex, "+");
    assert!(!ex.app.knobs().selection().weights.is_empty());
    // Export refuses provisional averages.
    press(&mut ex, "e");
    assert!(ex.app.message().unwrap().contains("provisional"));
    // Esc cancels the run.
    press(&mut ex, "<esc>");
    ex.settle(LONG).unwrap();
    assert!(matches!(ex.app.run().status(), Status::Cancelled(Some(_))), "{:?}", ex.app.run().status());
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("cancelled after"), "{s}");
}

#[test]
fn failures_are_shown_not_crashed() {
    let dir = copy_fixture("acrobot");
    std::fs::write(dir.path().join("activation_inputs/clean_inputs.json"), r#"{"a": {"input": [1, 2]}}"#).unwrap();
    let mut ex = explorer(&["--agent-path", dir.path().to_str().unwrap()]);
    ex.settle(LONG).unwrap();
    let s = screen_text(&render(&mut ex, 160, 40));
    assert!(s.contains("The pipeline failed"), "{s}");
    assert!(s.contains("expected a list of 6 values, found 2"), "{s}");
}

#[test]
fn panicking_workers_are_shown_not_hidden() {
    let acro = fixture("acrobot");
    let mut ex = explorer_with_faults(
        &["--agent-path", acro.to_str().unwrap()],
        Faults { panic_in_pipeline: true, ..Faults::default() },
    );
    ex.settle(LONG).unwrap();
    let s = screen_text(&render(&mut ex, 160, 40));
    assert!(s.contains("The pipeline failed") && s.contains("pipeline thread panicked"), "{s}");
    // R runs it again (and it panics again: still shown, not stuck).
    press(&mut ex, "R");
    ex.settle(LONG).unwrap();
    assert!(matches!(ex.app.run().status(), Status::Failed(_)));
    // The evidence engine panicking on its first request: the evidence line says so.
    let mut ex = explorer_with_faults(
        &["--agent-path", acro.to_str().unwrap()],
        Faults { panic_in_evidence: true, ..Faults::default() },
    );
    assert!(ex.wait_until(LONG, |a| matches!(a.evidence().status(), EvidenceStatus::Failed(_))), "not reported");
    let t = render(&mut ex, 160, 40);
    assert!(line(&t, 2).contains("evidence failed: the evidence thread panicked"), "{}", line(&t, 2));
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

#[test]
fn evidence_line_follows_k_and_m_and_equals_saliency_ablate() {
    let mut ex = demo_with_evidence(&[]);
    let l = line(&render(&mut ex, 200, 60), 2);
    assert!(l.contains("zeroing the selection (40 inputs) · flips 55% (random 7%, pct 100)"), "{l}");
    assert!(l.contains("Q drop"), "the drop is named by the target: {l}");
    assert!(!l.contains("updating"), "{l}");
    // The same numbers as `saliency ablate` on the same selection (zero, 20 draws, seed 0).
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["ablate", "-q", "--k", "2", "--m", "4", "--agent-path", "assets/demo", "--output-dir"])
        .arg(out.path())
        .assert()
        .success();
    let file = read_json(&out.path().join("ablation.json"));
    let Some((Some(e), _)) = ex.app.evidence().line() else { panic!("no evidence") };
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
    let effects = ex.app.update(Action::KUp);
    assert!(matches!(effects[..], [Effect::Evidence(_)]), "{effects:?}");
    assert!(line(&render(&mut ex, 200, 60), 2).contains("updating ..."));
    assert!(ex.apply(effects));
    assert!(ex.wait_until(LONG, line_current));
    assert!(!line(&render(&mut ex, 200, 60), 2).contains("updating"));
    let Some((Some(after), _)) = ex.app.evidence().line() else { panic!("no evidence") };
    assert_ne!(after, &before, "k=3 should change the evidence");
    assert_eq!(after.num_weights, ex.app.knobs().selection().weights.len());
    // m to 0 and k to 0: nothing selected.
    press(&mut ex, "M0<enter>K0<enter>");
    assert!(ex.wait_until(LONG, line_current));
    assert!(screen_text(&render(&mut ex, 200, 60)).contains("nothing selected"));
}

#[test]
fn the_evidence_line_never_gets_stuck_behind_a_neuron_request() {
    // Tab to the selected weights, Enter on one (the neuron view asks for its own evidence),
    // + (k=3: a line request and a neuron request at once), Esc: the line must show k=3's
    // numbers, not stay "updating ..." (one kind of request never displaces the other).
    let mut ex = demo_with_evidence(&[]);
    press(&mut ex, "<tab><tab><enter>");
    assert!(matches!(ex.app.popup(), Some(Popup::Neuron { .. })));
    let effects = ex.app.update(Action::KUp);
    assert_eq!(effects.len(), 2, "a line request and a neuron request: {effects:?}");
    assert!(ex.apply(effects));
    press(&mut ex, "<esc>");
    assert!(ex.wait_until(LONG, line_current), "the line stayed stale");
    let Some((Some(e), false)) = ex.app.evidence().line() else { panic!("no evidence") };
    assert_eq!(e.num_weights, ex.app.knobs().selection().weights.len(), "k=3's selection");
    let l = line(&render(&mut ex, 200, 60), 2);
    assert!(l.contains("flips") && !l.contains("updating"), "{l}");
}

#[test]
fn neuron_view_shows_what_zeroing_its_selected_weights_does() {
    let mut ex = demo_with_evidence(&[]);
    let effects = {
        press(&mut ex, "<tab><tab>");
        ex.app.update(Action::Open)
    };
    assert!(matches!(ex.app.popup(), Some(Popup::Neuron { .. })));
    assert!(
        effects.iter().any(|e| matches!(e, Effect::Evidence(r) if matches!(
            r.question,
            saliency::study::evidence::Question::Neuron { .. }
        ))),
        "{effects:?}"
    );
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("zeroing its selected weights: computing"), "{s}");
    assert!(ex.apply(effects));
    let Some(Popup::Neuron { param, row }) = ex.app.popup().cloned() else { panic!() };
    assert!(ex.wait_until(LONG, |a| a.evidence().neuron(param, row).is_some_and(|(_, stale)| !stale)));
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("zeroing its selected weights: flips"), "{s}");
}

#[test]
fn ablate_key_exports_ablation_json_as_saliency_ablate_writes_it() {
    let out = tempfile::tempdir().unwrap();
    let mut ex = demo_with_evidence(&["--output-dir", out.path().to_str().unwrap(), "--random", "5", "--seed", "3"]);
    press(&mut ex, "A");
    ex.settle(LONG).unwrap();
    let msg = ex.app.message().unwrap_or_default().to_string();
    assert!(msg.starts_with("exported") && msg.contains("ablation.json (flips"), "{msg}");
    // The explorer's --random and --seed are `ablate`'s.
    let cli = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["ablate", "-q", "--random", "5", "--seed", "3", "--agent-path", "assets/demo", "--candidates"])
        .arg(out.path().join("candidate_weights.json"))
        .arg("--output-dir")
        .arg(cli.path())
        .assert()
        .success();
    assert!(read(&out.path().join("ablation.json")) == read(&cli.path().join("ablation.json")));
    // From files there is no model to ablate: a message, no crash.
    let mut files = demo_from_files(&[]);
    press(&mut files, "A");
    assert!(files.app.message().unwrap().contains("needs the agent"), "{:?}", files.app.message());
    assert!(screen_text(&render(&mut files, 200, 60)).contains("evidence: needs the agent"));
}

#[test]
fn the_full_ablation_can_be_cancelled() {
    let dir = long_demo(100); // 4,000 inputs
    let out = tempfile::tempdir().unwrap();
    let mut ex =
        explorer(&["--agent-path", dir.path().to_str().unwrap(), "--output-dir", out.path().to_str().unwrap()]);
    assert!(ex.wait_until(LONG, line_current), "no evidence");
    press(&mut ex, "A");
    let ablating =
        |a: &App| matches!(a.export().state(), ExportState::Running { stage } if stage.starts_with("ablating: "));
    assert!(ex.wait_until(LONG, ablating), "{:?}", ex.app.export().state());
    press(&mut ex, "<esc>");
    ex.settle(LONG).unwrap();
    assert_eq!(ex.app.message(), Some("export cancelled; no file was changed"));
    assert!(!out.path().join("ablation.json").exists());
    assert_eq!(ex.app.export().state(), &ExportState::Idle);
}

#[test]
fn measures_switch_live_and_the_selection_follows_magnitudes() {
    let out = tempfile::tempdir().unwrap();
    let mut ex = demo_with_evidence(&["--output-dir", out.path().to_str().unwrap()]);
    assert_eq!(ex.app.data().measure().name(), "mean-abs");
    let before = ex.app.knobs().selection().clone();
    assert!(line(&render(&mut ex, 200, 60), 0).contains("target q · measure mean-abs"));
    // mean (signed, not a magnitude): colours and statistics follow, the selection stays.
    press(&mut ex, "v");
    let data = ex.app.data();
    assert_eq!(data.measure().name(), "mean");
    assert_eq!(ex.app.knobs().selection(), &before, "a signed measure does not rank");
    let mean = data.measures().unwrap().get(saliency::pipeline::measures::Measure::Mean).unwrap();
    assert_eq!(data.shown().unwrap().params[0].data, mean[0].data);
    assert!(data.stats().iter().any(|s| s.min < 0.0), "signed values shown");
    // mean-sq (a magnitude): the selection ranks by it.
    press(&mut ex, "v");
    assert_eq!(ex.app.data().measure().name(), "mean-sq");
    assert_ne!(ex.app.knobs().selection(), &before);
    assert!(line(&render(&mut ex, 200, 60), 0).contains("measure mean-sq"));
    // The export ranks by the shown magnitude and writes the averages unchanged.
    press(&mut ex, "e");
    ex.settle(LONG).unwrap();
    let cand = read_json(&out.path().join("candidate_weights.json"));
    let t = &cand.get("weight_targets").unwrap().as_array().unwrap()[0];
    let layer = t.get("layer_name").unwrap().as_str().unwrap();
    let sq = ex.app.data().measures().unwrap().get(saliency::pipeline::measures::Measure::MeanSq).unwrap();
    let p = sq.iter().find(|p| p.name == layer).unwrap();
    let cols = p.rows_cols().1;
    let e = t.get("neuron_index").unwrap().as_i64().unwrap() as usize * cols
        + t.get("weight_index").unwrap().as_i64().unwrap() as usize;
    assert_eq!(t.get("gradient_magnitude").unwrap().as_f64().unwrap(), p.data[e]);
    let avgs = saliency::pipeline::average::Averages::read(&out.path().join("average_gradients.json")).unwrap();
    assert_eq!(avgs.params, ex.app.data().mean_abs().unwrap().params);
    // Back round to mean-abs after the ten.
    press(&mut ex, &"v".repeat(saliency::pipeline::measures::Measure::ALL.len() - 2));
    assert_eq!(ex.app.data().measure().name(), "mean-abs");
    assert_eq!(ex.app.knobs().selection(), &before);
}

#[test]
fn the_target_shows_and_changing_it_runs_again() {
    let mut ex = demo_with_evidence(&[]);
    let effects = ex.app.update(Action::CycleTarget);
    assert!(matches!(effects[..], [Effect::Run { target: Some(saliency::target::Target::Margin) }]), "{effects:?}");
    assert!(ex.app.run().running());
    assert!(line(&render(&mut ex, 200, 60), 0).contains("target margin"));
    assert!(ex.apply(effects));
    // The new run and the evidence engine for the new target both answer.
    assert!(ex.wait_until(LONG, |a| a.run().done() && line_current(a)), "{:?}", ex.app.run().status());
    assert!(line(&render(&mut ex, 200, 60), 2).contains("margin drop"));
    // From files the target cannot change.
    let mut files = demo_from_files(&[]);
    assert!(files.app.update(Action::CycleTarget).is_empty());
    assert!(files.app.message().unwrap().contains("cannot change"));
    // --target starts with it, and the run differentiates it.
    let mut ex = explorer(&["--agent-path", "assets/demo", "--target", "logsoftmax"]);
    ex.settle(LONG).unwrap();
    assert_eq!(ex.app.run().target(), saliency::target::Target::LogSoftmax);
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["run", "-q", "--raw-gradients", "none", "--target", "logsoftmax", "--agent-path", "assets/demo"])
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    let want = saliency::pipeline::average::Averages::read(&out.path().join("average_gradients.json")).unwrap();
    assert_eq!(ex.app.data().mean_abs().unwrap().params, want.params);
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
    let mut ex = demo_with_evidence(&["--feature-names", file.to_str().unwrap()]);
    press(&mut ex, "i");
    assert!(matches!(ex.app.popup(), Some(Popup::Inputs { index: 0 })));
    assert!(ex.wait_until(LONG, |a| a.evidence().input(0).is_some()));
    let s = screen_text(&render(&mut ex, 170, 48));
    assert!(s.contains("input saliency · target q · input 1/40 GridNav-0-"), "{s}");
    assert!(s.contains("MLP_input [106]: mean |d q / d input| over 40 inputs"), "{s}");
    // Bars sorted by saliency, labelled by name, with this input's value and gradient.
    let means = ex.app.inputs().means().unwrap();
    let top = (0..106).max_by(|&a, &b| means.mean_abs[0][a].total_cmp(&means.mean_abs[0][b])).unwrap();
    assert!(s.contains(&names[top]), "the most salient feature {} is not shown:\n{s}", names[top]);
    assert!(s.contains("value") && s.contains("grad"), "{s}");
    // Right: the next input.
    press(&mut ex, "<right>");
    assert!(ex.wait_until(LONG, |a| a.evidence().input(1).is_some()));
    assert!(screen_text(&render(&mut ex, 170, 48)).contains("input 2/40"));
    press(&mut ex, "i");
    assert!(ex.app.popup().is_none());

    // The CNN fixture: pictures of each channel, coloured.
    let mut ex = explorer(&["--agent-path", fixture("cnn").to_str().unwrap(), "--color", "truecolor"]);
    assert!(ex.wait_until(LONG, line_current));
    press(&mut ex, "i");
    assert!(ex.wait_until(LONG, |a| a.evidence().input(0).is_some()));
    let t = render(&mut ex, 170, 48);
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
    let mut ex = demo_with_evidence(&[]);
    press(&mut ex, "<tab><tab><enter>");
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(s.contains("signed mean beside") && s.contains(" mean "), "{s}");
    // The signed mean shown is the measure's value for that weight.
    let Some(Popup::Neuron { param, row }) = ex.app.popup().cloned() else { panic!() };
    let mean = &ex.app.data().measures().unwrap().get(saliency::pipeline::measures::Measure::Mean).unwrap()[param];
    let first = mean.row(row)[88];
    assert!(s.contains(&format!("mean {:>9}", saliency::format::num(first))), "{s}");
}

#[test]
fn a_ppo_agent_opens_and_switches_between_actor_and_critic() {
    let mut ex = explorer(&["--agent-path", fixture("ppo_cartpole").to_str().unwrap()]);
    assert!(ex.wait_until(LONG, line_current));
    let t = render(&mut ex, 200, 60);
    let head = line(&t, 0);
    assert!(head.contains("target logprob") && head.contains("PPO"), "{head}");
    assert!(line(&t, 2).contains("log-prob drop"), "the drop is named by the target: {}", line(&t, 2));
    let names: Vec<String> = ex.app.data().mean_abs().unwrap().params.iter().map(|p| p.name.clone()).collect();
    assert!(
        names.iter().all(|n| n.starts_with("mlp_extractor.policy_net.") || n.starts_with("action_net.")),
        "{names:?}"
    );
    // t: the critic next (actor or critic is the first question about a policy); the run for
    // the critic reports the critic's path.
    press(&mut ex, "t");
    assert!(ex.wait_until(LONG, |a| a.run().done() && line_current(a)));
    let names: Vec<String> = ex.app.data().mean_abs().unwrap().params.iter().map(|p| p.name.clone()).collect();
    assert!(
        names.iter().all(|n| n.starts_with("mlp_extractor.value_net.") || n.starts_with("value_net.")),
        "{names:?}"
    );
    let t = render(&mut ex, 200, 60);
    assert!(line(&t, 0).contains("target value"));
    assert!(line(&t, 2).contains("value drop"), "{}", line(&t, 2));
}

#[test]
fn v_validates_in_the_background_and_shows_measure_against_damage() {
    let mut ex = demo_with_evidence(&[]);
    ex.settle(LONG).unwrap();
    press(&mut ex, "V");
    assert!(ex.app.validation().running());
    ex.settle(LONG).unwrap();
    let v = ex.app.validation().done().expect("validated").clone();
    // The same numbers as `saliency validate` with the explorer's settings (the defaults).
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["validate", "-q", "--agent-path", "assets/demo", "--output-dir"])
        .arg(out.path())
        .assert()
        .success();
    let file = read_json(&out.path().join("validation.json"));
    let scores = file.get("measures").unwrap().as_array().unwrap();
    assert_eq!(scores.len(), v.scores.len());
    for (s, mine) in scores.iter().zip(&v.scores) {
        assert_eq!(s.get("measure").unwrap().as_str(), Some(mine.measure.name()));
        assert_eq!(s.get("spearman").unwrap().as_f64(), mine.spearman);
    }
    // The header names the best predictor, and the measure shown with its correlation.
    let best = v.best().unwrap();
    let header = line(&render(&mut ex, 200, 60), 0);
    assert!(header.contains(&format!("best predictor {}", best.measure.name())), "{header}");
    press(&mut ex, "vv");
    let m = ex.app.data().measure();
    let rho = v.scores.iter().find(|s| s.measure == m).unwrap().spearman.unwrap();
    let header = line(&render(&mut ex, 200, 60), 0);
    assert!(header.contains(&format!("measure {} ρ{rho:+.2}", m.name())), "{header}");
    // V again: the scatter of the measure shown; v moves to the next; V closes.
    press(&mut ex, "V");
    assert_eq!(ex.app.popup(), Some(&Popup::Scatter));
    let s = screen_text(&render(&mut ex, 200, 60));
    assert!(
        s.contains(&format!("{} against the damage of removing each of {} weights", m.name(), v.sample.len())),
        "{s}"
    );
    assert!(s.contains(&format!("Spearman {rho:+.3}")), "{s}");
    press(&mut ex, "v");
    let next = ex.app.data().measure();
    assert_ne!(next, m);
    assert!(screen_text(&render(&mut ex, 200, 60)).contains(&format!("{} against the damage", next.name())));
    press(&mut ex, "V");
    assert_eq!(ex.app.popup(), None);
}

#[test]
fn v_takes_the_sample_inputs_mode_and_seed_of_the_flags_as_validate_does() {
    let flags = ["--validate-sample", "64", "--validate-inputs", "10", "--mode", "scale:0.5", "--seed", "3"];
    let mut ex = demo_with_evidence(&flags);
    ex.settle(LONG).unwrap();
    press(&mut ex, "V");
    ex.settle(LONG).unwrap();
    let v = ex.app.validation().done().expect("validated").clone();
    assert_eq!((v.sample.len() >= 64, v.inputs), (true, 10));
    let out = tempfile::tempdir().unwrap();
    Command::cargo_bin("saliency")
        .unwrap()
        .args(["validate", "-q", "--agent-path", "assets/demo", "--sample", "64", "--inputs-sample", "10"])
        .args(["--mode", "scale:0.5", "--seed", "3", "--output-dir"])
        .arg(out.path())
        .assert()
        .success();
    let file = read_json(&out.path().join("validation.json"));
    let scores = file.get("measures").unwrap().as_array().unwrap();
    for (s, mine) in scores.iter().zip(&v.scores) {
        assert_eq!(s.get("measure").unwrap().as_str(), Some(mine.measure.name()));
        assert_eq!(s.get("spearman").unwrap().as_f64(), mine.spearman);
    }
    assert_eq!(file.get("sample").and_then(|s| s.as_array()).map(|s| s.len()), Some(v.sample.len()));
}

#[test]
fn v_on_averages_from_a_file_says_it_needs_the_agent() {
    let mut ex = demo_from_files(&[]);
    ex.settle(LONG).unwrap();
    press(&mut ex, "V");
    assert!(!ex.app.validation().running());
    assert!(ex.app.message().unwrap().contains("open it with --agent-path"), "{:?}", ex.app.message());
}
