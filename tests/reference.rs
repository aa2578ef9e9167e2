//! Our outputs against real PyTorch autograd, one input at a time (the Python tool's method), on
//! seven real SB3 DQN agents: CartPole (MlpPolicy, ReLU [64, 64]), Acrobot (Tanh [32, 16]), the
//! demo (Dict observation, the custom `mlp` extractor, 106 inputs, 5 actions), a NatureCNN
//! CnnPolicy, a CombinedExtractor (image + vector Dict), FrozenLake (Discrete observations,
//! one-hot) and Switches (a Dict of MultiDiscrete, MultiBinary and Box keys). The agents and reference files come from scripts/reference/make_fixtures.py.
//!
//! What is compared is what the commands write: the signed per-input gradients of
//! `saliency gradients` (JSON and npy), the averages of `saliency run`, and every committed
//! reference selection. Float32 results are compared with a tolerance scaled to each tensor
//! (see `common::RTOL`); what is deterministic (selections from the same averages) is compared
//! byte for byte. `.ci/run` runs this file again under other `ONEDNN_MAX_CPU_ISA` settings.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::*;
use saliency::json::Value;
use saliency::pipeline::average::{Averages, AvgParam};

const FIXTURES: [&str; 7] = ["cartpole", "acrobot", "demo", "cnn", "combined", "frozenlake", "multi"];

fn saliency() -> Command {
    Command::cargo_bin("saliency").unwrap()
}

/// The committed reference of a fixture: parameters, input ids, greedy actions, Q-values and
/// per-input gradients (all parameters flattened in named_parameters() order).
struct Reference {
    names: Vec<String>,
    shapes: Vec<Vec<usize>>,
    /// Inputs with gradients in gradients.npy (the demo's first 16; all of the others).
    ids: Vec<String>,
    values: Vec<f64>,
    /// Greedy actions of every input.
    all_actions: Vec<i64>,
    grads: Vec<f64>,
    width: usize,
}

impl Reference {
    fn load(name: &str) -> Reference {
        let meta = read_json(&reference_dir(name).join("meta.json"));
        let (names, shapes) = named_shapes(meta.get("params").unwrap()).into_iter().unzip();
        let strs = |k: &str| -> Vec<String> {
            meta.get(k).unwrap().as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
        };
        let (shape, grads) = read_npy(&reference_dir(name).join("gradients.npy"));
        let r = Reference {
            names,
            shapes,
            ids: strs("ids"),
            values: meta.get("values").unwrap().as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect(),
            all_actions: meta
                .get("all_actions")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect(),
            grads,
            width: shape[1],
        };
        assert_eq!(shape[0], r.ids.len());
        assert_eq!(r.width, r.shapes.iter().map(|s| s.iter().product::<usize>()).sum::<usize>());
        r
    }

    /// Input n's gradient of parameter p.
    fn grad(&self, n: usize, p: usize) -> &[f64] {
        let start: usize = self.shapes[..p].iter().map(|s| s.iter().product::<usize>()).sum();
        let len: usize = self.shapes[p].iter().product();
        &self.grads[n * self.width + start..n * self.width + start + len]
    }

    /// The Python tool's averages (float64 sums of |g| in input order, divided once): of the
    /// committed file where there is one, else of gradients.npy (which then holds every input).
    fn averages(&self, name: &str) -> Averages {
        let file = reference_dir(name).join("average_gradients.json");
        if file.is_file() {
            return Averages::read(&file).unwrap();
        }
        assert_eq!(self.ids.len(), self.all_actions.len(), "{name}: gradients.npy lacks inputs");
        let n = self.ids.len();
        let params = (0..self.names.len())
            .map(|p| {
                let mut sum = vec![0.0f64; self.grad(0, p).len()];
                for i in 0..n {
                    for (s, g) in sum.iter_mut().zip(self.grad(i, p)) {
                        *s += g.abs();
                    }
                }
                AvgParam {
                    name: self.names[p].clone(),
                    shape: self.shapes[p].clone(),
                    data: sum.iter().map(|s| s / n as f64).collect(),
                }
            })
            .collect();
        Averages { num_examples: Some(n as i64), params }
    }
}

