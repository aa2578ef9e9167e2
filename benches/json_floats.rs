//! Throughput of the Python-layout JSON float writer on gradient-like float32 values.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use saliency::json::PyJsonWriter;

fn values(n: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            let u = (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            u * 1e-3 * if s & 1 == 0 { 1.0 } else { 1e-2 }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let n = 1 << 20;
    let v = values(n);
    // Bytes written for these values (for MB/s).
    let mut w = PyJsonWriter::new(Vec::new());
    w.nested(&[1024, 1024], |i| f64::from(v[i])).unwrap();
    let bytes = w.finish().unwrap().len() as u64;
    let mut g = c.benchmark_group("json_float_writer");
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function(BenchmarkId::new("bytes", "1M float32 as 1024x1024 nested list"), |b| {
        b.iter(|| {
            let mut w = PyJsonWriter::new(std::io::sink());
            w.nested(&[1024, 1024], |i| f64::from(v[i])).unwrap();
            w.finish().unwrap();
        })
    });
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function(BenchmarkId::new("floats", "1M float32 as 1024x1024 nested list"), |b| {
        b.iter(|| {
            let mut w = PyJsonWriter::new(std::io::sink());
            w.nested(&[1024, 1024], |i| f64::from(v[i])).unwrap();
            w.finish().unwrap();
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
