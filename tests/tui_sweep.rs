//! The explorer of many agents against ratatui's TestBackend, through the event loop's step
//! (`handle`, `poll`, `draw`) and its real jobs, on a real sweep: the RL Zoo runs (three DQN
//! seeds and a PPO run with checkpoints) and a mixed folder of every algorithm, ablated.
//! Scripted keys for the table (filter, sort, mark, pin, only what differs, open and back),
//! the groups, saliency over training, and compare (the same numbers as sweep.json); a sweep
//! watched while it runs, ending with the same files as `saliency sweep`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use common::screen::{events, screen_text};
use common::*;
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use saliency::tui::color::{ColorMode, Colormap};
use saliency::tui::sweep::app::{Loadable, View};
use saliency::tui::sweep::table::Col;
use saliency::tui::sweep::SweepExplorer;
use saliency::tui::Screen;

const LONG: Duration = Duration::from_secs(180);

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn sweep_argv(out: &Path, mixed: &Path) -> Vec<String> {
    let zoo = fixture("zoo");
    let inputs = format!("CartPole-v1={}", s(&zoo.join("obs/CartPole-v1.npy")));
    [
        "sweep",
        "-q",
        s(&zoo.join("logs")),
        s(mixed),
        "--inputs",
        &inputs,
        "--output-dir",
        s(out),
        "--raw-gradients",
        "none",
        "--ablate",
        "--random",
        "5",
        "--validate",
        "--validate-sample",
        "48",
        "--validate-inputs",
        "8",
    ]
    .iter()
    .map(|x| x.to_string())
    .collect()
}

/// The folder of the one finished sweep every test of this file reads: `mixed/` (with a
/// broken zip) and `out/`, made once by the binary.
fn root() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let m = mixed_folder(tmp.path());
        let zip = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
        std::fs::write(m.join("broken.zip"), &zip[..zip.len() / 2]).unwrap();
        let o = std::process::Command::new(assert_cmd::cargo::cargo_bin("saliency"))
            .args(sweep_argv(&tmp.path().join("out"), &m))
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(3), "the broken zip fails: {}", String::from_utf8_lossy(&o.stderr));
        tmp
    })
    .path()
}

fn finished() -> PathBuf {
    root().join("out")
}

fn explorer() -> SweepExplorer {
    let mut ex = SweepExplorer::open(&finished(), Colormap::Viridis, ColorMode::TrueColor).unwrap();
    ex.start();
    ex
}

/// Types keys through the event loop's step (see `common::screen::events`).
fn press(ex: &mut SweepExplorer, script: &str) -> bool {
    events(script).into_iter().all(|e| ex.handle(e))
}

fn render(ex: &mut SweepExplorer, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    ex.draw(&mut t).unwrap();
    t
}

fn sweep_json() -> saliency::json::Value {
    read_json(&finished().join("sweep.json"))
}

fn rows_text(t: &Terminal<TestBackend>) -> Vec<String> {
    screen_text(t).lines().map(str::to_string).collect()
}

/// The visible entries' manifest positions.
fn shown(ex: &SweepExplorer) -> Vec<usize> {
    let t = ex.app.table();
    t.visible().iter().map(|&i| t.entries()[i].pos).collect()
}

/// Moves the column cursor to the column titled `title`.
fn to_column(ex: &mut SweepExplorer, title: &str) {
    press(ex, "<left><left><left><left><left><left><left><left><left><left><left><left>");
    for _ in 0..40 {
        if ex.app.table().current_col().title() == title {
            return;
        }
        press(ex, "<right>");
    }
    panic!("no column {title}");
}

