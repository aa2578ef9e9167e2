//! `saliency ablate` against PyTorch: every number of `ablation.json` compared with the ones
//! scripts/reference/make_ablation_reference.py computed with SB3's own Q-network (the changed
//! network built with PyTorch indexing, the first-order estimate from per-input autograd
//! gradients, the random draws from the documented generator), on all six fixtures, for two
//! selections (the committed k=2 m=4 one, and a "live" one touching every parameter) in modes
//! zero and scale:0.5. Actions are compared exactly; float results within 1e-5 of their scale
//! (see `common::RTOL`; the scale of a Q difference is the Q-values'). Also: seeds, the k/m
//! path, `run --ablate`.

mod common;

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use common::*;
use saliency::json::Value;

const FIXTURES: [&str; 6] = ["cartpole", "acrobot", "demo", "cnn", "combined", "frozenlake"];

fn saliency() -> Command {
    Command::cargo_bin("saliency").unwrap()
}

fn ablate(name: &str, selection: &Path, mode: &str, extra: &[&str]) -> (tempfile::TempDir, Value) {
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["ablate", "-q", "--mode", mode, "--agent-path"])
        .arg(fixture(name))
        .arg("--candidates")
        .arg(selection)
        .arg("--output-dir")
        .arg(out.path())
        .args(extra)
        .assert()
        .success();
    let v = read_json(&out.path().join("ablation.json"));
    (out, v)
}

fn f(v: &Value, path: &[&str]) -> f64 {
    let mut cur = v;
    for k in path {
        cur = cur.get(k).unwrap_or_else(|| panic!("no {path:?}"));
    }
    cur.as_f64().unwrap()
}

/// |got - want| <= RTOL * scale + FLOOR.
fn close(what: &str, got: f64, want: f64, scale: f64) {
    let tol = RTOL * scale + FLOOR;
    assert!((got - want).abs() <= tol, "{what}: got {got} want {want} (tolerance {tol:e})");
}

/// The scale of Q differences for a fixture: the largest |Q| among the reference's inputs.
fn q_scale(name: &str) -> f64 {
    let meta = read_json(&reference_dir(name).join("meta.json"));
    meta.get("values").unwrap().as_array().unwrap().iter().map(|v| v.as_f64().unwrap().abs()).fold(0.0, f64::max)
}

fn check(name: &str, selection: &str, tag: &str, mode: &str) {
    let file = format!("ablation_{tag}{}.json", mode.replace(':', "_"));
    check_file(name, selection, &file, mode, &[], q_scale(name));
}

