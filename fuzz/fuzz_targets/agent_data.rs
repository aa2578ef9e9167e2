//! SB3's `data` JSON: spaces (including Python repr text), policy settings.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::data::parse_agent_data;

fuzz_target!(|data: &[u8]| {
    let _ = parse_agent_data(data, "data");
});
