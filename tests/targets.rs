//! Targets, measures and input saliency against PyTorch (scripts/reference/make_target_reference.py:
//! SB3's own Q-network, autograd one input at a time; `logsoftmax` with the network in float64),
//! on all six fixtures, for the targets q, margin, action:<last> and logsoftmax:
//! - the per-input gradients `saliency gradients --target T` writes (npy), its actions (exactly)
//!   and target values;
//! - every measure of `measures.safetensors`, against the same reductions of PyTorch's
//!   gradients (computed here in float64);
//! - `input_saliency.safetensors`: per-input gradients with respect to the observation as
//!   written, and their mean-abs and mean.
//!
//! Float results within 1e-5 of their tensor's scale (`common::RTOL`). Also: `mean-abs` is
//! `average_gradients.json` bit for bit, `--select-by`, and the default files unchanged.

mod common;

use std::collections::HashMap;
use std::path::Path;

use assert_cmd::Command;
use common::*;
use saliency::pipeline::average::{Averages, AvgParam};
use saliency::pipeline::extract;

const FIXTURES: [&str; 6] = ["cartpole", "acrobot", "demo", "cnn", "combined", "frozenlake"];

/// Tolerance of float32 results against the float64 logsoftmax reference, relative to the
/// single outputs' gradient scale (see `check`).
const RTOL_COMBINED: f64 = 1e-4;

fn saliency() -> Command {
    Command::cargo_bin("saliency").unwrap()
}

type Arrays = HashMap<String, (Vec<usize>, Vec<f64>)>;

fn safetensors_f64(path: &Path) -> (Arrays, HashMap<String, String>) {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut out = HashMap::new();
    for (name, t) in st.tensors() {
        let v: Vec<f64> = match t.dtype() {
            safetensors::Dtype::F64 => {
                t.data().chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap())).collect()
            }
            safetensors::Dtype::F32 => {
                t.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64).collect()
            }
            other => panic!("{name}: {other:?}"),
        };
        out.insert(name, (t.shape().to_vec(), v));
    }
    (out, meta.metadata().clone().unwrap_or_default())
}

/// The measures of per-input gradients `g` (inputs x elements) of one parameter with values `w`.
fn measures_of(g: &[&[f64]], w: &[f32]) -> HashMap<&'static str, Vec<f64>> {
    let n = g.len() as f64;
    let e = w.len();
    let col = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> {
        (0..e).map(|j| g.iter().map(|row| f(row[j], f64::from(w[j]))).sum::<f64>() / n).collect()
    };
    let mut m = HashMap::new();
    m.insert("mean-abs", col(&|x, _| x.abs()));
    m.insert("mean", col(&|x, _| x));
    m.insert("mean-sq", col(&|x, _| x * x));
    m.insert("max-abs", (0..e).map(|j| g.iter().map(|row| row[j].abs()).fold(0.0, f64::max)).collect());
    m.insert("mean-abs-gxw", col(&|x, wj| (x * wj).abs()));
    m.insert("abs-mean-gxw", col(&|x, wj| x * wj).into_iter().map(f64::abs).collect());
    m.insert("nonzero", col(&|x, _| if x != 0.0 { 1.0 } else { 0.0 }));
    let (mean, sq) = (m["mean"].clone(), m["mean-sq"].clone());
    m.insert("fisher", sq.iter().zip(w).map(|(q, &wj)| f64::from(wj) * f64::from(wj) * q).collect());
    let var: Vec<f64> = mean.iter().zip(&sq).map(|(a, q)| (q - a * a).max(0.0)).collect();
    m.insert(
        "snr",
        mean.iter()
            .zip(&var)
            .map(|(a, v)| match (*a == 0.0, *v == 0.0) {
                (true, _) => 0.0,
                (false, true) => f32::MAX as f64,
                _ => a.abs() / v.sqrt(),
            })
            .collect(),
    );
    m.insert("variance", var);
    m
}

