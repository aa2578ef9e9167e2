//! QR-DQN, PPO, A2C and MaskablePPO agents (one with VecNormalize) against PyTorch through SB3's
//! and sb3-contrib's own policy objects (scripts/reference/make_algorithm_reference.py), for
//! every target of each family: the parameters reported (names, shapes, order: those of
//! `named_parameters()` on the target's path), greedy actions (exactly), target values, the
//! per-input gradients `saliency gradients` writes, the input saliency (through VecNormalize,
//! zero where clipped), the averages and the selections. Also: refused algorithms and files.

mod common;

use std::collections::HashMap;
use std::path::Path;

use assert_cmd::Command;
use common::*;
use saliency::pipeline::average::{Averages, AvgParam};
use saliency::pipeline::extract;

/// See tests/targets.rs: float32 against a float64 reference on a cancelling target.
const RTOL_COMBINED: f64 = 1e-4;

fn saliency() -> Command {
    Command::cargo_bin("saliency").unwrap()
}

fn check(name: &str) {
    check_with(name, &[]);
}

/// Compares every target of fixture `name` with its PyTorch reference; `extra` is passed to
/// every saliency command.
fn check_with(name: &str, extra: &[&str]) {
    let refs = read_npz(&reference_dir(name).join("targets.npz"));
    let heads = read_json(&reference_dir(name).join("heads.json"));
    let n = heads.get("inputs").unwrap().as_i64().unwrap() as usize;
    let dir = first_inputs(name, n);
    let targets = heads.get("targets").unwrap().as_object().unwrap();
    // The single outputs' gradients (q or the logit of a*), for the scale of combined targets.
    let single = if name == "qrdqn" { "q" } else { "logit" };
    // Tanh networks (SB3's actor-critic default): a saturated unit's derivative 1 - tanh(z)^2
    // loses digits as |tanh(z)| nears 1, so the forward pass's float32 summation order shows in
    // its gradients. Measured on PPO CartPole's critic: with batches of one, exactly PyTorch's
    // numbers; with batches of 6, up to 2.3e-5 of the tensor's largest gradient. These agents
    // are compared at RTOL_COMBINED.
    let tanh = [
        "ppo_cartpole",
        "ppo_vecnormalize",
        "maskable_ppo",
        "ppo_dict_separate",
        "ppo_custom_mlp",
        "ppo_dict_vecnormalize",
    ]
    .contains(&name);
    let tanh_scale =
        |want: &[f64]| if tanh { RTOL_COMBINED / RTOL * want.iter().fold(0.0f64, |m, v| m.max(v.abs())) } else { 0.0 };
    for (target, params) in targets {
        let what = format!("{name} --target {target}");
        let out = tempfile::tempdir().unwrap();
        saliency()
            .args(["gradients", "-q", "--raw-gradients", "npy", "--input-saliency", "--target", target, "--agent-path"])
            .arg(dir.path())
            .args(extra)
            .arg("--output-dir")
            .arg(out.path())
            .assert()
            .success();
        let index = read_json(&out.path().join("weight_gradients/index.json"));
        let nums = |k: &str| -> Vec<f64> {
            index.get(k).unwrap().as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
        };
        // Parameters: the path's, PyTorch's names and shapes, in order.
        let want_params = named_shapes(params);
        let got_params = named_shapes(index.get("parameters").unwrap());
        assert_eq!(got_params, want_params, "{what}: parameters");
        assert_eq!(nums("max_logit_action"), refs[&format!("{target}/actions")].1, "{what}: actions");
        let single_values = refs[&format!("{single}/values")].1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in nums("max_logit_value").iter().zip(&refs[&format!("{target}/values")].1) {
            assert!((a - b).abs() <= RTOL * single_values.max(b.abs()) + FLOOR, "{what}: target value {a} vs {b}");
        }
        // Per-input gradients (the float64 references of the log-softmax targets: see
        // RTOL_COMBINED; combined targets at the single outputs' scale).
        let (gshape, grads) = &refs[&format!("{target}/grads")];
        let (sshape, sgrads) = &refs[&format!("{single}/grads")];
        let combined = target != single && target != "value";
        let widen = if target.contains("log") || (name != "qrdqn" && target.starts_with("action:")) {
            RTOL_COMBINED / RTOL
        } else {
            1.0
        };
        let single_heads = named_shapes(&targets[single]);
        let mut start = 0;
        let mut rows: Vec<Vec<Vec<f64>>> = Vec::new();
        for (pname, shape) in &want_params {
            let numel: usize = shape.iter().product();
            let (_, got) = read_npy(&out.path().join(format!("weight_gradients/{pname}.npy")));
            // The same parameter's gradient for the single output, when it is on that path.
            let s_start = single_heads
                .iter()
                .scan(0usize, |acc, (n2, s2)| {
                    let at = *acc;
                    *acc += s2.iter().product::<usize>();
                    Some((n2, at))
                })
                .find(|(n2, _)| *n2 == pname)
                .map(|(_, at)| at);
            let mut prow = Vec::new();
            for i in 0..n {
                let want = &grads[i * gshape[1] + start..i * gshape[1] + start + numel];
                let scale = match (combined, s_start) {
                    (true, Some(s0)) => {
                        2.0 * widen
                            * sgrads[i * sshape[1] + s0..i * sshape[1] + s0 + numel]
                                .iter()
                                .fold(0.0f64, |m, v| m.max(v.abs()))
                    }
                    _ => 0.0,
                };
                let scale = scale.max(tanh_scale(want));
                assert_close_scaled(
                    &format!("{what}: input {i} {pname}"),
                    &got[i * numel..(i + 1) * numel],
                    want,
                    scale,
                );
                prow.push(want.to_vec());
            }
            rows.push(prow);
            start += numel;
        }
        // Input saliency, with respect to the observation as written, per observation key
        // (`obs` for a non-Dict observation).
        let bytes = std::fs::read(out.path().join("input_saliency.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let prefix = format!("{target}/input/");
        let keys: Vec<&str> = refs.keys().filter_map(|k| k.strip_prefix(&prefix)).collect();
        assert!(!keys.is_empty(), "{what}: no input references");
        for key in keys {
            let t = st.tensor(&format!("per_input/{key}")).unwrap();
            let got: Vec<f64> =
                t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect();
            let want = &refs[&format!("{target}/input/{key}")].1;
            let term = if combined {
                2.0 * widen * refs[&format!("{single}/input/{key}")].1.iter().fold(0.0f64, |m, v| m.max(v.abs()))
            } else {
                0.0
            };
            assert_close_scaled(&format!("{what}: input saliency of {key}"), &got, want, term.max(tanh_scale(want)));
            if name == "ppo_vecnormalize" {
                // Clipped values get exactly zero gradient; the reference has such inputs.
                let zeros = want.iter().zip(&got).filter(|(w, g)| **w == 0.0 && **g == 0.0).count();
                assert!(zeros >= 4, "{what}: clipped inputs should have zero saliency ({zeros})");
            }
        }
        // Averages (this run's, over the same inputs), and the selection from them.
        let run = tempfile::tempdir().unwrap();
        saliency()
            .args(["run", "-q", "--raw-gradients", "none", "--target", target, "--agent-path"])
            .arg(dir.path())
            .args(extra)
            .arg("--output-dir")
            .arg(run.path())
            .assert()
            .success();
        let ours = Averages::read(&run.path().join("average_gradients.json")).unwrap();
        let theirs = Averages {
            num_examples: Some(n as i64),
            params: want_params
                .iter()
                .zip(&rows)
                .map(|((pname, shape), r)| AvgParam {
                    name: pname.clone(),
                    shape: shape.clone(),
                    data: (0..r[0].len()).map(|j| r.iter().map(|row| row[j].abs()).sum::<f64>() / n as f64).collect(),
                })
                .collect(),
        };
        for (a, b) in ours.params.iter().zip(&theirs.params) {
            assert_eq!((&a.name, &a.shape), (&b.name, &b.shape));
            let scale =
                if combined { RTOL_COMBINED / RTOL * b.data.iter().fold(0.0f64, |m, v| m.max(*v)) } else { 0.0 };
            let scale = scale.max(tanh_scale(&b.data));
            assert_close_scaled(&format!("{what}: average {}", a.name), &a.data, &b.data, scale);
        }
        let cross = read_json(&fixture(name).join("patching_results/cross_metric_summary.json"));
        let keys = extract::candidate_keys(&cross, "cross").unwrap();
        let resolved = extract::resolve(&keys, None, &ours);
        let (x, y) =
            (extract::select(&ours, &resolved.candidates, 2, 4), extract::select(&theirs, &resolved.candidates, 2, 4));
        assert_eq!(x.weights.len(), y.weights.len(), "{what}: selection size");
        let top = y.weights.iter().map(|t| t.magnitude).fold(0.0, f64::max);
        let tol = if combined || tanh { 10.0 * RTOL_COMBINED * top } else { 10.0 * RTOL * top };
        for (a, b) in x.weights.iter().zip(&y.weights) {
            let same = (a.candidate, a.weight_index) == (b.candidate, b.weight_index);
            assert!(same || (a.magnitude - b.magnitude).abs() <= tol, "{what}: selection {a:?} vs {b:?}");
        }
    }
}

#[test]
fn qrdqn_matches_pytorch() {
    check("qrdqn");
}

#[test]
fn ppo_cartpole_defaults_match_pytorch() {
    check("ppo_cartpole");
}

#[test]
fn a2c_separate_pi_vf_relu_matches_pytorch() {
    check("a2c_acrobot");
}

#[test]
fn ppo_cnn_shared_extractor_matches_pytorch() {
    check("ppo_cnn");
}

#[test]
fn ppo_with_vec_normalize_matches_pytorch() {
    check("ppo_vecnormalize");
}

#[test]
fn ppo_dict_with_vec_normalize_on_one_key_matches_pytorch() {
    // norm_obs_keys = ["pos"]: that key is normalised with its own statistics, "rest" is not.
    check("ppo_dict_vecnormalize");
}

#[test]
fn maskable_ppo_matches_pytorch() {
    check("maskable_ppo");
}

#[test]
fn ppo_dict_observation_with_separate_extractors_matches_pytorch() {
    // The critic's own CombinedExtractor is reported as vf_features_extractor.*.
    check("ppo_dict_separate");
}

#[test]
fn ppo_custom_mlp_extractor_matches_pytorch() {
    // The extractor's ReLU is not in the zip; the policy's default is Tanh, so it is stated.
    check_with("ppo_custom_mlp", &["--extractor-activation", "relu"]);
    // Without the flag saliency assumes the policy's activation and says so.
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["gradients", "--agent-path"])
        .arg(fixture("ppo_custom_mlp"))
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success()
        .stderr(predicates::str::contains("--extractor-activation"));
}

#[test]
fn families_heads_and_defaults() {
    use saliency::agent::{load_agent, Family, Head};
    let load = |n: &str| load_agent(&fixture(n), &Default::default(), &Default::default()).unwrap();
    let expect = [
        ("qrdqn", "QR-DQN"),
        ("ppo_cartpole", "PPO"),
        ("a2c_acrobot", "A2C"),
        ("ppo_cnn", "PPO"),
        ("ppo_vecnormalize", "PPO"),
        ("maskable_ppo", "MaskablePPO"),
        ("ppo_dict_separate", "PPO"),
        ("ppo_custom_mlp", "PPO"),
        ("ppo_dict_vecnormalize", "PPO"),
        ("cartpole", "DQN"),
    ];
    for (n, family) in expect {
        let a = load(n);
        assert_eq!(a.family.name(), family, "{n}");
        assert!(a.arch.summary.starts_with(family), "{n}: {}", a.arch.summary);
    }
    assert_eq!(load("ppo_cartpole").head, Head::Actor);
    assert!(matches!(load("maskable_ppo").family, Family::ActorCritic { .. }));
    assert!(load("maskable_ppo").arch.notes.iter().any(|n| n.contains("no action masks")));
    assert!(load("ppo_vecnormalize").arch.notes.iter().any(|n| n.contains("VecNormalize")));
    // The default target of a policy is logprob; q is refused there, value on a Q-network.
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["gradients", "-q", "--raw-gradients", "npy", "--agent-path"])
        .arg(fixture("a2c_acrobot"))
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    let want = &read_npz(&reference_dir("a2c_acrobot").join("targets.npz"))["logprob/values"].1;
    let got = read_json(&out.path().join("weight_gradients/index.json"));
    let v = got.get("max_logit_value").unwrap().as_array().unwrap()[0].as_f64().unwrap();
    assert!((v - want[0]).abs() < 1e-5, "default target is not logprob: {v} vs {}", want[0]);
    saliency()
        .args(["run", "-q", "--target", "q", "--agent-path"])
        .arg(fixture("ppo_cartpole"))
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "target q is for Q-networks; a PPO policy has logprob (default), logit, margin, action:N and value",
        ));
}