fn run_ok(args: &[&str], agent: &Path, out: &Path) {
    saliency().args(args).arg("--agent-path").arg(agent).arg("--output-dir").arg(out).assert().success();
}

/// `saliency gradients` writes, as JSON and as npy, PyTorch's signed gradients, greedy actions
/// and Q-values, under PyTorch's parameter names and shapes, for every input in file order.
fn check_written_gradients(name: &str) {
    let r = Reference::load(name);
    let json_dir = tempfile::tempdir().unwrap();
    let npy_dir = tempfile::tempdir().unwrap();
    run_ok(&["gradients", "-q"], &fixture(name), json_dir.path());
    run_ok(&["gradients", "-q", "--raw-gradients", "npy"], &fixture(name), npy_dir.path());

    // JSON: {"<id>": {"max_logit_action", "max_logit_value", "gradients": {name: nested}}}
    let raw = read_json(&json_dir.path().join("weight_gradients.json"));
    let raw = raw.as_object().unwrap();
    assert_eq!(raw.len(), r.all_actions.len(), "{name}: inputs written");
    for (n, (id, entry)) in raw.iter().enumerate() {
        assert_eq!(entry.get("max_logit_action").unwrap().as_i64().unwrap(), r.all_actions[n], "{name} {id}: action");
        if n >= r.ids.len() {
            continue;
        }
        assert_eq!(id, &r.ids[n], "{name}: input order");
        let q = entry.get("max_logit_value").unwrap().as_f64().unwrap();
        assert_close(&format!("{name} {id}: Q-value"), &[q], &[r.values[n]]);
        let grads = entry.get("gradients").unwrap().as_object().unwrap();
        assert_eq!(grads.keys().cloned().collect::<Vec<_>>(), r.names, "{name}: parameter names and order");
        for (p, (pname, nested)) in grads.iter().enumerate() {
            let mut got = Vec::new();
            flatten_numbers(nested, &mut got);
            assert_nested_shape(nested, &r.shapes[p], &format!("{name} {id} {pname}"));
            assert_close(&format!("{name} json {id} {pname}"), &got, r.grad(n, p));
        }
    }

    // npy: one (N, *shape) float32 array per parameter, plus index.json.
    let dir = npy_dir.path().join("weight_gradients");
    let index = read_json(&dir.join("index.json"));
    let ids: Vec<&str> = index.get("inputs").unwrap().as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(ids, raw.keys().map(String::as_str).collect::<Vec<_>>(), "{name}: npy input ids");
    let actions: Vec<i64> =
        index.get("max_logit_action").unwrap().as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(actions, r.all_actions, "{name}: npy actions");
    let params = index.get("parameters").unwrap().as_array().unwrap();
    assert_eq!(params.len(), r.names.len());
    for (p, meta) in params.iter().enumerate() {
        assert_eq!(meta.get("name").unwrap().as_str().unwrap(), r.names[p]);
        let (shape, values) = read_npy(&dir.join(meta.get("file").unwrap().as_str().unwrap()));
        assert_eq!(shape[0], ids.len());
        assert_eq!(&shape[1..], r.shapes[p].as_slice(), "{name} {}: npy shape", r.names[p]);
        let per = values.len() / ids.len();
        for n in 0..r.ids.len() {
            assert_close(
                &format!("{name} npy {} {}", r.ids[n], r.names[p]),
                &values[n * per..(n + 1) * per],
                r.grad(n, p),
            );
        }
    }
}

fn assert_nested_shape(v: &Value, shape: &[usize], what: &str) {
    match (v, shape.split_first()) {
        (Value::Array(a), Some((&len, rest))) => {
            assert_eq!(a.len(), len, "{what}: nested list shape");
            for x in a {
                assert_nested_shape(x, rest, what);
            }
        }
        (Value::Array(_), None) => panic!("{what}: nested deeper than the parameter's shape"),
        (_, Some(_)) => panic!("{what}: a number where a list was expected"),
        (_, None) => {}
    }
}

