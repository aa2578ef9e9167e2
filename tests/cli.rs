//! The headless commands, run as the binary: byte identity with the Python tool's files
//! (the selections are in tests/reference.rs),
//! drop-in flags, and clear errors (with no output file) on bad input.

mod common;

use std::path::Path;

use assert_cmd::Command;
use common::*;
use predicates::prelude::*;

fn saliency() -> Command {
    let mut c = Command::cargo_bin("saliency").unwrap();
    c.env("NO_COLOR", "1");
    c
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn average_is_byte_identical_to_the_python_tool() {
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["average", "--gradients-path"])
        .arg(reference_dir("acrobot").join("weight_gradients.json"))
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    assert!(
        read(&out.path().join("average_gradients.json"))
            == read(&reference_dir("acrobot").join("average_gradients.json"))
    );
}

#[test]
fn run_writes_three_files_consistent_to_the_byte() {
    for name in ["acrobot", "cnn"] {
        let out = tempfile::tempdir().unwrap();
        saliency()
            .args(["run", "--quiet", "--agent-path"])
            .arg(fixture(name))
            .arg("--output-dir")
            .arg(out.path())
            .assert()
            .success();
        for f in ["weight_gradients.json", "average_gradients.json", "candidate_weights.json"] {
            assert!(out.path().join(f).is_file(), "{name}: {f} missing");
        }
        // `run`'s averages are exactly what `average` computes from `run`'s raw gradients ...
        let again = tempfile::tempdir().unwrap();
        saliency()
            .args(["average", "-q", "--gradients_path"])
            .arg(out.path().join("weight_gradients.json"))
            .arg("--output_dir")
            .arg(again.path())
            .assert()
            .success();
        assert!(
            read(&again.path().join("average_gradients.json")) == read(&out.path().join("average_gradients.json")),
            "{name}"
        );
        // ... and its selection is what `extract` makes of those averages.
        saliency()
            .args(["extract", "-q", "--cross-metric-path"])
            .arg(fixture(name).join("patching_results/cross_metric_summary.json"))
            .arg("--average-gradients-path")
            .arg(out.path().join("average_gradients.json"))
            .arg("--output-dir")
            .arg(again.path())
            .assert()
            .success();
        assert!(
            read(&again.path().join("candidate_weights.json")) == read(&out.path().join("candidate_weights.json")),
            "{name}"
        );
        // With --raw-gradients none the averages are the same and no raw file is written.
        let none = tempfile::tempdir().unwrap();
        saliency()
            .args(["run", "-q", "--raw-gradients", "none", "--agent-path"])
            .arg(fixture(name))
            .arg("--output-dir")
            .arg(none.path())
            .assert()
            .success();
        assert!(!none.path().join("weight_gradients.json").exists());
        assert!(read(&none.path().join("average_gradients.json")) == read(&out.path().join("average_gradients.json")));
    }
}

#[test]
fn both_flag_spellings_and_default_output_dir() {
    let dir = copy_fixture("acrobot");
    saliency().args(["gradients", "-q", "--agent_path"]).arg(dir.path()).assert().success();
    assert!(dir.path().join("gradient_analysis/weight_gradients.json").is_file());
    saliency()
        .args(["average", "-q", "--gradients-path"])
        .arg(dir.path().join("gradient_analysis/weight_gradients.json"))
        .assert()
        .success();
    assert!(dir.path().join("gradient_analysis/average_gradients.json").is_file());
    // The zip file itself also works as --agent-path.
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["run", "-q", "--agent-path"])
        .arg(dir.path().join("agent.zip"))
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
}

// ------------------------------------------------------------------------------------------
// Bad input: a clear message, a non-zero exit, and no output file.
// ------------------------------------------------------------------------------------------

