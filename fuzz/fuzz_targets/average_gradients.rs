//! average_gradients.json (this tool's or the Python tool's).
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::pipeline::average::Averages;

fuzz_target!(|data: &[u8]| {
    let _ = Averages::read_from(data, "fuzz");
});
