//! Shared by the benches: the CNN fixture's averages (made by scripts/bench.sh), or, when they
//! are missing, averages of the same NatureCNN shapes drawn from a fixed pseudo-random
//! log-normal distribution (the run says which).
#![allow(dead_code)]

use std::path::PathBuf;

use saliency::pipeline::average::{Averages, AvgParam};
use saliency::pipeline::extract::{Candidate, CandidateKey};

/// A fixed pseudo-random sequence in [0, 1) (xorshift64), the same on every machine.
pub fn uniform(seed: u64) -> impl FnMut() -> f64 {
    let mut state = seed;
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    }
}

pub fn cnn_averages() -> (Averages, &'static str) {
    let path = std::env::var_os("SALIENCY_BENCH_AVERAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fixtures-large/atari_cnn_1000/gradient_analysis/average_gradients.json"));
    if let Ok(a) = Averages::read(&path) {
        return (a, "the CNN fixture's averages");
    }
    let shapes: [(&str, &[usize]); 10] = [
        ("features_extractor.cnn.0.weight", &[32, 4, 8, 8]),
        ("features_extractor.cnn.0.bias", &[32]),
        ("features_extractor.cnn.2.weight", &[64, 32, 4, 4]),
        ("features_extractor.cnn.2.bias", &[64]),
        ("features_extractor.cnn.4.weight", &[64, 64, 3, 3]),
        ("features_extractor.cnn.4.bias", &[64]),
        ("features_extractor.linear.0.weight", &[512, 3136]),
        ("features_extractor.linear.0.bias", &[512]),
        ("q_net.0.weight", &[6, 512]),
        ("q_net.0.bias", &[6]),
    ];
    let mut next = uniform(0x9E37_79B9_7F4A_7C15);
    let params = shapes
        .iter()
        .map(|(name, shape)| {
            let n: usize = shape.iter().product();
            let data = (0..n).map(|_| (-8.0 + 3.0 * (next() + next() + next() - 1.5)).exp()).collect();
            AvgParam { name: name.to_string(), shape: shape.to_vec(), data }
        })
        .collect();
    (
        Averages { num_examples: Some(1000), params },
        "synthetic averages of the CNN fixture's shapes (run scripts/bench.sh for the real ones)",
    )
}

/// Candidates on the largest layer (linear.0) and the conv layers.
pub fn cnn_candidates(avgs: &Averages, per_layer: usize) -> (Vec<CandidateKey>, Vec<Candidate>) {
    let mut keys = Vec::new();
    for layer in ["features_extractor.linear.0", "features_extractor.cnn.4", "q_net.0"] {
        let p = avgs.index_of(&format!("{layer}.weight")).expect("layer");
        let rows = avgs.params[p].rows_cols().0;
        for i in 0..per_layer.min(rows) {
            keys.push(CandidateKey {
                key: format!("{layer}_neuron_{}", (i * 37) % rows),
                metrics: saliency::json::Value::Null,
            });
        }
    }
    let resolved = saliency::pipeline::extract::resolve(&keys, None, avgs);
    (keys, resolved.candidates)
}