/// The signal-to-noise ratio |mean| / sqrt(variance) is ill-conditioned where the variance is
/// tiny. Everywhere: it is exactly that ratio of the file's own mean and variance (which are
/// compared with PyTorch's like the other measures). Against PyTorch's: where the reference
/// variance is well above float32's error on it (per element: 2 sqrt(mean-sq) times the
/// gradients' error, for each of the two terms), with the error propagated from the mean's and
/// the variance's. Returns how many elements were compared with PyTorch's.
fn check_snr(what: &str, got: &[f64], ours: (&[f64], &[f64]), want: (&[f64], &[f64], &[f64]), g_tol: f64) -> usize {
    let (our_mean, our_var) = ours;
    let (mean, var, sq) = want;
    let mut compared = 0;
    for j in 0..got.len() {
        let own = match (our_mean[j] == 0.0, our_var[j] == 0.0) {
            (true, _) => 0.0,
            (false, true) => f32::MAX as f64,
            _ => (our_mean[j].abs() / our_var[j].sqrt()).min(f32::MAX as f64),
        };
        assert_eq!(got[j], own, "{what}: snr[{j}] is not |mean| / sqrt(variance) of the same file");
        let (a, v) = (mean[j].abs(), var[j]);
        let noise = 4.0 * g_tol * sq[j].sqrt() + 1e-300;
        if v > 10.0 * noise {
            let want = a / v.sqrt();
            let tol = 10.0 * (g_tol / v.sqrt() + a * noise / (2.0 * v.powf(1.5)));
            assert!((got[j] - want).abs() <= tol, "{what}: snr[{j}] = {} vs {want} (tol {tol})", got[j]);
            compared += 1;
        }
    }
    compared
}

