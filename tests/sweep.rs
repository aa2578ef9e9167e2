//! `saliency sweep`, run as the binary: a mixed folder of every algorithm (each agent's files the
//! same bytes as `saliency run` writes, a broken zip listed as failed), real RL Zoo runs
//! (checkpoints in step order, seeds, the best-model copy, run statistics recomputed here
//! independently from the agents' own average files), shards merged to the same bytes, and a
//! sweep killed at any moment finishing with the same bytes.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use saliency::json::Value;

fn bin() -> PathBuf {
    assert_cmd::cargo::cargo_bin("saliency")
}

fn saliency(args: &[&str]) -> Output {
    Command::new(bin()).args(args).env("NO_COLOR", "1").output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn zoo() -> PathBuf {
    fixture("zoo")
}

/// The zoo sweep's flags (inputs for CartPole, no raw file to keep it quick).
fn zoo_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<String> {
    let logs = zoo().join("logs");
    let inputs = format!("CartPole-v1={}", s(&zoo().join("obs/CartPole-v1.npy")));
    let mut v: Vec<String> =
        ["sweep", "-q", s(&logs), "--inputs", &inputs, "--output-dir", out].iter().map(|x| x.to_string()).collect();
    if !extra.contains(&"--raw-gradients") {
        v.extend(["--raw-gradients".to_string(), "none".to_string()]);
    }
    v.extend(extra.iter().map(|x| x.to_string()));
    v
}

fn run_sweep(args: &[String]) -> Output {
    Command::new(bin()).args(args).output().unwrap()
}

/// Every file under `dir`, relative, with its bytes.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = walk(dir)
        .into_iter()
        .map(|p| (p.strip_prefix(dir).unwrap().display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

fn manifest(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("manifest.jsonl"))
        .unwrap()
        .lines()
        .map(|l| saliency::json::reader::read_value_from(l.as_bytes(), "manifest").unwrap())
        .collect()
}

fn field<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.get(k).unwrap_or_else(|| panic!("no {k}"))
}

#[test]
fn a_mixed_folder_gives_run_bytes_per_agent_and_lists_the_broken_zip() {
    let tmp = tempfile::tempdir().unwrap();
    let mixed = mixed_folder(tmp.path());
    let zip = std::fs::read(fixture("acrobot").join("agent.zip")).unwrap();
    std::fs::write(mixed.join("broken.zip"), &zip[..zip.len() / 2]).unwrap();
    let out = tmp.path().join("out");
    let o = saliency(&["sweep", "-q", s(&mixed), "--output-dir", s(&out), "--jobs", "2"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "some agents failed: {stderr}");
    assert!(stderr.contains("broken.zip") && stderr.contains("truncated or corrupt"), "{stderr}");
    let rows = manifest(&out);
    assert_eq!(rows.len(), 6);
    for r in &rows {
        let path = field(r, "path").as_str().unwrap();
        let status = field(r, "status").as_str().unwrap();
        if path.ends_with("broken.zip") {
            assert_eq!(status, "failed");
            assert!(field(r, "error").as_str().unwrap().contains("truncated or corrupt"));
            continue;
        }
        assert_eq!(status, "ok", "{path}");
        // The agent's folder holds what `saliency run` writes for it, byte for byte.
        let id = field(r, "agent_id").as_str().unwrap();
        let agent_dir = Path::new(path).parent().unwrap();
        let alone = tmp.path().join(format!("run-{id}"));
        let o = saliency(&["run", "-q", "--agent-path", s(agent_dir), "--output-dir", s(&alone)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut swept = files(&out.join("agents").join(id));
        swept.retain(|(n, _)| n != "done.json");
        assert_eq!(
            swept.iter().map(|f| &f.0).collect::<Vec<_>>(),
            files(&alone).iter().map(|f| &f.0).collect::<Vec<_>>(),
            "{path}"
        );
        assert!(swept == files(&alone), "{path}: the sweep's files differ from run's");
    }
    let algos: Vec<&str> = rows.iter().filter_map(|r| field(r, "algorithm").as_str()).collect();
    for a in ["DQN", "QR-DQN", "PPO", "A2C", "MaskablePPO"] {
        assert!(algos.contains(&a), "{algos:?}");
    }
}

/// Independent of the crate's statistics: ranks by counting, Pearson by its definition.
fn spearman_by_counting(a: &[f64], b: &[f64]) -> f64 {
    let ranks = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .map(|x| {
                let less = v.iter().filter(|y| *y < x).count() as f64;
                let equal = v.iter().filter(|y| *y == x).count() as f64;
                less + (equal + 1.0) / 2.0
            })
            .collect()
    };
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn weights_of(out: &Path, id: &str) -> Vec<f64> {
    let a = saliency::pipeline::average::Averages::read(&out.join("agents").join(id).join("average_gradients.json"))
        .unwrap();
    a.params.into_iter().flat_map(|p| p.data).collect()
}

#[test]
fn rl_zoo_runs_are_found_in_step_order_and_their_statistics_recompute() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_sweep(&zoo_args(s(&out), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let rows = manifest(&out);
    assert_eq!(rows.len(), 20, "4 runs x (final, best, 3 checkpoints)");
    for (run, seed) in
        [("dqn/CartPole-v1_1", 1), ("dqn/CartPole-v1_2", 2), ("dqn/CartPole-v1_3", 3), ("ppo/CartPole-v1_1", 4)]
    {
        let mine: Vec<&Value> = rows.iter().filter(|r| field(r, "run").as_str().unwrap().ends_with(run)).collect();
        assert_eq!(mine.len(), 5, "{run}");
        let steps: Vec<i64> = mine
            .iter()
            .filter(|r| field(r, "kind").as_str() == Some("checkpoint"))
            .map(|r| field(r, "step").as_i64().unwrap())
            .collect();
        assert_eq!(steps, [1000, 2000, 3000], "{run}: checkpoints in step order");
        assert!(mine.iter().all(|r| field(r, "seed").as_i64() == Some(seed)), "{run}: seed from args.yml");
        // best_model.zip is a byte copy of a checkpoint: analysed once, marked, given its step.
        let best = mine.iter().find(|r| field(r, "kind").as_str() == Some("best")).unwrap();
        assert_eq!(field(best, "status").as_str(), Some("skipped-duplicate"), "{run}");
        let copied = mine
            .iter()
            .find(|r| {
                field(r, "kind").as_str() == Some("checkpoint") && field(r, "agent_id") == field(best, "agent_id")
            })
            .unwrap_or_else(|| panic!("{run}: the best model copies no checkpoint"));
        assert_eq!(field(best, "step"), field(copied, "step"));
        let vn: Vec<&str> = mine.iter().map(|r| field(r, "vec_normalize").as_str().unwrap()).collect();
        if run.starts_with("ppo") {
            for r in &mine {
                let want = if field(r, "kind").as_str() == Some("final") { "exact" } else { "final-stats" };
                assert_eq!(field(r, "vec_normalize").as_str(), Some(want), "{run}");
            }
        } else {
            assert!(vn.iter().all(|v| *v == "none"), "{vn:?}");
        }
    }
    // The runs' statistics, recomputed here from the agents' own averages files.
    let sweep = read_json(&out.join("sweep.json"));
    let runs = field(&sweep, "runs").as_array().unwrap();
    assert_eq!(runs.len(), 4);
    for run in runs {
        let cps = field(run, "checkpoints").as_array().unwrap();
        let final_id = field(cps.last().unwrap(), "agent_id").as_str().unwrap();
        assert_eq!(field(cps.last().unwrap(), "kind").as_str(), Some("final"));
        let reference = weights_of(&out, final_id);
        let k = 100.min(reference.len());
        assert_eq!(field(run, "chance_overlap").as_f64().unwrap(), k as f64 / reference.len() as f64);
        let top = |v: &[f64]| -> Vec<usize> {
            let mut idx: Vec<usize> = (0..v.len()).collect();
            idx.sort_by(|&a, &b| v[b].partial_cmp(&v[a]).unwrap().then(a.cmp(&b)));
            idx.truncate(k);
            idx
        };
        let mut steps = Vec::new();
        for cp in cps {
            let v = weights_of(&out, field(cp, "agent_id").as_str().unwrap());
            let rho = field(cp, "spearman").as_f64().unwrap();
            let want = spearman_by_counting(&v, &reference);
            assert!((rho - want).abs() < 1e-12, "spearman {rho} vs {want}");
            let (a, b) = (top(&v), top(&reference));
            let overlap = a.iter().filter(|i| b.contains(i)).count() as f64 / k as f64;
            assert_eq!(field(cp, "top_overlap").as_f64().unwrap(), overlap);
            steps.push(field(cp, "step").as_i64());
        }
        let checkpoint_steps: Vec<i64> = steps.iter().flatten().copied().collect();
        assert!(checkpoint_steps.windows(2).all(|w| w[0] <= w[1]), "ordered by step: {steps:?}");
    }
    // The group of the three DQN seeds: IQM of each layer's share, recomputed.
    let groups = field(&sweep, "groups").as_array().unwrap();
    let dqn = groups.iter().find(|g| field(g, "group").as_str().unwrap().starts_with("DQN/")).unwrap();
    assert_eq!(field(dqn, "n").as_i64(), Some(3));
    let agents = field(&sweep, "agents").as_array().unwrap();
    let members: Vec<&str> = field(dqn, "agents").as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    for layer in field(dqn, "layers").as_array().unwrap() {
        let name = field(layer, "name").as_str().unwrap();
        let mut shares: Vec<f64> = agents
            .iter()
            .filter(|a| members.contains(&field(a, "agent_id").as_str().unwrap()))
            .map(|a| {
                let l = field(a, "layers").as_array().unwrap().iter().find(|l| field(l, "name").as_str() == Some(name));
                field(l.unwrap(), "share").as_f64().unwrap()
            })
            .collect();
        shares.sort_by(f64::total_cmp);
        // n = 3: floor(0.75) = 0 values dropped from each end
        let iqm = shares.iter().sum::<f64>() / 3.0;
        assert!((field(layer, "iqm").as_f64().unwrap() - iqm).abs() < 1e-15, "{name}");
        let iv = field(layer, "interval").as_array().unwrap();
        let (lo, hi) = (iv[0].as_f64().unwrap(), iv[1].as_f64().unwrap());
        let e = 1e-12;
        assert!(
            shares[0] - e <= lo && lo <= iqm && iqm <= hi && hi <= shares[2] + e,
            "{name}: {lo} {iqm} {hi} in {shares:?}"
        );
    }
}

#[test]
fn shards_merge_to_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    assert!(run_sweep(&zoo_args(s(&whole), &[])).status.success());
    let sharded = tmp.path().join("sharded");
    for i in 1..=3 {
        let shard = format!("{i}/3");
        let o = run_sweep(&zoo_args(s(&sharded), &["--shard", &shard]));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(!sharded.join("sweep.json").exists(), "a shard writes no summary");
        if i == 2 {
            // A merge before every shard is done names the missing one.
            let o = saliency(&["sweep", "merge", s(&sharded)]);
            assert_eq!(o.status.code(), Some(1));
            assert!(String::from_utf8_lossy(&o.stderr).contains("shard 3 of 3 is missing"));
        }
    }
    let o = saliency(&["sweep", "merge", "-q", s(&sharded)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["manifest.jsonl", "sweep.json", "sweep.csv"] {
        assert!(std::fs::read(whole.join(f)).unwrap() == std::fs::read(sharded.join(f)).unwrap(), "{f} differs");
    }
    assert!(files(&whole.join("agents")) == files(&sharded.join("agents")));
    // A sweep with other flags into the same folder is refused: it holds another sweep.
    let o = run_sweep(&zoo_args(s(&sharded), &["--shard", "1/3", "--k", "3"]));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds another sweep"));
    // A shard of another sweep (other flags) among them is refused, named.
    let other = tmp.path().join("other");
    assert!(run_sweep(&zoo_args(s(&other), &["--shard", "1/3", "--k", "3"])).status.success());
    let name = "shards/shard-1-of-3.json";
    std::fs::copy(other.join(name), sharded.join(name)).unwrap();
    let o = saliency(&["sweep", "merge", s(&sharded)]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("shard-1-of-3.json is a shard of another sweep"), "{stderr}");
}

#[test]
fn a_sweep_killed_at_any_moment_finishes_with_the_same_bytes() {
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    let args = |out: &Path| zoo_args(s(out), &["--raw-gradients", "json", "--jobs", "1"]);
    assert!(run_sweep(&args(&clean)).status.success());
    let want = files(&clean);
    for delay_ms in [0u64, 200, 500, 900] {
        let out = tmp.path().join(format!("killed-{delay_ms}"));
        let mut child =
            Command::new(bin()).args(args(&out)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let o = run_sweep(&args(&out));
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got = files(&out);
        assert_eq!(got.iter().map(|f| &f.0).collect::<Vec<_>>(), want.iter().map(|f| &f.0).collect::<Vec<_>>());
        assert!(got == want, "killed after {delay_ms} ms: the rerun's files differ");
    }
    // A rerun skips what is done (the same bytes again, nothing recomputed).
    let before = std::fs::metadata(clean.join("agents")).unwrap().modified().unwrap();
    let o = run_sweep(&args(&clean));
    assert!(o.status.success());
    assert!(files(&clean) == want);
    let _ = before;
}

#[test]
fn emit_sbatch_writes_the_array_and_the_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("sweep.sbatch");
    let out = tmp.path().join("out");
    let mut args = zoo_args(s(&out), &["--emit-sbatch", s(&script), "--slurm-tasks", "3"]);
    args.retain(|a| a != "-q");
    let o = run_sweep(&args);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&script).unwrap();
    assert!(text.contains("#SBATCH --array=1-3"), "{text}");
    assert!(text.contains(&format!("#SBATCH --output={}/logs/%A_%a.out", out.display())), "{text}");
    assert!(text.contains("--shard slurm") && !text.contains("--emit-sbatch"), "{text}");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("--dependency=afterok:$jid") && stdout.contains("sweep merge"), "{stdout}");
    assert!(!out.join("agents").exists(), "emitting runs nothing");
    // One task resubmitted alone is refused before anything runs.
    let part = std::process::Command::new("bash")
        .arg(&script)
        .envs([("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_MIN", "2"), ("SLURM_ARRAY_TASK_COUNT", "1")])
        .output()
        .unwrap();
    assert_eq!(part.status.code(), Some(2));
    let err = String::from_utf8_lossy(&part.stderr);
    assert!(err.contains("one job array of 3 tasks") && err.contains("not 1"), "{err}");
    assert!(!out.join("agents").exists() && !out.join("shards").exists(), "nothing ran");
}

#[test]
fn a_finished_sweep_reads_back_compares_and_shows_training() {
    use saliency::study::sweep::{compare, results, summary, training};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let o = run_sweep(&zoo_args(s(&out), &[]));
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let r = results::open(&out).unwrap();
    assert_eq!(r.rows.len(), 20);
    // Read back and written again, the summary has sweep.json's bytes.
    let again = tmp.path().join("again.json");
    summary::write_json(&again, &r.rows, &r.summaries, &r.groups, &r.runs, &r.flags).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(out.join("sweep.json")).unwrap());
    // A checkpoint compared with its final model: the run's numbers, exactly.
    for run in &r.runs {
        let final_id = &run.checkpoints.last().unwrap().agent_id;
        for cp in &run.checkpoints {
            let w = compare::compare(&r, &cp.agent_id, final_id).unwrap().weights.unwrap();
            assert_eq!(
                (w.spearman, w.top_overlap, w.chance_overlap),
                (cp.spearman, cp.top_overlap, run.chance_overlap)
            );
            // and the other way round
            let w = compare::compare(&r, final_id, &cp.agent_id).unwrap().weights.unwrap();
            assert_eq!((w.spearman, w.top_overlap), (cp.spearman, cp.top_overlap));
        }
    }
    // Each side's selection is its candidate_weights.json.
    let (dqn, ppo) = (&r.runs[0], &r.runs[3]);
    let (a, b) = (&dqn.checkpoints[0].agent_id, &dqn.checkpoints.last().unwrap().agent_id);
    let w = compare::compare(&r, a, b).unwrap().weights.unwrap();
    let count = |id: &str| {
        field(&read_json(&out.join("agents").join(id).join("candidate_weights.json")), "weight_targets")
            .as_array()
            .unwrap()
            .len()
    };
    let on = |side: compare::Side| w.selected.iter().filter(|s| s.2 == side).count();
    assert_eq!(on(compare::Side::Both) + on(compare::Side::OnlyA), count(a));
    assert_eq!(on(compare::Side::Both) + on(compare::Side::OnlyB), count(b));
    // DQN and PPO: no per-weight comparison, and why; the shares of both, side by side.
    let c = compare::compare(&r, b, &ppo.checkpoints.last().unwrap().agent_id).unwrap();
    let why = c.weights.unwrap_err();
    assert!(why.contains("parameter tensors") || why.contains("parameters differ"), "{why}");
    let (sa, sb) = (&r.summaries[b], &r.summaries[&ppo.checkpoints.last().unwrap().agent_id]);
    assert_eq!(c.shares.iter().filter(|p| p.a.is_some()).count(), sa.layers.len());
    assert_eq!(c.shares.iter().filter(|p| p.b.is_some()).count(), sb.layers.len());
    // Over training: the run's networks in step order, their shares, and the reward curve as
    // numpy reads evaluations.npz (evaluations.json, made by scripts/reference/make_zoo_fixtures.py).
    let evals = read_json(&zoo().join("evaluations.json"));
    for run in &r.runs {
        let t = training::training(&r, &run.run).unwrap();
        assert_eq!(t.points.len(), run.checkpoints.len());
        for (p, cp) in t.points.iter().zip(&run.checkpoints) {
            let s = &r.summaries[&cp.agent_id];
            let shares: Vec<f64> = s.layers.iter().map(|l| l.share).collect();
            assert_eq!(p.shares.iter().flatten().copied().collect::<Vec<_>>(), shares);
            assert_eq!((p.step, p.spearman), (cp.step, cp.spearman));
        }
        let key = format!("logs/{}", run.run.split("logs/").last().unwrap());
        let want = field(&evals, &key);
        let e = t.evaluations.as_ref().unwrap_or_else(|e| panic!("{}: {e}", run.run));
        let list =
            |k: &str| -> Vec<f64> { field(want, k).as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect() };
        assert_eq!(e.steps, list("timesteps"));
        for (k, got) in [("mean", &e.mean), ("min", &e.min), ("max", &e.max)] {
            for (g, w) in got.iter().zip(list(k)) {
                assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{key} {k}: {g} vs {w}");
            }
        }
    }
    // A folder that is not a finished sweep is refused with what to do.
    std::fs::remove_file(out.join("sweep.json")).unwrap();
    let e = results::open(&out).unwrap_err().to_string();
    assert!(e.contains("did not finish") && e.contains("sweep merge"), "{e}");
}

#[test]
fn explore_opens_a_sweep_folder_and_watches_with_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    // A folder with a manifest is a sweep: one that did not finish says what to do.
    std::fs::write(tmp.path().join("manifest.jsonl"), "").unwrap();
    for argv in [&["explore", s(tmp.path())][..], &[s(tmp.path())]] {
        let o = saliency(argv);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains("did not finish") && err.contains("sweep merge"), "{err}");
    }
    // --sweep is the sweep watched in the explorer: its flags are the sweep's.
    let o = saliency(&["explore", s(&zoo().join("logs")), "--sweep", "--shard", "1/2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--explore watches a whole sweep"), "{err}");
    // Without a terminal, the sweep is not started.
    let out = tmp.path().join("out");
    let inputs = format!("CartPole-v1={}", s(&zoo().join("obs/CartPole-v1.npy")));
    let o = saliency(&["explore", s(&zoo().join("logs")), "--sweep", "--inputs", &inputs, "--output-dir", s(&out)]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("interactive terminal"), "{err}");
    assert!(!out.exists());
}

#[test]
fn validate_in_a_sweep_gives_each_agent_its_validation_and_the_groups_iqm() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let extra = ["--validate", "--validate-sample", "40", "--bootstrap", "100"];
    let mut args = zoo_args(s(&out), &extra);
    args.retain(|a| a != "-q");
    let o = run_sweep(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let sweep = read_json(&out.join("sweep.json"));
    let rows = manifest(&out);
    let obs = zoo().join("obs/CartPole-v1.npy");
    for r in rows.iter().filter(|r| field(r, "status").as_str() == Some("ok")) {
        let id = field(r, "agent_id").as_str().unwrap();
        let file = std::fs::read(out.join("agents").join(id).join("validation.json")).unwrap();
        // A DQN agent's validation is what `saliency validate` writes for it with the same flags.
        if field(r, "algorithm").as_str() == Some("DQN") {
            let alone = tmp.path().join(format!("alone-{id}"));
            let path = field(r, "path").as_str().unwrap();
            let o = saliency(&[
                "validate",
                "-q",
                "--agent-path",
                path,
                "--inputs",
                s(&obs),
                "--sample",
                "40",
                "--bootstrap",
                "100",
                "--output-dir",
                s(&alone),
            ]);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            assert!(
                std::fs::read(alone.join("validation.json")).unwrap() == file,
                "{path}: validation.json differs from validate's"
            );
        }
        // sweep.json holds each measure's correlation, as the file has it.
        let v = read_json(&out.join("agents").join(id).join("validation.json"));
        let agent = field(&sweep, "agents")
            .as_array()
            .unwrap()
            .iter()
            .find(|a| field(a, "agent_id").as_str() == Some(id) && field(a, "status").as_str() == Some("ok"))
            .unwrap();
        let summary = field(agent, "validation");
        for score in field(&v, "measures").as_array().unwrap() {
            let m = field(score, "measure").as_str().unwrap();
            assert_eq!(field(summary, m).as_f64(), field(score, "spearman").as_f64(), "{id} {m}");
        }
    }
    // The DQN group (three seeds): each measure's IQM of the three correlations (n = 3: their mean).
    let dqn = field(&sweep, "groups").as_array().unwrap().iter().find(|g| field(g, "n").as_i64() == Some(3)).unwrap();
    let members: Vec<&str> = field(dqn, "agents").as_array().unwrap().iter().map(|a| a.as_str().unwrap()).collect();
    let preds = field(dqn, "validation").as_array().unwrap();
    assert_eq!(preds.len(), 9, "every measure but the signed mean");
    for p in preds {
        let m = field(p, "measure").as_str().unwrap();
        let rhos: Vec<f64> = members
            .iter()
            .map(|id| {
                let a = field(&sweep, "agents")
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|a| field(a, "agent_id").as_str() == Some(id) && field(a, "status").as_str() == Some("ok"))
                    .unwrap();
                field(field(a, "validation"), m).as_f64().unwrap()
            })
            .collect();
        let mean = rhos.iter().sum::<f64>() / 3.0;
        assert!((field(p, "iqm").as_f64().unwrap() - mean).abs() < 1e-15, "{m}");
    }
    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    assert!(csv.contains(",,spearman:fisher,"), "the long table has the correlations");
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("best predictors of the damage"), "{stdout}");
}
