//! cross_metric_summary.json and useful_neurons.json (the input is split at the first NUL),
//! resolved against fixed averages, then selected for a few k and m.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::json::reader::read_value_from;
use saliency::pipeline::average::{Averages, AvgParam};
use saliency::pipeline::extract::{candidate_keys, resolve, select};

fuzz_target!(|data: &[u8]| {
    let (cross, useful) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let avgs = Averages {
        num_examples: Some(1),
        params: vec![
            AvgParam {
                name: "q_net.0.weight".into(),
                shape: vec![4, 3],
                data: (0..12).map(|i| (i % 5) as f64).collect(),
            },
            AvgParam { name: "features_extractor.cnn.0.weight".into(), shape: vec![2, 1, 2, 2], data: vec![0.5; 8] },
        ],
    };
    let Ok(cross) = read_value_from(cross, "cross") else { return };
    let Ok(keys) = candidate_keys(&cross, "cross") else { return };
    let useful = useful.and_then(|u| read_value_from(u, "useful").ok());
    let r = resolve(&keys, useful.as_ref(), &avgs);
    for (k, m) in [(0, 0), (2, 4), (1000, 1000)] {
        let _ = select(&avgs, &r.candidates, k, m);
    }
});
