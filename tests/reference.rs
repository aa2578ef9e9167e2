//! Our gradients against real PyTorch autograd, one input at a time (the Python tool's method),
//! on real SB3 agents: CartPole (ReLU [64, 64]), Acrobot (Tanh [32, 16]), the demo (Dict
//! observation, custom `mlp` extractor, 106 inputs, 5 actions) and a NatureCNN agent.
//! The reference files come from scripts/reference/make_fixtures.py.

mod common;

use std::path::Path;

use common::*;
use saliency::agent::{self, AgentLimits, ArchOverrides};
use saliency::json::reader::read_value_from;
use saliency::json::Value;
use saliency::model::{BatchGrads, Net};
use saliency::pipeline::average::Averages;
use saliency::pipeline::inputs::InputReader;
use saliency::pipeline::{self, RawFormat};

const RTOL: f64 = 1e-5;
const ATOL: f64 = 1e-7;

fn load(name: &str) -> (agent::Agent, Net) {
    let agent = agent::load_agent(&fixture(name), &ArchOverrides::default(), &AgentLimits::default()).unwrap();
    let net = Net::new(&agent, tch::Device::Cpu).unwrap();
    (agent, net)
}

fn read_inputs(name: &str, agent: &agent::Agent) -> (Vec<String>, Vec<f32>) {
    let path = pipeline::clean_inputs_path(&fixture(name));
    let mut r = InputReader::open(&path, &agent.arch).unwrap();
    let (mut ids, mut values) = (Vec::new(), Vec::new());
    r.next_batch(usize::MAX, &mut ids, &mut values).unwrap();
    (ids, values)
}

fn meta(name: &str) -> Value {
    read_value_from(std::fs::File::open(reference_dir(name).join("meta.json")).unwrap(), "meta").unwrap()
}

/// Per-input gradients of input n, flattened in named_parameters() order.
fn flat_grads(agent: &agent::Agent, net: &Net, g: &BatchGrads, n: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for (p, src) in agent.params.iter().zip(&net.sources) {
        for e in 0..p.numel() {
            out.push(g.value(*src, n, e) as f64);
        }
    }
    out
}

fn check_fixture(name: &str) {
    let (agent, net) = load(name);
    let meta = meta(name);
    // Parameter names and shapes are PyTorch's, in named_parameters() order.
    let params = meta.get("params").unwrap().as_array().unwrap();
    assert_eq!(params.len(), agent.params.len());
    for (p, want) in agent.params.iter().zip(params) {
        assert_eq!(p.name, want.get("name").unwrap().as_str().unwrap());
        let shape: Vec<usize> =
            want.get("shape").unwrap().as_array().unwrap().iter().map(|v| v.as_i64().unwrap() as usize).collect();
        assert_eq!(p.shape, shape, "{}", p.name);
    }
    let (ids, values) = read_inputs(name, &agent);
    let g = net.batch_gradients(&values, ids.len()).unwrap();
    let all_actions: Vec<i64> =
        meta.get("all_actions").unwrap().as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(g.actions, all_actions, "{name}: greedy actions");

    let ref_ids = meta.get("ids").unwrap().as_array().unwrap();
    let ref_values = meta.get("values").unwrap().as_array().unwrap();
    let (shape, grads) = read_npy(&reference_dir(name).join("gradients.npy"));
    assert_eq!(shape[0], ref_ids.len());
    let width = shape[1];
    for (n, id) in ref_ids.iter().enumerate() {
        assert_eq!(ids[n], id.as_str().unwrap());
        let want_q = ref_values[n].as_f64().unwrap();
        assert!(
            ((g.values[n] as f64) - want_q).abs() <= ATOL + RTOL * want_q.abs(),
            "{name} {}: q {} vs {want_q}",
            ids[n],
            g.values[n]
        );
        let got = flat_grads(&agent, &net, &g, n);
        assert_close(&format!("{name} input {}", ids[n]), &got, &grads[n * width..(n + 1) * width], RTOL, ATOL);
    }
}

#[test]
fn cartpole_relu_mlp_matches_pytorch() {
    check_fixture("cartpole");
}

#[test]
fn acrobot_tanh_mlp_matches_pytorch() {
    check_fixture("acrobot");
}

#[test]
fn demo_dict_custom_extractor_matches_pytorch() {
    check_fixture("demo");
}

#[test]
fn nature_cnn_matches_pytorch() {
    check_fixture("cnn");
}

#[test]
fn combined_extractor_dict_image_and_vector_matches_pytorch() {
    check_fixture("combined");
}

#[test]
fn discrete_one_hot_observations_match_pytorch() {
    check_fixture("frozenlake");
}

fn pass(name: &str, batch: Option<usize>) -> Averages {
    let (agent, net) = load(name);
    let out = tempfile::tempdir().unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let opts = pipeline::PassOptions { raw: RawFormat::None, out_dir: out.path().to_path_buf(), batch_size: batch };
    pipeline::gradient_pass(&agent, &net, &pipeline::clean_inputs_path(&fixture(name)), &opts, &mut |_, _| {}, &stop)
        .unwrap()
        .averages
}