#[test]
fn cartpole_relu_mlp_gradients_match_pytorch() {
    check_written_gradients("cartpole");
}

#[test]
fn acrobot_tanh_mlp_gradients_match_pytorch() {
    check_written_gradients("acrobot");
}

#[test]
fn demo_dict_custom_extractor_gradients_match_pytorch() {
    check_written_gradients("demo");
}

#[test]
fn nature_cnn_gradients_match_pytorch() {
    check_written_gradients("cnn");
}

#[test]
fn combined_extractor_dict_image_and_vector_gradients_match_pytorch() {
    check_written_gradients("combined");
}

#[test]
fn discrete_one_hot_observation_gradients_match_pytorch() {
    check_written_gradients("frozenlake");
}

#[test]
fn multi_discrete_multi_binary_and_box_keys_gradients_match_pytorch() {
    check_written_gradients("multi");
}

/// `saliency run`'s averages against the Python tool's, for every fixture.
#[test]
fn run_averages_match_the_python_tool() {
    for name in FIXTURES {
        let r = Reference::load(name);
        let want = r.averages(name);
        let out = tempfile::tempdir().unwrap();
        run_ok(&["run", "-q", "--raw-gradients", "none"], &fixture(name), out.path());
        let ours = Averages::read(&out.path().join("average_gradients.json")).unwrap();
        assert_eq!(ours.num_examples, want.num_examples, "{name}");
        assert_eq!(ours.params.len(), want.params.len(), "{name}");
        for (a, b) in ours.params.iter().zip(&want.params) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            assert_close(&format!("{name} average {}", a.name), &a.data, &b.data);
        }
    }
}

/// Every committed reference selection: (k, m) and its file, per fixture.
fn reference_selections(name: &str) -> Vec<(usize, usize, PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(reference_dir(name)).unwrap() {
        let p = e.unwrap().path();
        let f = p.file_name().unwrap().to_str().unwrap().to_string();
        if let Some(km) = f.strip_prefix("candidate_weights_k").and_then(|s| s.strip_suffix(".json")) {
            let (k, m) = km.split_once("_m").unwrap();
            out.push((k.parse().unwrap(), m.parse().unwrap(), p));
        }
    }
    out.sort();
    out
}

fn extract_args(name: &str, k: usize, m: usize, avg: &Path, out: &Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["extract".into(), "-q".into(), "--cross-metric-path".into()];
    args.push(fixture(name).join("patching_results/cross_metric_summary.json").into());
    args.extend(["--average-gradients-path".into(), avg.as_os_str().to_owned()]);
    args.extend(["--k".into(), k.to_string().into(), "--m".into(), m.to_string().into()]);
    args.extend(["--output-dir".into(), out.as_os_str().to_owned()]);
    if name == "demo" {
        args.extend(["--useful-neurons-path".into(), fixture("demo").join("useful_neurons.json").into()]);
    }
    args
}

/// From the Python tool's averages, `saliency extract` writes the Python tool's selection file
/// byte for byte, for every committed (k, m) of every fixture. This is deterministic: the same
/// float64 values in, the same bytes out, on any machine.
#[test]
fn every_reference_selection_is_reproduced_byte_for_byte() {
    let mut cases = 0;
    for name in FIXTURES {
        let r = Reference::load(name);
        let dir = tempfile::tempdir().unwrap();
        let avg = dir.path().join("average_gradients.json");
        r.averages(name).write(&avg).unwrap();
        for (k, m, file) in reference_selections(name) {
            let out = dir.path().join(format!("k{k}m{m}"));
            saliency().args(extract_args(name, k, m, &avg, &out)).assert().success();
            let got = std::fs::read(out.join("candidate_weights.json")).unwrap();
            assert!(got == std::fs::read(&file).unwrap(), "{name} k={k} m={m}: bytes differ from {}", file.display());
            cases += 1;
        }
    }
    assert!(cases >= 16, "reference selections missing: {cases}");
}

