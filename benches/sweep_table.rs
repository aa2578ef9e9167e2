//! The agents table of a synthetic sweep of 5,000 agents (written by the sweep's own writers:
//! manifest.jsonl and sweep.json, 12 layers each, 50 groups): opening the folder and drawing
//! the first frame, and a key press with its redraw at 160 x 48 (cursor, page, sort by a
//! layer, a filter, a mark, the pin).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use saliency::study::sweep::agent::{AblationSummary, AgentSummary, LayerSummary};
use saliency::study::sweep::discover::Kind;
use saliency::study::sweep::manifest::{self, Row, Status};
use saliency::study::sweep::{summary, SummaryFlags};
use saliency::tui::color::{ColorMode, Colormap};
use saliency::tui::sweep::SweepExplorer;
use saliency::tui::Screen;

const AGENTS: usize = 5_000;
const LAYERS: usize = 12;

/// A sweep of `AGENTS` agents in `out`: 50 runs of 100 checkpoints, written as a sweep writes.
fn synthetic(out: &Path) {
    let mut next = common::uniform(0x2545_F491_4F6C_DD1D);
    let mut rows = Vec::new();
    let mut summaries = BTreeMap::new();
    for i in 0..AGENTS {
        let (run, step) = (i / 100, (i % 100 + 1) as u64 * 10_000);
        let id = format!("{:016x}", (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rows.push(Row {
            agent_id: id.clone(),
            path: format!("logs/dqn/Env{}-v0_{}/rl_model_{step}_steps.zip", run % 10, run),
            kind: if i % 100 == 99 { Kind::Final } else { Kind::Checkpoint },
            run: format!("logs/dqn/Env{}-v0_{}", run % 10, run),
            step: (i % 100 != 99).then_some(step),
            algorithm: Some("DQN".into()),
            environment: Some(format!("Env{}-v0", run % 10)),
            seed: Some(run as i64),
            group: format!("DQN/Env{}-v0/0000abcd", run % 10),
            inputs: "obs.npy".into(),
            candidates: "saliency:10".into(),
            vec_normalize: "none".into(),
            duplicate_of: None,
            status: Status::Ok,
            error: None,
        });
        let raw: Vec<f64> = (0..LAYERS).map(|_| next() + 0.01).collect();
        let total: f64 = raw.iter().sum();
        let layers = raw
            .iter()
            .enumerate()
            .map(|(l, v)| LayerSummary {
                name: format!("q_net.q_net.{}.{}", l / 2, if l % 2 == 0 { "weight" } else { "bias" }),
                share: v / total,
                mean: *v,
                max: 2.0 * v,
                selected: (next() * 5.0) as usize,
            })
            .collect();
        let ablation = Some(AblationSummary {
            flip_rate: next(),
            mean_target_drop: next(),
            random_flip_rate: Some(0.1),
            percentile: Some(95.0),
        });
        summaries.insert(
            id.clone(),
            AgentSummary { agent_id: id, inputs: 1000, gini: next(), layers, ablation, validation: None },
        );
    }
    let flags = SummaryFlags {
        select_by: None,
        ablate: true,
        validate: false,
        top: 100,
        bootstrap: 200,
        seed: 0,
        digest: "bench".into(),
    };
    let groups = summary::groups(&rows, &summaries, &flags);
    std::fs::create_dir_all(out).unwrap();
    manifest::write(&out.join(manifest::MANIFEST), &rows).unwrap();
    summary::write_json(&out.join(summary::SWEEP_JSON), &rows, &summaries, &groups, &[], &flags).unwrap();
}

fn key(code: KeyCode) -> Event {
    let mods = match code {
        KeyCode::Char(c) if c.is_ascii_uppercase() => KeyModifiers::SHIFT,
        _ => KeyModifiers::NONE,
    };
    Event::Key(KeyEvent::new(code, mods))
}

fn bench(c: &mut Criterion) {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    synthetic(&out);
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut g = c.benchmark_group("sweep_table_5000");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("open the folder and draw the first frame", |b| {
        b.iter(|| {
            let mut ex = SweepExplorer::open(&out, Colormap::Viridis, ColorMode::TrueColor).unwrap();
            ex.draw(&mut term).unwrap();
            ex
        })
    });
    g.finish();
    let mut ex = SweepExplorer::open(&out, Colormap::Viridis, ColorMode::TrueColor).unwrap();
    ex.start();
    ex.draw(&mut term).unwrap();
    // The cursor on the first layer column, for the sorts.
    for _ in 0..5 {
        ex.handle(key(KeyCode::Right));
    }
    let mut g = c.benchmark_group("sweep_table_5000_key_and_redraw");
    let mut press = |ex: &mut SweepExplorer, keys: &[KeyCode]| {
        for &k in keys {
            ex.handle(key(k));
        }
        ex.draw(&mut term).unwrap();
    };
    let mut down = true;
    g.bench_function("cursor down/up", |b| {
        b.iter(|| {
            press(&mut ex, &[if down { KeyCode::Down } else { KeyCode::Up }]);
            down = !down;
        })
    });
    g.bench_function("page down/up", |b| {
        b.iter(|| {
            press(&mut ex, &[if down { KeyCode::PageDown } else { KeyCode::PageUp }]);
            down = !down;
        })
    });
    g.bench_function("sort by a layer (o, O alternately)", |b| {
        b.iter(|| {
            press(&mut ex, &[KeyCode::Char(if down { 'o' } else { 'O' })]);
            down = !down;
        })
    });
    g.bench_function("mark (space)", |b| b.iter(|| press(&mut ex, &[KeyCode::Char(' ')])));
    g.bench_function("pin on and off (p)", |b| b.iter(|| press(&mut ex, &[KeyCode::Char('p')])));
    g.bench_function("filter: Enter applies Env3 over 5,000 rows, Esc clears", |b| {
        press(
            &mut ex,
            &[KeyCode::Char('/'), KeyCode::Char('E'), KeyCode::Char('n'), KeyCode::Char('v'), KeyCode::Char('3')],
        );
        b.iter(|| {
            // Enter applies the typed filter; / reopens the prompt with it.
            press(&mut ex, &[KeyCode::Enter, KeyCode::Char('/')]);
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
