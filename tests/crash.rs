//! Crash safety: a run killed with SIGKILL mid-write leaves the previous files (never a
//! truncated one); Ctrl-C (SIGINT) ends a run with exit code 130 and removes its temporary
//! files; the explorer restores the terminal on quit, on an error and on a panic (checked in a
//! real pseudo-terminal through util-linux `script`).

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("saliency")
}

/// The demo with its 40 inputs repeated, so writing the raw file takes a while.
fn big_demo(repeats: usize) -> tempfile::TempDir {
    let dir = copy_fixture("demo");
    let path = dir.path().join("activation_inputs/clean_inputs.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let body = text.trim().trim_start_matches('{').trim_end_matches('}');
    let mut out = String::from("{");
    for r in 0..repeats {
        if r > 0 {
            out.push(',');
        }
        out.push_str(&body.replace("\": {", &format!("-r{r}\": {{")));
    }
    out.push('}');
    std::fs::write(&path, out).unwrap();
    dir
}

fn partials(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().into_string().unwrap())
                .filter(|n| n.ends_with(".partial"))
                .collect()
        })
        .unwrap_or_default()
}

/// `saliency run -q` of `agent` into `out` (with `extra` flags), to the end.
fn run_into(agent: &Path, out: &Path, extra: &[&str]) -> std::process::ExitStatus {
    Command::new(bin())
        .args(["run", "-q"])
        .args(extra)
        .arg("--agent-path")
        .arg(agent)
        .arg("--output-dir")
        .arg(out)
        .status()
        .unwrap()
}

/// Starts a run and returns it once its raw file is being written (the caller reaps it).
#[allow(clippy::zombie_processes)]
fn start_run(agent: &Path, out: &Path) -> std::process::Child {
    let mut child = Command::new(bin())
        .args(["run", "-q", "--batch-size", "8", "--agent-path"])
        .arg(agent)
        .arg("--output-dir")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        let growing =
            partials(out).iter().any(|p| std::fs::metadata(out.join(p)).map(|m| m.len() > 100_000).unwrap_or(false));
        if growing {
            return child;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the run never started writing");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sigkill_mid_write_leaves_the_previous_files() {
    let agent = big_demo(60); // 2,400 inputs, ~640 MB of raw JSON
    let out = agent.path().join("gradient_analysis");
    // A previous, complete run (small, so it is quick): its files must survive the kill.
    let small = copy_fixture("demo");
    assert!(run_into(small.path(), &out, &[]).success());
    let before: Vec<(String, Vec<u8>)> = ["weight_gradients.json", "average_gradients.json", "candidate_weights.json"]
        .iter()
        .map(|f| (f.to_string(), std::fs::read(out.join(f)).unwrap()))
        .collect();
    let mut child = start_run(agent.path(), &out);
    child.kill().unwrap(); // SIGKILL
    let _ = child.wait();
    for (f, bytes) in &before {
        assert!(&std::fs::read(out.join(f)).unwrap() == bytes, "{f} changed after SIGKILL");
    }
    // Only hidden .partial files can be left (nothing can run on SIGKILL); the real names are
    // untouched.
    assert!(!partials(&out).is_empty(), "the killed run left its partial (nothing runs on SIGKILL)");
    for p in partials(&out) {
        assert!(p.starts_with('.'), "{p}");
    }
    // Killed again at other moments: at start, while loading, and while writing the npy folder.
    for (delay_ms, raw) in [(0u64, "json"), (150, "json"), (400, "npy")] {
        let mut child = Command::new(bin())
            .args(["run", "-q", "--batch-size", "8", "--raw-gradients", raw, "--agent-path"])
            .arg(agent.path())
            .arg("--output-dir")
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let _ = child.wait();
    }
    // The next run (any command writing there) removes the partials of writers that are gone.
    assert!(run_into(small.path(), &out, &["--raw-gradients", "npy"]).success());
    assert!(partials(&out).is_empty(), "left behind: {:?}", partials(&out));
}

#[test]
fn a_live_writers_partial_is_never_removed() {
    let agent = big_demo(60);
    let out = tempfile::tempdir().unwrap();
    let mut child = start_run(agent.path(), out.path());
    let theirs = partials(out.path());
    // Another run into the same folder while the first still writes.
    let small = copy_fixture("demo");
    assert!(run_into(small.path(), out.path(), &["--raw-gradients", "none"]).success());
    for p in &theirs {
        assert!(out.path().join(p).exists(), "{p} was removed while its writer was alive");
    }
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
fn ctrl_c_exits_130_and_removes_temporary_files() {
    let agent = big_demo(60);
    let out = tempfile::tempdir().unwrap();
    let child = start_run(agent.path(), out.path());
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));
    assert!(partials(out.path()).is_empty(), "{:?}", partials(out.path()));
    assert!(!out.path().join("weight_gradients.json").exists());
    assert!(!out.path().join("average_gradients.json").exists());
}

