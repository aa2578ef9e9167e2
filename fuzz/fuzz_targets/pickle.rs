//! The state-dict unpickler (`data.pkl`): never panics, never runs code, bounded work.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::statedict::{read_state_dict, TensorLimits};

fuzz_target!(|data: &[u8]| {
    let _ = read_state_dict(data, &TensorLimits::default());
});
