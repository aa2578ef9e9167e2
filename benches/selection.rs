//! The k/m selection (`extract`) on the CNN fixture's averages.
mod common;

use criterion::{criterion_group, criterion_main, Criterion};
use saliency::pipeline::extract::select;

fn bench(c: &mut Criterion) {
    let (avgs, what) = common::cnn_averages();
    eprintln!("selection bench on {what}");
    let (_, cands) = common::cnn_candidates(&avgs, 10);
    let mut g = c.benchmark_group("selection_cnn");
    for (k, m) in [(2usize, 4usize), (10, 100), (100, 10000)] {
        g.bench_function(format!("{} candidates k={k} m={m}", cands.len()), |b| b.iter(|| select(&avgs, &cands, k, m)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