/// The selection `saliency run` makes from its own averages equals the Python tool's. Our
/// averages differ from PyTorch's in the last bits (kernel order), so two weights whose
/// magnitudes agree within that tolerance may trade places: only such near-ties may differ.
#[test]
fn run_selections_match_the_python_tool_up_to_near_ties() {
    for name in FIXTURES {
        let scale_of = |v: &Value| -> f64 {
            v.get("weight_targets")
                .unwrap()
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t.get("gradient_magnitude").unwrap().as_f64().unwrap())
                .fold(0.0, f64::max)
        };
        for (k, m, file) in reference_selections(name) {
            let out = tempfile::tempdir().unwrap();
            let (ks, ms) = (k.to_string(), m.to_string());
            // (the demo's useful_neurons.json is found beside its agent)
            run_ok(&["run", "-q", "--raw-gradients", "none", "--k", &ks, "--m", &ms], &fixture(name), out.path());
            let ours = read_json(&out.path().join("candidate_weights.json"));
            let want = read_json(&file);
            let tol = 10.0 * RTOL * scale_of(&want);
            let (a, b) = (ours.get("weight_targets").unwrap(), want.get("weight_targets").unwrap());
            let (a, b) = (a.as_array().unwrap(), b.as_array().unwrap());
            assert_eq!(a.len(), b.len(), "{name} k={k} m={m}: number of targets");
            let mut swaps = 0;
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                let key = |t: &Value| {
                    ["layer_name", "neuron_index", "weight_index", "source"]
                        .map(|f| format!("{:?}", t.get(f).unwrap()))
                        .join(" ")
                };
                let (mx, my) = (
                    x.get("gradient_magnitude").unwrap().as_f64().unwrap(),
                    y.get("gradient_magnitude").unwrap().as_f64().unwrap(),
                );
                // Same magnitude at every rank; a different weight there only when the two
                // magnitudes are a near-tie.
                assert!(
                    (mx - my).abs() <= tol,
                    "{name} k={k} m={m} target {i}: {} ({mx}) vs {} ({my})",
                    key(x),
                    key(y)
                );
                swaps += usize::from(key(x) != key(y));
            }
            assert!(swaps <= a.len() / 4, "{name} k={k} m={m}: {swaps} near-tie swaps is too many");
        }
    }
}

#[test]
fn batching_does_not_change_results() {
    // Batch of one (the Python tool's method) and other batch sizes agree to float32 rounding
    // (different BLAS summation orders), compared as every other float32 result.
    for name in ["demo", "cnn"] {
        let avg = |batch: &str| {
            let out = tempfile::tempdir().unwrap();
            run_ok(&["run", "-q", "--raw-gradients", "none", "--batch-size", batch], &fixture(name), out.path());
            Averages::read(&out.path().join("average_gradients.json")).unwrap()
        };
        let one = avg("1");
        for batch in ["3", "1000"] {
            let other = avg(batch);
            for (a, b) in one.params.iter().zip(&other.params) {
                assert_close(&format!("{name} batch {batch} {}", a.name), &b.data, &a.data);
            }
        }
    }
}

#[test]
fn output_bias_average_is_the_action_histogram() {
    // d q[a*] / d bias_out is one-hot, so its mean magnitude is the share of inputs whose
    // greedy action is each output (exact: sums of 1.0 and 0.0).
    for name in FIXTURES {
        let out = tempfile::tempdir().unwrap();
        run_ok(&["run", "-q", "--raw-gradients", "none"], &fixture(name), out.path());
        let avgs = Averages::read(&out.path().join("average_gradients.json")).unwrap();
        let bias = avgs.params.last().unwrap();
        assert!(bias.name.ends_with(".bias"));
        let actions = Reference::load(name).all_actions;
        for (a, &share) in bias.data.iter().enumerate() {
            let count = actions.iter().filter(|&&x| x == a as i64).count();
            assert_eq!(share, count as f64 / actions.len() as f64, "{name} action {a}");
        }
    }
}

