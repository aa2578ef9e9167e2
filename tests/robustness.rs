//! Mutation tests of every reader of outside data, run on every `cargo test` (the long fuzzing
//! runs are scripts/fuzz.sh). Each real fixture file is truncated at many points, has bytes
//! flipped, spliced and duplicated (a fixed pseudo-random sequence, so failures reproduce), and
//! every variant must give Ok or a clear error: no panic, no hang, no huge allocation.

mod common;

use std::io::Cursor;
use std::time::{Duration, Instant};

use common::*;
use saliency::agent::arch::{Arch, Preprocess};
use saliency::agent::data::parse_agent_data;
use saliency::agent::pickle::{self, Limits};
use saliency::agent::torchzip::{read_state_dict, AgentLimits};
use saliency::agent::{load_agent, ArchOverrides};
use saliency::json::reader::read_value_from;
use saliency::pipeline::average::{Averages, AvgParam};
use saliency::pipeline::extract::{candidate_keys, resolve, select};
use saliency::pipeline::gradfile::average_reader;
use saliency::pipeline::inputs::InputReader;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Deterministic variants of `seed`: truncations, bit flips, interesting bytes, splices.
fn variants(seed: &[u8], count: usize, salt: u64) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ salt);
    let mut out = vec![Vec::new(), seed.to_vec()];
    let interesting: &[&[u8]] = &[
        b"NaN",
        b"-1",
        b"1e999",
        b"[[[[[[[[",
        b"\"",
        b"\\u0000",
        b"}",
        b"]",
        b",",
        b"\xff\xfe",
        b"9999999999999999999999",
        b"\x00",
    ];
    while out.len() < count {
        let mut v = seed.to_vec();
        match rng.below(6) {
            0 => {
                let at = rng.below(v.len());
                v.truncate(at);
            }
            1 => {
                for _ in 0..1 + rng.below(8) {
                    if !v.is_empty() {
                        let i = rng.below(v.len());
                        v[i] ^= 1 << rng.below(8);
                    }
                }
            }
            2 => {
                let i = rng.below(v.len() + 1);
                let ins = interesting[rng.below(interesting.len())];
                v.splice(i..i, ins.iter().copied());
            }
            3 => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    let len = rng.below(64).min(v.len() - i);
                    v.drain(i..i + len);
                }
            }
            4 => {
                // duplicate a chunk (repeated keys, longer lists)
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    let len = rng.below(256).min(v.len() - i);
                    let chunk: Vec<u8> = v[i..i + len].to_vec();
                    let j = rng.below(v.len() + 1);
                    v.splice(j..j, chunk);
                }
            }
            _ => {
                for _ in 0..1 + rng.below(4) {
                    if !v.is_empty() {
                        let i = rng.below(v.len());
                        v[i] = rng.next() as u8;
                    }
                }
            }
        }
        out.push(v);
    }
    out
}

/// Runs `f` on every variant; each must finish fast (no hang, no runaway work).
fn survive(name: &str, seed: &[u8], count: usize, mut f: impl FnMut(&[u8])) {
    for (i, v) in variants(seed, count, name.len() as u64).iter().enumerate() {
        let start = Instant::now();
        f(v);
        assert!(start.elapsed() < Duration::from_secs(10), "{name}: variant {i} took {:?}", start.elapsed());
    }
}

fn zip_member(zip_bytes: &[u8], name: &str) -> Vec<u8> {
    use std::io::Read;
    let mut z = zip::ZipArchive::new(Cursor::new(zip_bytes)).unwrap();
    let mut out = Vec::new();
    z.by_name(name).unwrap().read_to_end(&mut out).unwrap();
    out
}

fn small_limits() -> AgentLimits {
    AgentLimits { max_policy_bytes: 64 << 20, max_meta_bytes: 16 << 20, max_members: 4096 }
}

#[test]
fn pickle_reader_survives_mutations() {
    for name in ["acrobot", "cartpole", "cnn"] {
        let agent = std::fs::read(fixture(name).join("agent.zip")).unwrap();
        let pkl = zip_member(&zip_member(&agent, "policy.pth"), "archive/data.pkl");
        assert!(pickle::read_state_dict(&pkl, &Limits::default()).is_ok());
        survive("pickle", &pkl, 3000, |v| {
            let _ = pickle::read_state_dict(v, &Limits::default());
        });
    }
}

#[test]
fn vec_normalize_reader_survives_mutations() {
    // A Box observation's statistics, and a Dict's (per key, with OrderedDict spaces).
    for name in ["ppo_vecnormalize", "ppo_dict_vecnormalize"] {
        let pkl = std::fs::read(fixture(name).join("vec_normalize.pkl")).unwrap();
        let path = std::path::Path::new("vec_normalize.pkl");
        assert!(saliency::agent::vecnorm::from_bytes(&pkl, path).is_ok());
        survive("vec_normalize", &pkl, 2000, |v| {
            let _ = saliency::agent::vecnorm::from_bytes(v, path);
        });
    }
}

