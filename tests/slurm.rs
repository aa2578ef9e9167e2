//! The sweep on a real Slurm cluster: the job array `--emit-sbatch` writes, submitted with
//! `sbatch`, each task a shard (`--shard slurm` from the array variables), then the merge as a
//! job that waits on the array (`--dependency=afterok`); the merged files are compared, byte
//! for byte, with the one-process sweep.
//!
//! Needs a running cluster: `scripts/slurm-local.sh start` starts a single-node one on this
//! machine (as `.ci/run` does before running this test with `--ignored`).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("saliency")
}

fn sh(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The state Slurm reports for a job (or each task of an array).
fn states(job: &str) -> Vec<String> {
    let o = Command::new("scontrol").args(["show", "job", job]).output().unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("JobState="))
        .map(str::to_string)
        .collect()
}

fn wait_for(job: &str, timeout: Duration) -> Vec<String> {
    let start = Instant::now();
    loop {
        let s = states(job);
        if !s.is_empty()
            && s.iter().all(|x| ["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL"].contains(&x.as_str()))
        {
            return s;
        }
        assert!(start.elapsed() < timeout, "job {job} still {s:?} after {timeout:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
#[ignore = "needs a Slurm cluster: scripts/slurm-local.sh start (.ci/run runs it)"]
fn a_job_array_and_its_merge_give_the_bytes_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = fixture("zoo").join("logs");
    let inputs = format!("CartPole-v1={}", fixture("zoo").join("obs/CartPole-v1.npy").display());
    let sweep = |out: &Path, extra: &[&str]| {
        let mut c = Command::new(bin());
        c.args(["sweep", "-q"]).arg(&logs).args(["--inputs", &inputs, "--raw-gradients", "none", "--output-dir"]);
        c.arg(out).args(extra);
        c
    };
    let whole = tmp.path().join("whole");
    sh(&mut sweep(&whole, &[]));
    let out = tmp.path().join("slurm");
    let script = tmp.path().join("sweep.sbatch");
    let printed = sh(sweep(&out, &["--slurm-tasks", "3", "--slurm-cpus", "1", "--slurm-mem", "1G"])
        .arg("--emit-sbatch")
        .arg(&script));
    let _ = printed;
    let array = sh(Command::new("sbatch").arg("--parsable").arg(&script));
    let array = array.split(';').next().unwrap().to_string();
    let merge = sh(Command::new("sbatch").args([
        "--parsable",
        &format!("--dependency=afterok:{array}"),
        &format!("--output={}/logs/merge_%j.out", out.display()),
        "--wrap",
        &format!("{} sweep merge {}", bin().display(), out.display()),
    ]));
    let tasks = wait_for(&array, Duration::from_secs(600));
    assert!(tasks.iter().all(|s| s == "COMPLETED"), "array tasks: {tasks:?}; logs in {}/logs", out.display());
    assert_eq!(tasks.len(), 3, "three tasks: {tasks:?}");
    let merged = wait_for(&merge, Duration::from_secs(300));
    assert_eq!(merged, ["COMPLETED"], "merge job; logs in {}/logs", out.display());
    for i in 1..=3 {
        assert!(out.join(format!("shards/shard-{i}-of-3.json")).is_file(), "shard {i} of the array");
    }
    for f in ["manifest.jsonl", "sweep.json", "sweep.csv"] {
        assert!(std::fs::read(whole.join(f)).unwrap() == std::fs::read(out.join(f)).unwrap(), "{f} differs");
    }
}
