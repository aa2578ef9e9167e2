//! The table of bad and hostile inputs (docs/bad-inputs.md): every row is a case here, run as
//! the real binary. Each case checks the exit code, the message (what, where, expected vs
//! found) and that no output file was left behind (or that previous files survived).

mod common;

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};

use common::*;

struct Case {
    id: &'static str,
    /// Arguments (after the binary), built in the temp dir.
    args: Vec<OsString>,
    /// Expected exit code.
    code: i32,
    /// Fragments stderr must contain.
    stderr: Vec<&'static str>,
    /// Run through `sh -c`: this script, with `{cmd}` replaced by the quoted command (resource
    /// limits, set-up and tear-down around the run).
    shell: Option<String>,
}

fn os(v: &[&dyn AsRef<std::ffi::OsStr>]) -> Vec<OsString> {
    v.iter().map(|s| s.as_ref().to_os_string()).collect()
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// `run` on an agent directory, writing to `out`.
fn run_args(dir: &Path, out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut v = os(&[&"run", &"-q", &"--agent-path", &dir, &"--output-dir", &out]);
    v.extend(extra.iter().map(OsString::from));
    v
}

/// An agent zip whose policy.pth is replaced by `pth`.
fn with_policy(dir: &Path, pth: Vec<u8>) {
    let src = fixture("acrobot").join("agent.zip");
    rewrite_zip(&src, &dir.join("agent.zip"), |name, data| Some(if name == "policy.pth" { pth.clone() } else { data }));
}

/// An agent zip whose `data` JSON is edited.
fn with_data(dir: &Path, edit: impl Fn(String) -> String) {
    let src = fixture("acrobot").join("agent.zip");
    rewrite_zip(&src, &dir.join("agent.zip"), |name, data| {
        Some(if name == "data" { edit(String::from_utf8(data).unwrap()).into_bytes() } else { data })
    });
}

fn inputs(dir: &Path, text: impl AsRef<[u8]>) {
    write(&dir.join("activation_inputs/clean_inputs.json"), text);
}

fn cases(dir: &Path, out: &Path) -> Vec<Case> {
    let acro = |d: &str| -> PathBuf {
        let p = dir.join(d);
        if !p.exists() {
            for e in walk(&fixture("acrobot")) {
                let rel = e.strip_prefix(fixture("acrobot")).unwrap();
                if !rel.starts_with("reference") {
                    write(&p.join(rel), std::fs::read(&e).unwrap());
                }
            }
        }
        p
    };
    let mut v = Vec::new();
    macro_rules! case {
        ($id:expr, $args:expr, $code:expr, [$($s:expr),*]) => {
            v.push(Case { id: $id, args: $args, code: $code, stderr: vec![$($s),*], shell: None })
        };
    }

    // --- paths ---
    case!(
        "missing-agent-path",
        run_args(Path::new("/nonexistent/agent"), out, &[]),
        1,
        ["agent path /nonexistent/agent does not exist"]
    );
    let d = acro("no-zip");
    std::fs::remove_file(d.join("agent.zip")).unwrap();
    case!(
        "agent-dir-without-zip",
        run_args(&d, out, &[]),
        1,
        ["no agent in", "expected agent.zip, model.zip, dqn.zip"]
    );
    let d = acro("no-inputs");
    std::fs::remove_file(d.join("activation_inputs/clean_inputs.json")).unwrap();
    case!("inputs-missing", run_args(&d, out, &[]), 1, ["inputs file", "clean_inputs.json does not exist"]);
    let d = acro("inputs-dir");
    std::fs::remove_file(d.join("activation_inputs/clean_inputs.json")).unwrap();
    std::fs::create_dir(d.join("activation_inputs/clean_inputs.json")).unwrap();
    case!("inputs-is-a-directory", run_args(&d, out, &[]), 1, ["clean_inputs.json", "Is a directory"]);
    let d = acro("no-cross");
    std::fs::remove_file(d.join("patching_results/cross_metric_summary.json")).unwrap();
    case!("cross-metric-missing", run_args(&d, out, &[]), 1, ["cross-metric file", "does not exist"]);
    let d = acro("link-target");
    let link = dir.join("symlinked-agent");
    std::os::unix::fs::symlink(&d, &link).unwrap();
    case!("agent-path-symlink", run_args(&link, &dir.join("link-out"), &[]), 0, []);
    let looped = dir.join("looped-agent");
    std::os::unix::fs::symlink(&looped, &looped).unwrap();
    case!(
        "agent-path-symlink-loop",
        run_args(&looped, out, &[]),
        1,
        ["agent path", "is a symbolic link to", "which cannot be followed", "symbolic links"]
    );
    let d = acro("dangling-inputs");
    let inputs_path = d.join("activation_inputs/clean_inputs.json");
    std::fs::remove_file(&inputs_path).unwrap();
    std::os::unix::fs::symlink("moved-away.json", &inputs_path).unwrap();
    case!(
        "inputs-dangling-symlink",
        run_args(&d, out, &[]),
        1,
        ["inputs file", "clean_inputs.json is a symbolic link to moved-away.json, which cannot be followed"]
    );
    let d = acro("out-file");
    write(&d.join("occupied"), "x");
    case!(
        "output-dir-is-a-file",
        run_args(&d, &d.join("occupied"), &[]),
        1,
        ["output directory", "exists and is not a directory"]
    );

    // --- agent.zip ---
    let d = acro("not-zip");
    write(&d.join("agent.zip"), "definitely not a zip");
    case!("agent-not-a-zip", run_args(&d, out, &[]), 1, ["agent.zip is not a readable zip archive"]);
    let d = acro("empty-zip");
    write(&d.join("agent.zip"), "");
    case!("agent-empty-file", run_args(&d, out, &[]), 1, ["agent.zip is not a readable zip archive"]);
    let d = acro("half-zip");
    let bytes = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    write(&d.join("agent.zip"), &bytes[..bytes.len() / 2]);
    case!("agent-truncated", run_args(&d, out, &[]), 1, ["agent.zip is truncated or corrupt"]);
    let d = acro("no-policy");
    rewrite_zip(&fixture("acrobot").join("agent.zip"), &d.join("agent.zip"), |n, data| {
        (n != "policy.pth").then_some(data)
    });
    case!(
        "policy-missing",
        run_args(&d, out, &[]),
        1,
        ["not a Stable-Baselines3 save", "expected members 'data' and 'policy.pth'"]
    );
    let d = acro("bomb");
    {
        // `data` inflating to 100 MB from about 100 KB (the limit is 64 MiB).
        let src = fixture("acrobot").join("agent.zip");
        let mut archive = zip::ZipArchive::new(std::fs::File::open(&src).unwrap()).unwrap();
        let mut w = zip::ZipWriter::new(std::fs::File::create(d.join("agent.zip")).unwrap());
        for i in 0..archive.len() {
            use std::io::Read;
            let mut f = archive.by_index(i).unwrap();
            let name = f.name().to_string();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            w.start_file(name.clone(), opts).unwrap();
            if name == "data" {
                w.write_all(&vec![b' '; 100 << 20]).unwrap();
            } else {
                w.write_all(&data).unwrap();
            }
        }
        w.finish().unwrap();
    }
    case!("zip-bomb", run_args(&d, out, &[]), 1, ["member 'data' declares", "over the limit of 67108864"]);
    let d = acro("big-policy");
    case!(
        "policy-over-size-limit",
        run_args(&d, out, &["--max-agent-mb", "0"]),
        1,
        ["policy.pth is", "over the limit of 0", "--max-agent-mb"]
    );

    // --- policy.pth and its pickle ---
    let d = acro("pth-garbage");
    with_policy(&d, b"PK\x03\x04 not really".to_vec());
    case!("policy-not-a-torch-zip", run_args(&d, out, &[]), 1, ["policy.pth is not a torch.save zip archive"]);
    let d = acro("pth-no-pkl");
    rewrite_policy(&fixture("acrobot").join("agent.zip"), &d.join("agent.zip"), |n, data| {
        (!n.ends_with("data.pkl")).then_some(data)
    });
    case!("policy-without-data-pkl", run_args(&d, out, &[]), 1, ["has no '<folder>/data.pkl'"]);
    let d = acro("pkl-global");
    with_policy(&d, policy_pth(b"\x80\x02cos\nsystem\n.", &[]));
    case!(
        "pickle-code-global",
        run_args(&d, out, &[]),
        1,
        ["refusing pickle global 'os.system'", "no code from the file is run"]
    );
    let d = acro("pkl-opcode");
    with_policy(&d, policy_pth(b"\x80\x02i__builtin__\neval\n.", &[]));
    case!("pickle-unknown-opcode", run_args(&d, out, &[]), 1, ["unsupported pickle opcode 0x69"]);
    let d = acro("pkl-trunc");
    let good = state_dict_pickle(&[("q_net.q_net.0.weight", "0", 4, &[2, 2], &[2, 1])]);
    with_policy(&d, policy_pth(&good[..good.len() / 2], &[]));
    case!("pickle-truncated", run_args(&d, out, &[]), 1, ["truncated pickle"]);
    let d = acro("pkl-deep");
    let mut deep = b"\x80\x02K\x01".to_vec();
    deep.extend(std::iter::repeat_n(0x85u8, 100));
    deep.push(b'.');
    with_policy(&d, policy_pth(&deep, &[]));
    case!("pickle-deep-nesting", run_args(&d, out, &[]), 1, ["nested deeper than 32 levels (limit)"]);
    let d = acro("pkl-endless");
    let mut endless = b"\x80\x02".to_vec();
    endless.extend(std::iter::repeat_n(b'(', 70_000));
    with_policy(&d, policy_pth(&endless, &[]));
    case!("pickle-endless-stack", run_args(&d, out, &[]), 1, ["stack too deep (limit 65536 entries)"]);
    let d = acro("huge-tensor");
    let p = state_dict_pickle(&[("q_net.q_net.0.weight", "0", 1 << 40, &[1 << 20, 1 << 20], &[1 << 20, 1])]);
    with_policy(&d, policy_pth(&p, &[("0", vec![0; 16])]));
    case!("tensor-huge-shape", run_args(&d, out, &[]), 1, ["declares 1099511627776 elements (limit 2147483648)"]);
    let d = acro("bad-stride");
    let p = state_dict_pickle(&[("q_net.q_net.0.weight", "0", 4, &[3, 3], &[3, 1])]);
    with_policy(&d, policy_pth(&p, &[("0", vec![0; 16])]));
    case!("tensor-outside-storage", run_args(&d, out, &[]), 1, ["reaches element 8, but the storage has 4"]);
    let d = acro("short-storage");
    let p = state_dict_pickle(&[("q_net.q_net.0.weight", "0", 4, &[2, 2], &[2, 1])]);
    with_policy(&d, policy_pth(&p, &[("0", vec![0; 8])]));
    case!("storage-shorter-than-declared", run_args(&d, out, &[]), 1, ["archive/data/0", "holds 8 bytes, expected 16"]);

    // --- the `data` JSON ---
    let d = acro("data-json");
    with_data(&d, |s| s[..s.len() / 3].to_string());
    case!("data-json-corrupt", run_args(&d, out, &[]), 1, ["agent.zip: data:", "unterminated string (end of file)"]);
    let d = acro("data-act");
    with_data(&d, |s| s.replace("torch.nn.modules.activation.Tanh", "my_lab.Swish"));
    case!(
        "data-unknown-activation",
        run_args(&d, out, &[]),
        1,
        ["activation_fn is <class 'my_lab.Swish'>", "state it with --activation NAME"]
    );
    let d = acro("data-act-override");
    with_data(&d, |s| s.replace("torch.nn.modules.activation.Tanh", "my_lab.Swish"));
    case!("data-unknown-activation-stated", run_args(&d, &dir.join("override-out"), &["--activation", "Tanh"]), 0, []);
    let d = acro("data-action");
    with_data(&d, |s| s.replace("gymnasium.spaces.discrete.Discrete", "gymnasium.spaces.box.Box"));
    case!("data-action-space-not-discrete", run_args(&d, out, &[]), 1, ["action_space", "Discrete"]);
    let d = acro("extractor");
    {
        let p = state_dict_pickle(&[("q_net.features_extractor.rnn.weight", "0", 4, &[2, 2], &[2, 1])]);
        with_policy(&d, policy_pth(&p, &[("0", vec![0; 16])]));
    }
    case!(
        "unknown-feature-extractor",
        run_args(&d, out, &[]),
        1,
        ["unrecognised feature extractor", "features_extractor.rnn.weight"]
    );
    let d = acro("layer-mismatch");
    {
        let p = state_dict_pickle(&[("q_net.q_net.0.weight", "0", 10, &[2, 5], &[5, 1])]);
        with_policy(&d, policy_pth(&p, &[("0", vec![0; 40])]));
    }
    case!(
        "layer-shape-mismatch",
        run_args(&d, out, &[]),
        1,
        ["q_net.0.weight has shape [2, 5]", "takes 5 inputs, but the layer before gives 6"]
    );
    let d = acro("bad-activation-flag");
    case!(
        "activation-flag-unknown",
        run_args(&d, out, &["--activation", "Swish"]),
        1,
        ["--activation Swish: unknown activation"]
    );
    let d = acro("cuda");
    case!("cuda-unavailable", run_args(&d, out, &["--device", "cuda"]), 1, ["CUDA is not available"]);
    let d = acro("bad-device");
    case!(
        "device-unknown",
        run_args(&d, out, &["--device", "tpu"]),
        1,
        ["unknown device 'tpu'", "cpu, cuda or cuda:N"]
    );

    // --- clean_inputs.json ---
    let d = acro("in-len");
    inputs(&d, r#"{"a": {"input": [1, 2, 3]}}"#);
    case!(
        "input-wrong-length",
        run_args(&d, out, &[]),
        1,
        ["input \"a\": expected a list of 6 values, found 3 values"]
    );
    let d = acro("in-nan");
    inputs(&d, r#"{"a": {"input": [1, 2, 3, 4, 5, NaN]}}"#);
    case!("input-nan", run_args(&d, out, &[]), 1, ["input \"a\": value 5 is NaN; inputs must be finite numbers"]);
    let d = acro("in-inf");
    inputs(&d, r#"{"a": {"input": [-Infinity, 2, 3, 4, 5, 6]}}"#);
    case!("input-infinite", run_args(&d, out, &[]), 1, ["input \"a\": value 0 is -inf"]);
    let d = acro("in-str");
    inputs(&d, r#"{"a": {"input": [1, 2, "3", 4, 5, 6]}}"#);
    case!(
        "input-not-a-number",
        run_args(&d, out, &[]),
        1,
        ["clean_inputs.json:1:", "expected a number, found a string", "(in input \"a\")"]
    );
    let d = acro("in-nokey");
    inputs(&d, r#"{"a": {"obs": [1, 2, 3, 4, 5, 6]}}"#);
    case!("input-without-input-list", run_args(&d, out, &[]), 1, ["input \"a\" has no \"input\" list"]);
    let d = acro("in-empty");
    inputs(&d, "{}");
    case!("inputs-empty", run_args(&d, out, &[]), 1, ["holds no inputs: there is nothing to analyse"]);
    let d = acro("in-dup");
    inputs(&d, r#"{"a": {"input": [1, 2, 3, 4, 5, 6]}, "a": {"input": [1, 2, 3, 4, 5, 6]}}"#);
    case!("inputs-duplicate-id", run_args(&d, out, &[]), 1, ["input id \"a\" appears twice"]);
    let d = acro("in-trunc");
    inputs(&d, r#"{"a": {"input": [1, 2, 3, 4"#);
    case!(
        "inputs-truncated",
        run_args(&d, out, &[]),
        1,
        ["clean_inputs.json:1:", "expected ',' or ']', found end of file"]
    );
    let d = acro("in-list");
    inputs(&d, "[1, 2, 3]");
    case!(
        "inputs-not-an-object",
        run_args(&d, out, &[]),
        1,
        ["expected an object '{'", "clean_inputs.json is an object of input id"]
    );
    let d = acro("in-utf8");
    inputs(&d, b"{\"a\xff\": {\"input\": [1, 2, 3, 4, 5, 6]}}");
    case!("inputs-not-utf8", run_args(&d, out, &[]), 1, ["string is not valid UTF-8"]);
    let d = acro("in-deep");
    inputs(&d, format!("{{\"a\": {{\"input\": {}}}}}", "[".repeat(200)));
    case!("inputs-deep-nesting", run_args(&d, out, &[]), 1, ["nesting deeper than 64 levels (limit"]);
    let d = acro("in-long");
    inputs(&d, format!("{{\"a\": {{\"input\": [{}1]}}}}", "1, ".repeat(1_000_000)));
    case!("input-millions-of-values", run_args(&d, out, &[]), 1, ["expected 6 values, found more than 16"]);

    // --- candidates ---
    let d = acro("cross-nocommon");
    write(&d.join("patching_results/cross_metric_summary.json"), r#"{"description": "x"}"#);
    case!("cross-metric-without-common-neurons", run_args(&d, out, &[]), 1, ["no \"common_neurons\""]);
    let d = acro("cross-json");
    write(&d.join("patching_results/cross_metric_summary.json"), r#"{"common_neurons": {"q_net.0_neuron_1": }"#);
    case!(
        "cross-metric-not-json",
        run_args(&d, out, &[]),
        1,
        ["cross_metric_summary.json:1:", "expected a JSON value"]
    );
    let d = acro("cand-unknown");
    write(
        &d.join("patching_results/cross_metric_summary.json"),
        r#"{"common_neurons": {"q_net.0_neuron_1": {}, "bogus": {}, "q_net.7_neuron_0": {}}}"#,
    );
    case!(
        "candidate-names-unknown",
        run_args(&d, out, &[]),
        0,
        [
            "warning: skipping candidate bogus: not of the form",
            "warning: skipping candidate q_net.7_neuron_0: no parameter 'q_net.7.weight'"
        ]
    );
    let d = acro("cand-exp");
    write(&d.join("patching_results/cross_metric_summary.json"), r#"{"common_neurons": {"exp_1_q_net.0": {}}}"#);
    case!(
        "useful-neurons-needed-but-missing",
        run_args(&d, out, &[]),
        1,
        ["exp_<N>_<layer> need useful_neurons.json", "--useful-neurons-path"]
    );
    let d = acro("useful-type");
    write(&d.join("patching_results/cross_metric_summary.json"), r#"{"common_neurons": {"exp_1_q_net.0": {}}}"#);
    write(&d.join("useful_neurons.json"), r#"{"q_net.0": [1]}"#);
    case!(
        "useful-neurons-not-a-list",
        run_args(&d, out, &[]),
        1,
        ["expected a list of experiments", "found an object"]
    );
    let d = acro("k-neg");
    case!("k-negative", run_args(&d, out, &["--k", "-1"]), 2, ["must be 0 or more, found -1"]);
    case!("m-negative", run_args(&d, out, &["--m", "-3"]), 2, ["must be 0 or more, found -3"]);
    case!("k-absurd", run_args(&d, out, &["--k", "100000000000000000000000000000"]), 2, ["too large"]);

    // --- the other commands' inputs ---
    let g = dir.join("grads");
    write(
        &g.join("shape.json"),
        r#"{"a": {"gradients": {"w": [[1, 2], [3, 4]]}}, "b": {"gradients": {"w": [[1, 2, 3], [3, 4, 5]]}}}"#,
    );
    case!(
        "gradients-shape-mismatch",
        os(&[&"average", &"--gradients-path", &g.join("shape.json"), &"--output-dir", &out]),
        1,
        ["input \"b\"", "parameter \"w\"", "more values than in the first input"]
    );
    write(&g.join("missing.json"), r#"{"a": {"gradients": {"w": [1], "b": [2]}}, "b": {"gradients": {"w": [1]}}}"#);
    case!(
        "gradients-parameter-missing",
        os(&[&"average", &"--gradients-path", &g.join("missing.json"), &"--output-dir", &out]),
        1,
        ["input \"b\" lacks parameter \"b\""]
    );
    write(&g.join("ragged.json"), r#"{"a": {"gradients": {"w": [[1, 2], [3]]}}}"#);
    case!(
        "gradients-ragged",
        os(&[&"average", &"--gradients-path", &g.join("ragged.json"), &"--output-dir", &out]),
        1,
        ["ragged nested list", "parameter \"w\""]
    );
    write(&g.join("avg.json"), r#"{"metadata": {"num_examples": 1}}"#);
    case!(
        "averages-without-average-gradients",
        os(&[
            &"extract",
            &"--cross-metric-path",
            &fixture("acrobot").join("patching_results/cross_metric_summary.json"),
            &"--average-gradients-path",
            &g.join("avg.json"),
            &"--output-dir",
            &out
        ]),
        1,
        ["no \"average_gradients\" object"]
    );
    write(&g.join("zero-width.json"), r#"{"average_gradients": {"w": [[], []]}}"#);
    case!(
        "averages-zero-width-layer",
        os(&[
            &"extract",
            &"--cross-metric-path",
            &fixture("acrobot").join("patching_results/cross_metric_summary.json"),
            &"--average-gradients-path",
            &g.join("zero-width.json"),
            &"--output-dir",
            &out
        ]),
        1,
        ["parameter \"w\" has shape [2, 0], with no values"]
    );

    // --- ablation ---
    let abl = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut a = os(&[&"ablate", &"-q", &"--agent-path", &fixture("acrobot"), &"--output-dir", &out]);
        a.extend(extra.iter().map(|s| s.as_ref().to_os_string()));
        a
    };
    let sel = dir.join("selections");
    let target = |layer: &str, n: i64, w: i64| {
        format!(
            r#"{{"weight_targets": [{{"layer_name": "q_net.0.weight", "neuron_index": 1, "weight_index": 2}},
               {{"layer_name": "{layer}", "neuron_index": {n}, "weight_index": {w}}}]}}"#
        )
    };
    write(&sel.join("param.json"), target("q_net.9.weight", 0, 0));
    case!(
        "ablate-unknown-parameter",
        abl(&[&"--candidates", &sel.join("param.json")]),
        1,
        ["weight_targets[1]: layer_name \"q_net.9.weight\" is not a parameter of this agent", "q_net.0.weight"]
    );
    write(&sel.join("neuron.json"), target("q_net.0.weight", 32, 0));
    case!(
        "ablate-neuron-out-of-range",
        abl(&[&"--candidates", &sel.join("neuron.json")]),
        1,
        ["weight_targets[1]: neuron_index 32 is out of range for q_net.0.weight (shape [32, 6]: 0..32)"]
    );
    write(&sel.join("weight.json"), target("q_net.0.weight", 0, 6));
    case!(
        "ablate-weight-out-of-range",
        abl(&[&"--candidates", &sel.join("weight.json")]),
        1,
        ["weight_targets[1]: weight_index 6 is out of range for q_net.0.weight", "rows of 6 weights"]
    );
    write(&sel.join("empty.json"), r#"{"weight_targets": []}"#);
    case!(
        "ablate-empty-selection",
        abl(&[&"--candidates", &sel.join("empty.json")]),
        1,
        ["selects no weights: there is nothing to ablate"]
    );
    write(&sel.join("not-candidates.json"), r#"{"average_gradients": {}}"#);
    case!(
        "ablate-not-a-candidate-file",
        abl(&[&"--candidates", &sel.join("not-candidates.json")]),
        1,
        ["no \"weight_targets\" list (is this a candidate_weights.json?)"]
    );
    case!(
        "ablate-no-selection",
        abl(&[]),
        1,
        ["no selection to ablate", "candidate_weights.json does not exist", "--k K --m M"]
    );
    case!(
        "ablate-scale-without-factor",
        abl(&[&"--mode", &"scale:"]),
        2,
        ["invalid value 'scale:' for '--mode <MODE>'", "scale needs a factor, e.g. scale:0.5"]
    );
    case!(
        "ablate-scale-nan",
        abl(&[&"--mode", &"scale:nan"]),
        2,
        ["invalid value 'scale:nan'", "the factor must be a finite number, found NaN"]
    );
    case!(
        "ablate-random-absurd",
        abl(&[&"--k", &"2", &"--m", &"4", &"--random", &"100000000"]),
        1,
        ["--random 100000000 is over the limit of 10000 draws", "raise it with --max-random"]
    );
    case!(
        "ablate-target-out-of-range",
        abl(&[&"--k", &"2", &"--target", &"action:3"]),
        1,
        ["target action:3 is out of range: the agent has 3 actions (0..3)"]
    );

    // --- validate ---
    let val = |extra: &[&dyn AsRef<std::ffi::OsStr>]| {
        let mut a = os(&[&"validate", &"-q", &"--agent-path", &fixture("acrobot"), &"--output-dir", &out]);
        a.extend(extra.iter().map(|s| s.as_ref().to_os_string()));
        a
    };
    case!("validate-sample-zero", val(&[&"--sample", &"0"]), 1, ["--sample 0: expected 1 to 100000 weights"]);
    case!(
        "validate-no-inputs-sampled",
        val(&[&"--inputs-sample", &"0"]),
        1,
        ["--inputs-sample 0: at least one input is needed"]
    );
    case!(
        "validate-bootstrap-absurd",
        val(&[&"--bootstrap", &"100000000"]),
        1,
        ["--bootstrap 100000000: at most 100000 replicates"]
    );

    // --- targets and measures ---
    let run_acro = |extra: &[&str]| {
        let mut a = os(&[&"run", &"-q", &"--agent-path", &fixture("acrobot"), &"--output-dir", &out]);
        a.extend(extra.iter().map(OsString::from));
        a
    };
    case!(
        "measure-unknown",
        run_acro(&["--measures", "mean,median"]),
        2,
        [
            "invalid value 'mean,median' for '--measures <LIST>'",
            "unknown measure 'median' (known: mean-abs, mean, mean-sq"
        ]
    );
    case!(
        "target-unknown",
        run_acro(&["--target", "entropy"]),
        2,
        ["invalid value 'entropy' for '--target <T>'", "unknown target 'entropy' (known: q, margin, action:N, logsoftmax (DQN, QR-DQN); logprob, logit, margin, action:N, value (PPO, A2C))"]
    );
    case!(
        "target-of-another-family",
        run_acro(&["--target", "value"]),
        1,
        ["target value is for actor-critic policies; a DQN agent has q (default), margin, action:N and logsoftmax"]
    );
    case!(
        "target-action-out-of-range",
        run_acro(&["--target", "action:7"]),
        1,
        ["target action:7 is out of range: the agent has 3 actions (0..3)"]
    );
    case!(
        "select-by-signed-measure",
        run_acro(&["--measures", "all", "--select-by", "mean"]),
        2,
        ["--select-by mean: the selection ranks magnitudes, and mean is not one", "use one of mean-abs, mean-sq"]
    );
    // measures.safetensors of another agent (CartPole's 64x4 first layer) beside Acrobot's
    // averages (32x6).
    let m = dir.join("other-measures");
    std::fs::create_dir_all(&m).unwrap();
    std::fs::copy(reference_dir("acrobot").join("average_gradients.json"), m.join("average_gradients.json")).unwrap();
    let zeros = vec![0u8; 64 * 4 * 8];
    let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F64, vec![64, 4], &zeros).unwrap();
    std::fs::write(
        m.join("measures.safetensors"),
        safetensors::serialize([("max-abs/q_net.0.weight", view)], None).unwrap(),
    )
    .unwrap();
    case!(
        "measures-of-another-agent",
        os(&[
            &"extract",
            &"--select-by",
            &"max-abs",
            &"--cross-metric-path",
            &fixture("acrobot").join("patching_results/cross_metric_summary.json"),
            &"--average-gradients-path",
            &m.join("average_gradients.json"),
            &"--output-dir",
            &out
        ]),
        1,
        ["measures.safetensors: max-abs/q_net.0.weight has shape [64, 4], but the averages' q_net.0.weight has [32, 6] (measures of another agent?)"]
    );
    std::fs::write(m.join("not.safetensors"), "not a safetensors file").unwrap();
    case!(
        "measures-not-safetensors",
        os(&[
            &"extract",
            &"--select-by",
            &"max-abs",
            &"--measures-path",
            &m.join("not.safetensors"),
            &"--cross-metric-path",
            &fixture("acrobot").join("patching_results/cross_metric_summary.json"),
            &"--average-gradients-path",
            &m.join("average_gradients.json"),
            &"--output-dir",
            &out
        ]),
        1,
        ["not.safetensors is not a safetensors file"]
    );

    // --- VecNormalize files and algorithms ---
    let vn = |d: &str, bytes: Vec<u8>| -> PathBuf {
        let p = dir.join(d);
        for e in walk(&fixture("ppo_vecnormalize")) {
            let rel = e.strip_prefix(fixture("ppo_vecnormalize")).unwrap();
            if !rel.starts_with("reference") && !rel.ends_with("vec_normalize.pkl") {
                write(&p.join(rel), std::fs::read(&e).unwrap());
            }
        }
        write(&p.join("vec_normalize.pkl"), bytes);
        p
    };
    let real = std::fs::read(fixture("ppo_vecnormalize").join("vec_normalize.pkl")).unwrap();
    let d = vn("vn-code", b"\x80\x02cposix\nsystem\nq\x00X\x05\x00\x00\x00touchq\x01\x85q\x02Rq\x03.".to_vec());
    case!(
        "vecnormalize-code-global",
        run_args(&d, out, &[]),
        1,
        [
            "vec_normalize.pkl (a VecNormalize save is read as data; nothing in it is run)",
            "refusing pickle global 'posix.system'"
        ]
    );
    let d = vn(
        "vn-reduce",
        b"\x80\x02ccopyreg\n_reconstructor\n(cstable_baselines3.common.vec_env.vec_normalize\nVecNormalize\nNNtR."
            .to_vec(),
    );
    case!(
        "vecnormalize-foreign-reduce",
        run_args(&d, out, &[]),
        1,
        ["refusing pickle global 'copyreg._reconstructor'"]
    );
    let d = vn("vn-truncated", real[..real.len() / 2].to_vec());
    case!("vecnormalize-truncated", run_args(&d, out, &[]), 1, ["vec_normalize.pkl", "truncated"]);
    // obs_rms.mean claims 2^31 - 1 values (every `(5,)` shape tuple rewritten).
    let mut huge = Vec::new();
    let mut i = 0;
    while i < real.len() {
        if real[i..].starts_with(b"K\x05\x85") {
            huge.extend_from_slice(b"J\xff\xff\xff\x7f\x85");
            i += 3;
        } else {
            huge.push(real[i]);
            i += 1;
        }
    }
    let d = vn("vn-huge", huge);
    case!("vecnormalize-huge-array", run_args(&d, out, &[]), 1, ["a numpy array of shape [2147483647] with"]);
    // Five observation statistics (the VecNormalize fixture's environment) handed to a
    // CartPole agent, whose observation has four values.
    let d = vn("vn-other-env", real.clone());
    let d_cart = dir.join("vn-cartpole");
    for e in walk(&fixture("cartpole")) {
        let rel = e.strip_prefix(fixture("cartpole")).unwrap();
        if !rel.starts_with("reference") {
            write(&d_cart.join(rel), std::fs::read(&e).unwrap());
        }
    }
    case!(
        "vecnormalize-of-another-env",
        os(&[
            &"run",
            &"-q",
            &"--agent-path",
            &d_cart,
            &"--output-dir",
            &out,
            &"--vec-normalize",
            &d.join("vec_normalize.pkl")
        ]),
        1,
        ["vec_normalize.pkl: 5 statistics for the observation, which has 4 values (another environment's file?)"]
    );
    let d = acro("algo-sac");
    with_data(&d, |t| t.replace("stable_baselines3.dqn.policies", "stable_baselines3.sac.policies"));
    case!(
        "algorithm-unsupported",
        run_args(&d, out, &[]),
        1,
        ["(stable_baselines3.sac.policies); saliency reads DQN (stable_baselines3.dqn), QR-DQN (sb3_contrib.qrdqn), PPO and A2C"]
    );
    let d = acro("algo-ppo-with-dqn-keys");
    with_data(&d, |t| t.replace("stable_baselines3.dqn.policies", "stable_baselines3.common.policies"));
    case!(
        "algorithm-data-and-keys-disagree",
        run_args(&d, out, &[]),
        1,
        ["the state dict lacks action_net.* and value_net.* (not an actor-critic policy?)"]
    );

    // --- the explorer's flags ---
    let f = dir.join("feature-names");
    write(&f.join("numbers.json"), "[1, 2, 3]");
    case!(
        "feature-names-not-names",
        os(&[&"--agent-path", &fixture("demo"), &"--feature-names", &f.join("numbers.json")]),
        1,
        ["numbers.json[0]: expected a name (text), found an integer"]
    );
    write(&f.join("text.json"), "\"x\"");
    case!(
        "feature-names-not-a-list",
        os(&[&"--agent-path", &fixture("demo"), &"--feature-names", &f.join("text.json")]),
        1,
        ["text.json: expected a list of names, or an object from observation key to a list of names, found a string"]
    );

    // --- writing ---
    let d = acro("disk-full");
    v.push(Case {
        id: "disk-full",
        args: run_args(&d, &dir.join("full-out"), &[]),
        code: 1,
        stderr: vec!["cannot write", "File too large"],
        shell: Some("trap '' XFSZ; ulimit -f 64; exec {cmd}".into()),
    });
    // A read-only output directory holding a previous result: immutable (`chattr +i`, which
    // binds root too) or, for other users, without write permission. The previous file must
    // survive (exit 99 if not). Where neither can be done, the case is reported as skipped.
    let d = acro("read-only");
    let ro = dir.join("ro-out");
    write(&ro.join("average_gradients.json"), "previous");
    let q = shell_quote(ro.as_os_str());
    v.push(Case {
        id: "output-dir-read-only",
        args: run_args(&d, &ro, &[]),
        code: 1,
        stderr: vec!["cannot create a file in", "ro-out"],
        shell: Some(format!(
            "chattr +i {q} 2>/dev/null || chmod a-w {q}; \
             if touch {q}/.probe 2>/dev/null; then rm -f {q}/.probe; echo SKIPPED-READ-ONLY >&2; exit 1; fi; \
             {{cmd}}; rc=$?; chattr -i {q} 2>/dev/null; chmod u+w {q}; \
             [ \"$(cat {q}/average_gradients.json)\" = previous ] || exit 99; exit $rc"
        )),
    });
    sweep_cases(dir, &mut v);
    v
}

fn shell_quote(s: &std::ffi::OsStr) -> String {
    format!("'{}'", s.to_string_lossy().replace('\'', "'\\''"))
}

#[test]
fn every_bad_input_gets_a_clear_error_and_no_output() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let cases = cases(tmp.path(), &out);
    let bin = assert_cmd::cargo::cargo_bin("saliency");
    let mut failures = Vec::new();
    for c in &cases {
        let output = match &c.shell {
            None => std::process::Command::new(&bin).args(&c.args).env("NO_COLOR", "1").output().unwrap(),
            Some(script) => {
                let cmd = format!(
                    "{} {}",
                    shell_quote(bin.as_os_str()),
                    c.args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
                );
                std::process::Command::new("sh").args(["-c", &script.replace("{cmd}", &cmd)]).output().unwrap()
            }
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("SKIPPED-READ-ONLY") {
            eprintln!("{}: skipped: this machine cannot make a directory read-only for this user", c.id);
            continue;
        }
        let mut problems = Vec::new();
        if output.status.code() != Some(c.code) {
            problems.push(format!("exit {:?}, expected {}", output.status.code(), c.code));
        }
        for s in &c.stderr {
            if !stderr.contains(s) {
                problems.push(format!("stderr lacks {s:?}"));
            }
        }
        if stderr.contains("panicked") || stderr.contains("RUST_BACKTRACE") {
            problems.push("panicked".into());
        }
        if c.code != 0 {
            // Nothing written where outputs go (no file, no half file).
            let left: Vec<_> = walk_if(&out).into_iter().chain(walk_if(&tmp.path().join("full-out"))).collect();
            if !left.is_empty() {
                problems.push(format!("left {left:?}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}\n--- stderr:\n{stderr}", c.id, problems.join("; ")));
        }
        let _ = std::fs::remove_dir_all(&out);
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
    assert!(cases.len() >= 30);
}

fn walk_if(dir: &Path) -> Vec<PathBuf> {
    if dir.exists() {
        walk(dir)
    } else {
        Vec::new()
    }
}

#[test]
fn every_row_of_the_documented_table_is_a_case() {
    let doc = std::fs::read_to_string(root().join("docs/bad-inputs.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let ids: Vec<&str> = cases(tmp.path(), &tmp.path().join("out")).iter().map(|c| c.id).collect();
    let documented: Vec<String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect();
    for id in &ids {
        assert!(documented.iter().any(|d| d == id), "case {id} is not in docs/bad-inputs.md");
    }
    for d in &documented {
        assert!(ids.contains(&d.as_str()), "docs/bad-inputs.md row {d} has no test case");
    }
}

/// The sweep's bad inputs: each a clear error naming the file, the other agents unaffected.
fn sweep_cases(dir: &Path, v: &mut Vec<Case>) {
    let bin = assert_cmd::cargo::cargo_bin("saliency");
    let sw = dir.join("sweeps");
    let good = sw.join("good");
    for e in walk(&fixture("acrobot")) {
        let rel = e.strip_prefix(fixture("acrobot")).unwrap();
        if !rel.starts_with("reference") {
            write(&good.join("acrobot").join(rel), std::fs::read(&e).unwrap());
        }
    }
    let zip = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    let sweep = |paths: &[&Path], out: &str, extra: &[&str]| -> Vec<OsString> {
        let mut a = os(&[&"sweep", &"-q"]);
        a.extend(paths.iter().map(|p| p.as_os_str().to_os_string()));
        a.extend(os(&[&"--output-dir", &sw.join(out)]));
        a.extend(extra.iter().map(OsString::from));
        a
    };
    let mut case =
        |id: &'static str, args: Vec<OsString>, code: i32, stderr: Vec<&'static str>, shell: Option<String>| {
            v.push(Case { id, args, code, stderr, shell })
        };
    let broken = sw.join("broken");
    write(&broken.join("broken.zip"), &zip[..zip.len() / 2]);
    case(
        "sweep-broken-zip",
        sweep(&[&good, &broken], "out-broken", &[]),
        3,
        vec!["failed: ", "broken.zip is truncated or corrupt"],
        None,
    );
    let foreign = sw.join("foreign");
    {
        let mut w = zip::ZipWriter::new(
            std::fs::File::create({
                std::fs::create_dir_all(&foreign).unwrap();
                foreign.join("notes.zip")
            })
            .unwrap(),
        );
        w.start_file("readme.txt", zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(b"not an agent").unwrap();
        w.finish().unwrap();
    }
    case(
        "sweep-foreign-zip",
        sweep(&[&good, &foreign], "out-foreign", &[]),
        3,
        vec!["notes.zip is not a Stable-Baselines3 save"],
        None,
    );
    let wrong = sw.join("wrong.npy");
    let mut npy = b"\x93NUMPY\x01\x00".to_vec();
    let mut header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (5, 4), }".to_vec();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    npy.extend_from_slice(&(header.len() as u16).to_le_bytes());
    npy.extend(header);
    npy.extend(std::iter::repeat_n(0u8, 5 * 4 * 4));
    write(&wrong, &npy);
    let bare = sw.join("bare");
    write(&bare.join("acrobot.zip"), &zip);
    case(
        "sweep-inputs-do-not-fit",
        sweep(&[&bare], "out-wrong", &["--inputs", wrong.to_str().unwrap()]),
        1,
        vec!["wrong.npy: an array of shape [5, 4] does not fit the observation: expected (N, 6)"],
        None,
    );
    // An RL Zoo run whose args.yml names code to run: read as data, the tag refused, no seed.
    let zoo_run = fixture("zoo").join("logs/dqn/CartPole-v1_1");
    let evil = sw.join("zoo/dqn/CartPole-v1_1");
    for e in walk(&zoo_run) {
        let rel = e.strip_prefix(&zoo_run).unwrap();
        let mut bytes = std::fs::read(&e).unwrap();
        if rel.ends_with("args.yml") {
            bytes = String::from_utf8(bytes)
                .unwrap()
                .replace("    - 1\n", "    - !!python/object/apply:os.system ['touch /tmp/pwned']\n")
                .into_bytes();
        }
        write(&evil.join(rel), bytes);
    }
    let obs = format!("CartPole-v1={}", fixture("zoo").join("obs/CartPole-v1.npy").display());
    case(
        "sweep-args-yml-foreign-tag",
        sweep(&[&evil], "out-evil", &["--raw-gradients", "none", "--inputs", &obs]),
        0,
        vec!["no seed", "refusing the tag !!python/object/apply:os.system"],
        None,
    );
    case(
        "sweep-duplicate-path",
        sweep(&[&good, &good], "out-twice", &["--raw-gradients", "none"]),
        0,
        vec!["warning: ", "agent.zip is listed twice: analysed once"],
        None,
    );
    // Shards: one of another sweep among them; a missing one.
    let shards = sw.join("out-shards");
    for (shard, k) in [("1/2", "2"), ("2/2", "3")] {
        let ok = std::process::Command::new(&bin)
            .args(sweep(
                &[&good, &bare],
                "out-shards",
                &[
                    "--raw-gradients",
                    "none",
                    "--inputs",
                    fixture("acrobot").join("activation_inputs/clean_inputs.json").to_str().unwrap(),
                    "--shard",
                    shard,
                    "--k",
                    k,
                ],
            ))
            .output()
            .unwrap();
        assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    }
    case(
        "sweep-foreign-shard",
        os(&[&"sweep", &"merge", &shards]),
        1,
        vec!["shard-", "is a shard of another sweep"],
        None,
    );
    let lonely = sw.join("out-lonely");
    let ok = std::process::Command::new(&bin)
        .args(sweep(&[&good], "out-lonely", &["--raw-gradients", "none", "--shard", "1/2"]))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    case(
        "sweep-missing-shard",
        os(&[&"sweep", &"merge", &lonely]),
        1,
        vec!["shard 2 of 2 is missing", "shard-2-of-2.json does not exist"],
        None,
    );
    case(
        "sweep-slurm-not-contiguous",
        sweep(&[&good], "out-slurm", &["--shard", "slurm"]),
        1,
        vec!["the job array is not contiguous"],
        Some(
            "SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_MAX=5 SLURM_ARRAY_TASK_COUNT=3 exec {cmd}"
                .into(),
        ),
    );
    let ok = std::process::Command::new(&bin)
        .args(sweep(&[&good], "out-other", &["--raw-gradients", "none", "--k", "3"]))
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    case(
        "sweep-output-holds-another-sweep",
        sweep(&[&good], "out-other", &["--raw-gradients", "none"]),
        1,
        vec!["out-other holds another sweep", "--force"],
        None,
    );
}