#[test]
fn vec_normalize_can_be_turned_off_or_named() {
    let runs: HashMap<&str, Vec<u8>> = [
        ("auto", vec![]),
        ("off", vec!["--no-vec-normalize"]),
        ("named", vec!["--vec-normalize", "tests/fixtures/ppo_vecnormalize/vec_normalize.pkl"]),
    ]
    .into_iter()
    .map(|(k, extra)| {
        let out = tempfile::tempdir().unwrap();
        let mut cmd = saliency();
        cmd.current_dir(root())
            .args(["run", "-q", "--raw-gradients", "none", "--agent-path"])
            .arg(fixture("ppo_vecnormalize"));
        cmd.arg("--output-dir").arg(out.path()).args(&extra).assert().success();
        (k, std::fs::read(out.path().join("average_gradients.json")).unwrap())
    })
    .collect();
    assert!(runs["auto"] == runs["named"]);
    assert!(runs["auto"] != runs["off"]);
}

fn fails(args: &[&str], agent: &Path, needle: &str) {
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(args)
        .arg("--agent-path")
        .arg(agent)
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .failure()
        .stderr(predicates::str::contains(needle));
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "output left behind");
}

#[test]
fn unsupported_algorithms_are_named() {
    // A SAC-like module, and a zip whose data says PPO but whose keys are DQN's.
    for (module, needle) in [
        (
            "stable_baselines3.sac.policies",
            "(stable_baselines3.sac.policies); saliency reads DQN (stable_baselines3.dqn), QR-DQN",
        ),
        (
            "stable_baselines3.common.policies",
            "the state dict lacks action_net.* and value_net.* (not an actor-critic policy?)",
        ),
    ] {
        let dir = copy_fixture("cartpole");
        rewrite_zip(&fixture("cartpole").join("agent.zip"), &dir.path().join("agent.zip"), |name, data| {
            Some(if name == "data" {
                String::from_utf8(data).unwrap().replace("stable_baselines3.dqn.policies", module).into_bytes()
            } else {
                data
            })
        });
        fails(&["run", "-q"], dir.path(), needle);
    }
}
