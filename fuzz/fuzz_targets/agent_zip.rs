//! The whole agent.zip: outer zip, `data`, `policy.pth` and the architecture.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::{load_agent, AgentLimits, ArchOverrides};

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap();
    let path = dir.path().join("agent.zip");
    std::fs::write(&path, data).unwrap();
    let limits = AgentLimits { max_policy_bytes: 64 << 20, max_meta_bytes: 16 << 20, max_members: 4096 };
    let _ = load_agent(&path, &ArchOverrides::default(), &limits);
});