fn check(name: &str) {
    let refs: Arrays = read_npz(&reference_dir(name).join("targets.npz"));
    let meta = read_json(&reference_dir(name).join("meta.json"));
    let params = named_shapes(meta.get("params").unwrap());
    let agent = saliency::agent::load_agent(&fixture(name), &Default::default(), &Default::default()).unwrap();
    let targets: Vec<String> = refs.keys().filter_map(|k| k.strip_suffix("/grads")).map(str::to_string).collect();
    // Margin and logsoftmax combine several outputs (sum_j c_j dq_j/dw, the c summing to 0):
    // where the terms nearly cancel (an agent that values its actions alike, as Acrobot's),
    // float32 arithmetic errs relative to the terms, not to their small difference. Those
    // targets are compared at the scale of the single outputs' gradients (twice the largest of
    // q[a*]'s and the last action's, tensor by tensor). The logsoftmax reference is the
    // network in float64, so the comparison also carries float32's own error on the
    // cancellation, which PyTorch's float32 autograd shares: on Acrobot's first input,
    // q_net.0.weight[84] is -1.5699e-7 in float64, -1.61122500e-7 in PyTorch float32 and
    // -1.61124518e-7 here (1.2e-5 of the terms' scale); hence RTOL_COMBINED for it.
    // (the single outputs' gradients we have: q[a*]'s and the last action's)
    let last = targets.iter().find(|t| t.starts_with("action:")).cloned().unwrap_or_default();
    let singles = [&refs["q/grads"], &refs[&format!("{last}/grads")]];
    let q_scale_of = |target: &str, i: usize, start: usize, len: usize| -> f64 {
        let max = |(shape, g): &(Vec<usize>, Vec<f64>)| {
            g[i * shape[1] + start..i * shape[1] + start + len].iter().fold(0.0f64, |m, v| m.max(v.abs()))
        };
        // (a float64 reference: float32's error on the cancellation too, RTOL_COMBINED)
        let widen = if target == "logsoftmax" { RTOL_COMBINED / RTOL } else { 1.0 };
        2.0 * widen * singles.iter().map(|s| max(s)).fold(0.0, f64::max)
    };
    assert_eq!(targets.len(), 4, "{name}: {targets:?}");
    let mut snr_agent = 0;
    for target in &targets {
        let (gshape, grads) = &refs[&format!("{target}/grads")];
        let (n, width) = (gshape[0], gshape[1]);
        let dir = first_inputs(name, n);
        let out = tempfile::tempdir().unwrap();
        saliency()
            .args([
                "gradients",
                "-q",
                "--raw-gradients",
                "npy",
                "--measures",
                "all",
                "--input-saliency",
                "--target",
                target,
            ])
            .arg("--agent-path")
            .arg(dir.path())
            .arg("--output-dir")
            .arg(out.path())
            .assert()
            .success();
        let what = format!("{name} --target {target}");
        // Actions and target values.
        let index = read_json(&out.path().join("weight_gradients/index.json"));
        let nums = |k: &str| -> Vec<f64> {
            index.get(k).unwrap().as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
        };
        assert_eq!(nums("max_logit_action"), refs[&format!("{target}/actions")].1, "{what}: actions");
        // (a margin is a difference of Q-values: its error is theirs, so is its scale)
        let q_values = refs["q/values"].1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (a, b) in nums("max_logit_value").iter().zip(&refs[&format!("{target}/values")].1) {
            assert!((a - b).abs() <= RTOL * q_values.max(b.abs()) + FLOOR, "{what}: target value {a} vs {b}");
        }
        // Per-input gradients, parameter by parameter.
        let mut start = 0;
        let mut per_param_rows: Vec<Vec<Vec<f64>>> = Vec::new();
        let mut scales: Vec<f64> = Vec::new();
        for (p, (pname, shape)) in params.iter().enumerate() {
            let numel: usize = shape.iter().product();
            let (_, got) = read_npy(&out.path().join(format!("weight_gradients/{pname}.npy")));
            let mut rows = Vec::new();
            for i in 0..n {
                let want = &grads[i * width + start..i * width + start + numel];
                let scale = if target == "q" { 0.0 } else { q_scale_of(target, i, start, numel) };
                assert_close_scaled(
                    &format!("{what}: input {i} {pname}"),
                    &got[i * numel..(i + 1) * numel],
                    want,
                    scale,
                );
                rows.push(want.to_vec());
            }
            let term_scale = if target == "q" {
                0.0
            } else {
                (0..n).map(|i| q_scale_of(target, i, start, numel)).fold(0.0, f64::max)
            };
            scales.push(term_scale);
            per_param_rows.push(rows);
            start += numel;
            let _ = p;
        }
        // Measures: PyTorch's gradients reduced here in float64.
        let (measures, md) = safetensors_f64(&out.path().join("measures.safetensors"));
        let (mut snr_compared, mut snr_total) = (0usize, 0usize);
        assert_eq!(md.get("target").map(String::as_str), Some(target.as_str()));
        assert_eq!(md.get("num_examples"), Some(&n.to_string()));
        assert_eq!(md.get("agent").map(String::as_str), Some("agent.zip"));
        for (p, (pname, shape)) in params.iter().enumerate() {
            let rows: Vec<&[f64]> = per_param_rows[p].iter().map(Vec::as_slice).collect();
            let want = measures_of(&rows, &agent.params[p].data);
            // (a signed mean has the magnitudes' precision, not its own; measures of squares and
            // products are compared at their own scale and at the terms' scale squared or
            // times the weights)
            let scale = want["mean-abs"].iter().fold(scales[p], |m, v| m.max(*v));
            let wmax = agent.params[p].data.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
            for (mname, expected) in &want {
                let (s, got) = &measures[&format!("{mname}/{pname}")];
                assert_eq!(s, shape, "{what}: {mname}/{pname} shape");
                match *mname {
                    // Against the float64 network: float32 rounds tanh'(z) of a saturated unit
                    // to exactly 0 where float64 keeps a tiny value, so an element counts as
                    // nonzero here at least where the reference is above float32's noise and
                    // at most where it is nonzero at all.
                    "nonzero" if target == "logsoftmax" => {
                        let tol = RTOL * scale + FLOOR;
                        for (j, g) in got.iter().enumerate() {
                            let above = rows.iter().filter(|r| r[j].abs() > tol).count() as f64 / n as f64;
                            let any = rows.iter().filter(|r| r[j] != 0.0).count() as f64 / n as f64;
                            assert!(
                                (above..=any).contains(g),
                                "{what}: nonzero/{pname}[{j}] = {g}, not in {above}..={any}"
                            );
                        }
                    }
                    "nonzero" => assert_eq!(got, expected, "{what}: nonzero/{pname}"),
                    "snr" => {
                        let ours = (
                            measures[&format!("mean/{pname}")].1.as_slice(),
                            measures[&format!("variance/{pname}")].1.as_slice(),
                        );
                        let theirs = (want["mean"].as_slice(), want["variance"].as_slice(), want["mean-sq"].as_slice());
                        snr_compared += check_snr(&format!("{what}: snr/{pname}"), got, ours, theirs, RTOL * scale);
                        snr_total += got.len();
                    }
                    _ => {
                        let sc = match *mname {
                            "mean" | "mean-abs" | "max-abs" => scale,
                            // (|a^2 - b^2| = |a - b| |a + b| <= RTOL * scale * 2 scale)
                            "mean-sq" => 2.0 * scale * scale,
                            "variance" => 4.0 * scale * scale,
                            "fisher" => 2.0 * scale * scale * wmax * wmax,
                            _ => scale * wmax,
                        };
                        assert_close_scaled(&format!("{what}: {mname}/{pname}"), got, expected, sc);
                    }
                }
            }
        }
        // (where float32's error on the variance is small: none of a target whose terms cancel
        // (Acrobot's logsoftmax), up to 60% of the elements of others; never none per agent)
        eprintln!("{what}: snr compared with PyTorch's on {snr_compared} of {snr_total} elements");
        snr_agent += snr_compared;
        // --select-by: the selection from our measures is the one PyTorch's measures give (the
        // same rule on both; only a near-tie could order two weights differently).
        if target == "q" {
            for m in ["max-abs", "mean-sq", "mean-abs-gxw"] {
                let ours = Averages {
                    num_examples: Some(n as i64),
                    params: params
                        .iter()
                        .map(|(pname, shape)| AvgParam {
                            name: pname.clone(),
                            shape: shape.clone(),
                            data: measures[&format!("{m}/{pname}")].1.clone(),
                        })
                        .collect(),
                };
                let theirs = Averages {
                    num_examples: Some(n as i64),
                    params: params
                        .iter()
                        .enumerate()
                        .map(|(p, (pname, shape))| {
                            let rows: Vec<&[f64]> = per_param_rows[p].iter().map(Vec::as_slice).collect();
                            AvgParam {
                                name: pname.clone(),
                                shape: shape.clone(),
                                data: measures_of(&rows, &agent.params[p].data)[m].clone(),
                            }
                        })
                        .collect(),
                };
                let cross = read_json(&fixture(name).join("patching_results/cross_metric_summary.json"));
                let keys = extract::candidate_keys(&cross, "cross").unwrap();
                let useful = (name == "demo").then(|| read_json(&fixture("demo").join("useful_neurons.json")));
                let resolved = extract::resolve(&keys, useful.as_ref(), &ours);
                let (a, b) = (
                    extract::select(&ours, &resolved.candidates, 2, 4),
                    extract::select(&theirs, &resolved.candidates, 2, 4),
                );
                assert_eq!(a.weights.len(), b.weights.len(), "{what} --select-by {m}");
                let scale = b.weights.iter().map(|t| t.magnitude).fold(0.0, f64::max);
                for (x, y) in a.weights.iter().zip(&b.weights) {
                    let same = (x.candidate, x.weight_index) == (y.candidate, y.weight_index);
                    assert!(
                        same || (x.magnitude - y.magnitude).abs() <= 10.0 * RTOL * scale,
                        "{what} --select-by {m}: {x:?} vs {y:?}"
                    );
                }
                assert!(
                    a.weights.iter().zip(&b.weights).filter(|(x, y)| x.weight_index != y.weight_index).count()
                        <= a.weights.len() / 4
                );
            }
        }
        // Input saliency.
        let (ins, imd) = safetensors_f64(&out.path().join("input_saliency.safetensors"));
        let ids: Vec<String> = serde_like_list(imd.get("input_ids").unwrap());
        assert_eq!(ids.len(), n, "{what}: input_ids");
        for key in refs.keys().filter_map(|k| k.strip_prefix(&format!("{target}/input/"))) {
            let (_, want) = &refs[&format!("{target}/input/{key}")];
            let (shape, got) = &ins[&format!("per_input/{key}")];
            assert_eq!(shape[0], n);
            let widen = if target == "logsoftmax" { RTOL_COMBINED / RTOL } else { 1.0 };
            let term = if target == "q" {
                0.0
            } else {
                let max = |t: &str| refs[&format!("{t}/input/{key}")].1.iter().fold(0.0f64, |m, v| m.max(v.abs()));
                2.0 * widen * max("q").max(max(&last))
            };
            assert_close_scaled(&format!("{what}: input saliency {key}"), got, want, term);
            let len = want.len() / n;
            let mean_abs: Vec<f64> =
                (0..len).map(|j| (0..n).map(|i| want[i * len + j].abs()).sum::<f64>() / n as f64).collect();
            assert_close_scaled(
                &format!("{what}: input mean-abs {key}"),
                &ins[&format!("mean-abs/{key}")].1,
                &mean_abs,
                term,
            );
            let mean: Vec<f64> = (0..len).map(|j| (0..n).map(|i| want[i * len + j]).sum::<f64>() / n as f64).collect();
            let scale = mean_abs.iter().fold(term, |m, v| m.max(*v));
            for (a, b) in ins[&format!("mean/{key}")].1.iter().zip(&mean) {
                assert!((a - b).abs() <= RTOL * scale + FLOOR, "{what}: input mean {key}: {a} vs {b}");
            }
        }
        assert!(ins.keys().any(|k| k.starts_with("per_input/")), "{what}: no input saliency");
    }
    assert!(snr_agent > 0, "{name}: snr compared with PyTorch's on no element of any target");
}

