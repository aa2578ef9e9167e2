//! `policy.pth` (a torch.save zip): members, pickle, storages, strides.
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::torchzip::{open_torch_zip, AgentLimits};

fuzz_target!(|data: &[u8]| {
    let limits = AgentLimits { max_policy_bytes: 64 << 20, max_meta_bytes: 16 << 20, max_members: 4096 };
    if let Ok(mut tz) = open_torch_zip(std::io::Cursor::new(data), "fuzz", &limits) {
        let wanted: Vec<(String, String)> = tz.keys().iter().map(|k| (k.to_string(), k.to_string())).collect();
        if let Ok(params) = tz.read(&wanted, &limits, "tensors") {
            for p in params {
                assert_eq!(p.data.len(), p.shape.iter().product::<usize>());
            }
        }
    }
});