/// Runs the explorer in a pseudo-terminal (util-linux `script`), then `stty -a` in the same
/// terminal; returns everything the terminal received.
fn in_pty(env: &[(&str, &str)], keys: &str) -> (Option<i32>, String) {
    let cmd =
        format!("{} --agent-path {} --mouse; echo \"EXIT=$?\"; stty -a", bin().display(), fixture("acrobot").display());
    in_pty_cmd(&cmd, env, keys)
}

/// Runs a shell command line in a pseudo-terminal; returns everything the terminal received.
fn in_pty_cmd(cmd: &str, env: &[(&str, &str)], keys: &str) -> (Option<i32>, String) {
    let mut c = Command::new("script");
    c.args(["-qefc", cmd, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("util-linux `script` is needed for this test");
    {
        use std::io::Write;
        let stdin = child.stdin.as_mut().unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        let _ = stdin.write_all(keys.as_bytes());
        let _ = stdin.flush();
    }
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string())
}

fn assert_restored(screen: &str) {
    // Left the alternate screen, showed the cursor, released the mouse, and the terminal is
    // back in cooked mode with echo for the next command.
    assert!(screen.contains("\x1b[?1049l"), "alternate screen not left");
    assert!(screen.contains("\x1b[?25h"), "cursor not shown");
    assert!(screen.contains("\x1b[?1000l"), "mouse capture not released");
    let stty = screen.rsplit("EXIT=").next().unwrap();
    assert!(stty.contains(" icanon") && !stty.contains("-icanon"), "not in cooked mode:\n{stty}");
    assert!(stty.contains(" echo ") && !stty.contains("-echo "), "echo off:\n{stty}");
}

#[test]
fn terminal_is_restored_on_quit_error_and_panic() {
    let (_, screen) = in_pty(&[], "q");
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert_restored(&screen);

    let (_, screen) = in_pty(&[("SALIENCY_TEST_FAIL_AFTER_DRAW", "error")], "");
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("error: test error requested"), "{screen}");
    assert_restored(&screen);

    let (_, screen) = in_pty(&[("SALIENCY_TEST_FAIL_AFTER_DRAW", "panic"), ("RUST_BACKTRACE", "0")], "");
    assert!(screen.contains("test panic requested"), "{screen}");
    assert!(!screen.contains("EXIT=0"), "{screen}");
    assert_restored(&screen);
}

#[test]
fn explorer_leaves_on_sigterm_and_restores_the_terminal() {
    // SIGTERM (or SIGHUP when the terminal goes away) ends the explorer cleanly; it must not
    // keep running without a terminal.
    let inner =
        format!("(sleep 2; kill -TERM $$) & exec {} --agent-path {}", bin().display(), fixture("acrobot").display());
    let cmd = format!("sh -c '{inner}'; echo \"EXIT=$?\"; stty -a");
    let start = Instant::now();
    let (_, screen) = in_pty_cmd(&cmd, &[], "");
    assert!(start.elapsed() < Duration::from_secs(30));
    assert!(screen.contains("EXIT=130"), "{screen}");
    assert!(screen.contains("\x1b[?1049l"), "alternate screen not left");
    let stty = screen.rsplit("EXIT=").next().unwrap();
    assert!(!stty.contains("-icanon"), "{stty}");
}
