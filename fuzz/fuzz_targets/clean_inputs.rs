//! clean_inputs.json against the demo's architecture (106 floats) and a CNN's (nested lists).
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::arch::{Arch, Branch, Op, Preprocess};
use saliency::pipeline::inputs::InputReader;

fn arch(obs_shape: Vec<usize>, preprocess: Preprocess) -> Arch {
    let len = obs_shape.iter().product();
    Arch {
        branches: vec![Branch { key: None, offset: 0, len, obs_shape, preprocess, ops: vec![Op::Flatten], out_dim: len }],
        trunk: vec![],
        input_len: len,
        n_actions: 2,
        summary: String::new(),
        notes: vec![],
    }
}

fuzz_target!(|data: &[u8]| {
    for a in [arch(vec![106], Preprocess::Float), arch(vec![2, 3, 4], Preprocess::Image), arch(vec![5], Preprocess::OneHot(5))] {
        let Ok(mut r) = InputReader::from_reader(Box::new(std::io::Cursor::new(data.to_vec())), "fuzz".into(), &a) else { continue };
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        while let Ok(n) = r.next_batch(7, &mut ids, &mut values) {
            if n == 0 {
                break;
            }
        }
    }
});
