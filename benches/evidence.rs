//! The explorer's evidence line on the bundled demo (40 inputs, 20 random draws): the time from
//! a k change (the key press's `update`) to the new numbers arriving from the evidence
//! engine's thread, as the explorer sees them (its real jobs and event-loop step).
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use saliency::tui::app::App;
use saliency::tui::keymap::Action;

fn current(app: &App) -> bool {
    app.evidence().line().is_some_and(|(_, stale)| !stale)
}

fn bench(c: &mut Criterion) {
    let args = <saliency::cli::Cli as clap::Parser>::parse_from(["saliency", "--agent-path", "assets/demo"]).explore;
    let mut ex = saliency::tui::plan(&args).expect("demo");
    // The engine's start (loading the agent, one backward pass over the inputs) is not measured.
    assert!(ex.wait_until(Duration::from_secs(120), current), "no evidence");
    let mut up = true;
    c.bench_function("evidence_line_demo_k_change", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let effects = ex.app.update(if up { Action::KUp } else { Action::KDown });
                ex.apply(effects);
                up = !up;
                assert!(ex.wait_until(Duration::from_secs(60), current), "no evidence within a minute");
                total += start.elapsed();
            }
            total
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(5));
    targets = bench
}
criterion_main!(benches);