fn check_averages(name: &str) {
    let ours = pass(name, None);
    let reference = Averages::read(&reference_dir(name).join("average_gradients.json")).unwrap();
    assert_eq!(ours.num_examples, reference.num_examples);
    assert_eq!(ours.params.len(), reference.params.len());
    for (a, b) in ours.params.iter().zip(&reference.params) {
        assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
        assert_close(&format!("{name} average {}", a.name), &a.data, &b.data, RTOL, ATOL);
    }
}

#[test]
fn averages_match_the_python_tool() {
    for name in ["cartpole", "acrobot", "demo", "frozenlake"] {
        check_averages(name);
    }
}

#[test]
fn cnn_averages_match_the_reference_gradients() {
    // The CNN's reference averages are the Python tool's rule applied to its gradients.npy.
    let (shape, grads) = read_npy(&reference_dir("cnn").join("gradients.npy"));
    let (n, width) = (shape[0], shape[1]);
    let mut want = vec![0.0f64; width];
    for row in grads.chunks_exact(width) {
        for (s, v) in want.iter_mut().zip(row) {
            *s += v.abs();
        }
    }
    for s in &mut want {
        *s /= n as f64;
    }
    let ours = pass("cnn", Some(2));
    let got: Vec<f64> = ours.params.iter().flat_map(|p| p.data.iter().copied()).collect();
    assert_close("cnn averages", &got, &want, RTOL, ATOL);
}

#[test]
fn batching_does_not_change_results() {
    // Batch of one (the Python tool's method) and other batch sizes agree to float32 rounding
    // (a few 1e-6 relative: different BLAS summation orders).
    for name in ["demo", "cnn"] {
        let one = pass(name, Some(1));
        for batch in [3, 1000] {
            let other = pass(name, Some(batch));
            for (a, b) in one.params.iter().zip(&other.params) {
                assert_close(&format!("{name} batch {batch} {}", a.name), &b.data, &a.data, RTOL, ATOL);
            }
        }
    }
}

#[test]
fn output_bias_average_is_the_action_histogram() {
    // agent-format.md §6: d q[a*] / d bias_out is one-hot, so its mean magnitude is the share
    // of inputs whose greedy action is each output.
    for name in ["cartpole", "acrobot", "demo", "cnn", "combined", "frozenlake"] {
        let avgs = pass(name, None);
        let bias = avgs.params.last().unwrap();
        assert!(bias.name.ends_with(".bias"));
        let actions: Vec<i64> =
            meta(name).get("all_actions").unwrap().as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        for (a, &share) in bias.data.iter().enumerate() {
            let count = actions.iter().filter(|&&x| x == a as i64).count();
            assert_eq!(share, count as f64 / actions.len() as f64, "{name} action {a}");
        }
    }
}

#[test]
fn dead_relu_units_give_exact_zeros() {
    // A unit whose ReLU is off for every input gets exactly zero gradient in its row and bias.
    let avgs = pass("cartpole", None);
    let (agent, net) = load("cartpole");
    let (ids, values) = read_inputs("cartpole", &agent);
    let x = tch::Tensor::from_slice(&values).reshape([ids.len() as i64, agent.arch.input_len as i64]);
    let w = tch::Tensor::from_slice(&agent.params[0].data).reshape([64, 4]);
    let b = tch::Tensor::from_slice(&agent.params[1].data);
    let pre: Vec<f32> = Vec::try_from(&x.linear(&w, Some(&b)).view(-1)).unwrap();
    let _ = net;
    let mut dead = 0;
    for unit in 0..64 {
        if (0..ids.len()).all(|n| pre[n * 64 + unit] <= 0.0) {
            dead += 1;
            assert!(avgs.params[0].row(unit).iter().all(|&v| v == 0.0));
            assert_eq!(avgs.params[1].data[unit], 0.0);
        }
    }
    // Guard against a vacuous test: the trained CartPole net has dead units on these inputs.
    assert!(dead > 0, "no dead unit found");
}

#[test]
fn agent_zip_and_directory_resolve_the_same() {
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
    let (demo, _) = load("demo");
    assert_eq!(demo.info.policy_class, "MultiInputPolicy");
    assert!(demo.arch.summary.contains("custom mlp extractor"), "{}", demo.arch.summary);
    assert_eq!(demo.arch.input_len, 106);
    let (cnn, _) = load("cnn");
    assert_eq!(cnn.info.policy_class, "CnnPolicy");
    assert!(cnn.arch.summary.starts_with("NatureCNN"), "{}", cnn.arch.summary);
    assert_eq!(cnn.arch.input_len, 2 * 44 * 44);
    let (acro, _) = load("acrobot");
    assert_eq!(acro.info.activation, Some(saliency::agent::Activation::Tanh));
    assert_eq!(acro.info.net_arch, Some(vec![32, 16]));
}
