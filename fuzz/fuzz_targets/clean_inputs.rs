//! clean_inputs.json against the demo's architecture (106 floats) and a CNN's (nested lists).
#![no_main]
use libfuzzer_sys::fuzz_target;
use saliency::agent::arch::{Arch, Preprocess};
use saliency::pipeline::inputs::InputReader;

fn arch(obs_shape: Vec<usize>, preprocess: Preprocess) -> Arch {
    Arch::input_only(obs_shape, preprocess)
}

fuzz_target!(|data: &[u8]| {
    for a in [
        arch(vec![106], Preprocess::Float),
        arch(vec![2, 3, 4], Preprocess::Image),
        arch(vec![5], Preprocess::OneHot(5)),
    ] {
        let Ok(mut r) = InputReader::from_reader(Box::new(std::io::Cursor::new(data.to_vec())), "fuzz".into(), &a)
        else {
            continue;
        };
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        let ok = loop {
            match r.next_batch(7, &mut ids, &mut values) {
                Ok(0) => break true,
                Ok(_) => {}
                Err(_) => break false,
            }
        };
        if ok {
            check_against_the_value_reader(data, &ids, &values);
        }
    }
});

/// Differential oracle: a file the streaming reader accepts must hold, read by the general
/// value parser (no fast paths), the same ids in the same order and the same numbers.
fn check_against_the_value_reader(data: &[u8], ids: &[String], values: &[f32]) {
    use saliency::json::Value;
    let v =
        saliency::json::reader::read_value_from(data, "fuzz").expect("accepted by InputReader, refused by read_value");
    let map = v.as_object().expect("top level is an object");
    let keys: Vec<&String> = map.keys().collect();
    assert_eq!(keys.len(), ids.len());
    let mut want = Vec::new();
    fn flatten(v: &Value, out: &mut Vec<f32>) {
        match v {
            Value::Int(i) => out.push(*i as f64 as f32),
            Value::Float(f) => out.push(*f as f32),
            Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
            other => panic!("accepted a non-number: {other:?}"),
        }
    }
    for (k, id) in keys.iter().zip(ids) {
        assert_eq!(*k, id);
        let entry = map.get(k.as_str()).and_then(Value::as_object).expect("entry is an object");
        flatten(entry.get("input").expect("entry has an input"), &mut want);
    }
    assert_eq!(want.len(), values.len());
    for (a, b) in want.iter().zip(values) {
        assert!(a.to_bits() == b.to_bits(), "value differs: {a} vs {b}");
    }
}
