//! The explorer's evidence line on the bundled demo (40 inputs, 20 random draws): the time from
//! a k change (the key press's `update`) to the new numbers arriving from the evidence worker
//! thread, as the explorer sees it.
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use saliency::tui::app::Effect;
use saliency::tui::evidence::{Msg, Worker};
use saliency::tui::keymap::Action;

fn bench(c: &mut Criterion) {
    let args = <saliency::cli::Cli as clap::Parser>::parse_from(["saliency", "--agent-path", "assets/demo"]).explore;
    let plan = saliency::tui::plan(&args).expect("demo");
    let source = plan.app.model.clone().expect("a model");
    let (mut app, first) = saliency::tui::run_to_end_with_effects(plan, Duration::from_secs(120)).expect("run");
    let worker = Worker::spawn(source).expect("thread");
    let wait = |id: u64| loop {
        match worker.recv_timeout(Duration::from_secs(60)) {
            Some(Msg::Result { id: got, .. }) | Some(Msg::Empty { id: got, .. }) if got == id => return,
            Some(Msg::Failed(e)) => panic!("{e}"),
            Some(_) => {}
            None => panic!("no evidence within a minute"),
        }
    };
    let send = |effects: Vec<Effect>| -> u64 {
        let mut last = 0;
        for e in effects {
            if let Effect::Evidence(req) = e {
                last = req.id;
                worker.request(*req);
            }
        }
        last
    };
    // The worker's start (loading the agent, one backward pass over the inputs) is not measured.
    let id = send(first);
    wait(id);
    let mut up = true;
    c.bench_function("evidence_line_demo_k_change", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let start = Instant::now();
                let id = send(app.update(if up { Action::KUp } else { Action::KDown }));
                up = !up;
                wait(id);
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