#[test]
fn every_agent_is_a_row_with_a_distinct_readable_id_and_run() {
    let manifest: Vec<saliency::json::Value> = std::fs::read_to_string(finished().join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| saliency::json::reader::read_value_from(l.as_bytes(), "m").unwrap())
        .collect();
    assert_eq!(manifest.len(), 26, "20 zoo networks, 5 agents, a broken zip");
    let mut ex = explorer();
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        press(&mut ex, "g");
        let mut seen: Vec<String> = Vec::new();
        for _ in 0..10 {
            for line in rows_text(&render(&mut ex, w, h)).iter().skip(3).take(h as usize - 6) {
                let row: String = line.chars().skip(2).collect::<String>().trim_end().to_string();
                if !row.is_empty() && !seen.contains(&row) {
                    seen.push(row);
                }
            }
            press(&mut ex, "<pgdn>");
        }
        // Every manifest row is on screen once, its id a unique prefix of the agent's id.
        for m in &manifest {
            let id = m.get("agent_id").unwrap().as_str().unwrap();
            assert!(seen.iter().any(|l| id.starts_with(l.split(' ').next().unwrap())), "{w}x{h}: {id} not shown");
        }
        assert_eq!(seen.len(), 26, "{w}x{h}: {seen:#?}");
        // Runs are told apart by their shortest distinct ending.
        let screen = screen_text(&render(&mut ex, w, h));
        for run in ["ppo/CartPole-v1_1", "mixed/broken.zip"] {
            assert!(screen.contains(run) || seen.iter().any(|l| l.contains(run)), "{w}x{h}: {run}");
        }
        assert!(seen.iter().any(|l| l.contains("dqn/CartPole-v1_3")), "{seen:#?}");
    }
    // The failed zip is a row with its error under the table.
    press(&mut ex, "/broken<enter>");
    let screen = screen_text(&render(&mut ex, 160, 48));
    assert!(screen.contains("failed") && screen.contains("truncated or corrupt"), "{screen}");
}

#[test]
fn the_evidence_columns_show_sweep_json_flip_percentile_and_best_predictor() {
    let json = sweep_json();
    let mut ex = explorer();
    to_column(&mut ex, "predictor");
    press(&mut ex, "O"); // the highest correlation first
    let t = ex.app.table();
    let mut last = f64::INFINITY;
    let mut checked = 0;
    for &i in t.visible() {
        let e = &t.entries()[i];
        let cell = t.cell(i, Col::Predictor).text;
        // A duplicate (a best model that copies a checkpoint) is listed under its copy's id
        // with no numbers of its own: its row shows its original's.
        let agent = json.get("agents").unwrap().as_array().unwrap().iter().find(|a| {
            a.get("agent_id").and_then(|v| v.as_str()) == Some(e.row.agent_id.as_str()) && a.get("validation").is_some()
        });
        let Some(validation) = agent.and_then(|a| a.get("validation")).and_then(|v| v.as_object()) else {
            assert!(cell.is_empty(), "{}: no validation, yet {cell:?}", e.row.agent_id);
            continue;
        };
        // The best by sweep.json's numbers (ties by name).
        let (name, rho) = validation
            .iter()
            .filter_map(|(n, r)| Some((n.clone(), r.as_f64()?)))
            .fold(None, |b: Option<(String, f64)>, (n, r)| match b {
                Some((bn, br)) if br > r || (br == r && bn <= n) => Some((bn, br)),
                _ => Some((n, r)),
            })
            .unwrap();
        assert_eq!(cell, format!("{name} {rho:+.2}"), "{}", e.row.agent_id);
        // The ablation's columns: flip rate and percentile among the random draws, in %.
        let ablation = agent.and_then(|a| a.get("ablation")).unwrap();
        let pct = ablation.get("percentile").and_then(|v| v.as_f64()).unwrap();
        let flip = ablation.get("flip_rate").and_then(|v| v.as_f64()).unwrap();
        assert_eq!(t.cell(i, Col::Percentile).text, format!("{:.0}", 100.0 * pct), "{}", e.row.agent_id);
        assert_eq!(t.cell(i, Col::Flip).text, format!("{:.1}%", 100.0 * flip), "{}", e.row.agent_id);
        assert!(rho <= last, "sorted by the correlation, highest first");
        last = rho;
        checked += 1;
    }
    assert!(checked >= 20, "every analysed agent validated: {checked}");
    let screen = screen_text(&render(&mut ex, 160, 48));
    assert!(screen.contains("predictor"), "{screen}");
}

