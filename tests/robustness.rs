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
use saliency::agent::statedict::{read_state_dict, TensorLimits};
use saliency::agent::torchzip::{open_torch_zip, AgentLimits};
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
        assert!(read_state_dict(&pkl, &TensorLimits::default()).is_ok());
        survive("pickle", &pkl, 3000, |v| {
            let _ = read_state_dict(v, &TensorLimits::default());
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

/// Every tensor of a torch zip, read as the agent reader reads them.
fn read_all_tensors(pth: &[u8]) -> Result<Vec<saliency::agent::torchzip::Param>, saliency::agent::AgentError> {
    let mut tz = open_torch_zip(Cursor::new(pth), "m", &small_limits())?;
    let wanted: Vec<(String, String)> = tz.keys().iter().map(|k| (k.to_string(), k.to_string())).collect();
    tz.read(&wanted, &small_limits(), "tensors")
}

/// A parameter is whole: as many values as its shape says.
fn assert_whole(what: &str, name: &str, shape: &[usize], len: usize) {
    assert!(!name.is_empty(), "{what}: a parameter without a name");
    assert_eq!(len, shape.iter().product::<usize>(), "{what}: {name} {shape:?} has {len} values");
}

#[test]
fn torch_zip_reader_survives_mutations() {
    let agent = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    let pth = zip_member(&agent, "policy.pth");
    let good = read_all_tensors(&pth).unwrap();
    assert!(good.iter().any(|p| p.name == "q_net.q_net.0.weight"), "the unmutated file parses whole");
    let (mut ok, mut refused) = (0, 0);
    survive("torch_zip", &pth, 1500, |v| match read_all_tensors(v) {
        Ok(params) => {
            ok += 1;
            for p in &params {
                assert_whole("torch_zip", &p.name, &p.shape, p.data.len());
            }
        }
        Err(e) => {
            refused += 1;
            assert!(!e.to_string().is_empty());
        }
    });
    // The mutations reach the reader: both outcomes occur.
    assert!(ok > 0 && refused > 0, "{ok} read, {refused} refused");
}

#[test]
fn agent_zip_reader_survives_mutations() {
    let seed = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.zip");
    std::fs::write(&path, &seed).unwrap();
    let good = load_agent(&path, &ArchOverrides::default(), &small_limits()).unwrap();
    assert_eq!((good.arch.input_len, good.arch.n_actions), (6, 3), "the unmutated agent loads");
    let (mut ok, mut refused) = (0, 0);
    survive("agent_zip", &seed, 400, |v| {
        std::fs::write(&path, v).unwrap();
        match load_agent(&path, &ArchOverrides::default(), &small_limits()) {
            Ok(a) => {
                ok += 1;
                for p in &a.params {
                    assert_whole("agent_zip", &p.name, &p.shape, p.data.len());
                }
                assert!(a.arch.input_len > 0 && a.arch.n_actions > 0, "a loaded agent has inputs and actions");
            }
            Err(e) => {
                refused += 1;
                assert!(e.to_string().contains("agent.zip"), "the error names the file: {e}");
            }
        }
    });
    assert!(ok > 0 && refused > 0, "{ok} loaded, {refused} refused");
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

/// A selection is consistent with its averages and candidates: every target names a resolved
/// candidate and a weight of its row, and k per candidate plus at most m more are chosen.
fn assert_consistent(avgs: &Averages, r: &saliency::pipeline::extract::Resolved, k: usize, m: usize) {
    for c in &r.candidates {
        assert!(c.param < avgs.params.len() && c.neuron < avgs.params[c.param].rows_cols().0, "{c:?}");
    }
    let s = select(avgs, &r.candidates, k, m);
    for t in &s.weights {
        let c = &r.candidates[t.candidate];
        assert!(t.weight_index < avgs.params[c.param].rows_cols().1, "{t:?} outside {c:?}");
    }
    let per_row: usize = r.candidates.iter().map(|c| k.min(avgs.params[c.param].rows_cols().1)).sum();
    assert!(
        s.guaranteed_count <= per_row && s.additional_count <= m,
        "{} + {}",
        s.guaranteed_count,
        s.additional_count
    );
    assert_eq!(s.weights.len(), s.guaranteed_count + s.additional_count);
}

#[test]
fn candidate_files_survive_mutations() {
    let cross = std::fs::read(fixture("demo").join("patching_results/cross_metric_summary.json")).unwrap();
    let useful = std::fs::read(fixture("demo").join("useful_neurons.json")).unwrap();
    let avgs = Averages::read(&reference_dir("demo").join("average_gradients.json")).unwrap();
    let useful_v = read_value_from(&useful[..], "u").unwrap();
    let cross_v = read_value_from(&cross[..], "c").unwrap();
    let keys = candidate_keys(&cross_v, "c").unwrap();
    let good = resolve(&keys, Some(&useful_v), &avgs);
    assert!(good.warnings.is_empty() && good.candidates.len() == keys.len(), "the unmutated files resolve whole");
    assert_consistent(&avgs, &good, 2, 4);
    let (mut parsed, mut resolved) = (0, 0);
    survive("cross_metric", &cross, 1500, |v| {
        let Ok(c) = read_value_from(v, "c") else { return };
        let Ok(keys) = candidate_keys(&c, "c") else { return };
        parsed += 1;
        let r = resolve(&keys, Some(&useful_v), &avgs);
        resolved += usize::from(!r.candidates.is_empty());
        assert_consistent(&avgs, &r, 2, 4);
    });
    assert!(parsed > 0 && resolved > 0, "{parsed} parsed, {resolved} resolved");
    let (mut changed, mut same) = (0, 0);
    survive("useful_neurons", &useful, 1500, |v| {
        let u = read_value_from(v, "u").ok();
        let r = resolve(&keys, u.as_ref(), &avgs);
        if r.candidates == good.candidates {
            same += 1
        } else {
            changed += 1
        }
        assert_consistent(&avgs, &r, 3, 7);
    });
    assert!(changed > 0 && same > 0, "{changed} changed the candidates, {same} did not");
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
    assert_eq!(s.weights.len(), 7);
}