/// Compares `saliency ablate` (with `extra` arguments) on `selection` with the reference
/// `file`; `q_scale` is the scale of the network's outputs (Q-values or logits).
fn check_file(name: &str, selection: &str, file: &str, mode: &str, extra: &[&str], q_scale: f64) {
    let want = read_json(&reference_dir(name).join(file));
    let mut args = vec!["--random", "20", "--seed", "0"];
    args.extend_from_slice(extra);
    let (_out, got) = ablate(name, &reference_dir(name).join(selection), mode, &args);
    let what = format!("{name} {file}");
    assert_eq!(got.get("metadata"), want.get("metadata"), "{what}: metadata");
    let (g, w) =
        (got.get("per_input").unwrap().as_object().unwrap(), want.get("per_input").unwrap().as_object().unwrap());
    assert_eq!(g.keys().collect::<Vec<_>>(), w.keys().collect::<Vec<_>>(), "{what}: inputs");
    // Scales: Q differences are as precise as the Q-values; KL relative to the largest KL.
    let mut scale = q_scale;
    for e in w.values() {
        scale = scale.max(f(e, &["target_drop"]).abs()).max(f(e, &["predicted_drop"]).abs());
    }
    let kls: Vec<f64> = w.values().map(|e| f(e, &["kl"])).collect();
    let max_kl = kls.iter().copied().fold(0.0, f64::max);
    // KL is second order in the change of the logits, so it is less precise than they are:
    // an error e in the logits moves KL(p || p') by at most ||p - p'||_1 * e <= sqrt(2 KL) * e
    // (Pinsker), with e up to RTOL times the Q-values' scale.
    let kl_scale = |kl: f64| max_kl + q_scale * (2.0 * kl).sqrt();
    for (id, e) in w {
        let o = &g[id];
        for k in ["action", "ablated_action"] {
            assert_eq!(o.get(k), e.get(k), "{what} {id}: {k}");
        }
        close(&format!("{what} {id}: kl"), f(o, &["kl"]), f(e, &["kl"]), kl_scale(f(e, &["kl"])));
        close(&format!("{what} {id}: target_drop"), f(o, &["target_drop"]), f(e, &["target_drop"]), scale);
        close(&format!("{what} {id}: predicted_drop"), f(o, &["predicted_drop"]), f(e, &["predicted_drop"]), scale);
    }
    assert_eq!(f(&got, &["selection", "flip_rate"]), f(&want, &["selection", "flip_rate"]), "{what}: flip rate");
    for (k, s) in [("mean_target_drop", scale), ("mean_predicted_drop", scale), ("mean_kl", kl_scale(max_kl))] {
        close(&format!("{what}: selection {k}"), f(&got, &["selection", k]), f(&want, &["selection", k]), s);
    }
    // The random baseline: the same draws (the generator is reimplemented in Python), so the
    // same statistics; flip rates are counts, exactly equal.
    // (the draws' KL has its own scale: the selection's can be zero, as for dead units)
    let random_kl = kl_scale(max_kl.max(f(&want, &["random", "mean_kl", "max"])));
    for (measure, s) in [("flip_rate", 0.0), ("mean_target_drop", scale), ("mean_kl", random_kl)] {
        for stat in ["mean", "std", "min", "max", "percentile"] {
            let (a, b) = (f(&got, &["random", measure, stat]), f(&want, &["random", measure, stat]));
            if measure == "flip_rate" || stat == "percentile" {
                assert!((a - b).abs() <= 1e-12, "{what}: random {measure} {stat}: got {a} want {b}");
            } else {
                close(&format!("{what}: random {measure} {stat}"), a, b, s);
            }
        }
    }
}

#[test]
fn selection_ablation_matches_pytorch_on_every_fixture() {
    for name in FIXTURES {
        for mode in ["zero", "scale:0.5"] {
            check(name, "candidate_weights_k2_m4.json", "", mode);
        }
    }
}

#[test]
fn ablation_of_every_kind_of_parameter_matches_pytorch() {
    // Linear and conv weights and biases, in every fixture.
    for name in FIXTURES {
        for mode in ["zero", "scale:0.5"] {
            check(name, "selection_live.json", "live_", mode);
        }
    }
}

#[test]
fn actor_critic_ablation_matches_pytorch_for_actor_and_critic() {
    // The target's path only; for `value` the critic changes, and the actions and the KL are
    // the policy's: unchanged with separate extractors (A2C), changed through the shared
    // NatureCNN (PPO CnnPolicy).
    for name in ["ppo_cnn", "a2c_acrobot"] {
        let refs = read_npz(&reference_dir(name).join("targets.npz"));
        let scale = |k: &str| refs[k].1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for target in ["logprob", "value"] {
            let q = if target == "value" { scale("value/values") } else { scale("logit/values") };
            for mode in ["zero", "scale:0.5"] {
                let file = format!("ablation_{target}_live_{}.json", mode.replace(':', "_"));
                let sel = format!("selection_live_{target}.json");
                check_file(name, &sel, &file, mode, &["--target", target], q);
            }
        }
    }
    let kl = |name: &str| {
        let w = read_json(&reference_dir(name).join("ablation_value_live_zero.json"));
        f(&w, &["selection", "mean_kl"])
    };
    assert_eq!(kl("a2c_acrobot"), 0.0);
    assert!(kl("ppo_cnn") > 0.0);
}

