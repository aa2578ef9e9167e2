//! VecNormalize saves: a pickle read as data (allow-listed globals, numpy arrays).
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::vecnorm::from_bytes;

fuzz_target!(|data: &[u8]| {
    let _ = from_bytes(data, std::path::Path::new("vec_normalize.pkl"));
});
