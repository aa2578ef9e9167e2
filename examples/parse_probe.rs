use std::time::Instant;
use saliency::agent::arch::{Arch, Branch, Op, Preprocess};
use saliency::pipeline::inputs::InputReader;
fn main() {
    let path = std::env::args().nth(1).unwrap();
    let arch = Arch { branches: vec![Branch { key: None, offset: 0, len: 28224, obs_shape: vec![4, 84, 84], preprocess: Preprocess::Image, ops: vec![Op::Flatten], out_dim: 28224 }], trunk: vec![], input_len: 28224, n_actions: 6, summary: String::new(), notes: vec![] };
    let t = Instant::now();
    let mut r = InputReader::open(std::path::Path::new(&path), &arch).unwrap();
    let (mut ids, mut vals) = (Vec::new(), Vec::new());
    let mut n = 0;
    loop { ids.clear(); vals.clear(); let k = r.next_batch(64, &mut ids, &mut vals).unwrap(); if k == 0 { break; } n += k; }
    let s = t.elapsed().as_secs_f64();
    let size = std::fs::metadata(&path).unwrap().len() as f64;
    println!("{n} inputs, {:.2} s, {:.0} MB/s, {:.1} ns/number", s, size / s / 1e6, s * 1e9 / (n as f64 * 28224.0));
}
