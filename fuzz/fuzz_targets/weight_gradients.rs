//! weight_gradients.json, streamed by `saliency average`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::pipeline::gradfile::average_reader;

fuzz_target!(|data: &[u8]| {
    let _ = average_reader(data, "fuzz", |_, _| {});
});