#[test]
fn the_first_order_estimate_is_exact_for_the_output_layer() {
    // The target q[a*] is linear in the output layer's weights and bias: zeroing only those,
    // the predicted drop equals the actual drop (to float32 rounding of the outputs).
    let dir = tempfile::tempdir().unwrap();
    let sel = dir.path().join("out_layer.json");
    std::fs::write(
        &sel,
        r#"{"weight_targets": [
            {"layer_name": "q_net.4.weight", "neuron_index": 0, "weight_index": 3},
            {"layer_name": "q_net.4.weight", "neuron_index": 1, "weight_index": 7},
            {"layer_name": "q_net.4.weight", "neuron_index": 2, "weight_index": 0},
            {"layer_name": "q_net.4.bias", "neuron_index": 0, "weight_index": 1}]}"#,
    )
    .unwrap();
    let (_out, v) = ablate("acrobot", &sel, "zero", &["--random", "0"]);
    assert_eq!(v.get("random"), Some(&Value::Null));
    let scale = q_scale("acrobot");
    let mut nonzero = 0;
    for (id, e) in v.get("per_input").unwrap().as_object().unwrap() {
        let (d, p) = (f(e, &["target_drop"]), f(e, &["predicted_drop"]));
        close(&format!("acrobot {id}"), p, d, scale);
        nonzero += usize::from(d != 0.0);
    }
    assert!(nonzero > 0, "the change should move some Q-values");
}

#[test]
fn the_same_seed_gives_the_same_draws_and_another_seed_others() {
    let sel = reference_dir("demo").join("candidate_weights_k2_m4.json");
    let random = |seed: &str| {
        let (_o, v) = ablate("demo", &sel, "zero", &["--random", "8", "--seed", seed]);
        v.get("random").unwrap().clone()
    };
    assert_eq!(random("3"), random("3"));
    assert_ne!(random("3"), random("4"));
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn k_m_selection_run_ablate_and_candidates_agree_byte_for_byte() {
    // On a DQN agent, and on policies under their default target (logprob) and under value
    // (the selection then ranks the critic's averages).
    for (name, target) in [("demo", None), ("ppo_cartpole", None), ("ppo_cnn", Some("value"))] {
        let extra: Vec<&str> = target.map(|t| vec!["--target", t]).unwrap_or_default();
        // `run --k 2 --m 4 --ablate` writes the selection and its ablation ...
        let run = tempfile::tempdir().unwrap();
        saliency()
            .args(["run", "-q", "--raw-gradients", "none", "--k", "2", "--m", "4", "--ablate", "--random", "5"])
            .args(&extra)
            .arg("--agent-path")
            .arg(fixture(name))
            .arg("--output-dir")
            .arg(run.path())
            .assert()
            .success();
        let report = read_json(&run.path().join("ablation.json"));
        let want_target = target.unwrap_or(if name == "demo" { "q" } else { "logprob" });
        assert_eq!(report.get("metadata").unwrap().get("target").unwrap().as_str(), Some(want_target), "{name}");
        // ... `ablate --candidates` on that selection writes the same file ...
        let mut args = vec!["--random", "5"];
        args.extend_from_slice(&extra);
        let (_o, _) = ablate(name, &run.path().join("candidate_weights.json"), "zero", &args);
        assert!(read(&_o.path().join("ablation.json")) == read(&run.path().join("ablation.json")), "{name}");
        // ... and so does `ablate --k 2 --m 4`, selecting as extract would from the target's
        // averages (running the gradient pass first: the output directory has none).
        let km_dir = tempfile::tempdir().unwrap();
        let km = km_dir.path().to_path_buf();
        saliency()
            .args(["ablate", "-q", "--k", "2", "--m", "4", "--random", "5"])
            .args(&extra)
            .arg("--agent-path")
            .arg(fixture(name))
            .arg("--output-dir")
            .arg(&km)
            .assert()
            .success();
        assert!(read(&km.join("ablation.json")) == read(&run.path().join("ablation.json")), "{name}");
        let written: Vec<PathBuf> = std::fs::read_dir(&km).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(written, [km.join("ablation.json")], "ablate --k/--m writes only ablation.json");
    }
}