#[test]
fn torch_zip_reader_survives_mutations() {
    let agent = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    let pth = zip_member(&agent, "policy.pth");
    survive("torch_zip", &pth, 1500, |v| {
        let _ = read_state_dict(Cursor::new(v), "m", &small_limits());
    });
}

#[test]
fn agent_zip_reader_survives_mutations() {
    let seed = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.zip");
    survive("agent_zip", &seed, 400, |v| {
        std::fs::write(&path, v).unwrap();
        let _ = load_agent(&path, &ArchOverrides::default(), &small_limits());
    });
}

#[test]
fn agent_data_reader_survives_mutations() {
    for name in ["demo", "cnn", "acrobot"] {
        let agent = std::fs::read(fixture(name).join("agent.zip")).unwrap();
        let data = zip_member(&agent, "data");
        assert!(parse_agent_data(&data, "data").is_ok());
        survive("agent_data", &data, 800, |v| {
            let _ = parse_agent_data(v, "data");
        });
    }
}

fn flat_arch(len: usize) -> Arch {
    Arch::input_only(vec![len], Preprocess::Float)
}

#[test]
fn inputs_reader_survives_mutations() {
    let seed = std::fs::read(fixture("acrobot").join("activation_inputs/clean_inputs.json")).unwrap();
    let arch = flat_arch(6);
    survive("clean_inputs", &seed, 2000, |v| {
        let Ok(mut r) = InputReader::from_reader(Box::new(Cursor::new(v.to_vec())), "x".into(), &arch) else { return };
        let (mut ids, mut values) = (Vec::new(), Vec::new());
        while let Ok(n) = r.next_batch(5, &mut ids, &mut values) {
            if n == 0 {
                break;
            }
        }
        assert_eq!(values.len(), ids.len() * 6);
    });
}

#[test]
fn candidate_files_survive_mutations() {
    let cross = std::fs::read(fixture("demo").join("patching_results/cross_metric_summary.json")).unwrap();
    let useful = std::fs::read(fixture("demo").join("useful_neurons.json")).unwrap();
    let avgs = Averages::read(&reference_dir("demo").join("average_gradients.json")).unwrap();
    let useful_v = read_value_from(&useful[..], "u").unwrap();
    survive("cross_metric", &cross, 1500, |v| {
        let Ok(c) = read_value_from(v, "c") else { return };
        let Ok(keys) = candidate_keys(&c, "c") else { return };
        let r = resolve(&keys, Some(&useful_v), &avgs);
        let _ = select(&avgs, &r.candidates, 2, 4);
    });
    let cross_v = read_value_from(&cross[..], "c").unwrap();
    let keys = candidate_keys(&cross_v, "c").unwrap();
    survive("useful_neurons", &useful, 1500, |v| {
        let u = read_value_from(v, "u").ok();
        let r = resolve(&keys, u.as_ref(), &avgs);
        let _ = select(&avgs, &r.candidates, 3, 7);
    });
}

#[test]
fn averages_reader_survives_mutations() {
    let seed = std::fs::read(reference_dir("acrobot").join("average_gradients.json")).unwrap();
    survive("average_gradients", &seed, 1500, |v| {
        if let Ok(a) = Averages::read_from(v, "a") {
            for p in &a.params {
                assert_eq!(p.data.len(), p.shape.iter().product::<usize>());
            }
        }
    });
}

#[test]
fn gradients_reader_survives_mutations() {
    // The first few inputs of the acrobot reference raw file keep each variant fast.
    let text = std::fs::read_to_string(reference_dir("acrobot").join("weight_gradients.json")).unwrap();
    let cut = text.match_indices("\n  \"").nth(3).map(|(i, _)| i).unwrap();
    let seed = format!("{}\n}}", text[..cut].trim_end_matches(',')).into_bytes();
    assert!(average_reader(&seed[..], "g", |_, _| {}).is_ok());
    survive("weight_gradients", &seed, 600, |v| {
        let _ = average_reader(v, "g", |_, _| {});
    });
}

#[test]
fn selection_handles_nan_and_empty_rows() {
    let avgs = Averages {
        num_examples: Some(1),
        params: vec![AvgParam {
            name: "q_net.0.weight".into(),
            shape: vec![2, 4],
            data: vec![f64::NAN, 1.0, 0.5, f64::INFINITY, 0.0, 0.0, 0.0, 0.0],
        }],
    };
    let cross =
        read_value_from(&br#"{"common_neurons": {"q_net.0_neuron_0": {}, "q_net.0_neuron_1": {}}}"#[..], "c").unwrap();
    let r = resolve(&candidate_keys(&cross, "c").unwrap(), None, &avgs);
    let s = select(&avgs, &r.candidates, 2, 3);
    // NaN ranks first (as numpy's sort puts it last, ascending), then +inf; ties by index.
    assert_eq!(s.top_k, vec![vec![0, 3], vec![0, 1]]);
    assert_eq!(s.targets.len(), 7);
}