/// Runs `saliency run` on `dir`, expects failure with all of `needles` in stderr, and checks
/// that no output file was left.
fn run_fails(dir: &Path, extra: &[&str], needles: &[&str]) {
    let out = tempfile::tempdir().unwrap();
    let assert = saliency()
        .args(["run", "-q", "--agent-path"])
        .arg(dir)
        .arg("--output-dir")
        .arg(out.path())
        .args(extra)
        .assert()
        .failure()
        .code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    for n in needles {
        assert!(stderr.contains(n), "stderr lacks {n:?}:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    let left: Vec<_> = std::fs::read_dir(out.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
}

#[test]
fn missing_paths() {
    run_fails(Path::new("/nonexistent/agent"), &[], &["agent path", "/nonexistent/agent", "does not exist"]);
    let dir = copy_fixture("acrobot");
    std::fs::remove_file(dir.path().join("activation_inputs/clean_inputs.json")).unwrap();
    run_fails(dir.path(), &[], &["inputs file", "clean_inputs.json", "does not exist"]);
    let dir = copy_fixture("acrobot");
    std::fs::remove_file(dir.path().join("patching_results/cross_metric_summary.json")).unwrap();
    run_fails(dir.path(), &[], &["cross-metric file", "does not exist"]);
    let dir = copy_fixture("acrobot");
    std::fs::remove_file(dir.path().join("agent.zip")).unwrap();
    run_fails(dir.path(), &[], &["no agent in", "agent.zip"]);
    let dir = copy_fixture("demo");
    run_fails(
        dir.path(),
        &["--useful-neurons-path", "/nonexistent/useful.json"],
        &["useful-neurons file", "does not exist"],
    );
}

#[test]
fn corrupt_and_truncated_zips() {
    let dir = copy_fixture("acrobot");
    let zip = dir.path().join("agent.zip");
    std::fs::write(&zip, b"this is not a zip file").unwrap();
    run_fails(dir.path(), &[], &["agent.zip", "not a readable zip"]);
    let bytes = read(&fixture("acrobot").join("agent.zip"));
    std::fs::write(&zip, &bytes[..bytes.len() / 2]).unwrap();
    run_fails(dir.path(), &[], &["agent.zip", "truncated or corrupt"]);
    std::fs::write(&zip, &bytes[..100]).unwrap();
    run_fails(dir.path(), &[], &["agent.zip", "not a readable zip"]);
}

#[test]
fn policy_pth_missing_or_not_a_torch_zip() {
    let dir = copy_fixture("acrobot");
    let zip = dir.path().join("agent.zip");
    rewrite_zip(&fixture("acrobot").join("agent.zip"), &zip, |name, data| (name != "policy.pth").then_some(data));
    run_fails(dir.path(), &[], &["not a Stable-Baselines3 save", "policy.pth"]);
    rewrite_zip(&fixture("acrobot").join("agent.zip"), &zip, |name, data| {
        Some(if name == "policy.pth" { b"PK garbage".to_vec() } else { data })
    });
    run_fails(dir.path(), &[], &["policy.pth", "not a torch.save zip"]);
    rewrite_policy(&fixture("acrobot").join("agent.zip"), &zip, |name, data| {
        (!name.ends_with("data.pkl")).then_some(data)
    });
    run_fails(dir.path(), &[], &["policy.pth", "data.pkl"]);
    // A storage member cut short.
    rewrite_policy(&fixture("acrobot").join("agent.zip"), &zip, |name, data| {
        Some(if name.ends_with("data/0") { data[..data.len() - 4].to_vec() } else { data })
    });
    run_fails(dir.path(), &[], &["storage", "bytes"]);
}

fn edit_pickle(dir: &Path, edit: impl Fn(Vec<u8>) -> Vec<u8>) {
    rewrite_policy(&fixture("acrobot").join("agent.zip"), &dir.join("agent.zip"), |name, data| {
        Some(if name.ends_with("data.pkl") { edit(data) } else { data })
    });
}

fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let pos = data.windows(from.len()).position(|w| w == from).expect("pattern in pickle");
    [&data[..pos], to, &data[pos + from.len()..]].concat()
}

#[test]
fn hostile_pickles_are_refused_without_running_them() {
    let dir = copy_fixture("acrobot");
    // A global that would run code in Python (same length, so nothing else moves).
    edit_pickle(dir.path(), |d| replace(&d, b"collections\nOrderedDict\n", b"posix\nsystem\n\n\n\n\n\n\n\n\n\n\n\n"));
    run_fails(dir.path(), &[], &["refusing pickle global 'posix.system'", "no code from the file is run"]);
    // An opcode a state dict never uses (INST, 'i').
    edit_pickle(dir.path(), |d| [&d[..2], b"i", &d[2..]].concat());
    run_fails(dir.path(), &[], &["unsupported pickle opcode 0x69"]);
    // Truncated pickle.
    edit_pickle(dir.path(), |d| d[..d.len() / 2].to_vec());
    run_fails(dir.path(), &[], &["truncated pickle"]);
}

fn write_inputs(dir: &Path, text: &str) {
    std::fs::write(dir.join("activation_inputs/clean_inputs.json"), text).unwrap();
}

#[test]
fn input_errors_name_the_input() {
    let dir = copy_fixture("acrobot");
    write_inputs(dir.path(), r#"{"a": {"input": [1, 2, 3, 4, 5, 6]}, "b": {"input": [1, 2, 3]}}"#);
    run_fails(dir.path(), &[], &["input \"b\"", "expected a list of 6 values, found 3 values"]);
    write_inputs(dir.path(), r#"{"a": {"input": [1, 2, 3, 4, 5, NaN]}}"#);
    run_fails(dir.path(), &[], &["input \"a\"", "value 5 is NaN"]);
    write_inputs(dir.path(), r#"{"a": {"input": [1, 2, "x", 4, 5, 6]}}"#);
    run_fails(dir.path(), &[], &["input \"a\"", "expected a number, found a string"]);
    write_inputs(dir.path(), r#"{"a": {"values": [1, 2, 3, 4, 5, 6]}}"#);
    run_fails(dir.path(), &[], &["input \"a\" has no \"input\" list"]);
    write_inputs(dir.path(), "{}");
    run_fails(dir.path(), &[], &["holds no inputs", "nothing to analyse"]);
    write_inputs(dir.path(), r#"{"a": {"input": [1, 2, 3, 4, 5, 6]}, "a": {"input": [1, 2, 3, 4, 5, 6]}}"#);
    run_fails(dir.path(), &[], &["\"a\" appears twice"]);
    write_inputs(dir.path(), r#"{"a": {"input": [1, 2, 3, 4, 5, 6]"#);
    run_fails(dir.path(), &[], &["clean_inputs.json:1:", "expected"]);
}

#[test]
fn cnn_inputs_accept_nested_observations_and_reject_wrong_shapes() {
    let dir = copy_fixture("cnn");
    let nested: Vec<Vec<Vec<u8>>> = vec![vec![vec![7; 44]; 44]; 2];
    let text = format!("{{\"x\": {{\"input\": {nested:?}}}}}");
    write_inputs(dir.path(), &text);
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["run", "-q", "--agent-path"])
        .arg(dir.path())
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    let wrong: Vec<Vec<Vec<u8>>> = vec![vec![vec![7; 2]; 44]; 44];
    write_inputs(dir.path(), &format!("{{\"x\": {{\"input\": {wrong:?}}}}}"));
    run_fails(dir.path(), &[], &["input \"x\"", "nested with shape [2, 44, 44]", "found shape [44, 44, 2]"]);
}

#[test]
fn negative_k_or_m_is_rejected_by_the_cli() {
    for flag in ["--k", "--m"] {
        saliency()
            .args(["extract", flag, "-1", "--cross-metric-path", "x", "--average-gradients-path", "y"])
            .assert()
            .failure()
            .stderr(predicate::str::contains("must be 0 or more, found -1"));
    }
}

#[test]
fn unknown_candidate_names_warn_and_the_rest_go_on() {
    let dir = copy_fixture("acrobot");
    let cross = r#"{"common_neurons": {"q_net.0_neuron_3": {}, "nonsense": {}, "q_net.0_neuron_999": {}, "q_net.9_neuron_0": {}, "exp_1_q_net.0": {}, "q_net.2_neuron_1": {}}}"#;
    std::fs::write(dir.path().join("patching_results/cross_metric_summary.json"), cross).unwrap();
    let useful = dir.path().join("useful.json");
    std::fs::write(&useful, r#"[{"q_net.0": [3]}]"#).unwrap();
    let out = tempfile::tempdir().unwrap();
    saliency()
        .args(["run", "-q", "--agent-path"])
        .arg(dir.path())
        .arg("--useful-neurons-path")
        .arg(&useful)
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success()
        .stderr(predicate::str::contains("skipping candidate nonsense: not of the form"))
        .stderr(predicate::str::contains("skipping candidate q_net.0_neuron_999: neuron 999 is out of range"))
        .stderr(predicate::str::contains("skipping candidate q_net.9_neuron_0: no parameter 'q_net.9.weight'"))
        .stderr(predicate::str::contains("skipping candidate exp_1_q_net.0: same neuron as q_net.0_neuron_3"));
    let text = String::from_utf8(read(&out.path().join("candidate_weights.json"))).unwrap();
    assert!(text.contains("\"num_candidate_neurons\": 2,"), "{text}");
}

#[test]
fn a_failed_run_keeps_the_previous_files() {
    let dir = copy_fixture("acrobot");
    let out = dir.path().join("gradient_analysis");
    saliency().args(["run", "-q", "--agent-path"]).arg(dir.path()).assert().success();
    let before = read(&out.join("weight_gradients.json"));
    // Append a broken input: the gradients file is half written when the error is found.
    let text = String::from_utf8(read(&dir.path().join("activation_inputs/clean_inputs.json"))).unwrap();
    let body = text.trim_end().strip_suffix('}').unwrap();
    write_inputs(dir.path(), &format!("{body}, \"zzz\": {{\"input\": [0.5]}}}}"));
    saliency().args(["run", "-q", "--batch-size", "1", "--agent-path"]).arg(dir.path()).assert().failure();
    assert!(read(&out.join("weight_gradients.json")) == before, "previous file changed");
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn output_dir_that_is_a_file() {
    let dir = copy_fixture("acrobot");
    let file = dir.path().join("occupied");
    std::fs::write(&file, "x").unwrap();
    saliency()
        .args(["run", "-q", "--agent-path"])
        .arg(dir.path())
        .arg("--output-dir")
        .arg(&file)
        .assert()
        .failure()
        .stderr(predicate::str::contains("exists and is not a directory"));
}

#[test]
fn npy_raw_gradients_hold_the_same_values_as_json() {
    let out_json = tempfile::tempdir().unwrap();
    let out_npy = tempfile::tempdir().unwrap();
    for (out, fmt) in [(&out_json, "json"), (&out_npy, "npy")] {
        saliency()
            .args(["run", "-q", "--raw-gradients", fmt, "--agent-path"])
            .arg(fixture("acrobot"))
            .arg("--output-dir")
            .arg(out.path())
            .assert()
            .success();
    }
    // Same averages and selection whatever the raw format.
    for f in ["average_gradients.json", "candidate_weights.json"] {
        assert!(read(&out_json.path().join(f)) == read(&out_npy.path().join(f)), "{f}");
    }
    let dir = out_npy.path().join("weight_gradients");
    let index =
        saliency::json::reader::read_value_from(std::fs::File::open(dir.join("index.json")).unwrap(), "index").unwrap();
    let ids: Vec<&str> = index.get("inputs").unwrap().as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let raw = saliency::json::reader::read_value_from(
        std::fs::File::open(out_json.path().join("weight_gradients.json")).unwrap(),
        "raw",
    )
    .unwrap();
    let raw = raw.as_object().unwrap();
    assert_eq!(ids, raw.keys().map(String::as_str).collect::<Vec<_>>());
    for p in index.get("parameters").unwrap().as_array().unwrap() {
        let name = p.get("name").unwrap().as_str().unwrap();
        let (shape, values) = read_npy(&dir.join(p.get("file").unwrap().as_str().unwrap()));
        assert_eq!(shape[0], ids.len());
        let per = values.len() / ids.len();
        for (n, id) in ids.iter().enumerate() {
            let mut want = Vec::new();
            fn flatten(v: &saliency::json::Value, out: &mut Vec<f64>) {
                match v {
                    saliency::json::Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
                    other => out.push(other.as_f64().unwrap()),
                }
            }
            flatten(raw[*id].get("gradients").unwrap().get(name).unwrap(), &mut want);
            assert_eq!(&values[n * per..(n + 1) * per], want.as_slice(), "{id} {name}");
        }
    }
}

#[test]
fn many_unknown_candidates_are_summarised_not_listed() {
    let dir = copy_fixture("cartpole");
    let path = dir.path().join("patching_results/cross_metric_summary.json");
    let mut text = String::from("{\"common_neurons\": {\"q_net.0_neuron_3\": {}");
    for i in 0..300_000 {
        text.push_str(&format!(", \"q_net.9_neuron_{i}\": {{}}"));
    }
    text.push_str("}}");
    std::fs::write(&path, text).unwrap();
    let out = tempfile::tempdir().unwrap();
    let assert = saliency()
        .args(["run", "--raw-gradients", "none", "--agent-path"])
        .arg(dir.path())
        .arg("--output-dir")
        .arg(out.path())
        .assert()
        .success();
    let o = assert.get_output();
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let lines = stdout.lines().count() + stderr.lines().count();
    assert!(lines <= 20, "{lines} lines:\n{stdout}{stderr}");
    assert!(stderr.contains("... and 299990 more candidates skipped"), "{stderr}");
    assert!(stderr.contains("skipping candidate q_net.9_neuron_0: "), "{stderr}");
    // The one good candidate is selected.
    let cw = std::fs::read_to_string(out.path().join("candidate_weights.json")).unwrap();
    assert!(cw.contains("\"layer_name\": \"q_net.0.weight\""), "{cw}");
}