#[test]
fn dead_relu_units_give_exact_zeros() {
    // A unit whose ReLU is off for every input gets exactly zero gradient in its row and bias.
    let out = tempfile::tempdir().unwrap();
    run_ok(&["run", "-q", "--raw-gradients", "none"], &fixture("cartpole"), out.path());
    let avgs = Averages::read(&out.path().join("average_gradients.json")).unwrap();
    let agent = saliency::agent::load_agent(
        &fixture("cartpole"),
        &saliency::agent::ArchOverrides::default(),
        &saliency::agent::AgentLimits::default(),
    )
    .unwrap();
    let inputs = read_json(&saliency::pipeline::clean_inputs_path(&fixture("cartpole")));
    let (w, b) = (&agent.params[0].data, &agent.params[1].data);
    let mut dead = 0;
    for unit in 0..64 {
        let off = inputs.as_object().unwrap().values().all(|e| {
            let mut x = Vec::new();
            flatten_numbers(e.get("input").unwrap(), &mut x);
            let pre: f32 = b[unit] + (0..4).map(|j| w[unit * 4 + j] * x[j] as f32).sum::<f32>();
            pre <= 0.0
        });
        if off {
            dead += 1;
            assert!(avgs.params[0].row(unit).iter().all(|&v| v == 0.0), "unit {unit}");
            assert_eq!(avgs.params[1].data[unit], 0.0, "unit {unit}");
        }
    }
    // Guard against a vacuous test: the trained CartPole net has dead units on these inputs.
    assert!(dead > 0, "no dead unit found");
}

#[test]
fn agent_zip_and_directory_resolve_the_same() {
    use saliency::agent;
    let dir = fixture("acrobot");
    let a = agent::resolve_agent_zip(&dir).unwrap();
    assert_eq!(a, dir.join("agent.zip"));
    assert_eq!(agent::resolve_agent_zip(&a).unwrap(), a);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(&a, tmp.path().join("b.zip")).unwrap();
    std::fs::copy(&a, tmp.path().join("a.zip")).unwrap();
    assert_eq!(agent::resolve_agent_zip(tmp.path()).unwrap(), tmp.path().join("a.zip"));
    std::fs::copy(&a, tmp.path().join("dqn.zip")).unwrap();
    assert_eq!(agent::resolve_agent_zip(tmp.path()).unwrap(), tmp.path().join("dqn.zip"));
    let err = agent::resolve_agent_zip(Path::new("/nonexistent/agent")).unwrap_err().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

#[test]
fn architectures_are_read_from_the_zip() {
    use saliency::agent::{load_agent, Activation, AgentLimits, ArchOverrides};
    let load = |n: &str| load_agent(&fixture(n), &ArchOverrides::default(), &AgentLimits::default()).unwrap();
    let demo = load("demo");
    assert_eq!(demo.info.policy_class, "MultiInputPolicy");
    assert!(demo.arch.summary.contains("custom mlp extractor"), "{}", demo.arch.summary);
    assert_eq!(demo.arch.input_len, 106);
    let cnn = load("cnn");
    assert_eq!(cnn.info.policy_class, "CnnPolicy");
    assert!(cnn.arch.summary.starts_with("DQN NatureCNN"), "{}", cnn.arch.summary);
    assert_eq!(cnn.arch.input_len, 2 * 44 * 44);
    let acro = load("acrobot");
    assert_eq!(acro.info.activation, Some(Activation::Tanh));
    assert_eq!(acro.info.net_arch, Some(vec![32, 16]));
    for name in FIXTURES {
        let r = Reference::load(name);
        let agent = load(name);
        let names: Vec<&str> = agent.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, r.names.iter().map(String::as_str).collect::<Vec<_>>(), "{name}: named_parameters()");
        for (p, shape) in agent.params.iter().zip(&r.shapes) {
            assert_eq!(&p.shape, shape, "{name} {}", p.name);
        }
    }
}