/// A left click at a cell of the last frame drawn.
fn click(ex: &mut SweepExplorer, x: usize, y: usize) {
    use crossterm::event::{Event, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
    let kind = MouseEventKind::Down(MouseButton::Left);
    ex.handle(Event::Mouse(MouseEvent { kind, column: x as u16, row: y as u16, modifiers: KeyModifiers::NONE }));
}

/// Where `needle` first starts on the screen from row `from` on (column, row), in cells.
fn find_on_screen(t: &Terminal<TestBackend>, needle: &str, from: usize) -> (usize, usize) {
    let lines = rows_text(t);
    for (y, line) in lines.iter().enumerate().skip(from) {
        let cells: Vec<char> = line.chars().collect();
        let n: Vec<char> = needle.chars().collect();
        if let Some(x) = cells.windows(n.len()).position(|w| w == n.as_slice()) {
            return (x, y);
        }
    }
    panic!("{needle} not on screen:\n{}", lines.join("\n"));
}

#[test]
fn clicks_sort_by_a_header_and_move_the_cursor_to_a_row() {
    let mut ex = explorer();
    let t = render(&mut ex, 160, 48);
    // (the header row is the third: under the title and the status line)
    let (x, header) = find_on_screen(&t, "step", 2);
    assert_eq!(header, 2);
    click(&mut ex, x, header);
    assert_eq!(ex.app.table().sort(), Some((Col::Step, false)), "a header click sorts by it");
    assert_eq!(ex.app.table().current_col(), Col::Step);
    let t = render(&mut ex, 160, 48);
    let steps: Vec<f64> = {
        let table = ex.app.table();
        table.visible().iter().filter_map(|&i| table.cell(i, Col::Step).text.parse().ok()).collect()
    };
    assert!(steps.windows(2).all(|w| w[0] <= w[1]) && steps.len() > 10, "ascending: {steps:?}");
    let (x2, _) = find_on_screen(&t, "step", header);
    click(&mut ex, x2 + 1, header);
    assert_eq!(ex.app.table().sort(), Some((Col::Step, true)), "again: descending");
    // A row: the cursor goes there, in the column clicked.
    render(&mut ex, 160, 48);
    press(&mut ex, "g");
    let top = ex.app.table().top();
    let (run_x, _) = find_on_screen(&render(&mut ex, 160, 48), "run", header);
    click(&mut ex, run_x, header + 4);
    assert_eq!((ex.app.table().cursor(), ex.app.table().current_col()), (top + 3, Col::Run));
    // Outside the table (the footer): nothing moves.
    click(&mut ex, 5, 47);
    assert_eq!(ex.app.table().cursor(), top + 3);
}

#[test]
fn a_double_click_on_a_row_opens_its_agent() {
    use saliency::tui::sweep::{double_click, DOUBLE_CLICK};
    use std::time::Instant;
    // The rule, on given instants: the second click on one row, soon enough.
    let t0 = Instant::now();
    let mut last = None;
    assert!(!double_click(&mut last, t0, Some(3)), "one click");
    assert!(double_click(&mut last, t0 + DOUBLE_CLICK / 2, Some(3)), "the second, soon, on that row");
    assert!(!double_click(&mut last, t0 + DOUBLE_CLICK, Some(3)), "a third starts anew");
    assert!(!double_click(&mut last, t0 + DOUBLE_CLICK * 3, Some(3)), "too late");
    assert!(!double_click(&mut last, t0 + DOUBLE_CLICK * 3, Some(4)), "another row");
    assert!(!double_click(&mut last, t0 + DOUBLE_CLICK * 3, None), "the header");
    assert!(!double_click(&mut last, t0 + DOUBLE_CLICK * 3, Some(4)), "a header click forgets the row");
    // Through the event loop: one click moves the cursor, two open the agent; a failed one says why.
    let mut ex = explorer();
    press(&mut ex, "/CartPole-v1_3<enter>");
    let (_, header) = find_on_screen(&render(&mut ex, 160, 48), "step", 2);
    click(&mut ex, 5, header + 2);
    assert!(ex.agent.is_none(), "one click only moves the cursor");
    assert_eq!(ex.app.table().cursor(), 1);
    click(&mut ex, 5, header + 2);
    assert!(ex.agent.is_some(), "a double click opens the agent");
    ex.settle(LONG).unwrap();
    press(&mut ex, "<esc>");
    assert!(ex.agent.is_none());
    press(&mut ex, "<esc>/broken<enter>");
    render(&mut ex, 160, 48);
    click(&mut ex, 5, header + 1);
    click(&mut ex, 5, header + 1);
    assert!(ex.agent.is_none());
    assert!(ex.app.message().unwrap().contains("failed"), "{:?}", ex.app.message());
}

#[test]
fn filter_sort_mark_and_their_status() {
    let mut ex = explorer();
    press(&mut ex, "/cartpole-v1_2<enter>");
    assert_eq!(shown(&ex).len(), 5, "case-insensitive: the five networks of seed 2");
    let screen = screen_text(&render(&mut ex, 120, 30));
    assert!(screen.contains("5 of 26 rows") && screen.contains("filter /cartpole-v1_2"), "{screen}");
    press(&mut ex, "<esc>");
    assert_eq!(shown(&ex).len(), 26, "Esc clears the filter");
    press(&mut ex, "/!dqn<enter>");
    let t = ex.app.table();
    let text = |i: usize| {
        let r = &t.entries()[i].row;
        format!("{} {}", r.path, r.algorithm.clone().unwrap_or_default()).to_lowercase()
    };
    assert!(t.visible().iter().all(|&i| !text(i).contains("dqn")));
    assert_eq!(shown(&ex).len(), 9, "a2c, maskable_ppo, ppo_cartpole, broken.zip, and the 5 PPO networks");
    // A bad expression keeps the prompt open and says why.
    press(&mut ex, "/(<enter>");
    assert!(ex.app.filter_prompt().is_some());
    assert!(ex.app.message().unwrap().contains("not a regular expression"));
    let screen = screen_text(&render(&mut ex, 120, 30));
    assert!(screen.contains("not a regular expression") && screen.contains("filter /!dqn("), "{screen}");
    press(&mut ex, "<esc><esc>");
    assert_eq!(shown(&ex).len(), 26);
    // Sort by the step column: ascending, missing steps last; O descending; o twice: unsorted.
    to_column(&mut ex, "step");
    press(&mut ex, "o");
    let steps: Vec<Option<u64>> =
        ex.app.table().visible().iter().map(|&i| ex.app.table().entries()[i].row.step).collect();
    let known: Vec<u64> = steps.iter().flatten().copied().collect();
    assert!(known.windows(2).all(|w| w[0] <= w[1]) && steps[known.len()..].iter().all(Option::is_none), "{steps:?}");
    assert!(screen_text(&render(&mut ex, 120, 30)).contains("sorted by step ↑"));
    press(&mut ex, "O");
    let down: Vec<u64> =
        ex.app.table().visible().iter().filter_map(|&i| ex.app.table().entries()[i].row.step).collect();
    assert!(down.windows(2).all(|w| w[0] >= w[1]), "{down:?}");
    press(&mut ex, "OO");
    // Sorting by a layer column orders by that layer's share.
    to_column(&mut ex, "");
    press(&mut ex, "O");
    let t = ex.app.table();
    let Col::Layer(l) = t.current_col() else { panic!("not a layer column") };
    let shares: Vec<f64> = t.visible().iter().filter_map(|&i| t.entries()[i].share(l)).collect();
    assert!(shares.len() > 3 && shares.windows(2).all(|w| w[0] >= w[1]), "{shares:?}");
    // Marks: the row shows it, the cursor moves on, u clears them.
    press(&mut ex, "g<space><space>");
    assert_eq!(ex.app.table().marks().len(), 2);
    let screen = screen_text(&render(&mut ex, 120, 30));
    assert_eq!(screen.matches('✓').count(), 2, "{screen}");
    assert!(screen.contains("2 marked"));
    press(&mut ex, "u");
    assert!(ex.app.table().marks().is_empty());
}

#[test]
fn a_pinned_baseline_and_only_the_layers_that_differ() {
    let mut ex = explorer();
    press(&mut ex, "/dqn/CartPole-v1_1<enter>");
    // The final model, first in the run, pinned: its own layer cells are +0.0.
    press(&mut ex, "gp");
    let t = ex.app.table();
    let pinned = t.pin().unwrap();
    assert_eq!(t.entries()[pinned].row.kind.name(), "final");
    let screen = screen_text(&render(&mut ex, 160, 30));
    assert!(screen.contains("baseline 24ef38") || screen.contains("baseline"), "{screen}");
    let pinned_line = screen.lines().find(|l| l.contains('◆')).unwrap();
    assert!(pinned_line.contains("+0.0"), "{pinned_line}");
    // Differences from the baseline, in points, are what the cells show.
    let t = ex.app.table();
    let layers = t.layers().to_vec();
    let w0 = layers.iter().position(|n| n == "q_net.0.weight").unwrap();
    let first_cp = t.visible().iter().copied().find(|&i| t.entries()[i].row.step == Some(1000)).unwrap();
    let d = t.entries()[first_cp].share(w0).unwrap() - t.entries()[pinned].share(w0).unwrap();
    assert_eq!(t.cell(first_cp, Col::Layer(w0)).text, format!("{:+.1}", 100.0 * d));
    // d: only the layers that differ from the baseline by more than 5 points.
    press(&mut ex, "d");
    let t = ex.app.table();
    let cols: Vec<String> = t
        .columns()
        .iter()
        .filter_map(|c| match c {
            Col::Layer(l) => Some(layers[*l].clone()),
            _ => None,
        })
        .collect();
    assert!(cols.contains(&"q_net.0.weight".to_string()), "{cols:?}");
    assert!(!cols.contains(&"q_net.4.bias".to_string()), "under a point apart: {cols:?}");
    assert!(!cols.iter().any(|c| c.starts_with("mlp_extractor")), "not in these networks: {cols:?}");
    assert!(screen_text(&render(&mut ex, 160, 30)).contains("only layers differing > 5.00%"));
    press(&mut ex, "-----");
    assert!(ex.app.table().columns().len() > Col::BASE.len() + cols.len(), "a lower threshold shows more");
    press(&mut ex, "dgp");
    assert_eq!(ex.app.table().pin(), None, "p again unpins");
}

/// Moves the cursor to the row of manifest position `pos`.
fn to_row(ex: &mut SweepExplorer, pos: usize) {
    press(ex, "g");
    for _ in 0..40 {
        if ex.app.table().current().map(|e| e.pos) == Some(pos) {
            return;
        }
        press(ex, "<down>");
    }
    panic!("row {pos} not shown");
}

fn position(ex: &SweepExplorer, run: &str, kind: &str, step: Option<u64>) -> usize {
    ex.app
        .table()
        .entries()
        .iter()
        .find(|e| e.row.run.ends_with(run) && e.row.kind.name() == kind && e.row.step == step)
        .unwrap_or_else(|| panic!("{run} {kind} {step:?}"))
        .pos
}

#[test]
fn compare_two_checkpoints_gives_the_numbers_of_sweep_json() {
    let sweep = sweep_json();
    let runs = sweep.get("runs").unwrap().as_array().unwrap();
    let run = runs.iter().find(|r| r.get("run").unwrap().as_str().unwrap().ends_with("dqn/CartPole-v1_2")).unwrap();
    let cp = &run.get("checkpoints").unwrap().as_array().unwrap()[0];
    assert_eq!(cp.get("step").unwrap().as_i64(), Some(1000));
    let rho = cp.get("spearman").unwrap().as_f64().unwrap();
    let overlap = cp.get("top_overlap").unwrap().as_f64().unwrap();
    let chance = run.get("chance_overlap").unwrap().as_f64().unwrap();
    let mut ex = explorer();
    let (a, b) = (
        position(&ex, "dqn/CartPole-v1_2", "checkpoint", Some(1000)),
        position(&ex, "dqn/CartPole-v1_2", "final", None),
    );
    to_row(&mut ex, a);
    press(&mut ex, "<space>");
    to_row(&mut ex, b);
    press(&mut ex, "C");
    ex.settle(LONG).unwrap();
    let Some(Loadable::Ready(cmp)) = ex.app.compare().map(|c| &c.data) else { panic!("no comparison") };
    let w = cmp.weights.as_ref().unwrap();
    assert_eq!((w.spearman, w.top_overlap, w.chance_overlap), (Some(rho), overlap, chance), "sweep.json's numbers");
    let screen = screen_text(&render(&mut ex, 120, 36));
    assert!(screen.contains(&format!("Spearman {rho:.3}")), "{screen}");
    assert!(screen.contains(&format!("top-100 overlap {}", saliency::format::num(overlap))), "{screen}");
    assert!(screen.contains(&format!("(chance {})", saliency::format::num(chance))), "{screen}");
    assert!(screen.contains("A − B") && screen.contains("only A"), "{screen}");
    // The heatmap marks the selections: every selected pixel has one of the three colours.
    press(&mut ex, "s");
    assert!(screen_text(&render(&mut ex, 120, 36)).contains("log10(A / B)"));
    // A layer further down, then back to the table as it was.
    press(&mut ex, "<down><down>");
    assert_eq!(ex.app.compare().unwrap().layer, 2);
    let screen = screen_text(&render(&mut ex, 120, 36));
    assert!(screen.contains("q_net.2.weight ["), "{screen}");
    press(&mut ex, "<esc>");
    assert!(ex.app.compare().is_none());
    assert_eq!(ex.app.table().current().unwrap().pos, b);
    assert_eq!(ex.app.table().marks().len(), 1);
}

#[test]
fn compare_two_architectures_says_why_and_shows_the_shares() {
    let mut ex = explorer();
    let (a, b) = (position(&ex, "dqn/CartPole-v1_1", "final", None), position(&ex, "ppo/CartPole-v1_1", "final", None));
    to_row(&mut ex, a);
    press(&mut ex, "<space>");
    to_row(&mut ex, b);
    press(&mut ex, "C");
    ex.settle(LONG).unwrap();
    let screen = screen_text(&render(&mut ex, 120, 36));
    assert!(screen.contains("no per-weight comparison"), "{screen}");
    assert!(screen.contains("parameter tensors") || screen.contains("parameters differ"), "{screen}");
    // Both networks' layers, each with its share and a dash where the other has none.
    for layer in ["q_net.0.weight", "action_net.weight"] {
        let line = screen.lines().find(|l| l.contains(layer)).unwrap_or_else(|| panic!("{layer}: {screen}"));
        assert!(line.contains(" - "), "{line}");
    }
    // One mark, no second agent: says how to compare.
    press(&mut ex, "<esc>uC");
    assert!(ex.app.compare().is_none());
    assert!(ex.app.message().unwrap().contains("mark two agents"));
}

#[test]
fn enter_opens_the_agent_and_esc_comes_back_to_the_table_as_it_was() {
    let mut ex = explorer();
    press(&mut ex, "/CartPole-v1_3<enter>");
    to_column(&mut ex, "step");
    press(&mut ex, "O<down>");
    let (filter, sort, cursor) =
        (ex.app.table().filter().unwrap().text.clone(), ex.app.table().sort(), ex.app.table().current().unwrap().pos);
    press(&mut ex, "<enter>");
    let agent = ex.agent.as_ref().expect("the agent is open");
    assert!(agent.app.message().unwrap().contains("Esc comes back"));
    ex.settle(LONG).unwrap();
    let screen = screen_text(&render(&mut ex, 120, 36));
    assert!(screen.contains("dqn/CartPole-v1_3") || screen.contains("CartPole-v1_3"), "{screen}");
    assert!(screen.contains("q_net"), "the agent's layers: {screen}");
    // k and m work in the opened agent (its evidence engine runs the zip).
    let before = ex.agent.as_ref().unwrap().app.knobs().selection().weights.len();
    press(&mut ex, "]");
    assert_eq!(ex.agent.as_ref().unwrap().app.knobs().selection().weights.len(), before + 1);
    // The help closes with Esc first; the next Esc leaves the agent.
    press(&mut ex, "?<esc>");
    assert!(ex.agent.is_some());
    press(&mut ex, "<esc>");
    assert!(ex.agent.is_none());
    let t = ex.app.table();
    assert_eq!((t.filter().unwrap().text.clone(), t.sort(), t.current().unwrap().pos), (filter, sort, cursor));
    // A failed agent does not open, and says why.
    press(&mut ex, "<esc>/broken<enter><enter>");
    assert!(ex.agent.is_none());
    assert!(ex.app.message().unwrap().contains("failed"), "{:?}", ex.app.message());
}

#[test]
fn groups_show_intervals_and_training_shows_each_checkpoint() {
    let sweep = sweep_json();
    let mut ex = explorer();
    press(&mut ex, "<tab>");
    assert_eq!(ex.app.view(), View::Groups);
    let screen = screen_text(&render(&mut ex, 140, 60));
    let groups = sweep.get("groups").unwrap().as_array().unwrap();
    let dqn = groups.iter().find(|g| g.get("n").unwrap().as_i64() == Some(3)).unwrap();
    let name = dqn.get("group").unwrap().as_str().unwrap();
    assert!(screen.contains(&format!("{name}  n=3")), "{screen}");
    let l0 = &dqn.get("layers").unwrap().as_array().unwrap()[0];
    let iv = l0.get("interval").unwrap().as_array().unwrap();
    let text = format!(
        "{:.1}% [{:.1}%, {:.1}%]",
        100.0 * l0.get("iqm").unwrap().as_f64().unwrap(),
        100.0 * iv[0].as_f64().unwrap(),
        100.0 * iv[1].as_f64().unwrap()
    );
    assert!(screen.contains(&text), "{text}: {screen}");
    assert!(screen.contains('●') && screen.contains('━'), "drawn as intervals");
    // The measure that best predicts damage across the seeds, as sweep.json has it.
    let validation = dqn.get("validation").unwrap().as_array().unwrap();
    let best = validation
        .iter()
        .filter_map(|v| Some((v.get("measure")?.as_str()?, v.get("iqm")?.as_f64()?)))
        .fold(None, |b: Option<(&str, f64)>, (m, r)| match b {
            Some((bm, br)) if br > r || (br == r && bm <= m) => Some((bm, br)),
            _ => Some((m, r)),
        })
        .unwrap();
    let text = format!("best predictors of damage (Spearman): {} {:.3}", best.0, best.1);
    assert!(screen.contains(&text), "{text}: {screen}");
    press(&mut ex, "<tab>");
    assert_eq!(ex.app.view(), View::Training);
    ex.settle(LONG).unwrap();
    let screen = screen_text(&render(&mut ex, 140, 44));
    let run = &sweep.get("runs").unwrap().as_array().unwrap()[0];
    assert!(screen.contains("dqn/CartPole-v1_1"), "{screen}");
    for cp in run.get("checkpoints").unwrap().as_array().unwrap() {
        let rho = cp.get("spearman").unwrap().as_f64().unwrap();
        assert!(screen.contains(&format!("{rho:.2}")), "{rho:.2}: {screen}");
    }
    assert!(screen.contains("evaluation reward") && screen.contains("final"), "{screen}");
    // The next run.
    press(&mut ex, "<down>");
    ex.settle(LONG).unwrap();
    let Loadable::Ready(t) = ex.app.training() else { panic!("not loaded") };
    assert!(t.run.ends_with("dqn/CartPole-v1_2"));
}

#[test]
fn help_and_footer_come_from_the_keymap_of_each_view() {
    use saliency::tui::keymap::{Scope, SWEEP_KEYMAP};
    let mut ex = explorer();
    press(&mut ex, "?");
    let screen = screen_text(&render(&mut ex, 120, 50));
    for b in SWEEP_KEYMAP.iter().filter(|b| matches!(b.scope, Scope::Global | Scope::Agents)) {
        assert!(screen.contains(b.help), "{}: {screen}", b.help);
    }
    assert!(!screen.contains("log10 ratio"), "the comparison's keys are not this view's");
    press(&mut ex, "<esc>");
    let screen = screen_text(&render(&mut ex, 120, 30));
    for (key, hint) in saliency::tui::keymap::hints_of(SWEEP_KEYMAP, &[Scope::Global, Scope::Agents]).iter().take(5) {
        assert!(screen.contains(&format!("{key} {hint}")), "{key} {hint}: {screen}");
    }
}

#[test]
fn a_watched_sweep_fills_in_while_it_runs_and_ends_with_the_files_of_sweep() {
    use clap::Parser;
    let out = root().join("live-out");
    let mut argv = vec!["saliency".to_string()];
    argv.extend(sweep_argv(&out, &root().join("mixed")));
    argv.extend(["--jobs".into(), "1".into()]);
    let cli = saliency::cli::Cli::parse_from(argv);
    let Some(saliency::cli::Command::Sweep(args)) = &cli.command else { panic!() };
    let req = saliency::commands::sweep::request(args).unwrap();
    let mut ex = SweepExplorer::live(req, Colormap::Viridis, ColorMode::TrueColor);
    ex.start();
    // The rows arrive first, pending, and the table works before the end.
    assert!(ex.wait_until(LONG, |e| !e.app.table().is_empty()));
    let pending = ex.app.table().entries().iter().filter(|e| e.row.status.name() == "pending").count();
    assert!(pending > 10, "{pending}");
    press(&mut ex, "<down>/dqn<enter>");
    assert!(ex.app.table().filter().is_some());
    let screen = screen_text(&render(&mut ex, 120, 30));
    assert!(screen.contains("analysing:"), "{screen}");
    // Saliency over training fills in too: a run shows once its final model and a checkpoint
    // are analysed, before the sweep ends.
    // The groups of the agents done so far, kept up to date as more finish.
    press(&mut ex, "<tab>");
    assert_eq!(ex.app.view(), View::Groups);
    let running = |e: &SweepExplorer| e.app.live_part().is_some_and(|l| l.running);
    let done = |e: &SweepExplorer| e.app.live_part().map_or(0, |l| l.done);
    ex.wait_until(LONG, |e| !running(e) || !e.app.groups().is_empty());
    let seen = done(&ex);
    ex.wait_until(LONG, |e| !running(e) || done(e) > seen);
    assert!(running(&ex), "the sweep still runs after a group formed and one more agent finished");
    assert!(!ex.app.groups().is_empty(), "the groups stay shown as agents finish");
    press(&mut ex, "<tab>");
    assert_eq!(ex.app.view(), View::Training);
    let live_curve = std::cell::RefCell::new(None);
    ex.wait_until(LONG, |e| {
        let running = e.app.live_part().is_some_and(|l| l.running);
        if let (true, Loadable::Ready(t)) = (running, e.app.training()) {
            *live_curve.borrow_mut() = Some(t.clone());
        }
        !running || live_curve.borrow().is_some()
    });
    let live_curve = live_curve.into_inner().expect("a training curve while the sweep runs");
    assert!(live_curve.points.len() >= 2, "{:?}", live_curve.points.len());
    press(&mut ex, "<tab>");
    ex.settle(LONG).unwrap();
    let live = ex.app.live_part().unwrap();
    assert_eq!(live.ending.as_deref(), Some("sweep finished; 1 failed"));
    assert_eq!(ex.app.table().filter().unwrap().text, "dqn", "the filter survives the end");
    assert!(!ex.app.results().groups.is_empty() && !ex.app.results().runs.is_empty());
    // The live curve's numbers are the final ones for the checkpoints it had.
    let run = ex.app.results().runs.iter().find(|r| r.run == live_curve.run).expect("the live run");
    for p in &live_curve.points {
        let c = run.checkpoints.iter().find(|c| c.agent_id == p.agent_id && c.step == p.step).unwrap();
        assert_eq!((p.spearman, p.top_overlap), (c.spearman, c.top_overlap), "{}", p.agent_id);
    }
    for f in ["manifest.jsonl", "sweep.json", "sweep.csv"] {
        assert_eq!(std::fs::read(out.join(f)).unwrap(), std::fs::read(finished().join(f)).unwrap(), "{f}");
    }
}
