//! The explorer's frame after a k or m change on the CNN fixture's largest layer
//! (features_extractor.linear.0.weight, 512 x 3136) at 200 x 60: selection + prepare + draw.
mod common;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use ratatui::backend::TestBackend;
use ratatui::layout::Rect;
use ratatui::Terminal;
use saliency::tui::app::App;
use saliency::tui::color::ColorMode;
use saliency::tui::keymap::Action;
use saliency::tui::view;

fn bench(c: &mut Criterion) {
    let (avgs, what) = common::cnn_averages();
    eprintln!("frame bench on {what}");
    let (keys, _) = common::cnn_candidates(&avgs, 10);
    let largest = avgs.index_of("features_extractor.linear.0.weight").expect("layer");
    let mut app = App::new("bench".into(), keys, None, std::env::temp_dir(), false);
    app.color_mode = ColorMode::TrueColor;
    app.set_averages(Arc::new(avgs), false);
    app.show(largest, 0, 0);
    let area = Rect::new(0, 0, 200, 60);
    let mut term = Terminal::new(TestBackend::new(200, 60)).unwrap();
    app.prepare(area);
    term.draw(|f| view::draw(&app, f)).unwrap();
    let mut g = c.benchmark_group("frame_200x60_linear0");
    let mut up = true;
    g.bench_function("k change", |b| {
        b.iter(|| {
            app.update(if up { Action::KUp } else { Action::KDown });
            up = !up;
            app.prepare(area);
            term.draw(|f| view::draw(&app, f)).unwrap();
        })
    });
    g.bench_function("m change", |b| {
        b.iter(|| {
            app.update(if up { Action::MUpBig } else { Action::MDownBig });
            up = !up;
            app.prepare(area);
            term.draw(|f| view::draw(&app, f)).unwrap();
        })
    });
    g.bench_function("cold frame (new layer view: pooling 1.6 M weights)", |b| {
        b.iter(|| {
            app.update(Action::TogglePooling);
            app.prepare(area);
            term.draw(|f| view::draw(&app, f)).unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
