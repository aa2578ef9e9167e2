//! The explorer's frame after a k or m change on the CNN fixture's largest layer
//! (features_extractor.linear.0.weight, 512 x 3136) at 200 x 60: selection + prepare + draw.
mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use saliency::jobs::Outcome;
use saliency::study::browse::Browsed;
use saliency::study::candidates::{CandidateChoice, Candidates};
use saliency::tui::app::{App, Setup};
use saliency::tui::color::ColorMode;
use saliency::tui::keymap::Action;
use saliency::tui::view;

fn bench(c: &mut Criterion) {
    let (avgs, what) = common::cnn_averages();
    eprintln!("frame bench on {what}");
    let (keys, _) = common::cnn_candidates(&avgs, 10);
    let largest = avgs.index_of("features_extractor.linear.0.weight").expect("layer");
    let mut app = App::new(Setup {
        source: "bench".into(),
        candidates: CandidateChoice::Patching(Candidates { keys, useful: None }),
        notes: Vec::new(),
        out_dir: std::env::temp_dir(),
        engine: None,
        validate: Default::default(),
        feature_names: None,
        k: 2,
        m: 4,
        target: saliency::target::Target::Q,
        colormap: saliency::colormap::Colormap::Viridis,
        color_mode: ColorMode::TrueColor,
    });
    // The averages arrive as the pipeline job delivers them.
    app.on_browse_end(Outcome::Done(Browsed { averages: Arc::new(avgs), extras: None }));
    while app.current_param() != Some(largest) {
        app.update(Action::Down);
    }
    let area = Rect::new(0, 0, 200, 60);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    app.prepare(area);
    term.draw(|f| view::draw(&app, f)).unwrap();
    let mut g = c.benchmark_group("frame_200x60_linear0");
    let mut up = true;
    let mut frame = |app: &mut App, action: Action| {
        app.update(action);
        app.prepare(area);
        term.draw(|f| view::draw(app, f)).unwrap();
    };
    g.bench_function("k change", |b| {
        b.iter(|| {
            frame(&mut app, if up { Action::KUp } else { Action::KDown });
            up = !up;
        })
    });
    g.bench_function("m change", |b| {
        b.iter(|| {
            frame(&mut app, if up { Action::MUpBig } else { Action::MDownBig });
            up = !up;
        })
    });
    g.bench_function("cold frame (new layer view: pooling 1.6 M weights)", |b| {
        b.iter(|| frame(&mut app, Action::TogglePooling))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
