//! `policy.pth` (a torch.save zip): members, pickle, storages, strides.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::torchzip::{read_state_dict, AgentLimits};

fuzz_target!(|data: &[u8]| {
    let limits = AgentLimits { max_policy_bytes: 64 << 20, max_meta_bytes: 16 << 20, max_members: 4096 };
    let _ = read_state_dict(std::io::Cursor::new(data), "fuzz", &limits);
});