/// A JSON list of strings (the `input_ids` metadata).
fn serde_like_list(text: &str) -> Vec<String> {
    let v = saliency::json::reader::read_value_from(text.as_bytes(), "input_ids").unwrap();
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

#[test]
fn targets_measures_and_input_saliency_match_pytorch_mlp() {
    for name in ["cartpole", "acrobot", "frozenlake"] {
        check(name);
    }
}

#[test]
fn targets_measures_and_input_saliency_match_pytorch_dict_and_images() {
    for name in ["demo", "cnn", "combined"] {
        check(name);
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn mean_abs_is_the_averages_file_bit_for_bit_and_default_files_do_not_change() {
    for name in FIXTURES {
        let plain = tempfile::tempdir().unwrap();
        let all = tempfile::tempdir().unwrap();
        saliency()
            .args(["run", "-q", "--agent-path"])
            .arg(fixture(name))
            .arg("--output-dir")
            .arg(plain.path())
            .assert()
            .success();
        saliency()
            .args(["run", "-q", "--measures", "all", "--input-saliency", "--target", "q", "--agent-path"])
            .arg(fixture(name))
            .arg("--output-dir")
            .arg(all.path())
            .assert()
            .success();
        // The Python tool's three files are the same bytes with or without the new flags.
        for f in ["weight_gradients.json", "average_gradients.json", "candidate_weights.json"] {
            assert!(read(&plain.path().join(f)) == read(&all.path().join(f)), "{name}: {f}");
        }
        let avgs = Averages::read(&all.path().join("average_gradients.json")).unwrap();
        let (m, _) = safetensors_f64(&all.path().join("measures.safetensors"));
        for p in &avgs.params {
            assert!(m[&format!("mean-abs/{}", p.name)].1 == p.data, "{name}: mean-abs/{} is not the averages", p.name);
        }
    }
}

#[test]
fn select_by_ranks_by_the_measure_in_run_and_extract_alike() {
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["run", "-q", "--raw-gradients", "none", "--measures", "all", "--select-by", "max-abs", "--agent-path"])
        .arg(fixture("demo"))
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    let sel = read_json(&out.path().join("candidate_weights.json"));
    let (m, _) = safetensors_f64(&out.path().join("measures.safetensors"));
    // gradient_magnitude holds the measure's value of that weight.
    for t in sel.get("weight_targets").unwrap().as_array().unwrap() {
        let layer = t.get("layer_name").unwrap().as_str().unwrap();
        let (shape, data) = &m[&format!("max-abs/{layer}")];
        let cols: usize = shape[1..].iter().product();
        let e = t.get("neuron_index").unwrap().as_i64().unwrap() as usize * cols
            + t.get("weight_index").unwrap().as_i64().unwrap() as usize;
        assert_eq!(t.get("gradient_magnitude").unwrap().as_f64().unwrap(), data[e]);
    }
    // `extract --select-by` on the files written gives the same selection, byte for byte.
    let again = tempfile::tempdir().unwrap();
    saliency()
        .args(["extract", "-q", "--select-by", "max-abs", "--cross-metric-path"])
        .arg(fixture("demo").join("patching_results/cross_metric_summary.json"))
        .arg("--average-gradients-path")
        .arg(out.path().join("average_gradients.json"))
        .arg("--useful-neurons-path")
        .arg(fixture("demo").join("useful_neurons.json"))
        .arg("--output-dir")
        .arg(again.path())
        .assert()
        .success();
    assert!(read(&again.path().join("candidate_weights.json")) == read(&out.path().join("candidate_weights.json")));
    // It differs from the mean-abs selection (else the flag would do nothing).
    let plain = tempfile::tempdir().unwrap();
    saliency()
        .args(["run", "-q", "--raw-gradients", "none", "--agent-path"])
        .arg(fixture("demo"))
        .arg("--output-dir")
        .arg(plain.path())
        .assert()
        .success();
    assert!(read(&plain.path().join("candidate_weights.json")) != read(&out.path().join("candidate_weights.json")));
}

/// The target values `gradients --target T` writes for each input of an agent directory.
fn target_values(dir: &Path, target: &str) -> (Vec<f64>, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["gradients", "-q", "--raw-gradients", "npy", "--target", target, "--agent-path"])
        .arg(dir)
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    let index = read_json(&out.path().join("weight_gradients/index.json"));
    let v = index.get("max_logit_value").unwrap().as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    (v, out)
}

#[test]
fn logsoftmax_keeps_its_digits_for_a_confident_agent() {
    // The reference agents are not confident (log p(a*) about -0.5), so make one: CartPole's
    // agent with every stored tensor scaled by 4 (the Q-values spread by a factor of ~64).
    // d log softmax(q)[a*] / d q is one-hot(a*) - p, and the output bias's gradient is exactly
    // that; for a confident agent p(other) is far below float32's rounding of 1, so computed
    // as 1 - p it would be 0 for a* and wrong for nothing else; computed from the other
    // probabilities it keeps every digit.
    let dir = copy_fixture("cartpole");
    rewrite_policy(&fixture("cartpole").join("agent.zip"), &dir.path().join("agent.zip"), |name, data| {
        if name.contains("/data/") && !name.ends_with(".pkl") {
            Some(
                data.chunks_exact(4)
                    .flat_map(|b| (f32::from_le_bytes(b.try_into().unwrap()) * 4.0).to_le_bytes())
                    .collect(),
            )
        } else {
            Some(data)
        }
    });
    let (q0, _o0) = target_values(dir.path(), "action:0");
    let (q1, _o1) = target_values(dir.path(), "action:1");
    let (_, out) = target_values(dir.path(), "logsoftmax");
    let (shape, bias) = read_npy(&out.path().join("weight_gradients/q_net.4.bias.npy"));
    assert_eq!(shape, [q0.len(), 2]);
    let mut confident = 0;
    for i in 0..q0.len() {
        let q = [q0[i], q1[i]];
        let a = if q[1] > q[0] { 1 } else { 0 };
        let m = q[a];
        let z: f64 = q.iter().map(|v| (v - m).exp()).sum();
        let p: Vec<f64> = q.iter().map(|v| (v - m).exp() / z).collect();
        let other = p[1 - a];
        let want = [if a == 0 { other } else { -p[0] }, if a == 1 { other } else { -p[1] }];
        for j in 0..2 {
            let got = bias[i * 2 + j];
            assert!(
                (got - want[j]).abs() <= 1e-6 * want[j].abs(),
                "input {i}: d/d bias[{j}] = {got}, want {} (p(other) = {other:e})",
                want[j]
            );
        }
        if other < 1e-9 {
            confident += 1;
        }
    }
    // Guard: the case is exercised (1 - p(a*) below float32's and float64's rounding of 1).
    assert!(confident >= 3, "only {confident} confident inputs");
}
